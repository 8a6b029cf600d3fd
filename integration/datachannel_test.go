package integration

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/grpc"
)

// rawPull is a Download driven by hand through the generated client, with
// the data channel spoken as docs/design.md and transfer/preamble.go describe
// it: the client sends "FERY", version 1 and the 32-byte ticket; the
// server answers one verdict byte (0 is ok) and then exactly the offered
// bytes. It lets a test hold the reader still, which the ferry CLI never
// does.
type rawPull struct {
	stream grpc.ServerStreamingClient[ferryv1.DownloadResponse]
	offer  *ferryv1.Offer
	data   net.Conn
}

// startRawPull asks for req and opens the data channel, reading nothing
// after the verdict. ctx bounds the RPC.
func startRawPull(ctx context.Context, t *testing.T, d *ferryd, req *ferryv1.DownloadRequest) *rawPull {
	t.Helper()
	stream, err := ferryv1.NewTransferServiceClient(d.Conn()).Download(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.Recv()
	if err != nil {
		t.Fatalf("Download(%v): %v", req, err)
	}
	p := &rawPull{stream: stream, offer: msg.GetOffer()}
	if p.offer == nil || len(p.offer.GetTicket()) != 32 {
		t.Fatalf("Download's first message = %v, want an offer with a 32-byte ticket", msg)
	}
	p.data = openDataChannel(t, p.offer)
	return p
}

// openDataChannel connects to the offer's data address, presents the
// ticket and checks the verdict.
func openDataChannel(t *testing.T, offer *ferryv1.Offer) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", offer.GetDataAddress())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Minute)) // a hung server fails the test, not the run
	if _, err := c.Write(append([]byte("FERY\x01"), offer.GetTicket()...)); err != nil {
		t.Fatal(err)
	}
	var verdict [1]byte
	if _, err := io.ReadFull(c, verdict[:]); err != nil || verdict[0] != 0 {
		t.Fatalf("data channel verdict = %d, %v; want 0 (ok)", verdict[0], err)
	}
	return c
}

// awaitStalled waits for a progress message that shows the sender started
// but has not finished. Nobody reads, so the sender fills the socket
// buffers within microseconds and parks on EAGAIN; progress comes every
// 250 ms, long after. The offer must be larger than loopback's buffers
// hold: tens of MiB is plenty.
func (p *rawPull) awaitStalled(t *testing.T) {
	t.Helper()
	for {
		msg, err := p.stream.Recv()
		if err != nil {
			t.Fatalf("Download stream before any progress: %v", err)
		}
		if msg.GetReport() != nil {
			t.Fatalf("transfer of %d bytes finished with nobody reading; the test needs a larger file", p.offer.GetLength())
		}
		if sent := msg.GetProgress().GetBytesSent(); sent > 0 && sent < p.offer.GetLength() {
			return
		}
	}
}

// finish reads the rest of the bytes, then the report, and requires the
// stream to end with status OK.
func (p *rawPull) finish(t *testing.T) ([]byte, *ferryv1.Report) {
	t.Helper()
	data, err := io.ReadAll(p.data)
	if err != nil {
		t.Fatalf("reading the data channel: %v", err)
	}
	for {
		msg, err := p.stream.Recv()
		if err != nil {
			t.Fatalf("Download stream before the report: %v", err)
		}
		if rep := msg.GetReport(); rep != nil {
			if _, err := p.stream.Recv(); err != io.EOF {
				t.Errorf("Download stream after the report: %v, want io.EOF", err)
			}
			return data, rep
		}
	}
}
