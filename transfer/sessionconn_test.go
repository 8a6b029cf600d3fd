package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// smallRcvBuf is the receive buffer a test's slow client asks for: the
// kernel doubles it, and the frames a test sends do not fit, so most of
// what the server has written waits in the server's send buffer.
const smallRcvBuf = 4 << 10

// bindConn binds one more connection to ss, with a receive buffer of
// rcvBuf bytes fixed before the connection is made (no autotuning), or
// the kernel's when rcvBuf is 0. The test reads it when it chooses;
// cleanup closes it.
func bindConn(t *testing.T, ts *testServer, ss *Session, rcvBuf int) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if rcvBuf > 0 {
			rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf) })
		}
		return err
	}}
	before := ss.Bound()
	c, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(appendPreambleVersion(nil, ProtocolVersionSession, ss.Ticket())); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var v [1]byte
	if _, err := io.ReadFull(c, v[:]); err != nil || Verdict(v[0]) != VerdictOK {
		t.Fatalf("binding: verdict %v, %v; want %v", Verdict(v[0]), err, VerdictOK)
	}
	c.SetReadDeadline(time.Time{})
	waitUntil(t, "the connection to be bound", func() bool { return ss.Bound() == before+1 })
	return c
}

// inQueue is how many bytes wait in c's receive queue (SIOCINQ).
func inQueue(t *testing.T, c net.Conn) int {
	t.Helper()
	n := queued(c) // session_test.go
	if n < 0 {
		t.Fatal("SIOCINQ failed")
	}
	return n
}

// resultWithin is tr.Result, failing the test if tr has not ended within
// 10 s rather than hanging it.
func resultWithin(t *testing.T, tr *Transfer, what string) (Stats, error) {
	t.Helper()
	select {
	case <-tr.Done():
		return tr.Result()
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the transfer did not end within 10 s (%d bytes sent)", what, tr.Sent())
		return Stats{}, nil
	}
}

// TestSessionCancelKeepsEarlierFrames: a frame cancelled mid-stream
// ends its connection with a FIN, not a reset. The frames sent before it
// on the same connection, reported sent but still in the server's send
// buffer because the client had not read them, arrive whole and
// byte-exact; the cut frame ends short at a clean end of stream; and a
// transfer queued behind it goes out on the next connection bound.
func TestSessionCancelKeepsEarlierFrames(t *testing.T) {
	ts := startServer(t, Config{})
	dir := t.TempDir()
	small, smallData := writeFile(t, dir, 5000)
	mid, midData := writeFile(t, dir, 1<<20+3)
	big, _ := writeFile(t, dir, 16<<20) // more than both sockets' buffers hold
	ss, err := ts.OpenSession(SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ss.Close)
	c := bindConn(t, ts, ss, smallRcvBuf)
	sent := []*Transfer{
		offerOn(t, ss, small, Source{Strategy: ReadWrite}, 1),
		offerOn(t, ss, mid, Source{Strategy: Splice}, 2),
	}
	for i, tr := range sent {
		if _, err := resultWithin(t, tr, "an earlier frame"); err != nil {
			t.Fatalf("frame %d: %v", i+1, err)
		}
	}
	cut := offerOn(t, ss, big, Source{Strategy: ReadWrite}, 3)
	waitUntil(t, "the large frame to start", func() bool { return cut.Sent() > 0 })
	queued := offerOn(t, ss, small, Source{}, 4)
	if got, whole := inQueue(t, c), 2*FrameHeaderSize+len(smallData)+len(midData)+2; got >= whole {
		t.Fatalf("test setup: the client already holds %d bytes, the earlier frames whole (%d): nothing is left to lose", got, whole)
	}
	cut.Cancel()
	if _, err := cut.Result(); !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled frame: %v, want %v", err, context.Canceled)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got := readFrame(t, c, 1); !bytes.Equal(got, smallData) {
		t.Errorf("frame 1: %d bytes, not the %d sent", len(got), len(smallData))
	}
	if got := readFrame(t, c, 2); !bytes.Equal(got, midData) {
		t.Errorf("frame 2: %d bytes, not the %d sent", len(got), len(midData))
	}
	checkCutShort(t, c, 3, 16<<20)
	c2 := bindConn(t, ts, ss, smallRcvBuf)
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got := readFrame(t, c2, 4); !bytes.Equal(got, smallData) {
		t.Errorf("the queued frame on the next connection: %d bytes, not the %d sent", len(got), len(smallData))
	}
	if _, err := resultWithin(t, queued, "the queued frame"); err != nil {
		t.Errorf("the queued frame: %v", err)
	}
}

