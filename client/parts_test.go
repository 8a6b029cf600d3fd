package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/service"
	"github.com/ferrydev/ferry/transfer"
)

const mib = 1 << 20

// checkParts checks a parts report of the range [off, off+length): want
// parts, contiguous in range order, each moved whole; both sides' bytes
// and syscalls are the parts' sums, and the durations the longest
// part's. want 0 means one stream: no parts.
func checkParts(t *testing.T, rep *ferryv1.Report, off, length uint64, want int) {
	t.Helper()
	parts := rep.GetParts()
	if len(parts) != want {
		t.Fatalf("report has %d parts, want %d", len(parts), want)
	}
	if rep.GetOffset() != off || rep.GetLength() != length || rep.GetSender().GetBytes() != length || rep.GetReceiver().GetBytes() != length {
		t.Errorf("report: [%d, +%d), sender %d bytes, receiver %d; want [%d, +%d) and %d bytes each side",
			rep.GetOffset(), rep.GetLength(), rep.GetSender().GetBytes(), rep.GetReceiver().GetBytes(), off, length, length)
	}
	if want == 0 {
		return
	}
	next := off
	calls := map[string]uint64{}
	var longest time.Duration
	for i, p := range parts {
		if p.GetOffset() != next || p.GetLength() == 0 || p.GetReceiver().GetBytes() != p.GetLength() || p.GetSender().GetBytes() != p.GetLength() {
			t.Errorf("part %d: [%d, +%d), sender %d bytes, receiver %d; want it to start at %d and move its length",
				i, p.GetOffset(), p.GetLength(), p.GetSender().GetBytes(), p.GetReceiver().GetBytes(), next)
		}
		next += p.GetLength()
		for k, v := range p.GetReceiver().GetSyscalls() {
			calls[k] += v
		}
		longest = max(longest, p.GetReceiver().GetDuration().AsDuration())
	}
	if next != off+length {
		t.Errorf("the parts end at %d, want %d", next, off+length)
	}
	if got := rep.GetReceiver().GetSyscalls(); fmt.Sprint(got) != fmt.Sprint(calls) {
		t.Errorf("receiver syscalls %v, want the parts' sum %v", got, calls)
	}
	if got := rep.GetReceiver().GetDuration().AsDuration(); got != longest {
		t.Errorf("receiver duration %v, want the longest part's %v", got, longest)
	}
	// The parts' wall time is at least the longest part's duration.
	if tp, most := rep.GetReceiver().GetThroughputBytesPerSecond(), float64(length)/longest.Seconds(); tp <= 0 || tp > most*1.000001 {
		t.Errorf("receiver throughput %.0f B/s, want the bytes over the parts' wall time: above 0, at most %.0f", tp, most)
	}
}

