package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

// TestPullErrors checks that refused pulls exit 1 with the gRPC code on
// standard error, leak no host path or errno text, and leave no file.
func TestPullErrors(t *testing.T) {
	root, outside, out := t.TempDir(), t.TempDir(), t.TempDir()
	writeRandom(t, root, "small", 10)
	writeRandom(t, outside, "secret", 10)
	if err := os.Mkdir(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	d := startFerryd(t, root)
	tests := []struct {
		name  string
		args  []string // flags, then the remote path
		codes []codes.Code
	}{
		{"missing", []string{"missing.bin"}, []codes.Code{codes.NotFound}},
		{"dot-dot", []string{"../x"}, []codes.Code{codes.InvalidArgument}},
		{"absolute", []string{"/etc/passwd"}, []codes.Code{codes.InvalidArgument, codes.PermissionDenied}},
		{"symlink-outside", []string{"escape"}, []codes.Code{codes.InvalidArgument, codes.PermissionDenied}},
		{"directory", []string{"sub"}, []codes.Code{codes.FailedPrecondition}},
		{"offset-past-end", []string{"--offset", "11", "small"}, []codes.Code{codes.OutOfRange}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(out, tc.name)
			args := append(append([]string{"pull", "--server", d.Addr}, tc.args...), dest)
			res := ferry(t, args...)
			if res.code != 1 || !slices.ContainsFunc(tc.codes, func(c codes.Code) bool {
				return strings.Contains(res.stderr, "("+c.String()+")")
			}) {
				t.Errorf("ferry %q: exit %d, stderr %q; want exit 1 and one of %v", args, res.code, res.stderr, tc.codes)
			}
			for _, leak := range []string{root, outside, "no such file or directory", "errno", "openat"} {
				if strings.Contains(res.stderr, leak) {
					t.Errorf("ferry %q: stderr %q leaks %q", args, res.stderr, leak)
				}
			}
			for _, p := range []string{dest, dest + ".partial"} {
				if _, err := os.Lstat(p); !os.IsNotExist(err) {
					t.Errorf("ferry %q left %s behind (Lstat: %v)", args, p, err)
				}
			}
		})
	}
}
