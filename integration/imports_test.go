package integration

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/ferrydev/ferry"

// TestImportDirection keeps imports running one way, cmd → service →
// transfer: transfer depends on the standard library and x/sys alone
// (never gRPC, protobuf or api), and nothing outside cmd depends on cmd.
func TestImportDirection(t *testing.T) {
	var bad []string
	for _, dep := range nonStandardDeps(t, "./transfer") {
		if dep != module+"/transfer" && !strings.HasPrefix(dep, "golang.org/x/sys/") {
			bad = append(bad, dep)
		}
	}
	if len(bad) > 0 {
		t.Errorf("transfer depends on %s; it may import only the standard library and golang.org/x/sys", strings.Join(bad, ", "))
	}
	for _, dep := range nonStandardDeps(t, "./service", "./client") {
		if strings.HasPrefix(dep, module+"/cmd/") {
			t.Errorf("service or client depends on %s; imports run cmd → service → transfer", dep)
		}
	}
}

// nonStandardDeps lists the packages pkgs build from, themselves included,
// outside the standard library.
func nonStandardDeps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	args := append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatalf("go %s listed nothing", strings.Join(args, " "))
	}
	return deps
}