// TestDownloadStreams: a file whose size no count of streams divides
// lands byte-exact over 1, 2, 3, 4 and 8 streams, with each strategy,
// both receive paths, a range, checksums and /dev/null, and leaves
// nothing but the destination.
func TestDownloadStreams(t *testing.T) {
	src := randomBytes(64*mib + 12347)
	c := startNode(t, service.Config{}, src)
	rw, mm := ferryv1.Strategy_STRATEGY_READ_WRITE, ferryv1.Strategy_STRATEGY_MMAP
	sf, sp := ferryv1.Strategy_STRATEGY_SENDFILE, ferryv1.Strategy_STRATEGY_SPLICE
	crc, sha := ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_CRC32C, ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_SHA256
	for _, tt := range []struct {
		name  string
		opts  client.DownloadOptions
		parts int
		null  bool
	}{
		{"1", client.DownloadOptions{Streams: 1, Strategy: sf}, 0, false},
		{"2", client.DownloadOptions{Streams: 2, Strategy: sp}, 2, false},
		{"3-read", client.DownloadOptions{Streams: 3, Strategy: rw, Checksum: crc, Receive: client.ReceiveConfig{ReadWrite: true}}, 3, false},
		{"4", client.DownloadOptions{Streams: 4, Strategy: mm}, 4, false},
		{"8", client.DownloadOptions{Streams: 8, Checksum: sha}, 8, false},
		{"4-range", client.DownloadOptions{Streams: 4, Offset: 4097, Length: 40*mib + 3, Strategy: sf}, 4, false},
		{"4-null", client.DownloadOptions{Streams: 4, Checksum: sha, Strategy: sp}, 4, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, "dest")
			if tt.null {
				dest = os.DevNull
			}
			rep, err := c.Download(testCtx(t), "src", dest, tt.opts)
			if err != nil {
				t.Fatalf("Download(%+v) = %v", tt.opts, err)
			}
			want := src[tt.opts.Offset:]
			if tt.opts.Length > 0 {
				want = want[:tt.opts.Length]
			}
			checkParts(t, rep, tt.opts.Offset, uint64(len(want)), tt.parts)
			if tt.opts.Checksum != 0 && !rep.GetChecksumVerified() {
				t.Errorf("report: checksum_verified false, want true")
			}
			for i, p := range rep.GetParts() {
				if tt.opts.Checksum != 0 && (!p.GetChecksumVerified() || p.GetChecksum() == nil) {
					t.Errorf("part %d: checksum %v, verified %v; want its own, verified", i, p.GetChecksum(), p.GetChecksumVerified())
				}
				if s := p.GetReceiver().GetSyscalls(); s["write"] != 0 {
					t.Errorf("part %d: receiver syscalls %v; want no write(2) at the shared file position", i, s)
				}
			}
			if tt.null {
				return
			}
			if got, _ := os.ReadFile(dest); !bytes.Equal(got, want) {
				t.Errorf("landed %d bytes, want the %d of the range, byte-exact", len(got), len(want))
			}
			checkDir(t, dir, "dest")
		})
	}
}

// TestDownloadStreamsFewer: no part is under 8 MiB, so a small file
// takes fewer streams than asked, and a tiny one one stream; the
// server's max_streams caps the count, asked once per Client.
func TestDownloadStreamsFewer(t *testing.T) {
	var asked atomic.Int64
	count := grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/GetCapabilities") {
			asked.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	})
	src := randomBytes(64*mib + 5)
	c, root := startNodeRoot(t, service.Config{MaxFileStreams: 3}, src,
		grpc.WithTransportCredentials(insecure.NewCredentials()), count)
	if err := os.WriteFile(filepath.Join(root, "small"), src[:20*mib+5], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "tiny"), src[:3*mib], 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tt := range []struct {
		path  string
		size  int
		parts int
	}{
		{"small", 20*mib + 5, 2}, // 20 MiB: two parts of 8 MiB or more
		{"tiny", 3 * mib, 0},     // one stream
		{"src", len(src), 3},     // the server's max_streams
	} {
		dest := filepath.Join(dir, tt.path)
		rep, err := c.Download(testCtx(t), tt.path, dest, client.DownloadOptions{Streams: 8})
		if err != nil {
			t.Fatalf("Download(%s, 8 streams) = %v", tt.path, err)
		}
		if len(rep.GetParts()) != tt.parts {
			t.Errorf("Download(%s, %d bytes, 8 streams): %d parts, want %d", tt.path, tt.size, len(rep.GetParts()), tt.parts)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, src[:tt.size]) {
			t.Errorf("%s: landed %d bytes, want %d byte-exact", tt.path, len(got), tt.size)
		}
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("GetCapabilities called %d times over the downloads, want once", n)
	}

	one := startNode(t, service.Config{MaxFileStreams: 1}, src)
	rep, err := one.Download(testCtx(t), "src", filepath.Join(dir, "one"), client.DownloadOptions{Streams: 8})
	if err != nil || len(rep.GetParts()) != 0 {
		t.Errorf("Download(8 streams) from a server of max_streams 1 = %d parts, %v; want one stream", len(rep.GetParts()), err)
	}
}

