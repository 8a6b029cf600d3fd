package service_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/service"
	"github.com/ferrydev/ferry/transfer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	crc32c = ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_CRC32C
	sha    = ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_SHA256
)

// stdSum is the checksum of p by the standard library.
func stdSum(alg ferryv1.ChecksumAlgorithm, p []byte) []byte {
	if alg == crc32c {
		return binary.BigEndian.AppendUint32(nil, crc32.Checksum(p, crc32.MakeTable(crc32.Castagnoli)))
	}
	s := sha256.Sum256(p)
	return s[:]
}

// TestDownloadChecksum: through the real client, the offer and the report
// carry the range's checksum, the client verifies it (into a file and
// into /dev/null), the CPU it cost is reported on both sides, and the
// second download of the same range takes the sender's value from its
// cache.
func TestDownloadChecksum(t *testing.T) {
	n := startNode(t, service.Config{})
	data := writeFile(t, n.root, "f.bin", 3<<20+5)
	dir := t.TempDir()
	for _, alg := range []ferryv1.ChecksumAlgorithm{crc32c, sha} {
		for i, dest := range []string{filepath.Join(dir, alg.String()), os.DevNull} {
			opts := client.DownloadOptions{Offset: 5, Checksum: alg}
			report, err := n.client.Download(testCtx(t), "f.bin", dest, opts)
			if err != nil {
				t.Fatalf("%v into %s: Download() = %v", alg, dest, err)
			}
			want := stdSum(alg, data[5:])
			if got := report.GetChecksum(); got.GetAlgorithm() != alg || !bytes.Equal(got.GetValue(), want) || !report.GetChecksumVerified() {
				t.Errorf("%v into %s: report checksum %v %x, verified %v; want %x, verified", alg, dest, got.GetAlgorithm(), got.GetValue(), report.GetChecksumVerified(), want)
			}
			if cached := report.GetSender().GetChecksumCached(); cached != (i == 1) {
				t.Errorf("%v download %d: sender checksum_cached = %v, want %v", alg, i, cached, i == 1)
			}
			// SHA-256 of 3 MiB is milliseconds of CPU on any machine: a
			// zero means the hashing thread was not measured.
			if alg == sha && (report.GetReceiver().GetChecksumCpu().AsDuration() <= 0 || i == 0 && report.GetSender().GetChecksumCpu().AsDuration() <= 0) {
				t.Errorf("SHA256 into %s: checksum_cpu sender %v, receiver %v; want > 0 (the sender's only when not cached)", dest,
					report.GetSender().GetChecksumCpu().AsDuration(), report.GetReceiver().GetChecksumCpu().AsDuration())
			}
			if dest != os.DevNull {
				if got, err := os.ReadFile(dest); err != nil || !bytes.Equal(got, data[5:]) {
					t.Errorf("%v: %s = %d bytes, %v; want the %d of the range", alg, dest, len(got), err, len(data)-5)
				}
			}
		}
	}
	// No checksum asked: none in the report, nothing verified.
	report, err := n.client.Download(testCtx(t), "f.bin", os.DevNull, client.DownloadOptions{})
	if err != nil || report.GetChecksum() != nil || report.GetChecksumVerified() {
		t.Errorf("Download() without a checksum = checksum %v, verified %v, %v; want none", report.GetChecksum(), report.GetChecksumVerified(), err)
	}
}

// TestDownloadChecksumOffer: the raw offer carries the checksum before any
// byte moves, and an algorithm the enum does not define is
// INVALID_ARGUMENT.
func TestDownloadChecksumOffer(t *testing.T) {
	n := startNode(t, service.Config{})
	data := writeFile(t, n.root, "f.bin", 1000)
	_, offer := startDownload(t, testCtx(t), n.api(), &ferryv1.DownloadRequest{Path: "f.bin", Offset: 10, Length: 20, Checksum: sha})
	if want := stdSum(sha, data[10:30]); !bytes.Equal(offer.GetChecksum().GetValue(), want) {
		t.Errorf("offer checksum = %x, want %x", offer.GetChecksum().GetValue(), want)
	}
	s, err := n.api().Download(testCtx(t), &ferryv1.DownloadRequest{Path: "f.bin", Checksum: 7})
	if err == nil {
		_, err = s.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("Download(checksum 7) = %v, want INVALID_ARGUMENT", err)
	}
}

// corruptProxy forwards data connections to a node's data listener and
// flips one byte of what the node sends: a real network path that
// damages the bytes, as a faulty middlebox or NIC would.
type corruptProxy struct {
	ln      net.Listener
	at      int64 // position in each connection's server-to-client stream (0 is the verdict)
	backend string
	wg      sync.WaitGroup
	// firstOnly damages the first connection only, so that one part of a
	// download over parallel streams goes wrong and the others do not.
	firstOnly bool
	conns     atomic.Int64
}

