package transfer

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ferrydev/ferry/fsroot"
)

// TestOfferOnlyRegularFiles offers a regular file, a directory, a FIFO
// and a device node: only the regular file becomes a transfer.
func TestOfferOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	file, _ := writeFile(t, dir, 16)
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	s := NewServer(Config{Logger: quiet})
	defer s.Close()
	for _, name := range []string{file, dir, fifo, os.DevNull} {
		// O_NONBLOCK: opening a FIFO with no writer does not hang.
		f, err := os.OpenFile(name, os.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		checkOffer(t, s, name, f, fi)
	}
}

// checkOffer offers f, opened as name, and checks that only a regular
// file becomes a transfer. It closes f.
func checkOffer(t *testing.T, s *Server, name string, f *os.File, fi os.FileInfo) {
	t.Helper()
	tr, err := s.Offer(Source{File: f})
	switch {
	case err == nil:
		if !fi.Mode().IsRegular() {
			t.Errorf("Offer(%q) of a %v = a transfer, want %v", name, fi.Mode().Type(), fsroot.ErrNotRegular)
		}
		tr.Cancel() // closes f
		return
	case fi.Mode().IsRegular():
		t.Errorf("Offer(%q) = %v, want a transfer", name, err)
	case fi.IsDir() && !errors.Is(err, fsroot.ErrIsDir):
		t.Errorf("Offer(%q) = %v, want %v", name, err, fsroot.ErrIsDir)
	case !fi.IsDir() && !errors.Is(err, fsroot.ErrNotRegular):
		t.Errorf("Offer(%q) = %v, want %v", name, err, fsroot.ErrNotRegular)
	}
	f.Close()
}