// TestDownloadStreamsStdout: standard output takes bytes in order, so
// more than one stream into it is refused before anything is asked.
func TestDownloadStreamsStdout(t *testing.T) {
	c := startNode(t, service.Config{}, []byte("payload"))
	if _, err := c.Download(testCtx(t), "src", "-", client.DownloadOptions{Streams: 2}); err == nil || !strings.Contains(err.Error(), "standard output") {
		t.Errorf("Download(-, 2 streams) = %v, want an error about standard output", err)
	}
}

// pacedNode serves size random bytes as "src" with each data connection
// paced to rate bytes per second (transfer.Config.FlowRate), so that a
// test can act while the parts are in flight.
func pacedNode(t *testing.T, size int, rate int64) (*client.Client, string, []byte) {
	src := randomBytes(size)
	c, root := startNodeRoot(t, service.Config{Data: transfer.Config{FlowRate: rate}, ProgressInterval: 10 * time.Millisecond}, src)
	return c, root, src
}

// whenSent returns a Progress callback that runs f once, when the
// download has sent at least n bytes.
func whenSent(n uint64, f func()) func(*ferryv1.Progress) {
	var once sync.Once
	return func(p *ferryv1.Progress) {
		if p.GetBytesSent() >= n {
			once.Do(f)
		}
	}
}

// TestDownloadStreamsPartFails truncates the source while four paced
// parts are in flight: the parts past the new end fail (Aborted), the
// others are cancelled, and nothing is left, not even with Resume (the
// bytes may be the old file's).
func TestDownloadStreamsPartFails(t *testing.T) {
	c, root, src := pacedNode(t, 48*mib, 8*mib)
	for _, resume := range []bool{false, true} {
		t.Run(fmt.Sprint("resume=", resume), func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(root, "src"), src, 0o644); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			opts := client.DownloadOptions{Streams: 4, Resume: resume, Progress: whenSent(2*mib, func() {
				os.Truncate(filepath.Join(root, "src"), mib)
			})}
			_, err := c.Download(testCtx(t), "src", filepath.Join(dir, "dest"), opts)
			t.Logf("Download: %v", err)
			if status.Code(err) != codes.Aborted && !errors.Is(err, transfer.ErrSourceChanged) {
				t.Errorf("Download(4 streams) of a file truncated meanwhile = %v, want Aborted", err)
			}
			checkDir(t, dir)
		})
	}
}

// journalPart is one part line of a parts journal (the format is in
// docs/design.md).
type journalPart struct{ off, length, held uint64 }

// readJournal reads the parts of a parts journal.
func readJournal(t *testing.T, path string) []journalPart {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var parts []journalPart
	for _, line := range strings.Split(string(b), "\n") {
		var p journalPart
		if _, err := fmt.Sscanf(line, "part offset=%d length=%d held=%d", &p.off, &p.length, &p.held); err == nil {
			parts = append(parts, p)
		}
	}
	return parts
}