func listenCorruptProxy(t *testing.T, at int64) *corruptProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &corruptProxy{ln: ln, at: at}
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

// serve forwards to backend until the listener closes.
func (p *corruptProxy) serve(backend string) {
	p.backend = backend
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := p.ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.forward(c)
			}()
		}
	}()
}

func (p *corruptProxy) forward(c net.Conn) {
	defer c.Close()
	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	defer b.Close()
	go func() {
		io.Copy(b, c)
		b.(*net.TCPConn).CloseWrite()
	}()
	damage := p.conns.Add(1) == 1 || !p.firstOnly
	buf := make([]byte, 64<<10)
	var pos int64
	for {
		n, err := b.Read(buf)
		if damage && p.at >= pos && p.at < pos+int64(n) {
			buf[p.at-pos] ^= 0x5a
		}
		pos += int64(n)
		if _, werr := c.Write(buf[:n]); werr != nil || err != nil {
			return
		}
	}
}

// TestDownloadChecksumMismatch: bytes damaged on the way fail the
// download with transfer.ErrChecksumMismatch and leave neither the file
// nor its partial file, with or without resuming; without a checksum the
// damage goes unnoticed (which is what the checksum is for).
func TestDownloadChecksumMismatch(t *testing.T) {
	proxy := listenCorruptProxy(t, 1+100)
	n := startNode(t, service.Config{AdvertiseData: proxy.ln.Addr().String()})
	proxy.serve(n.DataAddr().String())
	data := writeFile(t, n.root, "f.bin", 1<<20)
	dir := t.TempDir()
	for _, alg := range []ferryv1.ChecksumAlgorithm{crc32c, sha} {
		for _, resume := range []bool{false, true} {
			dest := filepath.Join(dir, "f-"+alg.String())
			c, err := client.Dial(n.Addr().String()) // a fresh client: a fresh data connection
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Download(testCtx(t), "f.bin", dest, client.DownloadOptions{Checksum: alg, Resume: resume})
			c.Close()
			if !errors.Is(err, transfer.ErrChecksumMismatch) {
				t.Errorf("%v (resume %v): Download() through a corrupting proxy = %v, want %v", alg, resume, err, transfer.ErrChecksumMismatch)
			}
			if _, err := os.Stat(dest); !os.IsNotExist(err) {
				t.Errorf("%v (resume %v): %s exists after a mismatch (%v)", alg, resume, dest, err)
			}
			noPartial(t, dir)
		}
	}
	c, err := client.Dial(n.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dest := filepath.Join(dir, "unchecked")
	if _, err := c.Download(testCtx(t), "f.bin", dest, client.DownloadOptions{}); err != nil {
		t.Fatalf("Download() without a checksum = %v", err)
	}
	if got, _ := os.ReadFile(dest); bytes.Equal(got, data) || len(got) != len(data) {
		t.Errorf("unchecked download through the corrupting proxy: %d bytes, equal %v; want %d damaged bytes (is the proxy in the path?)", len(got), bytes.Equal(got, data), len(data))
	}
}

// TestDownloadStreamsChecksumMismatch: over four streams, one part's
// bytes damaged on the way fail the download with
// transfer.ErrChecksumMismatch, the other parts' being sound, and leave
// nothing (no file, partial file or parts journal), with or without
// resuming.
func TestDownloadStreamsChecksumMismatch(t *testing.T) {
	proxy := listenCorruptProxy(t, 1+4<<20)
	proxy.firstOnly = true
	n := startNode(t, service.Config{AdvertiseData: proxy.ln.Addr().String()})
	proxy.serve(n.DataAddr().String())
	writeFile(t, n.root, "f.bin", 40<<20)
	for _, resume := range []bool{false, true} {
		proxy.conns.Store(0)
		dir := t.TempDir()
		c, err := client.Dial(n.Addr().String()) // a fresh client: fresh data connections
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Download(testCtx(t), "f.bin", filepath.Join(dir, "f"), client.DownloadOptions{Checksum: crc32c, Streams: 4, Resume: resume})
		c.Close()
		if !errors.Is(err, transfer.ErrChecksumMismatch) || !strings.Contains(err.Error(), "part ") {
			t.Errorf("resume %v: Download(4 streams) with one part damaged = %v, want a part's %v", resume, err, transfer.ErrChecksumMismatch)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("resume %v: a mismatch left %v", resume, ents)
		}
	}
}

// TestPullChecksum: a Pull with a checksum verifies it (verified in the
// report); one whose peer's bytes are damaged on the way is DATA_LOSS and
// lands nothing.
func TestPullChecksum(t *testing.T) {
	proxy := listenCorruptProxy(t, 1+5000)
	a := startNode(t, service.Config{})
	bad := startNode(t, service.Config{AdvertiseData: proxy.ln.Addr().String()})
	proxy.serve(bad.DataAddr().String())
	b := startNode(t, service.Config{AllowPull: true})
	want := writeFile(t, a.root, "m.bin", 2<<20)
	writeFile(t, bad.root, "m.bin", 2<<20)

	msgs, err := pull(t, b, &ferryv1.PullRequest{Peer: a.Addr().String(), Path: "m.bin", Destination: "good.bin", Checksum: crc32c})
	if err != nil {
		t.Fatalf("Pull(checksum CRC32C) = %v", err)
	}
	report := msgs[len(msgs)-1].GetReport()
	if !report.GetChecksumVerified() || !bytes.Equal(report.GetChecksum().GetValue(), stdSum(crc32c, want)) {
		t.Errorf("Pull report: checksum %x, verified %v; want %x, verified", report.GetChecksum().GetValue(), report.GetChecksumVerified(), stdSum(crc32c, want))
	}
	if got, err := os.ReadFile(filepath.Join(b.root, "good.bin")); err != nil || !bytes.Equal(got, want) {
		t.Errorf("pulled file = %d bytes, %v; want the %d of the peer's", len(got), err, len(want))
	}

	_, err = pull(t, b, &ferryv1.PullRequest{Peer: bad.Addr().String(), Path: "m.bin", Destination: "bad.bin", Checksum: sha})
	if status.Code(err) != codes.DataLoss {
		t.Errorf("Pull through a corrupting proxy = %v, want DATA_LOSS", err)
	}
	if _, err := os.Stat(filepath.Join(b.root, "bad.bin")); !os.IsNotExist(err) {
		t.Errorf("bad.bin exists after DATA_LOSS (%v)", err)
	}
	noPartial(t, b.root)

	_, err = pull(t, b, &ferryv1.PullRequest{Peer: a.Addr().String(), Path: "m.bin", Destination: "x.bin", Checksum: 9})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("Pull(checksum 9) = %v, want INVALID_ARGUMENT", err)
	}
}

