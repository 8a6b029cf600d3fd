package integration

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fuzzExecs is how many inputs each fuzz target tries: about 10 s each
// on an idle 2-core machine. A count rather than a time: with -fuzztime
// as a duration, the engine itself sometimes ended with "context deadline
// exceeded" when the rest of the suite loaded both cores (seen in 3 of 4
// full runs), a harness failure that says nothing about the code.
const fuzzExecs = "100000x"

// The lines in which go test names a failing input: one the fuzz engine
// found and wrote under the package's testdata/fuzz, or a seed (an f.Add
// call, "seed#N", or a file under testdata/fuzz or the fuzz cache).
var (
	failingInput = regexp.MustCompile(`Failing input written to (testdata/fuzz/\S+)`)
	failingSeed  = regexp.MustCompile(`failure while testing seed corpus entry: (\S+)`)
)

// TestFuzz runs each fuzz target of transfer and fsroot for fuzzExecs
// inputs, one at a time and with one worker, since the rest of the suite
// runs beside it. A failure leaves the failing input in the package's
// testdata/fuzz, where it becomes a seed once committed.
func TestFuzz(t *testing.T) {
	if testing.Short() {
		t.Skip("fuzzing takes a minute; skipped with -short")
	}
	for _, tt := range []struct{ pkg, target string }{
		{"./transfer/", "FuzzParsePreamble"},
		{"./transfer/", "FuzzParseFrameHeader"},
		{"./fsroot/", "FuzzCleanPath"},
		{"./fsroot/", "FuzzRootOpen"},
	} {
		t.Run(tt.target, func(t *testing.T) { fuzz(t, tt.pkg, tt.target) })
	}
}

// fuzz runs target in pkg, a package directory relative to repoRoot.
func fuzz(t *testing.T, pkg, target string) {
	// The first run builds an instrumented standard library; the time
	// beyond fuzzTime is for that.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-run=^$", "-fuzz=^"+target+"$",
		"-fuzztime="+fuzzExecs, "-fuzzminimizetime=1000x", "-parallel=1", pkg)
	cmd.Dir = repoRoot
	// Its own process group, so that a timeout also ends the test binary
	// and its workers, not only the go command.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("go %s: timed out\n%s", strings.Join(cmd.Args[1:], " "), &out)
	}
	if err == nil {
		t.Logf("%s: %s", target, lastProgress(out.String()))
		return
	}
	if m := failingInput.FindStringSubmatch(out.String()); m != nil {
		t.Errorf("%s failed; the failing input is %s", target, filepath.Join(repoRoot, pkg, m[1]))
	} else if m := failingSeed.FindStringSubmatch(out.String()); m != nil {
		t.Errorf("%s failed on its seed %s (seed#N is an f.Add call; others are under %s)",
			target, m[1], filepath.Join(repoRoot, pkg, "testdata/fuzz"))
	}
	t.Fatalf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, &out)
}

// lastProgress returns the fuzz engine's last progress line.
func lastProgress(out string) string {
	var last string
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "fuzz: elapsed:") {
			last = strings.TrimSpace(line)
		}
	}
	return last
}