// TestDownloadStreamsResume interrupts a pull over four paced streams,
// which with Resume keeps the partial file and a journal of what each
// part holds; the resumed pull fetches only what each part lacks, and
// lands the file byte-exact.
func TestDownloadStreamsResume(t *testing.T) {
	c, _, src := pacedNode(t, 48*mib, 8*mib)
	dir := t.TempDir()
	dest := filepath.Join(dir, "dest")
	ctx, cancel := context.WithCancel(testCtx(t))
	opts := client.DownloadOptions{Streams: 4, Resume: true, Progress: whenSent(12*mib, cancel)}
	if _, err := c.Download(ctx, "src", dest, opts); status.Code(err) != codes.Canceled && !errors.Is(err, context.Canceled) {
		t.Fatalf("Download cancelled midway = %v, want Canceled", err)
	}
	checkDir(t, dir, "dest.partial", "dest.partial.parts")
	parts := readJournal(t, fsroot.JournalPath(dest))
	var have uint64
	var lack [][2]uint64 // [offset length] of what each part lacks
	for _, p := range parts {
		have += p.held
		if p.held < p.length {
			lack = append(lack, [2]uint64{p.off + p.held, p.length - p.held})
		}
	}
	if len(parts) != 4 || have == 0 || have >= uint64(len(src)) {
		t.Fatalf("journal after the cut: %+v; want 4 parts, some bytes held, not all", parts)
	}
	partial, err := os.ReadFile(dest + ".partial")
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range parts {
		if a, b := p.off, p.off+p.held; !bytes.Equal(partial[a:b], src[a:b]) {
			t.Errorf("part %d: the journal says bytes %d-%d are held; the partial file's differ from the source's", i, a, b)
		}
	}

	opts.Progress = nil
	rep, err := c.Download(testCtx(t), "src", dest, opts)
	if err != nil {
		t.Fatalf("resumed Download = %v", err)
	}
	var fetched [][2]uint64
	for _, p := range rep.GetParts() {
		fetched = append(fetched, [2]uint64{p.GetOffset(), p.GetLength()})
	}
	if fmt.Sprint(fetched) != fmt.Sprint(lack) || rep.GetSender().GetBytes() != uint64(len(src))-have || rep.GetLength() != uint64(len(src)) {
		t.Errorf("resumed: fetched [offset length] %v, sender %d bytes, range %d; want %v, the %d bytes the journal lacked of %d",
			fetched, rep.GetSender().GetBytes(), rep.GetLength(), lack, uint64(len(src))-have, len(src))
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, src) {
		t.Errorf("landed %d bytes, want %d byte-exact", len(got), len(src))
	}
	checkDir(t, dir, "dest")
}

