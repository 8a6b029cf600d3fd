package validate

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testVersion is stamped into the test build of ferryd, as --build-arg
// VERSION=... would be.
const testVersion = "v0.0.0-validate+k8s"

var (
	repoRoot  string // /work/main: three levels up
	workDir   string // shared by every test; removed by TestMain
	buildOnce sync.Once
	built     ferrydBuild
	ferryOnce sync.Once
	ferry     ferrydBuild // the client, cmd/ferry
)

type ferrydBuild struct {
	path string
	err  error
}

func TestMain(m *testing.M) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err == nil {
		workDir, err = os.MkdirTemp("", "ferry-validate-")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	repoRoot = root
	code := m.Run()
	os.RemoveAll(workDir)
	os.Exit(code)
}

// renderDirs returns the base and every overlay.
func renderDirs(t *testing.T) []string {
	t.Helper()
	overlays, err := filepath.Glob(filepath.Join("..", "overlays", "*", "kustomization.yaml"))
	if err != nil || len(overlays) == 0 {
		t.Fatalf("no overlays found (%v)", err)
	}
	dirs := []string{filepath.Join("..", "base")}
	for _, k := range overlays {
		dirs = append(dirs, filepath.Dir(k))
	}
	return dirs
}

func render(t *testing.T, dir string) Manifests {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := Render(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func dockerfile(t *testing.T) *Dockerfile {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	df, err := ParseDockerfile(f)
	if err != nil {
		t.Fatal(err)
	}
	return df
}

// ferrydBinary builds ferryd once, the way deployments/Dockerfile does:
// its build stage's `go build` words, ARGs and env, run in the
// repository root (the image's build context) with the golang image's
// GOTOOLCHAIN=local and no GOFLAGS, output into the test's work dir.
func ferrydBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() { built = buildFerryd(dockerfile(t)) })
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func buildFerryd(df *Dockerfile) ferrydBuild {
	build := df.Stage("build")
	if build == nil {
		return ferrydBuild{err: fmt.Errorf("Dockerfile has no stage named build")}
	}
	gb, err := build.GoBuild(map[string]string{
		"VERSION": testVersion, "TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH,
	})
	if err != nil {
		return ferrydBuild{err: err}
	}
	out := filepath.Join(workDir, "ferryd")
	args := slices.Clone(gb.Args)
	if i := slices.Index(args, "-o"); i >= 0 && i+1 < len(args) {
		args[i+1] = out
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	cmd.Env = append(withoutEnv(os.Environ(), "GOFLAGS"), "GOTOOLCHAIN=local")
	cmd.Env = append(cmd.Env, gb.Env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return ferrydBuild{err: fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, msg)}
	}
	return ferrydBuild{path: out}
}

// ferryClient builds Ferry's client once, for pulls through a running
// ferryd. It is not in the image; a plain static build will do.
func ferryClient(t *testing.T) string {
	t.Helper()
	ferryOnce.Do(func() {
		out := filepath.Join(workDir, "ferry")
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/ferry")
		cmd.Dir = repoRoot
		cmd.Env = append(withoutEnv(os.Environ(), "GOFLAGS"), "GOTOOLCHAIN=local", "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			ferry.err = fmt.Errorf("go build ./cmd/ferry: %v\n%s", err, msg)
		}
		ferry.path = out
	})
	if ferry.err != nil {
		t.Fatal(ferry.err)
	}
	return ferry.path
}

func withoutEnv(env []string, names ...string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(names, name)
	})
}

// runFerryd runs the binary to completion with a clean environment and
// returns its combined output.
func runFerryd(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
