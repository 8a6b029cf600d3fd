package transfer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestResumeDestination receives a file in two ranges: the first lands
// in a resumable partial file that Abort keeps, the second appends to it,
// and Commit renames the whole over the destination.
func TestResumeDestination(t *testing.T) {
	dir := t.TempDir()
	src, data := writeFile(t, dir, 3<<20+5)
	ts := startServer(t, Config{})
	dest := filepath.Join(dir, "out")
	cut := int64(1<<20 + 3)

	d := resumeAt(t, dest, 0)
	tr := ts.offer(t, src, Source{Length: cut})
	if _, err := Receive(t.Context(), ts.ticket(tr), d, ReceiveConfig{}); err != nil {
		t.Fatalf("Receive(first %d bytes) = %v", cut, err)
	}
	d.Abort() // as after a failure: the bytes stay
	if got, _ := os.ReadFile(dest + ".partial"); !bytes.Equal(got, data[:cut]) {
		t.Fatalf("partial file after Abort holds %d bytes, want the first %d", len(got), cut)
	}

	d = resumeAt(t, dest, cut)
	tr = ts.offer(t, src, Source{Offset: cut})
	st, err := Receive(t.Context(), ts.ticket(tr), d, ReceiveConfig{})
	if err != nil || st.Bytes != int64(len(data))-cut {
		t.Fatalf("Receive(the rest) = %d bytes, %v; want %d, nil", st.Bytes, err, int64(len(data))-cut)
	}
	if err := d.Commit(); err != nil {
		t.Fatalf("Commit() = %v", err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Errorf("resumed file holds %d bytes, want the %d of the source", len(got), len(data))
	}
	if _, err := os.Lstat(dest + ".partial"); !os.IsNotExist(err) {
		t.Errorf("partial file after Commit: Lstat = %v, want it gone", err)
	}
}

// resumeAt opens dest for resuming and requires it to hold want bytes.
func resumeAt(t *testing.T, dest string, want int64) *Destination {
	t.Helper()
	d, err := ResumeDestination(dest)
	if err != nil {
		t.Fatalf("ResumeDestination(%q) = %v", dest, err)
	}
	t.Cleanup(d.Abort)
	if got := d.Resumed(); got != want {
		t.Fatalf("ResumeDestination(%q).Resumed() = %d, want %d", dest, got, want)
	}
	return d
}

// TestResumeDestinationLifeCycle checks what each way of ending leaves
// behind, and that a partial file has one writer at a time.
func TestResumeDestinationLifeCycle(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "out")
	partial := dest + ".partial"
	exists := func() bool { _, err := os.Lstat(partial); return err == nil }

	resumeAt(t, dest, 0).Abort()
	if exists() {
		t.Errorf("Abort() of an empty resumed partial kept it; want it removed (nothing to resume)")
	}
	if err := os.WriteFile(partial, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := resumeAt(t, dest, 5)
	for _, open := range []func(string) (*Destination, error){CreateDestination, ResumeDestination} {
		if d2, err := open(dest); err == nil {
			d2.Abort()
			t.Errorf("opening %s while another destination writes it = nil error, want one", partial)
		}
	}
	if got, _ := os.ReadFile(partial); string(got) != "12345" {
		t.Errorf("a refused second writer changed the partial file to %q, want %q", got, "12345")
	}
	d.Remove()
	d.Abort()
	if exists() {
		t.Errorf("Remove() kept the partial file of a resumed destination")
	}

	if err := os.WriteFile(partial, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := CreateDestination(dest)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(partial); err != nil || fi.Size() != 0 {
		t.Errorf("CreateDestination over a stale partial file: Stat = %v, %v; want it emptied", fi, err)
	}
	d.Abort()
	if exists() {
		t.Errorf("Abort() of a created destination kept the partial file")
	}
	for _, p := range []string{"-", os.DevNull} {
		if d, err := ResumeDestination(p); err == nil {
			d.Abort()
			t.Errorf("ResumeDestination(%q) = nil error, want one: there is nothing to resume into", p)
		}
	}
}

// TestLockPartialReplaced: a receive that opened the partial file just
// before another one renamed it into place (and so released its lock)
// must not take the lock on that inode, now the landed file.
func TestLockPartialReplaced(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f.partial")
	if err := os.WriteFile(name, []byte("landed"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Rename(name, filepath.Join(dir, "f")); err != nil { // the other receive commits
		t.Fatal(err)
	}
	if err := lockPartial(f, unix.AT_FDCWD, name); err == nil {
		t.Error("lockPartial on a renamed-away inode = nil, want an error")
	}
	if err := os.WriteFile(name, nil, 0o644); err != nil { // a new partial appears
		t.Fatal(err)
	}
	if err := lockPartial(f, unix.AT_FDCWD, name); err == nil {
		t.Error("lockPartial on an inode no longer at the name = nil, want an error")
	}
	g, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := lockPartial(g, unix.AT_FDCWD, name); err != nil {
		t.Errorf("lockPartial on the file at the name = %v, want nil", err)
	}
}