// checkCutShort reads frame id, which the server cut short, and fails
// unless fewer than length bytes came before a clean end of stream (a
// FIN, not a reset).
func checkCutShort(t *testing.T, c net.Conn, id uint64, length int64) {
	t.Helper()
	h, err := ReadFrameHeader(c)
	if err != nil || h.ID != id || h.Length != length {
		t.Fatalf("the cut frame's header %+v, %v; want id %d, %d bytes", h, err, id, length)
	}
	n, err := io.Copy(io.Discard, c)
	if err != nil || n >= length {
		t.Errorf("after the cut frame's header: %d bytes, then %v; want fewer than %d, then a clean end of stream", n, err, length)
	}
}

// TestSessionClosedConnGivesPlaceBack: the server notices a bound
// connection its client closed while it waited for work. Its place is
// given back, in the session (Bound, Config.SessionConns) and
// server-wide (Config.MaxBoundConns); an offer made while no connection
// is left gets a ticket rather than a frame into the closed one; and a
// new connection binds in its place and carries the next frame.
func TestSessionClosedConnGivesPlaceBack(t *testing.T) {
	ts := startServer(t, Config{SessionConns: 1, MaxBoundConns: 1})
	path, want := writeFile(t, t.TempDir(), 5000)
	ss, c := bound(t, ts)
	c.Close()
	waitUntil(t, "the server to notice the closed connection", func() bool { return ss.Bound() == 0 && ts.bound.Load() == 0 })
	tr := offerOn(t, ss, path, Source{}, 1)
	if tr.Framed {
		t.Fatal("an offer after the session's only connection closed is framed; want a ticket")
	}
	if _, got := ts.receiveFile(t, tr, t.TempDir(), ReceiveConfig{}); !bytes.Equal(got, want) {
		t.Error("the ticket's bytes differ")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c2, err := BindSession(ctx, ts.addr, ss.Ticket(), nil, ReceiveConfig{})
	if err != nil {
		t.Fatalf("binding in the closed connection's place: %v", err)
	}
	defer c2.Close()
	waitUntil(t, "the new connection to be bound", func() bool { return ss.Bound() == 1 })
	offerOn(t, ss, path, Source{}, 2)
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got := readFrame(t, c2, 2); !bytes.Equal(got, want) {
		t.Errorf("the frame on the new connection: %d bytes, not the %d sent", len(got), len(want))
	}
}

// TestSessionClosedConnTakesNoFrame: once the server has noticed that
// the client closed one of a session's two idle connections, the frames
// offered next, sent directly or queued, all go on the other one, whole.
func TestSessionClosedConnTakesNoFrame(t *testing.T) {
	ts := startServer(t, Config{})
	dir := t.TempDir()
	small, smallData := writeFile(t, dir, 5000)
	big, bigData := writeFile(t, dir, 1<<20+5)
	ss, c1 := bound(t, ts)
	c2 := bindConn(t, ts, ss, 0)
	c1.Close()
	waitUntil(t, "the server to notice the closed connection", func() bool { return ss.Bound() == 1 })
	frames := []struct {
		path string
		data []byte
	}{{small, smallData}, {big, bigData}, {small, smallData}, {big, bigData}}
	var trs []*Transfer
	for i, f := range frames {
		trs = append(trs, offerOn(t, ss, f.path, Source{Strategy: ReadWrite}, uint64(i+1)))
	}
	got := readFrames(t, c2, len(frames))
	for i, f := range frames {
		if !bytes.Equal(got[uint64(i+1)], f.data) {
			t.Errorf("frame %d: %d bytes, not the %d sent", i+1, len(got[uint64(i+1)]), len(f.data))
		}
		if _, err := resultWithin(t, trs[i], "a frame"); err != nil {
			t.Errorf("frame %d: %v", i+1, err)
		}
	}
}

// readFrames reads n whole frames from c, within 10 s, and returns their
// payloads by id: a small frame sent directly may overtake queued ones.
func readFrames(t *testing.T, c net.Conn, n int) map[uint64][]byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	got := make(map[uint64][]byte)
	for range n {
		h, err := ReadFrameHeader(c)
		if err != nil {
			t.Fatalf("reading frame %d of %d: %v", len(got)+1, n, err)
		}
		body := make([]byte, h.Length+1)
		if _, err := io.ReadFull(c, body); err != nil || body[h.Length] != TrailerOK {
			t.Fatalf("frame %d: %v, trailer %d; want it whole", h.ID, err, body[h.Length])
		}
		got[h.ID] = body[:h.Length]
	}
	return got
}

