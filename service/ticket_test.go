package service_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/service"
	"github.com/ferrydev/ferry/transfer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A ticket lives as long as its Download call: cancelling the call
// revokes it, so presenting it afterwards gets a refusal and no bytes.
func TestTicketRevokedWithCall(t *testing.T) {
	n := startNode(t, service.Config{})
	writeFile(t, n.root, "f", 4096)
	path, err := filepath.EvalSymlinks(filepath.Join(n.root, "f"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	stream, offer := startDownload(t, ctx, n.api(), &ferryv1.DownloadRequest{Path: "f"})
	if got := fdsTo(t, path); got != 1 {
		t.Fatalf("%d descriptors open on the file while offered, want 1", got)
	}
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("Recv() after cancel = %v, want %v", err, codes.Canceled)
	}
	// The server closes the file only once it has revoked the ticket.
	waitFor(t, "the server closes the file", func() bool { return fdsTo(t, path) == 0 })
	c, v := dialData(t, offer.DataAddress, offer.Ticket)
	if v != transfer.VerdictRefused {
		t.Errorf("verdict for a cancelled call's ticket = %v, want %v", v, transfer.VerdictRefused)
	}
	if rest, err := io.ReadAll(c); len(rest) != 0 {
		t.Errorf("after the refusal the server sent %d bytes (err %v), want none", len(rest), err)
	}
}

// A ticket is single use: after a complete transfer it is refused.
func TestTicketSingleUse(t *testing.T) {
	n := startNode(t, service.Config{})
	src := writeFile(t, n.root, "f", 100_000)
	stream, offer := startDownload(t, testCtx(t), n.api(), &ferryv1.DownloadRequest{Path: "f"})
	c, v := dialData(t, offer.DataAddress, offer.Ticket)
	if v != transfer.VerdictOK {
		t.Fatalf("verdict = %v, want %v", v, transfer.VerdictOK)
	}
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, src) {
		t.Fatalf("data channel carried %d bytes (err %v), want the %d source bytes", len(got), err, len(src))
	}
	if r := recvReport(t, stream); r.GetSender().GetBytes() != uint64(len(src)) {
		t.Errorf("report sender bytes = %d, want %d", r.GetSender().GetBytes(), len(src))
	}
	c, v = dialData(t, offer.DataAddress, offer.Ticket)
	if v != transfer.VerdictRefused {
		t.Errorf("verdict for a used ticket = %v, want %v", v, transfer.VerdictRefused)
	}
	if rest, err := io.ReadAll(c); len(rest) != 0 {
		t.Errorf("after the refusal the server sent %d bytes (err %v), want none", len(rest), err)
	}
}

// An offer whose ticket nobody presents ends with DeadlineExceeded.
func TestTicketExpires(t *testing.T) {
	n := startNode(t, service.Config{Data: transfer.Config{TicketTTL: 100 * time.Millisecond}})
	writeFile(t, n.root, "f", 10)
	// testCtx's deadline would also read DeadlineExceeded; the message
	// tells the server's apart.
	stream, offer := startDownload(t, testCtx(t), n.api(), &ferryv1.DownloadRequest{Path: "f"})
	_, err := stream.Recv()
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(status.Convert(err).Message(), "expired") {
		t.Fatalf("Recv() after the ticket TTL = %v, want %v saying the ticket expired", err, codes.DeadlineExceeded)
	}
	if _, v := dialData(t, offer.DataAddress, offer.Ticket); v != transfer.VerdictRefused {
		t.Errorf("verdict for an expired ticket = %v, want %v", v, transfer.VerdictRefused)
	}
}

// recvReport reads the stream to its report, skipping progress, and
// checks the stream ends after it.
func recvReport(t *testing.T, stream interface {
	Recv() (*ferryv1.DownloadResponse, error)
}) *ferryv1.Report {
	t.Helper()
	for {
		msg, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv() = %v, want progress or the report", err)
		}
		if r := msg.GetReport(); r != nil {
			if msg, err := stream.Recv(); err != io.EOF {
				t.Errorf("Recv() after the report = (%v, %v), want io.EOF", msg, err)
			}
			return r
		}
		if msg.GetProgress() == nil {
			t.Fatalf("Recv() = %v, want progress or the report", msg)
		}
	}
}
