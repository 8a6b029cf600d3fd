package service_test

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/service"
	"github.com/ferrydev/ferry/transfer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// checkExhausted fills the server's places with offers that nobody
// collects, requires the next Download to be ResourceExhausted with a
// message mentioning what ran out, and then requires a place to come back
// once one call ends.
func checkExhausted(t *testing.T, n *testNode, places int, mention string) {
	t.Helper()
	writeFile(t, n.root, "f", 1000)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	firstCtx, cancelFirst := context.WithCancel(ctx)
	startDownload(t, firstCtx, n.api(), &ferryv1.DownloadRequest{Path: "f"})
	for range places - 1 {
		startDownload(t, ctx, n.api(), &ferryv1.DownloadRequest{Path: "f"})
	}
	err := downloadErr(t, n.api(), &ferryv1.DownloadRequest{Path: "f"})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), mention) {
		t.Fatalf("Download() past %d places = %v, want %v mentioning %q", places, err, codes.ResourceExhausted, mention)
	}
	// Health streams and unary calls still answer a full server.
	watchCtx, stopWatch := context.WithCancel(ctx)
	w, err := healthpb.NewHealthClient(dialFrom(t, "127.0.0.1", n.Addr().String())).Watch(watchCtx, &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = w.Recv()
	}
	if err != nil {
		t.Errorf("Health.Watch() on a full server = %v", err)
	}
	stopWatch()
	if _, err := n.client.Capabilities(testCtx(t)); err != nil {
		t.Errorf("GetCapabilities() on a full server = %v", err)
	}
	cancelFirst()
	waitFor(t, "a place comes back after a call ends", func() bool {
		err := downloadErr(t, n.api(), &ferryv1.DownloadRequest{Path: "f"})
		if err != nil && status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("Download() = %v, want an offer or %v", err, codes.ResourceExhausted)
		}
		return err == nil
	})
}

// Past --max-transfers (offered or running), Download is
// ResourceExhausted and says why.
func TestMaxTransfersExhausted(t *testing.T) {
	n := startNode(t, service.Config{Data: transfer.Config{MaxTransfers: 3}})
	checkExhausted(t, n, 3, "too many concurrent transfers")
}

// Past --max-streams, Download is ResourceExhausted and says why, while
// health and unary calls still answer.
func TestMaxStreamsExhausted(t *testing.T) {
	n := startNode(t, service.Config{MaxStreams: 3})
	checkExhausted(t, n, 3, "too many concurrent streams")
}

// A Download whose deadline passes ends, whether its ticket is still
// waiting or its bytes are moving, and frees the ticket, the file and its
// mapping.
func TestDownloadDeadline(t *testing.T) {
	n := startNode(t, service.Config{})
	writeFile(t, n.root, "small", 4096)
	small, err := filepath.EvalSymlinks(filepath.Join(n.root, "small"))
	if err != nil {
		t.Fatal(err)
	}
	big := sparseFile(t, n.root, "big", 256<<20)

	t.Run("pending", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
		defer cancel()
		stream, offer := startDownload(t, ctx, n.api(), &ferryv1.DownloadRequest{Path: "small"})
		if _, err := stream.Recv(); status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("Recv() past the deadline = %v, want %v", err, codes.DeadlineExceeded)
		}
		waitFor(t, "the server closes the file", func() bool { return fdsTo(t, small) == 0 })
		if _, v := dialData(t, offer.DataAddress, offer.Ticket); v != transfer.VerdictRefused {
			t.Errorf("verdict for a ticket whose call's deadline passed = %v, want %v", v, transfer.VerdictRefused)
		}
	})

	for _, strategy := range n.caps(t).Strategies {
		t.Run(strategy.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(testCtx(t), 500*time.Millisecond)
			defer cancel()
			stream, offer := startDownload(t, ctx, n.api(), &ferryv1.DownloadRequest{Path: "big", Strategy: strategy})
			c, v := dialData(t, offer.DataAddress, offer.Ticket)
			if v != transfer.VerdictOK {
				t.Fatalf("verdict = %v, want %v", v, transfer.VerdictOK)
			}
			got, err := io.CopyN(io.Discard, c, 1<<20) // then stop reading
			if err != nil {
				t.Fatalf("reading the first MiB: %v", err)
			}
			for {
				if _, err = stream.Recv(); err != nil {
					break
				}
			}
			if status.Code(err) != codes.DeadlineExceeded {
				t.Fatalf("Recv() past the deadline = %v, want %v", err, codes.DeadlineExceeded)
			}
			rest, _ := io.Copy(io.Discard, c)
			if got += rest; got >= 256<<20 {
				t.Fatalf("the data channel carried all %d bytes: the sender ignored the deadline", got)
			}
			waitFor(t, "the server closes and unmaps the file", func() bool { return fdsTo(t, big) == 0 && !mapped(t, big) })
		})
	}
}

// With BindDataToClient, a ticket is good only from the IP address of the
// control-plane call that got it: the service passes the caller's address
// to the data plane. 127.0.0.2 is a second loopback source on Linux.
func TestBindDataToClient(t *testing.T) {
	n := startNode(t, service.Config{Data: transfer.Config{BindDataToClient: true}})
	src := writeFile(t, n.root, "small", 100_000)
	checkDownload(t, n, ferryv1.Strategy_STRATEGY_UNSPECIFIED, src)

	for _, tc := range []struct{ control, other string }{
		{"127.0.0.1", "127.0.0.2"},
		{"127.0.0.2", "127.0.0.1"},
	} {
		api := ferryv1.NewTransferServiceClient(dialFrom(t, tc.control, n.Addr().String()))
		_, offer := startDownload(t, testCtx(t), api, &ferryv1.DownloadRequest{Path: "small"})
		if _, v := dialDataFrom(t, tc.other, offer.DataAddress, offer.Ticket); v != transfer.VerdictRefused {
			t.Errorf("control from %s, data from %s: verdict %v, want %v", tc.control, tc.other, v, transfer.VerdictRefused)
		}
		c, v := dialDataFrom(t, tc.control, offer.DataAddress, offer.Ticket)
		if v != transfer.VerdictOK {
			t.Errorf("control and data from %s: verdict %v, want %v (the refusal must not spend the ticket)", tc.control, v, transfer.VerdictOK)
			continue
		}
		if got, err := io.ReadAll(c); err != nil || len(got) != len(src) {
			t.Errorf("control and data from %s: %d bytes, %v; want %d", tc.control, len(got), err, len(src))
		}
	}
}

// dialFrom is a gRPC connection to target from the local address ip.
func dialFrom(t *testing.T, ip, target string) *grpc.ClientConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dialDataFrom is dialData from the local address ip.
func dialDataFrom(t *testing.T, ip, addr string, ticket []byte) (net.Conn, transfer.Verdict) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialling the data channel %s from %s: %v", addr, ip, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(append([]byte("FERY\x01"), ticket...)); err != nil {
		t.Fatalf("writing the preamble: %v", err)
	}
	var v [1]byte
	if _, err := io.ReadFull(c, v[:]); err != nil {
		t.Fatalf("reading the verdict: %v", err)
	}
	return c, transfer.Verdict(v[0])
}
