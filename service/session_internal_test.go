package service

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/transfer"
)

// sendWatch is a stream interceptor that counts what a Session handler
// sends on its stream after it has returned, which gRPC forbids. It
// hands the handler's second Recv (the first get, on the session's
// receiving goroutine) its message only once the handler has returned:
// the worst case of a Recv racing the handler's end.
type sendWatch struct {
	held     chan struct{} // closed once the get is held
	returned chan struct{} // closed once the handler has returned
	again    chan struct{} // closed when Recv is called after the held get was handed over
	onceMore sync.Once
	late     atomic.Int32 // messages sent after the handler returned
}

func newSendWatch() *sendWatch {
	return &sendWatch{held: make(chan struct{}), returned: make(chan struct{}), again: make(chan struct{})}
}

func (w *sendWatch) intercept(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	err := handler(srv, &watchedStream{ServerStream: ss, w: w})
	close(w.returned)
	return err
}

// watchedStream is a Session call's stream under a sendWatch.
type watchedStream struct {
	grpc.ServerStream
	w     *sendWatch
	recvs atomic.Int32
}

func (s *watchedStream) SendMsg(m any) error {
	select {
	case <-s.w.returned:
		s.w.late.Add(1)
	default:
	}
	return s.ServerStream.SendMsg(m)
}

func (s *watchedStream) RecvMsg(m any) error {
	switch s.recvs.Add(1) {
	case 1: // open, on the handler's goroutine
		return s.ServerStream.RecvMsg(m)
	case 2: // the get, on the receiving goroutine
		err := s.ServerStream.RecvMsg(m)
		close(s.w.held)
		<-s.w.returned
		return err
	default:
		s.w.onceMore.Do(func() { close(s.w.again) })
		return s.ServerStream.RecvMsg(m)
	}
}

// startWatchedService serves a TransferService, on loopback, whose
// stream calls go through w, and returns a client of it.
func startWatchedService(t *testing.T, w *sendWatch) ferryv1.TransferServiceClient {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	data := transfer.NewServer(transfer.Config{Logger: quiet})
	t.Cleanup(func() { data.Close() })
	svc := &transferService{data: data, address: "127.0.0.1:1", log: quiet, transfers: newRegistry(0)}
	s := grpc.NewServer(grpc.StreamInterceptor(w.intercept))
	ferryv1.RegisterTransferServiceServer(s, svc)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return ferryv1.NewTransferServiceClient(cc)
}

// waitClosed fails the test unless ch is closed within 10 s.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestSessionNoSendAfterReturn: a request the session's receiving
// goroutine takes in after the Session handler has returned (here its
// client cancelled the call) is answered with nothing: the handler's
// stream takes no send once the handler is returning.
func TestSessionNoSendAfterReturn(t *testing.T) {
	w := newSendWatch()
	api := startWatchedService(t, w)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	st, err := api.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&ferryv1.SessionRequest{Request: &ferryv1.SessionRequest_Open{Open: &ferryv1.SessionOpen{}}}); err != nil {
		t.Fatal(err)
	}
	if m, err := st.Recv(); err != nil || m.GetReady() == nil {
		t.Fatalf("first message = %v, %v; want SessionReady", m, err)
	}
	get := &ferryv1.SessionRequest{Request: &ferryv1.SessionRequest_Get{Get: &ferryv1.GetRequest{Id: 1, Path: "f"}}}
	if err := st.Send(get); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, w.held, "the server to receive the get")
	cancel() // the handler stops its session and returns
	waitClosed(t, w.returned, "the handler to return")
	waitClosed(t, w.again, "the receiving goroutine to handle the get")
	if n := w.late.Load(); n != 0 {
		t.Errorf("%d messages sent on the stream after the Session handler returned, want none", n)
	}
}
