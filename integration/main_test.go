package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// repoRoot is the module's directory; bin holds the binaries TestMain
// built from it.
var (
	repoRoot string
	bin      struct{ ferryd, ferry string }
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ferry-integration-bin-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	return m.Run()
}

// buildBinaries finds the module root and builds ferryd and ferry into
// dir, with -race when the tests run with it.
func buildBinaries(dir string) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return errors.New("not inside the ferry module (go env GOMOD is empty)")
	}
	repoRoot = filepath.Dir(gomod)
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/ferryd", "./cmd/ferry")...)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(cmd.Args[1:], " "), err, out)
	}
	bin.ferryd, bin.ferry = filepath.Join(dir, "ferryd"), filepath.Join(dir, "ferry")
	return nil
}

// cleanEnv is the environment for the binaries: this one without FERRY_*
// variables, so that only the flags the tests pass configure them, and
// without OTEL_* ones, so that tracing is off unless a test turns it on. Race
// binaries are told not to linger a second at exit (the race runtime's
// default), which would cost that second per ferry command. GOTRACEBACK=all
// makes a SIGQUIT print every goroutine (dumpGoroutines).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FERRY_") && !strings.HasPrefix(kv, "OTEL_") && !strings.HasPrefix(kv, "GORACE=") && !strings.HasPrefix(kv, "GOTRACEBACK=") {
			env = append(env, kv)
		}
	}
	env = append(env, "GOTRACEBACK=all") // a SIGQUIT dumps every goroutine
	if raceEnabled {
		env = append(env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	}
	return env
}

// result is what a finished command left behind.
type result struct {
	stdout, stderr string
	code           int
}

// run runs name with args to completion (at most a minute) and returns
// its output and exit code. Failing to start is fatal; a non-zero exit is
// the caller's to judge.
func run(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%s %q: %v", filepath.Base(name), args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %q: timed out\nstderr:\n%s", filepath.Base(name), args, &stderr)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// ferry runs the ferry CLI.
func ferry(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, cleanEnv(), bin.ferry, args...)
}

// ferryOK runs the ferry CLI and fails the test unless it exits 0.
func ferryOK(t *testing.T, args ...string) result {
	t.Helper()
	r := ferry(t, args...)
	if r.code != 0 {
		t.Fatalf("ferry %q: exit %d, want 0\nstderr:\n%s", args, r.code, r.stderr)
	}
	return r
}

// chacha makes the test files: pseudo-random, so a misplaced block shows,
// and the same on every run.
var chacha = rand.NewChaCha8([32]byte{'f', 'e', 'r', 'r', 'y', '-', 'i', 't'})

// writeRandom writes size pseudo-random bytes to dir/name and returns them.
func writeRandom(t *testing.T, dir, name string, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	chacha.Read(data)
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

// sameBytes fails the test when got differs from want, naming the first
// differing offset rather than printing megabytes.
func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Errorf("%s: got %d bytes, want %d; first difference at offset %d", what, len(got), len(want), i)
}
