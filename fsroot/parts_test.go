package fsroot

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestJournal follows a parts journal through its life: saved beside a
// partial file it sizes, read back by a resumed destination, removed by
// Commit, by Remove and by a fresh CreateDestination, and recognised as
// stale beside an empty partial file.
func TestJournal(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "out")
	j := &Journal{Size: 100, ModTime: 12345, Offset: 10, Length: 90, Parts: []JournalPart{
		{Offset: 10, Length: 30, Held: 30}, {Offset: 40, Length: 30, Held: 7}, {Offset: 70, Length: 30},
	}}
	save := func(t *testing.T) {
		t.Helper()
		d, err := CreateDestination(final)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.SaveJournal(j); err != nil {
			t.Fatalf("SaveJournal() = %v", err)
		}
		if fi, err := os.Stat(final + ".partial"); err != nil || fi.Size() != j.Length {
			t.Fatalf("after SaveJournal the partial file is %v, %v; want %d bytes", fi, err, j.Length)
		}
		d.keep = true
		d.Abort()
	}
	resume := func(t *testing.T) *Destination {
		t.Helper()
		d, err := ResumeDestination(final)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	save(t)
	d := resume(t)
	got, err := d.ReadJournal()
	if err != nil || !reflect.DeepEqual(got, j) {
		t.Fatalf("ReadJournal() = %+v, %v; want %+v", got, err, j)
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	checkNames(t, dir, "out")

	save(t)
	os.WriteFile(JournalPath(final)+".tmp", nil, 0o644) // left by a crash mid-write
	resume(t).Remove()
	checkNames(t, dir, "out")

	save(t)
	d, err = CreateDestination(final)
	if err != nil {
		t.Fatal(err)
	}
	checkNames(t, dir, "out", "out.partial")
	d.Abort()

	// A journal beside an empty partial file (removed, made again) is
	// stale: dropped. One beside a file of another size is refused.
	save(t)
	os.Truncate(final+".partial", 0)
	d = resume(t)
	if got, err := d.ReadJournal(); got != nil || err != nil {
		t.Errorf("ReadJournal() beside an empty partial file = %+v, %v; want nil, nil", got, err)
	}
	d.Abort() // and the empty partial file with it
	checkNames(t, dir, "out")
	save(t)
	os.Truncate(final+".partial", 5)
	d = resume(t)
	if _, err := d.ReadJournal(); !errors.Is(err, ErrBadJournal) {
		t.Errorf("ReadJournal() beside a 5-byte partial file = %v, want %v", err, ErrBadJournal)
	}
	d.Abort()
	checkNames(t, dir, "out", "out.partial", "out.partial.parts")
}

// TestParseJournal refuses journals whose parts do not cover the range
// in order.
func TestParseJournal(t *testing.T) {
	good := (&Journal{Size: 9, Offset: 1, Length: 8, Parts: []JournalPart{{1, 4, 4}, {5, 4, 0}}}).marshal()
	if _, err := parseJournal(good); err != nil {
		t.Fatalf("parseJournal(%q) = %v", good, err)
	}
	for _, bad := range []string{
		"",
		"ferry parts journal 2\nsource size=9 mtime=0\nrange offset=1 length=8\npart offset=1 length=8 held=0\n",
		"ferry parts journal 1\nsource size=9 mtime=0\nrange offset=1 length=8\n",
		"ferry parts journal 1\nsource size=9 mtime=0\nrange offset=1 length=8\npart offset=1 length=4 held=0\n",
		"ferry parts journal 1\nsource size=9 mtime=0\nrange offset=1 length=8\npart offset=1 length=4 held=0\npart offset=6 length=3 held=0\n",
		"ferry parts journal 1\nsource size=9 mtime=0\nrange offset=1 length=8\npart offset=1 length=8 held=9\n",
		"ferry parts journal 1\nsource size=9 mtime=0\nrange offset=1 length=8\npart offset=1 length=8 held=-1\n",
		"ferry parts journal 1\nsource size=9 mtime=0\nrange offset=1 length=8\npart offset=1 length=8 held=0\ngarbage\n",
	} {
		if j, err := parseJournal([]byte(bad)); err == nil {
			t.Errorf("parseJournal(%q) = %+v, nil; want an error", bad, j)
		}
	}
}

// checkNames fails unless dir holds exactly the names given.
func checkNames(t *testing.T, dir string, want ...string) {
	t.Helper()
	if got := names(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

// TestSaveJournalFailureLeavesNoHoles: when the journal cannot be
// written, the partial file keeps its size: it was not grown to the
// range first, so no file of holes is left for a resume to take as held
// bytes. A journal beside a partial file shorter than its range (a crash
// between the journal and the growth) is read, as long as what it says
// is held lies within the file.
func TestSaveJournalFailureLeavesNoHoles(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "out")
	j := &Journal{Size: 100, Offset: 0, Length: 100, Parts: []JournalPart{{Offset: 0, Length: 50, Held: 20}, {Offset: 50, Length: 50}}}
	d, err := CreateDestination(final)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.f.Write(make([]byte, 20)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(JournalPath(final), 0o755); err != nil { // the journal's rename will fail
		t.Fatal(err)
	}
	if err := d.SaveJournal(j); err == nil {
		t.Fatal("SaveJournal over a directory = nil error, want one")
	}
	if fi, err := os.Stat(final + ".partial"); err != nil || fi.Size() != 20 {
		t.Errorf("after a failed SaveJournal the partial file is %v, %v; want its 20 held bytes, not grown", fi, err)
	}
	os.Remove(JournalPath(final))
	if err := writeDurably(JournalPath(final), j.marshal()); err != nil {
		t.Fatal(err)
	}
	d.keep = true
	d.Abort()
	r, err := ResumeDestination(final)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Remove()
	if got, err := r.ReadJournal(); err != nil || got == nil {
		t.Errorf("ReadJournal beside a 20-byte file holding 20 bytes = %v, %v; want the journal", got, err)
	}
	j.Parts[0].Held = 30 // more than the file holds
	writeDurably(JournalPath(final), j.marshal())
	if got, err := r.ReadJournal(); !errors.Is(err, ErrBadJournal) {
		t.Errorf("ReadJournal saying 30 bytes held beside 20 = %v, %v; want %v", got, err, ErrBadJournal)
	}
}