// TestDownloadStreamsResumeJournal resumes from a journal that says part
// 2 of 3 is whole, part 3 half held and part 1 empty: only part 1 and
// the second half of part 3 are fetched (one stream at a time: the
// journal decides the parts, not Streams), and the held bytes are not
// fetched again. A journal of another version of the file is refused and
// left as it was.
func TestDownloadStreamsResumeJournal(t *testing.T) {
	src := randomBytes(30*mib + 1)
	c := startNode(t, service.Config{}, src)
	fi, err := c.Stat(testCtx(t), "src")
	if err != nil {
		t.Fatal(err)
	}
	mtime := fi.GetModifyTime().AsTime().UnixNano()
	dir := t.TempDir()
	dest := filepath.Join(dir, "dest")
	third := uint64(10 * mib)
	partial := bytes.Repeat([]byte{0xaa}, len(src)) // what is not held must be fetched
	copy(partial[third:], src[third:2*third+third/2])
	journal := fmt.Sprintf("ferry parts journal 1\nsource size=%d mtime=%d\nrange offset=0 length=%d\n"+
		"part offset=0 length=%d held=0\npart offset=%d length=%d held=%d\npart offset=%d length=%d held=%d\n",
		len(src), mtime, len(src), third, third, third, third, 2*third, uint64(len(src))-2*third, third/2)
	write := func(j string) {
		if err := os.WriteFile(dest+".partial", partial, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fsroot.JournalPath(dest), []byte(j), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	write(strings.Replace(journal, fmt.Sprint("mtime=", mtime), "mtime=1", 1))
	if _, err := c.Download(testCtx(t), "src", dest, client.DownloadOptions{Resume: true}); !errors.Is(err, client.ErrNotResumable) {
		t.Errorf("resume from a journal of another mtime = %v, want %v", err, client.ErrNotResumable)
	}
	checkDir(t, dir, "dest.partial", "dest.partial.parts")

	write(journal)
	rep, err := c.Download(testCtx(t), "src", dest, client.DownloadOptions{Resume: true, Checksum: ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_CRC32C})
	if err != nil {
		t.Fatalf("resume from the journal = %v", err)
	}
	var got [][2]uint64
	for _, p := range rep.GetParts() {
		got = append(got, [2]uint64{p.GetOffset(), p.GetLength()})
	}
	if want := [][2]uint64{{0, third}, {2*third + third/2, uint64(len(src)) - 2*third - third/2}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("fetched [offset length] %v, want %v", got, want)
	}
	if !rep.GetChecksumVerified() {
		t.Errorf("checksum_verified false, want the fetched parts verified")
	}
	if b, _ := os.ReadFile(dest); !bytes.Equal(b, src) {
		t.Errorf("landed %d bytes, want %d byte-exact", len(b), len(src))
	}
	checkDir(t, dir, "dest")
}

// TestDownloadStreamsResumePrefix: a partial file a one-stream pull left
// (a prefix, no journal) is resumed over four streams: the rest is
// split, the prefix kept.
func TestDownloadStreamsResumePrefix(t *testing.T) {
	src := randomBytes(48 * mib)
	c := startNode(t, service.Config{}, src)
	dir := t.TempDir()
	dest := filepath.Join(dir, "dest")
	const prefix = 5*mib + 3
	if err := os.WriteFile(dest+".partial", src[:prefix], 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Download(testCtx(t), "src", dest, client.DownloadOptions{Resume: true, Streams: 4})
	if err != nil {
		t.Fatalf("Download(resume, 4 streams) = %v", err)
	}
	parts := rep.GetParts()
	if len(parts) != 4 || parts[0].GetOffset() != prefix || rep.GetSender().GetBytes() != uint64(len(src)-prefix) {
		t.Errorf("resumed over %d parts from %d, %d bytes; want 4 from %d, %d bytes",
			len(parts), parts[0].GetOffset(), rep.GetSender().GetBytes(), prefix, len(src)-prefix)
	}
	if b, _ := os.ReadFile(dest); !bytes.Equal(b, src) {
		t.Errorf("landed %d bytes, want %d byte-exact", len(b), len(src))
	}
	checkDir(t, dir, "dest")
}

// TestStreamsBeatOneFlow: with each data connection paced to 16 MiB/s
// (--max-flow-rate), 48 MiB over four streams arrives at least 1.8
// times as fast as over one (about 4 times, ideally). Only a robust
// ratio is checked; BenchmarkParallelStreams measures the speeds.
func TestStreamsBeatOneFlow(t *testing.T) {
	c, _, _ := pacedNode(t, 48*mib, 16*mib)
	took := func(streams int) time.Duration {
		start := time.Now()
		rep, err := c.Download(testCtx(t), "src", filepath.Join(t.TempDir(), "dest"), client.DownloadOptions{Streams: streams})
		if err != nil {
			t.Fatalf("Download(%d streams) = %v", streams, err)
		}
		if streams > 1 && len(rep.GetParts()) != streams {
			t.Fatalf("Download(%d streams): %d parts", streams, len(rep.GetParts()))
		}
		return time.Since(start)
	}
	one, four := took(1), took(4)
	t.Logf("48 MiB at 16 MiB/s per flow: 1 stream %v, 4 streams %v (%.1fx)", one, four, one.Seconds()/four.Seconds())
	if one.Seconds() < 1.8*four.Seconds() {
		t.Errorf("1 stream took %v, 4 streams %v: want 4 streams at least 1.8x as fast", one, four)
	}
}

// BenchmarkParallelStreams pulls 64 MiB to /dev/null over 1, 2, 4 and 8
// streams, each data connection paced to 64 MiB/s as a per-flow policer
// would (transfer.Config.FlowRate): MB/s should grow with the streams
// until the machine, not the flows, is the limit.
func BenchmarkParallelStreams(b *testing.B) {
	const size, rate = 64 * mib, 64 * mib
	c, _ := startNodeRoot(b, service.Config{Data: transfer.Config{FlowRate: rate}}, randomBytes(size))
	for _, streams := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprint("streams=", streams), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				rep, err := c.Download(context.Background(), "src", os.DevNull, client.DownloadOptions{Streams: streams})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(max(1, len(rep.GetParts()))), "parts")
			}
		})
	}
}
