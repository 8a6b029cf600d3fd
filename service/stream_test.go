package service_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/service"
	"github.com/ferrydev/ferry/transfer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Cancelling a Download while its bytes move stops the sender and frees
// the file, its mapping and its pipe. It counts this process's
// descriptors, so it must not run in parallel with other tests.
func TestCancelMidTransfer(t *testing.T) {
	n := startNode(t, service.Config{})
	const size = 256 << 20
	big := sparseFile(t, n.root, "big", size)
	small := writeFile(t, n.root, "small", 100_000)
	for _, strategy := range n.caps(t).Strategies {
		t.Run(strategy.String(), func(t *testing.T) {
			// A first transfer warms up what the server keeps for reuse
			// (buffers, the splice pipe), so the baseline includes it.
			checkDownload(t, n, strategy, small)
			before := fdCount(t)

			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			stream, offer := startDownload(t, ctx, n.api(), &ferryv1.DownloadRequest{Path: "big", Strategy: strategy})
			c, v := dialData(t, offer.DataAddress, offer.Ticket)
			if v != transfer.VerdictOK {
				t.Fatalf("verdict = %v, want %v", v, transfer.VerdictOK)
			}
			got, err := io.CopyN(io.Discard, c, 1<<20)
			if err != nil {
				t.Fatalf("reading the first MiB: %v", err)
			}
			if fdsTo(t, big) != 1 {
				t.Fatalf("%d descriptors open on the file mid-transfer, want 1", fdsTo(t, big))
			}
			if strategy == ferryv1.Strategy_STRATEGY_MMAP {
				waitFor(t, "the sender maps a window of the file", func() bool { return mapped(t, big) })
			}

			cancel()
			if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
				t.Fatalf("Recv() after cancel = %v, want %v", err, codes.Canceled)
			}
			// The sender closes the data connection once it stopped.
			rest, err := io.Copy(io.Discard, c)
			if got += rest; got >= size {
				t.Fatalf("the data channel carried all %d bytes (err %v): the sender ignored the cancel", got, err)
			}
			c.Close()
			waitFor(t, "descriptors return to the baseline", func() bool { return fdCount(t) <= before })
			if fdsTo(t, big) != 0 || mapped(t, big) {
				t.Errorf("after cancel: %d descriptors on the file, mapped %v; want 0, false", fdsTo(t, big), mapped(t, big))
			}
			// What the server keeps for reuse must not have grown either:
			// a pipe taken from the pool and neither closed nor returned
			// shows only once the next transfer makes a new one.
			checkDownload(t, n, strategy, small)
			waitFor(t, "descriptors return to the baseline after the next transfer", func() bool { return fdCount(t) <= before })
		})
	}
}

// checkDownload fetches "small" with strategy and checks the bytes.
func checkDownload(t *testing.T, n *testNode, strategy ferryv1.Strategy, want []byte) {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "small")
	if _, err := n.client.Download(testCtx(t), "small", dest, client.DownloadOptions{Strategy: strategy}); err != nil {
		t.Fatalf("Download(small, %v) = %v", strategy, err)
	}
	if got, err := os.ReadFile(dest); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Download(small, %v) landed %d bytes (err %v), want the %d source bytes", strategy, len(got), err, len(want))
	}
}

// While the bytes move the stream carries progress, then the report. The
// reader holds back after the first MiB until a progress message came:
// the sender cannot finish 64 MiB meanwhile, so one must come.
func TestProgress(t *testing.T) {
	n := startNode(t, service.Config{ProgressInterval: 10 * time.Millisecond})
	const size = 64 << 20
	sparseFile(t, n.root, "big", size)
	stream, offer := startDownload(t, testCtx(t), n.api(), &ferryv1.DownloadRequest{Path: "big"})
	c, v := dialData(t, offer.DataAddress, offer.Ticket)
	if v != transfer.VerdictOK {
		t.Fatalf("verdict = %v, want %v", v, transfer.VerdictOK)
	}
	if _, err := io.CopyN(io.Discard, c, 1<<20); err != nil {
		t.Fatalf("reading the first MiB: %v", err)
	}
	msg, err := stream.Recv()
	if err != nil || msg.GetProgress() == nil {
		t.Fatalf("Recv() mid-transfer = (%v, %v), want progress", msg, err)
	}
	events := []*ferryv1.DownloadResponse{msg}
	if got, err := io.Copy(io.Discard, c); got != size-1<<20 || err != nil {
		t.Fatalf("reading the rest: %d bytes, %v; want %d bytes", got, err, size-1<<20)
	}
	for msg.GetReport() == nil {
		if msg, err = stream.Recv(); err != nil {
			t.Fatalf("Recv() = %v, want progress or the report", err)
		}
		events = append(events, msg)
	}
	var last uint64
	for _, ev := range events[:len(events)-1] {
		p := ev.GetProgress()
		if p == nil || p.BytesTotal != size || p.BytesSent < last || p.BytesSent > size {
			t.Fatalf("event %v, want progress of %d bytes total, sent between %d and the total", ev, uint64(size), last)
		}
		last = p.BytesSent
	}
}
