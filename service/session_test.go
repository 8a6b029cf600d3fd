package service_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
