package transfer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ferrydev/ferry/fsroot"
)

// TestReceiveParts receives three parts of a file at once, over three
// data connections, each into its Part of one destination: the file
// lands byte-exact, the shared file position is never used (splice(2)
// with an offset, or pwrite(2), never write(2)), and each part verifies
// its own range's checksum.
func TestReceiveParts(t *testing.T) {
	const size = 3<<20 + 12345
	dir := t.TempDir()
	path, data := writeFile(t, dir, size)
	ts := startServer(t, Config{})
	bounds := []int64{0, 1<<20 + 7, 2<<20 + 4096, size}
	for _, tt := range []struct {
		name   string
		cfg    ReceiveConfig
		writes string // the call that lands the bytes
	}{
		{"splice", ReceiveConfig{}, "splice"},
		{"read", ReceiveConfig{ReadWrite: true}, "pwrite64"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "out")
			dst, err := fsroot.CreateDestination(dest)
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Abort()
			var wg sync.WaitGroup
			for i := range len(bounds) - 1 {
				off, n := bounds[i], bounds[i+1]-bounds[i]
				tr := ts.offer(t, path, Source{Offset: off, Length: n, Strategy: Sendfile, Checksum: CRC32C})
				part := dst.Part(off, n)
				wg.Go(func() {
					st, err := Receive(t.Context(), ts.ticket(tr), part, tt.cfg)
					if err != nil || st.Bytes != n {
						t.Errorf("part %d: Receive = %d bytes, %v; want %d, nil", i, st.Bytes, err, n)
						return
					}
					if st.Syscalls["write"] != 0 || st.Syscalls[tt.writes] == 0 {
						t.Errorf("part %d: syscalls %v; want %s and no write", i, st.Syscalls, tt.writes)
					}
					if _, err := VerifyChecksum(t.Context(), part, tr.Checksum); err != nil {
						t.Errorf("part %d: VerifyChecksum = %v", i, err)
					}
				})
			}
			wg.Wait()
			if pos, err := dst.File().Seek(0, io.SeekCurrent); err != nil || pos != 0 {
				t.Errorf("file position after the parts: %d, %v; want 0 (parts write at their offsets)", pos, err)
			}
			part := dst.Part(bounds[1], bounds[2]-bounds[1])
			part.Abort()
			part.Remove()
			if err := part.Commit(); err != nil {
				t.Errorf("a Part's Commit = %v, want nil (a no-op)", err)
			}
			if err := dst.Commit(); err != nil {
				t.Fatalf("Commit() = %v", err)
			}
			got, _ := os.ReadFile(dest)
			if !bytes.Equal(got, data) {
				t.Errorf("landed %d bytes, want the %d sent, byte-exact", len(got), len(data))
			}
		})
	}
}

// TestReceivePartChecksum: a part whose bytes differ from the sender's
// checksum of its range fails VerifyChecksum, though the whole file's
// other parts are sound.
func TestReceivePartChecksum(t *testing.T) {
	const size = 1 << 20
	dir := t.TempDir()
	path, _ := writeFile(t, dir, size)
	ts := startServer(t, Config{})
	dst, err := fsroot.CreateDestination(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Abort()
	half := int64(size / 2)
	tr := ts.offer(t, path, Source{Offset: half, Length: half, Checksum: SHA256})
	part := dst.Part(half, half)
	if _, err := Receive(context.Background(), ts.ticket(tr), part, ReceiveConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.File().WriteAt([]byte{0}, half+100); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyChecksum(t.Context(), part, tr.Checksum); !errors.Is(err, ErrChecksumMismatch) {
		t.Errorf("VerifyChecksum of a part with a changed byte = nil, want %v", ErrChecksumMismatch)
	}
}