// maxSendBuffer is the most a TCP socket's send buffer grows to by
// autotuning (the third field of net.ipv4.tcp_wmem).
func maxSendBuffer(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	n, err := strconv.Atoi(f[len(f)-1])
	if err != nil {
		t.Fatalf("tcp_wmem %q: %v", b, err)
	}
	return n
}

// TestSessionFullConnBlocksNoOffer: small READ_WRITE frames offered on
// a session whose one bound connection's client has stopped reading
// fill that connection's send buffer; past that, Offer queues them
// instead of writing onto it, so no Offer blocks. A connection bound
// next carries the queued frames and one offered after it while the
// first is still unread; once its client reads again, every frame has
// arrived whole on one connection or the other.
func TestSessionFullConnBlocksNoOffer(t *testing.T) {
	ts := startServer(t, Config{})
	path, data := writeFile(t, t.TempDir(), smallFrameMax)
	ss, err := ts.OpenSession(SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ss.Close)
	stalled := bindConn(t, ts, ss, smallRcvBuf)
	n := maxSendBuffer(t)/smallFrameMax + 8 // more than the client's and the server's buffers hold
	trs := offerAll(t, ss, path, n)
	frames := make(chan frame, n+2)
	go readFrameStream(bindConn(t, ts, ss, 0), frames)
	last := offerOn(t, ss, path, Source{Strategy: ReadWrite}, uint64(n+1))
	if _, err := resultWithin(t, last, "a frame offered with a second connection bound"); err != nil {
		t.Fatalf("a frame offered with a second connection bound: %v", err)
	}
	go readFrameStream(stalled, frames)
	got := collectFrames(t, frames, n+1)
	for id := uint64(1); id <= uint64(n+1); id++ {
		if !bytes.Equal(got[id], data) {
			t.Errorf("frame %d: %d bytes, not the %d sent", id, len(got[id]), len(data))
		}
	}
	for _, tr := range trs {
		if _, err := resultWithin(t, tr, "a frame"); err != nil {
			t.Errorf("frame %d: %v", tr.frameID, err)
		}
	}
}

// offerAll offers path on ss n times, as small READ_WRITE frames with
// ids 1 to n, and fails the test unless every Offer has returned within
// 10 s.
func offerAll(t *testing.T, ss *Session, path string, n int) []*Transfer {
	t.Helper()
	type offered struct {
		tr  *Transfer
		err error
	}
	out := make(chan offered, n)
	go func() {
		for id := range n {
			f, err := os.Open(path)
			if err != nil {
				out <- offered{err: err}
				return
			}
			tr, err := ss.Offer(Source{File: f, Path: filepath.Base(path), Strategy: ReadWrite}, uint64(id+1))
			out <- offered{tr, err}
		}
	}()
	var trs []*Transfer
	for timeout := time.After(10 * time.Second); len(trs) < n; {
		select {
		case o := <-out:
			if o.err != nil {
				t.Fatalf("offer %d: %v", len(trs)+1, o.err)
			}
			trs = append(trs, o.tr)
		case <-timeout:
			t.Fatalf("%d of %d offers returned within 10 s: the next is writing onto a connection nobody reads", len(trs), n)
		}
	}
	return trs
}

