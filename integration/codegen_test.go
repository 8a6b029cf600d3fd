package integration

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestGeneratedCode lints the API with buf and regenerates api/ from a
// copy of proto/ and the buf configuration, with the pinned buf and
// plugins; any difference from the committed api/ fails. It also builds
// the descriptor set that reflection serves (service/ferry.binpb).
func TestGeneratedCode(t *testing.T) {
	bufBin := toolPath(t, bufTool)
	pathEnv := strings.Join([]string{
		filepath.Dir(toolPath(t, genGoTool)), filepath.Dir(toolPath(t, genGRPCTool)), os.Getenv("PATH"),
	}, string(os.PathListSeparator))
	env := append(os.Environ(), "PATH="+pathEnv)
	work := t.TempDir()
	if err := os.CopyFS(filepath.Join(work, "proto"), os.DirFS(filepath.Join(repoRoot, "proto"))); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"buf.yaml", "buf.gen.yaml"} {
		copyFile(t, filepath.Join(repoRoot, name), filepath.Join(work, name))
	}
	for _, args := range [][]string{{"lint"}, {"generate"}} {
		cmd := exec.Command(bufBin, args...)
		cmd.Dir, cmd.Env = work, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("buf %s: %v\n%s", args[0], err, out)
		}
	}
	// The descriptors reflection serves, with the comments grpcurl
	// describe prints (service/reflection.go embeds them).
	build := exec.Command(bufBin, "build", "-o", "ferry.binpb")
	build.Dir, build.Env = work, env
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("buf build: %v\n%s", err, out)
	}
	fresh, err := os.ReadFile(filepath.Join(work, "ferry.binpb"))
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join(repoRoot, "service", "ferry.binpb"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		t.Errorf("service/ferry.binpb differs from a fresh buf build; run buf build -o service/ferry.binpb")
	}

	want, got := readTree(t, filepath.Join(work, "api")), readTree(t, filepath.Join(repoRoot, "api"))
	if len(want) == 0 {
		t.Fatal("buf generate wrote nothing under api/")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("api/ differs from a fresh buf generate (-generated +committed); run buf generate:\n%s", diff)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readTree maps every file under dir, by slash path relative to dir, to
// its lines.
func readTree(t *testing.T, dir string) map[string][]string {
	t.Helper()
	files := map[string][]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = strings.Split(string(b), "\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestGofmtVet requires gofmt to have nothing to say about the tree and go
// vet to pass on every package.
func TestGofmtVet(t *testing.T) {
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	gofmt := filepath.Join(strings.TrimSpace(string(goroot)), "bin", "gofmt")
	out, err := exec.Command(gofmt, "-l", repoRoot).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("gofmt -l: %v; files not formatted:\n%s", err, out)
	}
	vet := exec.Command("go", "vet", "./...")
	vet.Dir = repoRoot
	if out, err := vet.CombinedOutput(); err != nil {
		t.Errorf("go vet ./...: %v\n%s", err, out)
	}
}
