package integration

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/ferrydev/ferry"

// TestImportDirection keeps the layout's import rules, each checked with
// go list:
//   - fsroot imports nothing of Ferry's, and outside the standard library
//     only golang.org/x/sys;
//   - transfer adds only fsroot to that: no gRPC, protobuf or api;
//   - imports run cmd → service → client → transfer → fsroot: client does
//     not import service, and nothing outside cmd imports cmd;
//   - the CLI (cmd/ferry) and the benchmark (internal/bench) reach Ferry
//     only through client and api's types: they import neither transfer,
//     fsroot, the API mapping (internal/apiconv) nor service.
func TestImportDirection(t *testing.T) {
	onlySys := func(dep string) bool { return strings.HasPrefix(dep, "golang.org/x/sys/") }
	checkDeps(t, "./fsroot", func(dep string) bool { return dep == module+"/fsroot" || onlySys(dep) })
	checkDeps(t, "./transfer", func(dep string) bool {
		return dep == module+"/transfer" || dep == module+"/fsroot" || onlySys(dep)
	})
	for _, dep := range nonStandardDeps(t, "./client") {
		if dep == module+"/service" || strings.HasPrefix(dep, module+"/service/") {
			t.Errorf("client depends on %s; imports run service → client, not back", dep)
		}
	}
	for _, dep := range nonStandardDeps(t, "./service", "./client", "./transfer", "./fsroot", "./internal/...") {
		if strings.HasPrefix(dep, module+"/cmd/") {
			t.Errorf("a package outside cmd depends on %s", dep)
		}
	}
	for _, pkg := range []string{"./cmd/ferry", "./internal/bench"} {
		for _, imp := range directImports(t, pkg) {
			switch strings.TrimPrefix(imp, module+"/") {
			case "transfer", "fsroot", "internal/apiconv", "service":
				t.Errorf("%s imports %s; it reaches Ferry through the client package", pkg, imp)
			}
		}
	}
}

// checkDeps fails for each package pkg builds from, outside the standard
// library, that allowed refuses.
func checkDeps(t *testing.T, pkg string, allowed func(string) bool) {
	t.Helper()
	var bad []string
	for _, dep := range nonStandardDeps(t, pkg) {
		if !allowed(dep) {
			bad = append(bad, dep)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%s depends on %s, outside what it may import", pkg, strings.Join(bad, ", "))
	}
}

// nonStandardDeps lists the packages pkgs build from, themselves included,
// outside the standard library.
func nonStandardDeps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	return goList(t, "{{if not .Standard}}{{.ImportPath}}{{end}}", "-deps", pkgs...)
}

// directImports lists what the non-test files of pkg import.
func directImports(t *testing.T, pkg string) []string {
	t.Helper()
	return goList(t, `{{join .Imports " "}}`, "", pkg)
}

func goList(t *testing.T, format, flag string, pkgs ...string) []string {
	t.Helper()
	args := []string{"list", "-f", format}
	if flag != "" {
		args = append(args, flag)
	}
	args = append(args, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	list := slices.Compact(slices.Sorted(slices.Values(strings.Fields(string(out)))))
	if len(list) == 0 {
		t.Fatalf("go %s listed nothing", strings.Join(args, " "))
	}
	return list
}
