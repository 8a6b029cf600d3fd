package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestFerryLs lists a tree with the built ferry: every page, in lexical
// order, symlinks shown with their targets and not followed.
func TestFerryLs(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "docs", "img"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, filepath.Join(root, "docs"), "a.txt", 12345)
	writeRandom(t, filepath.Join(root, "docs", "img"), "big.bin", 3<<20)
	writeRandom(t, root, "docs-old.txt", 10)
	if err := os.Symlink("docs", filepath.Join(root, "latest")); err != nil {
		t.Fatal(err)
	}
	d := startFerryd(t, root)

	want := []string{"docs", "docs-old.txt", "docs/a.txt", "docs/img", "docs/img/big.bin", "latest"}
	r := ferryOK(t, "ls", "--server", d.Addr, "--json", "-r", "--page-size", "2")
	var resp ferryv1.ListFilesResponse
	if err := protojson.Unmarshal([]byte(r.stdout), &resp); err != nil {
		t.Fatalf("ferry ls --json: %v\n%s", err, r.stdout)
	}
	var got []string
	for _, e := range resp.GetEntries() {
		got = append(got, e.GetPath())
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ferry ls -r --json (pages of 2) lists %q, want %q", got, want)
	}
	if !regexp.MustCompile(`"size":\s*"3145728"`).MatchString(r.stdout) { // protojson varies its spaces
		t.Errorf("ferry ls --json does not give big.bin's size as an exact integer:\n%s", r.stdout)
	}

	lines := strings.Split(strings.TrimSpace(ferryOK(t, "ls", "--server", d.Addr, "-r").stdout), "\n")
	if len(lines) != len(want) {
		t.Fatalf("ferry ls -r printed %d lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, w := range []string{"d", "-", "-", "d", "-", "L"} {
		if !strings.HasPrefix(lines[i], w) || !strings.Contains(lines[i], want[i]) {
			t.Errorf("ferry ls -r line %d = %q, want mode %s... and path %s", i, lines[i], w, want[i])
		}
	}
	if !strings.Contains(lines[4], "3.0 MiB") || !strings.HasSuffix(lines[5], "latest -> docs") {
		t.Errorf("ferry ls -r: big.bin line %q, latest line %q; want 3.0 MiB and latest -> docs", lines[4], lines[5])
	}
	if r := ferry(t, "ls", "--server", d.Addr, "docs/a.txt"); r.code == 0 || !strings.Contains(r.stderr, "FailedPrecondition") {
		t.Errorf("ferry ls of a file: exit %d, stderr %q; want FailedPrecondition", r.code, r.stderr)
	}
}

// TestFerryTransfers: ferryd keeps --transfer-history finished transfers,
// and ferry transfers shows them, newest first.
func TestFerryTransfers(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"a", "b", "c"} {
		writeRandom(t, root, name, 1000)
	}
	d := startFerryd(t, root, "--transfer-history", "2")
	for _, name := range []string{"a", "b", "c"} {
		ferryOK(t, "pull", "--server", d.Addr, name, os.DevNull)
	}
	r := ferryOK(t, "transfers", "--server", d.Addr, "--json")
	var resp ferryv1.ListTransfersResponse
	if err := protojson.Unmarshal([]byte(r.stdout), &resp); err != nil {
		t.Fatalf("ferry transfers --json: %v\n%s", err, r.stdout)
	}
	var got []string
	for _, tr := range resp.GetTransfers() {
		got = append(got, tr.GetPath()+":"+tr.GetState().String())
	}
	if want := []string{"c:TRANSFER_STATE_SUCCEEDED", "b:TRANSFER_STATE_SUCCEEDED"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ferry transfers --json after 3 pulls with --transfer-history 2 = %q, want %q", got, want)
	}
	human := ferryOK(t, "transfers", "--server", d.Addr).stdout
	for _, want := range []string{"ID", "KIND", "STATE", "PROGRESS", "RATE", "STRATEGY", "download", "succeeded", "100% of 1000 B"} {
		if !strings.Contains(human, want) {
			t.Errorf("ferry transfers lacks %q:\n%s", want, human)
		}
	}
	if out := ferryOK(t, "transfers", "--server", d.Addr, "--running").stdout; strings.TrimSpace(out) != "no transfers" {
		t.Errorf("ferry transfers --running = %q, want no transfers", out)
	}
}
