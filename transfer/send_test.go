package transfer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// small makes every copy loop go round many times.
var small = Config{MmapWindow: 8192, PipeSize: 4096, BufferSize: 4096, SendfileChunk: 4096}

var configs = []struct {
	name string
	cfg  Config
}{
	{"default", Config{}},
	{"small", small},
	{"pipe64k", Config{PipeSize: 65536, MmapWindow: 65536 + 1, BufferSize: 65536 - 1, SendfileChunk: 65536 + 1}},
}

// TestSendExact sends whole files of awkward sizes with every strategy and
// configuration into a committed file and compares every byte.
func TestSendExact(t *testing.T) {
	sizes := []int64{0, 1, 4095, 4096, 4097, 1<<20 + 3, 64<<20 + 1}
	dir := t.TempDir()
	files := make(map[int64][]byte)
	paths := make(map[int64]string)
	for _, size := range sizes {
		if size > 2<<20 && testing.Short() {
			continue
		}
		paths[size], files[size] = writeFile(t, dir, size)
	}
	for _, c := range configs {
		ts := startServer(t, c.cfg)
		for _, strategy := range Strategies {
			for _, size := range sizes {
				if paths[size] == "" || size > 2<<20 && c.name != "default" {
					continue
				}
				t.Run(fmt.Sprintf("%s/%v/%d", c.name, strategy, size), func(t *testing.T) {
					tr := ts.offer(t, paths[size], Source{Strategy: strategy})
					rst, got := ts.receiveFile(t, tr, dir, ReceiveConfig{BufferSize: c.cfg.BufferSize})
					if !bytes.Equal(got, files[size]) {
						t.Errorf("received %d bytes (sha256 %x), want %d (sha256 %x)", len(got), sum(got), size, sum(files[size]))
					}
					st, err := tr.Result()
					if err != nil {
						t.Fatalf("Result() error = %v", err)
					}
					if st.Strategy != strategy || st.Bytes != size || rst.Bytes != size {
						t.Errorf("sender %v sent %d bytes, receiver got %d; want %v, %d", st.Strategy, st.Bytes, rst.Bytes, strategy, size)
					}
				})
			}
		}
	}
}

// TestSendRange sends byte ranges: unaligned, cut at the end, empty at the
// end.
func TestSendRange(t *testing.T) {
	const size = 3*4096 + 123
	dir := t.TempDir()
	path, data := writeFile(t, dir, size)
	ranges := []struct {
		off, length int64
		want        []byte
	}{
		{0, 0, data},                                  // 0 means to the end
		{0, 1, data[:1]},                              // one byte
		{1, 0, data[1:]},                              // unaligned to the end
		{4095, 2, data[4095:4097]},                    // straddles a page
		{4097, 3 * 4096, data[4097:]},                 // runs past EOF: cut
		{3, 2*4096 + 5, data[3 : 3+2*4096+5]},         // unaligned both ends
		{4096, 4096, data[4096:8192]},                 // aligned page
		{size - 1, 0, data[size-1:]},                  // last byte
		{size, 0, data[size:]},                        // empty at EOF
		{size, 100, data[size:]},                      // empty at EOF, length cut
		{8191, size, data[8191:]},                     // page-1, long length
		{12000, 200, data[12000 : 12000+200]},         // in the last page
		{4096 - 7, 8192 + 14, data[4089 : 4089+8206]}, // crosses two page edges
	}
	for _, c := range configs[:2] {
		ts := startServer(t, c.cfg)
		for _, strategy := range Strategies {
			for _, r := range ranges {
				name := fmt.Sprintf("%s/%v/off=%d,len=%d", c.name, strategy, r.off, r.length)
				t.Run(name, func(t *testing.T) {
					tr := ts.offer(t, path, Source{Offset: r.off, Length: r.length, Strategy: strategy})
					if tr.Length != int64(len(r.want)) || tr.FileSize != size {
						t.Errorf("Offer(off %d, len %d) has Length %d, FileSize %d; want %d, %d",
							r.off, r.length, tr.Length, tr.FileSize, len(r.want), size)
					}
					_, got := ts.receiveFile(t, tr, dir, ReceiveConfig{})
					if !bytes.Equal(got, r.want) {
						t.Errorf("received %d bytes (sha256 %x), want %d (sha256 %x)", len(got), sum(got), len(r.want), sum(r.want))
					}
					if _, err := tr.Result(); err != nil {
						t.Errorf("Result() error = %v", err)
					}
				})
			}
		}
	}
}

// TestSendPast4GiB sends a range across the 4 GiB mark of a sparse 5 GiB
// file, where 32-bit offsets would wrap.
func TestSendPast4GiB(t *testing.T) {
	const (
		mark   = int64(1) << 32
		size   = 5 << 30
		off    = mark - 2<<20 + 3 // unaligned
		length = 4 << 20
	)
	dir := t.TempDir()
	path := filepath.Join(dir, "sparse")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Skipf("no 5 GiB sparse file here: %v", err)
	}
	// Distinctive bytes just before and after the mark; zeros elsewhere.
	marks := randomBytes(64 << 10)
	if _, err := f.WriteAt(marks, mark-32<<10); err != nil {
		t.Fatal(err)
	}
	// Something that must not be sent: the bytes right after the range.
	if _, err := f.WriteAt([]byte("after the range"), off+length); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want := make([]byte, length)
	copy(want[mark-32<<10-off:], marks)

	for _, c := range configs[:2] {
		ts := startServer(t, c.cfg)
		for _, strategy := range Strategies {
			t.Run(fmt.Sprintf("%s/%v", c.name, strategy), func(t *testing.T) {
				tr := ts.offer(t, path, Source{Offset: off, Length: length, Strategy: strategy})
				_, got := ts.receiveFile(t, tr, dir, ReceiveConfig{})
				if !bytes.Equal(got, want) {
					i := 0
					for i < min(len(got), len(want)) && got[i] == want[i] {
						i++
					}
					t.Errorf("received %d bytes, want %d; first difference at range offset %d (file offset %#x)",
						len(got), len(want), i, off+int64(i))
				}
				if _, err := tr.Result(); err != nil {
					t.Errorf("Result() error = %v", err)
				}
			})
		}
	}
}