// frame is a frame read whole from a bound connection, or why reading
// one failed.
type frame struct {
	id   uint64
	data []byte
	err  error
}

// readFrameStream reads frames from c into out until c fails or
// closes. out must have room for every frame: it never blocks the
// test's end.
func readFrameStream(c net.Conn, out chan<- frame) {
	for {
		h, err := ReadFrameHeader(c)
		if err != nil {
			return
		}
		body := make([]byte, h.Length+1)
		if _, err := io.ReadFull(c, body); err != nil || body[h.Length] != TrailerOK {
			out <- frame{id: h.ID, err: fmt.Errorf("frame %d cut short: %v, trailer %d", h.ID, err, body[h.Length])}
			return
		}
		out <- frame{id: h.ID, data: body[:h.Length]}
	}
}

// collectFrames takes n whole frames from in, within 10 s, and returns
// their payloads by id.
func collectFrames(t *testing.T, in <-chan frame, n int) map[uint64][]byte {
	t.Helper()
	got := make(map[uint64][]byte)
	for timeout := time.After(10 * time.Second); len(got) < n; {
		select {
		case f := <-in:
			if _, dup := got[f.id]; f.err != nil || dup {
				t.Fatalf("frame %d: %v (came before: %v)", f.id, f.err, dup)
			}
			got[f.id] = f.data
		case <-timeout:
			t.Fatalf("%d of %d frames came within 10 s", len(got), n)
		}
	}
	return got
}

// borrow waits until ss's one bound connection waits for work, then
// lends it to the test as dispatch would; cleanup gives it back.
func borrow(t *testing.T, ss *Session) *boundConn {
	t.Helper()
	var b *boundConn
	waitUntil(t, "the connection to wait for work", func() bool {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		if len(ss.free) == 1 {
			b, ss.free = ss.free[0], nil
			b.lent = true
		}
		return b != nil
	})
	t.Cleanup(func() { ss.giveBack(b, true) })
	return b
}

// TestSessionRoomForSeesGrownBuffer: roomFor judges by the SO_SNDBUF
// read when the connection was bound, and reads it again when that
// value says there is no room, so a buffer that autotuning has grown
// since is seen, and kept.
func TestSessionRoomForSeesGrownBuffer(t *testing.T) {
	ts := startServer(t, Config{})
	ss, _ := bound(t, ts)
	b := borrow(t, ss)
	actual := b.d.sendBuffer()
	if b.sndBuf != actual || actual < 4*smallFrameMax {
		t.Fatalf("SO_SNDBUF known when bound: %d; the socket's: %d, want the same and room for a small frame", b.sndBuf, actual)
	}
	b.sndBuf = smallFrameMax // as if it had grown since it was read
	if room := b.roomFor(FrameHeaderSize + smallFrameMax + 1); !room || b.sndBuf != actual {
		t.Errorf("an empty socket whose buffer grew: room %v, SO_SNDBUF known %d; want room and %d", room, b.sndBuf, actual)
	}
}

// dataSegsIn is how many segments carrying data c's socket has received
// (tcpi_data_segs_in).
func dataSegsIn(t *testing.T, c net.Conn) uint32 {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	rc.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if err != nil {
		t.Fatal(err)
	}
	return info.Data_segs_in
}