// TestDownloadInline: with InlineMax, ranges up to 64 KiB come inside the
// offer byte-exact (no ticket, no data connection), checksummed when
// asked; 64 KiB + 1 goes by the data channel.
func TestDownloadInline(t *testing.T) {
	n := startNode(t, service.Config{})
	dir := t.TempDir()
	for _, size := range []int{0, 1, 4 << 10, 64 << 10, 64<<10 + 1} {
		name := "f" + string(rune('a'+size%26))
		data := writeFile(t, n.root, name, size)
		inline := size <= 64<<10
		_, offer := startDownload(t, testCtx(t), n.api(), &ferryv1.DownloadRequest{Path: name, InlineMax: 1 << 20})
		if offer.GetInline() != inline || (inline && (len(offer.GetTicket()) != 0 || offer.GetDataAddress() != "" || !bytes.Equal(offer.GetData(), data))) {
			t.Errorf("%d B: offer inline %v, ticket %d B, address %q, data equal %v; want inline %v", size, offer.GetInline(), len(offer.GetTicket()), offer.GetDataAddress(), bytes.Equal(offer.GetData(), data), inline)
		}
		dest := filepath.Join(dir, name)
		report, err := n.client.Download(testCtx(t), name, dest, client.DownloadOptions{InlineMax: 64 << 10, Checksum: crc32c})
		if err != nil {
			t.Fatalf("%d B: Download() = %v", size, err)
		}
		if report.GetSender().GetInline() != inline || report.GetReceiver().GetInline() != inline || !report.GetChecksumVerified() {
			t.Errorf("%d B: report sender inline %v, receiver inline %v, verified %v; want %v, %v, true", size, report.GetSender().GetInline(), report.GetReceiver().GetInline(), report.GetChecksumVerified(), inline, inline)
		}
		if got, err := os.ReadFile(dest); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%d B: %s = %d bytes, %v; want the file's %d", size, dest, len(got), err, size)
		}
		if inline && size > 0 && report.GetSender().GetSyscalls()["pread64"] != 1 {
			t.Errorf("%d B inline: sender syscalls %v, want one pread64", size, report.GetSender().GetSyscalls())
		}
	}
}
