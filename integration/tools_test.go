package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// tool is a pinned Go command the tests run.
type tool struct {
	name    string // binary name
	pkg     string // package to go install
	module  string // its module, as `go version -m` prints it
	version string
	// versionFlag, if set, makes the binary print version (without the
	// "v"): accepted when its build information names no version.
	versionFlag string
}

var (
	grpcurlTool = tool{"grpcurl", "github.com/fullstorydev/grpcurl/cmd/grpcurl", "github.com/fullstorydev/grpcurl", "v1.9.4", ""}
	bufTool     = tool{"buf", "github.com/bufbuild/buf/cmd/buf", "github.com/bufbuild/buf", "v1.75.0", "--version"}
	genGoTool   = tool{"protoc-gen-go", "google.golang.org/protobuf/cmd/protoc-gen-go", "google.golang.org/protobuf", "v1.36.12", ""}
	genGRPCTool = tool{"protoc-gen-go-grpc", "google.golang.org/grpc/cmd/protoc-gen-go-grpc", "google.golang.org/grpc/cmd/protoc-gen-go-grpc", "v1.6.2", ""}
)

// installTimeout bounds one go install; buf takes minutes on two cores.
const installTimeout = 8 * time.Minute

var tools struct {
	mu    sync.Mutex
	paths map[string]string
}

// toolPath returns the path of the pinned tool: from $FERRY_TOOLS_BIN,
// PATH or this package's cache, the first that is the pinned version, or
// else freshly installed with go install.
func toolPath(t *testing.T, tl tool) string {
	t.Helper()
	tools.mu.Lock()
	defer tools.mu.Unlock()
	if p, ok := tools.paths[tl.name]; ok {
		return p
	}
	p := findTool(t, tl)
	if p == "" {
		p = installTool(t, tl)
	}
	if tools.paths == nil {
		tools.paths = map[string]string{}
	}
	tools.paths[tl.name] = p
	return p
}

// findTool returns the first candidate binary of the pinned version.
func findTool(t *testing.T, tl tool) string {
	var candidates []string
	if dir := os.Getenv("FERRY_TOOLS_BIN"); dir != "" {
		candidates = append(candidates, filepath.Join(dir, tl.name))
	}
	if p, err := exec.LookPath(tl.name); err == nil {
		candidates = append(candidates, p)
	}
	if dir, err := cacheDir(tl); err == nil {
		candidates = append(candidates, filepath.Join(dir, tl.name))
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := tl.check(p); err != nil {
			t.Logf("not using %s: %v", p, err)
			continue
		}
		t.Logf("using %s %s at %s", tl.name, tl.version, p)
		return p
	}
	return ""
}

// check tells whether the binary at p is the pinned version.
func (tl tool) check(p string) error {
	out, err := exec.Command("go", "version", "-m", p).Output()
	if err == nil && strings.Contains(string(out), "\tmod\t"+tl.module+"\t"+tl.version+"\t") {
		return nil
	}
	if tl.versionFlag != "" {
		v, err := exec.Command(p, tl.versionFlag).Output()
		if err == nil && strings.TrimSpace(string(v)) == strings.TrimPrefix(tl.version, "v") {
			return nil
		}
	}
	return fmt.Errorf("not %s %s", tl.module, tl.version)
}

// cacheDir is where this package keeps its own install of a tool.
func cacheDir(tl tool) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "ferry-tools", tl.name+"-"+tl.version), nil
}

// installTool installs the pinned version into $FERRY_TOOLS_BIN, or the
// cache when that is unset. It builds in a scratch directory beside the
// target and renames the binary into place, so a concurrent run never
// sees half a file.
func installTool(t *testing.T, tl tool) string {
	t.Helper()
	dir := os.Getenv("FERRY_TOOLS_BIN")
	if dir == "" {
		var err error
		if dir, err = cacheDir(tl); err != nil {
			t.Fatalf("no place to install %s: %v", tl.name, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	scratch, err := os.MkdirTemp(dir, ".install-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(scratch)
	t.Logf("installing %s@%s into %s", tl.pkg, tl.version, dir)
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", tl.pkg+"@"+tl.version)
	cmd.Dir = scratch // outside any module
	cmd.Env = append(os.Environ(), "GOBIN="+scratch, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s@%s: %v\n%s", tl.pkg, tl.version, err, out)
	}
	p := filepath.Join(dir, tl.name)
	if err := os.Rename(filepath.Join(scratch, tl.name), p); err != nil {
		t.Fatal(err)
	}
	if err := tl.check(p); err != nil {
		t.Fatalf("installed %s: %v", p, err)
	}
	return p
}
