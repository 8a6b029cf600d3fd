package transfer

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the data plane free of the control plane: it may
// import the standard library and golang.org/x/sys/unix, nothing else
// (DESIGN.md, section 3).
func TestImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	const pkg = "github.com/ferrydev/ferry/transfer"
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	allowed := map[string]bool{pkg: true, "golang.org/x/sys/unix": true}
	n := 0
	for line := range strings.Lines(string(out)) {
		path, std, _ := strings.Cut(strings.TrimSpace(line), " ")
		n++
		for _, banned := range []string{"google.golang.org/grpc", "google.golang.org/protobuf", "github.com/ferrydev/ferry/api"} {
			if path == banned || strings.HasPrefix(path, banned+"/") {
				t.Errorf("%s depends on %s", pkg, path)
			}
		}
		if std != "true" && !allowed[path] {
			t.Errorf("%s depends on %s, outside the standard library and golang.org/x/sys/unix", pkg, path)
		}
	}
	if n < 10 {
		t.Errorf("go list -deps %s listed %d packages; want the standard library's too", pkg, n)
	}
}
