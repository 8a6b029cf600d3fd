package validate

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// TestImageBinaryIsStatic builds ferryd exactly as the Dockerfile does and
// checks what the image relies on: no dynamic loader or libraries (the
// final stage has no libc), stripped, no host paths.
func TestImageBinaryIsStatic(t *testing.T) {
	bin := ferrydBinary(t)
	for _, err := range staticProblems(bin) {
		t.Error(err)
	}
}

// TestStaticProblemsCatchesDynamicBinary feeds the check a dynamically
// linked, unstripped program of this machine.
func TestStaticProblemsCatchesDynamicBinary(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(staticProblems(sh)); !strings.Contains(got, "PT_INTERP") {
		t.Errorf("staticProblems(%s) = %s, want PT_INTERP reported", sh, got)
	}
}

func staticProblems(bin string) []error {
	var errs problems
	f, err := elf.Open(bin)
	if err != nil {
		return []error{err}
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			errs.addf("%s has a PT_INTERP program header: it needs a dynamic loader", bin)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		errs.addf("%s needs shared libraries %q (%v)", bin, libs, err)
	}
	if f.Section(".symtab") != nil {
		errs.addf("%s has a symbol table: -ldflags -s was not applied", bin)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return append(errs, err)
	}
	if bytes.Contains(data, []byte(repoRoot+"/")) {
		errs.addf("%s contains the build path %s: -trimpath was not applied", bin, repoRoot)
	}
	return errs
}

func TestImageBinaryBuildSettings(t *testing.T) {
	bin := ferrydBinary(t)
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if bi.Path != "github.com/ferrydev/ferry/cmd/ferryd" {
		t.Errorf("built %s, want github.com/ferrydev/ferry/cmd/ferryd", bi.Path)
	}
	for key, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[key] != want {
			t.Errorf("build setting %s = %q, want %q", key, settings[key], want)
		}
	}
	// With -trimpath, go build does not record -ldflags: --version shows
	// the stamp instead, on its first line (then the commit and the Go).
	out, err := runFerryd(t, bin, "--version")
	if first, _, _ := strings.Cut(out, "\n"); err != nil || first != "version: "+testVersion {
		t.Errorf("ferryd --version = %q, %v; want a first line %q", out, err, "version: "+testVersion)
	}
}

// TestFerrydFlagsTable compares FerrydFlags with the real binary's usage,
// so the checks and the smoke test know exactly the flags ferryd has.
func TestFerrydFlagsTable(t *testing.T) {
	bin := ferrydBinary(t)
	out, err := runFerryd(t, bin, "-h")
	if err != nil {
		t.Fatalf("ferryd -h: %v, want exit status 0\n%s", err, out)
	}
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "  -"); ok {
			name, typ, _ := strings.Cut(line, " ")
			got[name] = typ
		}
	}
	for _, f := range FerrydFlags {
		typ, ok := got[f.Name]
		if !ok || typ != f.Type {
			t.Errorf("FerrydFlags has -%s %s; ferryd -h says %q (present: %v)", f.Name, f.Type, typ, ok)
		}
		delete(got, f.Name)
	}
	for name, typ := range got {
		t.Errorf("ferryd has -%s %s, which FerrydFlags lacks: add it and decide what the manifests set", name, typ)
	}
}

// TestDockerignoreKeepsFerrydSources checks that the image's build
// context still holds every package ferryd is built from.
func TestDockerignoreKeepsFerrydSources(t *testing.T) {
	ignore, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile.dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "./cmd/ferryd")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	needed := []string{"go.mod", "go.sum"}
	for _, dir := range strings.Fields(string(out)) {
		if rel, err := filepath.Rel(repoRoot, dir); err == nil && !strings.HasPrefix(rel, "..") {
			needed = append(needed, filepath.ToSlash(rel))
		}
	}
	for _, pat := range strings.Split(string(ignore), "\n") {
		pat = strings.TrimSpace(pat)
		if pat == "" || strings.HasPrefix(pat, "#") {
			continue
		}
		for _, rel := range needed {
			if ignored(pat, rel) {
				t.Errorf("Dockerfile.dockerignore pattern %q drops %s, which ferryd needs", pat, rel)
			}
		}
	}
}

// ignored approximates .dockerignore matching: a pattern drops the paths
// it matches and everything beneath them; **/ matches at any depth.
func ignored(pat, rel string) bool {
	for p := rel; p != "." && p != "/"; p = path.Dir(p) {
		if ok, _ := path.Match(pat, p); ok {
			return true
		}
		if base, ok := strings.CutPrefix(pat, "**/"); ok {
			if ok, _ := path.Match(base, path.Base(p)); ok {
				return true
			}
		}
	}
	return false
}