// TestSmallFrameLeavesAsOneSegment: a 4 KiB frame, whatever its
// strategy, reaches the client as one TCP segment, header, payload and
// trailer together, so that it wakes the receiver once. Written apart on
// a socket with TCP_NODELAY, a SENDFILE, SPLICE or MMAP frame was three.
func TestSmallFrameLeavesAsOneSegment(t *testing.T) {
	ts := startServer(t, Config{})
	small, data := writeFile(t, t.TempDir(), 4096)
	ss, c := bound(t, ts)
	const frames = 20
	id := uint64(0)
	for _, st := range []Strategy{ReadWrite, Mmap, Sendfile, Splice} {
		before := dataSegsIn(t, c)
		for range frames {
			id++
			tr := offerOn(t, ss, small, Source{Strategy: st}, id)
			if got := readFrame(t, c, id); !bytes.Equal(got, data) {
				t.Fatalf("%v frame %d: not the bytes sent", st, id)
			}
			if _, err := resultWithin(t, tr, st.String()+" frame"); err != nil {
				t.Fatalf("%v frame %d: %v", st, id, err)
			}
		}
		// One each; a few more allowed, should the cork's 200 ms timer
		// fire while a loaded machine holds the sender between its calls.
		if segs := dataSegsIn(t, c) - before; segs > frames+frames/4 {
			t.Errorf("%d frames of 4 KiB by %v came in %d segments, want about one each", frames, st, segs)
		}
	}
}

// TestSessionSmallAutoFrameIsOneWrite: a framed transfer left to the
// server goes out as one READ_WRITE write when it is 64 KiB or less and
// nothing paces it, whatever the chooser prefers (here SPLICE, by a fixed
// order); a longer one, a paced one and one behind a ticket get the
// chooser's pick.
func TestSessionSmallAutoFrameIsOneWrite(t *testing.T) {
	splice := []Strategy{Splice, Sendfile, ReadWrite, Mmap}
	ts := startServer(t, Config{SmallPreference: splice, Preference: splice})
	dir := t.TempDir()
	small, data := writeFile(t, dir, smallFrameMax)
	large, _ := writeFile(t, dir, smallFrameMax+1)
	ss, c := bound(t, ts)
	cases := []struct {
		name  string
		path  string
		src   Source
		want  Strategy
		class string
	}{
		{"64 KiB", small, Source{}, ReadWrite, OneWriteClass},
		{"64 KiB and a byte", large, Source{}, Splice, ""},
		{"64 KiB, paced", small, Source{RateLimit: 1 << 30}, Splice, ""},
	}
	for i, tc := range cases {
		id := uint64(i + 1)
		tr := offerOn(t, ss, tc.path, tc.src, id)
		if tr.Strategy != tc.want || !tr.Auto.ChosenByServer || tc.class != "" && tr.Auto.Class != tc.class {
			t.Errorf("%s: strategy %v, auto %+v; want %v chosen by the server, class %q", tc.name, tr.Strategy, tr.Auto, tc.want, tc.class)
		}
		got := readFrame(t, c, id)
		if tc.path == small && !bytes.Equal(got, data) {
			t.Errorf("%s: not the bytes sent", tc.name)
		}
		if st, err := resultWithin(t, tr, tc.name); err != nil || st.Strategy != tc.want {
			t.Errorf("%s: sent by %v, %v; want %v", tc.name, st.Strategy, err, tc.want)
		}
	}
	// A server without READ_WRITE sends it by its order.
	noRW := startServer(t, Config{SmallPreference: splice, Preference: splice, Disable: []Strategy{ReadWrite}})
	ss2, c2 := bound(t, noRW)
	tr2 := offerOn(t, ss2, small, Source{}, 1)
	readFrame(t, c2, 1)
	if tr2.Strategy != Splice {
		t.Errorf("64 KiB on a server without READ_WRITE: strategy %v, want %v", tr2.Strategy, Splice)
	}
	f, err := os.Open(small)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := ts.Offer(Source{File: f, Path: "small"})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Cancel()
	if tr.Strategy != Splice {
		t.Errorf("64 KiB behind a ticket: strategy %v, want the chooser's %v", tr.Strategy, Splice)
	}
}
