package service_test

import (
	"bytes"
	"context"
	"errors"
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
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/service"
	"github.com/ferrydev/ferry/transfer"
)

type rawSession = grpc.BidiStreamingClient[ferryv1.SessionRequest, ferryv1.SessionResponse]

// openRaw opens a Session call by hand, sending open first when window
// is above 0, and returns it with its SessionReady.
func openRaw(t *testing.T, ctx context.Context, api ferryv1.TransferServiceClient, window uint32) (rawSession, *ferryv1.SessionReady) {
	t.Helper()
	st, err := api.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&ferryv1.SessionRequest{Request: &ferryv1.SessionRequest_Open{Open: &ferryv1.SessionOpen{Window: window}}}); err != nil {
		t.Fatal(err)
	}
	m, err := st.Recv()
	if err != nil || m.GetReady() == nil {
		t.Fatalf("first message = %v, %v; want SessionReady", m, err)
	}
	return st, m.GetReady()
}

// firstAnswers sends n gets of path (ids 1 to n) and returns the first
// answer to each: "offer", or "failed CODE: message".
func firstAnswers(t *testing.T, st rawSession, path string, n uint64) map[uint64]string {
	t.Helper()
	for id := uint64(1); id <= n; id++ {
		if err := st.Send(get(id, path, 0)); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[uint64]string{}
	for uint64(len(seen)) < n {
		m, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		switch f := m.GetFailed(); {
		case m.GetOffer() != nil:
			seen[m.GetId()] = "offer"
		case f != nil:
			seen[m.GetId()] = "failed " + codes.Code(f.GetCode()).String() + ": " + f.GetMessage()
		}
	}
	return seen
}

func get(id uint64, path string, rate uint64) *ferryv1.SessionRequest {
	return &ferryv1.SessionRequest{Request: &ferryv1.SessionRequest_Get{Get: &ferryv1.GetRequest{Id: id, Path: path, RateLimit: rate}}}
}

// TestSessionWindow: the server caps the window a client asks for, and
// a request past the window fails alone with RESOURCE_EXHAUSTED while
// the others go on.
func TestSessionWindow(t *testing.T) {
	n := startNode(t, service.Config{})
	writeFile(t, n.root, "f", 64<<10)
	ctx := testCtx(t)
	if _, ready := openRaw(t, ctx, n.api(), 100000); ready.GetWindow() != 256 {
		t.Errorf("window asked 100000, granted %d, want the cap 256", ready.GetWindow())
	}
	st, ready := openRaw(t, ctx, n.api(), 2)
	if ready.GetWindow() != 2 || ready.GetMaxConnections() != 8 || len(ready.GetTicket()) != transfer.TicketSize {
		t.Fatalf("ready = %v, want window 2, 8 connections and a ticket", ready)
	}
	// No bound connection: each offer carries a ticket nobody presents,
	// so the first two stay in flight.
	seen := firstAnswers(t, st, "f", 3)
	want := map[uint64]string{1: "offer", 2: "offer", 3: "failed ResourceExhausted: "}
	for id, w := range want {
		if !strings.HasPrefix(seen[id], w) {
			t.Errorf("request %d: %s, want %s", id, seen[id], w)
		}
	}
}

// TestSessionAuth: without the token the call is refused before a
// session exists; with it, requests are served.
func TestSessionAuth(t *testing.T) {
	n := startNode(t, service.Config{AuthToken: testToken})
	writeFile(t, n.root, "f", 1000)
	_, err := dialAs(t, n, client.Security{}).OpenSession(testCtx(t), client.SessionOptions{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("OpenSession without the token = %v, want Unauthenticated", err)
	}
	s, err := dialAs(t, n, client.Security{Token: testToken}).OpenSession(testCtx(t), client.SessionOptions{})
	if err != nil {
		t.Fatalf("OpenSession with the token = %v", err)
	}
	defer s.Close()
	if _, err := s.Download(testCtx(t), "f", filepath.Join(t.TempDir(), "f"), client.GetOptions{}); err != nil {
		t.Errorf("Download on an authenticated session = %v", err)
	}
}

// TestSessionConnectionCap: a session binds at most
// transfer.Config.SessionConns data connections; one more gets
// VerdictUnavailable and carries nothing.
func TestSessionConnectionCap(t *testing.T) {
	n := startNode(t, service.Config{Data: transfer.Config{SessionConns: 2}})
	ctx := testCtx(t)
	_, ready := openRaw(t, ctx, n.api(), 0)
	for i := range 3 {
		c, err := transfer.BindSession(ctx, ready.GetDataAddress(), ready.GetTicket(), nil, transfer.ReceiveConfig{})
		if i < 2 {
			if err != nil {
				t.Fatalf("binding connection %d of 2: %v", i+1, err)
			}
			defer c.Close()
			continue
		}
		if err == nil || !errors.Is(err, transfer.ErrRefused) {
			t.Errorf("binding a third connection = %v, want refused (server unavailable)", err)
		}
	}
}

// TestSessionShutdown: a node shutting down lets the session's running
// transfer finish (its file lands whole), refuses a new request with
// UNAVAILABLE, and ends the call with UNAVAILABLE.
func TestSessionShutdown(t *testing.T) {
	n := startNode(t, service.Config{ShutdownGrace: 20 * time.Second})
	want := writeFile(t, n.root, "slow", 256<<10)
	writeFile(t, n.root, "f", 1000)
	s, err := n.client.OpenSession(testCtx(t), client.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "slow")
	done := make(chan error, 1)
	go func() {
		// 256 KiB at 256 KiB/s: about a second, most of it after the stop.
		_, err := s.Get(testCtx(t), "slow", dest, client.GetOptions{RateLimit: 256 << 10})
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	stopped := make(chan error, 1)
	go func() { stopped <- n.stop() }()
	time.Sleep(100 * time.Millisecond) // the node is draining now
	_, err = s.Get(testCtx(t), "f", filepath.Join(t.TempDir(), "f"), client.GetOptions{})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("a Get while the node drains = %v, want Unavailable", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the running Get = %v, want it to finish during the grace period", err)
	}
	if got, _ := os.ReadFile(dest); string(got) != string(want) {
		t.Errorf("the running Get landed %d bytes, want the %d sent", len(got), len(want))
	}
	if err := s.Close(); status.Code(err) != codes.Unavailable {
		t.Errorf("the session's end = %v, want Unavailable", err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Run() = %v", err)
	}
}

// TestSessionClientGoes: a session whose client goes away mid-transfer
// (its call and data connections cut) leaves the server nothing: the
// transfer ends, its file closes, and the next session is served.
func TestSessionClientGoes(t *testing.T) {
	n := startNode(t, service.Config{})
	writeFile(t, n.root, "slow", 1<<20)
	writeFile(t, n.root, "f", 1000)
	ctx, cancel := context.WithCancel(testCtx(t))
	s, err := n.client.OpenSession(ctx, client.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go s.Get(ctx, "slow", filepath.Join(t.TempDir(), "slow"), client.GetOptions{RateLimit: 64 << 10})
	waitFor(t, "the transfer to run", func() bool { return running(t, n) == 1 })
	cancel()
	s.Close()
	waitFor(t, "the transfer to end", func() bool { return running(t, n) == 0 })
	s2, err := n.client.OpenSession(testCtx(t), client.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Download(testCtx(t), "f", filepath.Join(t.TempDir(), "f"), client.GetOptions{}); err != nil {
		t.Errorf("a new session after the old one's client went = %v", err)
	}
}

// running is how many transfers ListTransfers shows running.
func running(t *testing.T, n *testNode) int {
	resp, err := n.api().ListTransfers(testCtx(t), &ferryv1.ListTransfersRequest{RunningOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.GetTransfers())
}

// TestSessionMaxTransfers: --max-transfers holds for a session's
// requests as for Downloads: one past it fails alone with
// RESOURCE_EXHAUSTED, the others are offered.
func TestSessionMaxTransfers(t *testing.T) {
	n := startNode(t, service.Config{Data: transfer.Config{MaxTransfers: 2}})
	writeFile(t, n.root, "f", 64<<10)
	st, _ := openRaw(t, testCtx(t), n.api(), 8)
	seen := firstAnswers(t, st, "f", 3)
	offers, busy := 0, 0
	for _, v := range seen {
		switch {
		case v == "offer":
			offers++
		case strings.HasPrefix(v, "failed ResourceExhausted: ") && strings.Contains(v, "too many concurrent transfers"):
			busy++
		}
	}
	if offers != 2 || busy != 1 {
		t.Errorf("three requests with --max-transfers 2: %v; want two offers and one ResourceExhausted", seen)
	}
}

// getOf is a get of path by strategy.
func getOf(id uint64, path string, strategy ferryv1.Strategy) *ferryv1.SessionRequest {
	return &ferryv1.SessionRequest{Request: &ferryv1.SessionRequest_Get{Get: &ferryv1.GetRequest{Id: id, Path: path, Strategy: strategy}}}
}

// sendAll sends ms on st in order.
func sendAll(t *testing.T, st rawSession, ms ...*ferryv1.SessionRequest) {
	t.Helper()
	for _, m := range ms {
		if err := st.Send(m); err != nil {
			t.Fatal(err)
		}
	}
}

// rawAnswers reads a raw session's messages on a goroutine of its own
// and keeps each request's last word: "report", or "failed CODE:
// message".
type rawAnswers struct {
	in   chan rawAnswer
	ends map[uint64]string
}

type rawAnswer struct {
	m   *ferryv1.SessionResponse
	err error
}

// answersOf starts reading st's messages until it ends or ctx does.
func answersOf(ctx context.Context, st rawSession) *rawAnswers {
	a := &rawAnswers{in: make(chan rawAnswer), ends: make(map[uint64]string)}
	go func() {
		for {
			m, err := st.Recv()
			select {
			case a.in <- rawAnswer{m, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return a
}

// await takes messages until every one of ids has had its last word,
// within 10 s, and returns the last words seen so far.
func (a *rawAnswers) await(t *testing.T, ids ...uint64) map[uint64]string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for _, id := range ids {
		for a.ends[id] == "" {
			select {
			case r := <-a.in:
				if r.err != nil {
					t.Fatalf("the session ended waiting for request %d: %v", id, r.err)
				}
				a.take(r.m)
			case <-timeout:
				t.Fatalf("request %d: no report or failure within 10 s (%d requests answered)", id, len(a.ends))
			}
		}
	}
	return a.ends
}

func (a *rawAnswers) take(m *ferryv1.SessionResponse) {
	switch f := m.GetFailed(); {
	case m.GetReport() != nil:
		a.ends[m.GetId()] = "report"
	case f != nil:
		a.ends[m.GetId()] = "failed " + codes.Code(f.GetCode()).String() + ": " + f.GetMessage()
	}
}

// bindStalled binds a data connection to the session ready opened, by
// hand (preamble "FERY", version 3, the session's ticket), with a 4 KiB
// receive buffer fixed before the connection is made: what the server
// sends while the test does not read waits in the server's send buffer.
// Cleanup closes it.
func bindStalled(t *testing.T, ready *ferryv1.SessionReady) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<10) })
		return err
	}}
	c, err := d.Dial("tcp", ready.GetDataAddress())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(append([]byte{'F', 'E', 'R', 'Y', transfer.ProtocolVersionSession}, ready.GetTicket()...)); err != nil {
		t.Fatal(err)
	}
	var v [1]byte
	if _, err := io.ReadFull(c, v[:]); err != nil || transfer.Verdict(v[0]) != transfer.VerdictOK {
		t.Fatalf("binding: verdict %v, %v; want %v", transfer.Verdict(v[0]), err, transfer.VerdictOK)
	}
	c.SetDeadline(time.Time{})
	return c
}

// bindRaw binds a data connection to the session ready opened; cleanup
// closes it.
func bindRaw(t *testing.T, ctx context.Context, ready *ferryv1.SessionReady) net.Conn {
	t.Helper()
	c, err := transfer.BindSession(ctx, ready.GetDataAddress(), ready.GetTicket(), nil, transfer.ReceiveConfig{})
	if err != nil {
		t.Fatalf("BindSession() = %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// inQueue is how many bytes wait in c's receive queue (SIOCINQ).
func inQueue(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n, ierr := 0, error(nil)
	rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	if ierr != nil {
		t.Fatal(ierr)
	}
	return n
}

// readWholeFrame reads the next frame on c, which must be id's and
// whole, and returns its payload.
func readWholeFrame(t *testing.T, c net.Conn, id uint64) []byte {
	t.Helper()
	h, err := transfer.ReadFrameHeader(c)
	if err != nil || h.ID != id {
		t.Fatalf("frame header %+v, %v; want request %d's", h, err, id)
	}
	body := make([]byte, h.Length+1)
	if _, err := io.ReadFull(c, body); err != nil || body[h.Length] != transfer.TrailerOK {
		t.Fatalf("frame %d: %v, trailer %d; want it whole", id, err, body[h.Length])
	}
	return body[:h.Length]
}

// bytesDone is how many bytes the running transfer of path has sent,
// as ListTransfers shows it.
func bytesDone(ctx context.Context, t *testing.T, n *testNode, path string) uint64 {
	resp, err := n.api().ListTransfers(ctx, &ferryv1.ListTransfersRequest{RunningOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range resp.GetTransfers() {
		if tr.GetPath() == path {
			return tr.GetBytesDone()
		}
	}
	return 0
}

// TestSessionCancelMidFrame: a request cancelled while its frame is on
// its way ends alone, and its connection ends with a FIN, not a reset:
// the frames sent before it on the same connection, reported sent but
// not yet read by the client, arrive whole and byte-exact, and the cut
// frame ends short at a clean end of stream.
func TestSessionCancelMidFrame(t *testing.T) {
	n := startNode(t, service.Config{})
	small := writeFile(t, n.root, "small", 5000)
	mid := writeFile(t, n.root, "mid", 1<<20+3)
	writeFile(t, n.root, "big", 16<<20) // more than both sockets' buffers hold
	ctx := testCtx(t)
	st, ready := openRaw(t, ctx, n.api(), 0)
	c := bindStalled(t, ready)
	answers := answersOf(ctx, st)
	sendAll(t, st, getOf(1, "small", ferryv1.Strategy_STRATEGY_READ_WRITE), getOf(2, "mid", ferryv1.Strategy_STRATEGY_SPLICE))
	if ends := answers.await(t, 1, 2); ends[1] != "report" || ends[2] != "report" {
		t.Fatalf("the first two requests: %q and %q, want reports", ends[1], ends[2])
	}
	sendAll(t, st, getOf(3, "big", ferryv1.Strategy_STRATEGY_READ_WRITE))
	waitFor(t, "the large frame to be on its way", func() bool { return bytesDone(ctx, t, n, "big") > 0 })
	if got, whole := inQueue(t, c), len(small)+len(mid)+2*(transfer.FrameHeaderSize+1); got >= whole {
		t.Fatalf("test setup: the client already holds %d bytes, the first two frames whole (%d): nothing is left to lose", got, whole)
	}
	sendAll(t, st, &ferryv1.SessionRequest{Request: &ferryv1.SessionRequest_Cancel{Cancel: &ferryv1.CancelRequest{Id: 3}}})
	if ends := answers.await(t, 3); !strings.HasPrefix(ends[3], "failed Canceled: ") {
		t.Errorf("the cancelled request: %q, want failed Canceled", ends[3])
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got := readWholeFrame(t, c, 1); !bytes.Equal(got, small) {
		t.Errorf("frame 1: %d bytes, not the %d sent", len(got), len(small))
	}
	if got := readWholeFrame(t, c, 2); !bytes.Equal(got, mid) {
		t.Errorf("frame 2: %d bytes, not the %d sent", len(got), len(mid))
	}
	if h, err := transfer.ReadFrameHeader(c); err != nil || h.ID != 3 {
		t.Fatalf("the cut frame's header %+v, %v; want request 3's", h, err)
	}
	if got, err := io.Copy(io.Discard, c); err != nil || got >= 16<<20 {
		t.Errorf("after the cut frame's header: %d bytes, then %v; want fewer than %d, then a clean end of stream", got, err, 16<<20)
	}
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

// wireFrame is a frame read from a bound connection: its payload, or
// nil when it was cut short.
type wireFrame struct {
	id      uint64
	payload []byte
}

// readFramesOf reads frames from c onto out until c fails or closes.
// out must have room for every frame.
func readFramesOf(c net.Conn, out chan<- wireFrame) {
	for {
		h, err := transfer.ReadFrameHeader(c)
		if err != nil {
			return
		}
		body := make([]byte, h.Length+1)
		if _, err := io.ReadFull(c, body); err != nil || body[h.Length] != transfer.TrailerOK {
			out <- wireFrame{id: h.ID}
			return
		}
		out <- wireFrame{h.ID, body[:h.Length]}
	}
}

// TestSessionFullConnection: a session whose one bound connection has
// a client that stopped reading goes on answering requests. The 64 KiB
// READ_WRITE frames that fill the connection's send buffer are sent;
// those after them wait in the queue rather than block the goroutine
// that reads the session's requests, so a request made then is answered
// at once; and once a second connection is bound and the first is read
// again, every frame arrives whole and every request has its report.
func TestSessionFullConnection(t *testing.T) {
	n := startNode(t, service.Config{})
	data := writeFile(t, n.root, "f", 64<<10)
	ctx := testCtx(t)
	st, ready := openRaw(t, ctx, n.api(), 256)
	stalled := bindStalled(t, ready)
	answers := answersOf(ctx, st)
	k := uint64(maxSendBuffer(t)/(64<<10) + 8) // more than the client's and the server's buffers hold
	for id := uint64(1); id <= k; id++ {
		sendAll(t, st, getOf(id, "f", ferryv1.Strategy_STRATEGY_READ_WRITE))
	}
	sendAll(t, st, getOf(k+1, "missing", ferryv1.Strategy_STRATEGY_READ_WRITE))
	if ends := answers.await(t, k+1); !strings.HasPrefix(ends[k+1], "failed NotFound: ") {
		t.Fatalf("a request behind %d frames the client does not read: %q, want failed NotFound", k, ends[k+1])
	}
	frames := make(chan wireFrame, k+1)
	go readFramesOf(bindRaw(t, ctx, ready), frames)
	go readFramesOf(stalled, frames)
	for id, end := range answers.await(t, upTo(k)...) {
		if id <= k && end != "report" {
			t.Errorf("request %d: %q, want a report", id, end)
		}
	}
	for id, payload := range collectFrames(t, frames, k) {
		if !bytes.Equal(payload, data) {
			t.Errorf("frame %d: %d bytes, not the %d sent", id, len(payload), len(data))
		}
	}
}

// upTo is 1, 2, ... k.
func upTo(k uint64) []uint64 {
	ids := make([]uint64, k)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	return ids
}

// collectFrames takes k whole frames from in, within 10 s, and returns
// their payloads by id; a frame cut short or seen twice fails the test.
func collectFrames(t *testing.T, in <-chan wireFrame, k uint64) map[uint64][]byte {
	t.Helper()
	got := make(map[uint64][]byte)
	for timeout := time.After(10 * time.Second); uint64(len(got)) < k; {
		select {
		case f := <-in:
			if _, seen := got[f.id]; seen || f.payload == nil {
				t.Fatalf("frame %d: cut short or seen twice (seen before: %v)", f.id, seen)
			}
			got[f.id] = f.payload
		case <-timeout:
			t.Fatalf("%d of %d frames came within 10 s", len(got), k)
		}
	}
	return got
}

// TestSessionClosedConnection: the server notices a bound connection
// its client closed: its place under --max-bound-conns goes to another
// session's connection, and the session that had it, now without a
// connection, gets its next request offered with a ticket rather than
// framed onto the closed one.
func TestSessionClosedConnection(t *testing.T) {
	n := startNode(t, service.Config{Data: transfer.Config{MaxBoundConns: 1}})
	writeFile(t, n.root, "f", 1000)
	ctx := testCtx(t)
	st, ready := openRaw(t, ctx, n.api(), 0)
	bindRaw(t, ctx, ready).Close()
	_, other := openRaw(t, ctx, n.api(), 0)
	// BindSession retries the busy verdict for 10 s: the server must notice within that.
	bindRaw(t, ctx, other)
	if seen := firstAnswers(t, st, "f", 1); seen[1] != "offer" {
		t.Errorf("a request on the session whose connection closed: %q, want an offer with a ticket", seen[1])
	}
}
