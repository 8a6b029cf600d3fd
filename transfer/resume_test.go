package transfer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferrydev/ferry/fsroot"
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
func resumeAt(t *testing.T, dest string, want int64) *fsroot.Destination {
	t.Helper()
	d, err := fsroot.ResumeDestination(dest)
	if err != nil {
		t.Fatalf("fsroot.ResumeDestination(%q) = %v", dest, err)
	}
	t.Cleanup(d.Abort)
	if got := d.Resumed(); got != want {
		t.Fatalf("fsroot.ResumeDestination(%q).Resumed() = %d, want %d", dest, got, want)
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
	for _, open := range []func(string) (*fsroot.Destination, error){fsroot.CreateDestination, fsroot.ResumeDestination} {
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
	d, err := fsroot.CreateDestination(dest)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(partial); err != nil || fi.Size() != 0 {
		t.Errorf("fsroot.CreateDestination over a stale partial file: Stat = %v, %v; want it emptied", fi, err)
	}
	d.Abort()
	if exists() {
		t.Errorf("Abort() of a created destination kept the partial file")
	}
	for _, p := range []string{"-", os.DevNull} {
		if d, err := fsroot.ResumeDestination(p); err == nil {
			d.Abort()
			t.Errorf("fsroot.ResumeDestination(%q) = nil error, want one: there is nothing to resume into", p)
		}
	}
}
