package service_test

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/service"
	"github.com/ferrydev/ferry/transfer"
	"google.golang.org/grpc"
)

// quiet keeps the per-call and per-transfer log lines out of test output.
var quiet = slog.New(slog.DiscardHandler)

// testNode is a real Node on loopback, run by Run in a goroutine, with a
// real client dialled to it.
type testNode struct {
	*service.Node
	root   string
	client *client.Client
	stop   func() error // cancels Run's context once and returns Run's result
}

// startNode runs a Node on 127.0.0.1:0 with both listeners. cfg.Root ""
// means a new temporary directory. Cleanup closes the client, cancels
// Run's context and checks that Run returned nil.
func startNode(t testing.TB, cfg service.Config) *testNode {
	t.Helper()
	if cfg.Root == "" {
		cfg.Root = t.TempDir()
	}
	cfg.Listen = orDefault(cfg.Listen, "127.0.0.1:0")
	cfg.DataListen = orDefault(cfg.DataListen, "127.0.0.1:0")
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	n, err := service.NewNode(cfg)
	if err != nil {
		t.Fatalf("NewNode(%+v) = %v", cfg, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- n.Run(ctx) }()
	var once sync.Once
	var runErr error
	tn := &testNode{Node: n, root: cfg.Root, stop: func() error {
		once.Do(func() {
			cancel()
			runErr = <-ran
		})
		return runErr
	}}
	c, err := client.Dial(n.Addr().String())
	if err != nil {
		tn.stop()
		t.Fatalf("Dial(%s) = %v", n.Addr(), err)
	}
	tn.client = c
	t.Cleanup(func() {
		c.Close()
		if err := tn.stop(); err != nil {
			t.Errorf("Run() = %v after its context was cancelled, want nil", err)
		}
	})
	return tn
}

func (n *testNode) api() ferryv1.TransferServiceClient { return n.client.API() }

// caps asks the node what it supports.
func (n *testNode) caps(t *testing.T) *ferryv1.GetCapabilitiesResponse {
	t.Helper()
	caps, err := n.client.Capabilities(testCtx(t))
	if err != nil {
		t.Fatalf("Capabilities() = %v", err)
	}
	return caps
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

var seed = rand.NewChaCha8([32]byte{'f', 'e', 'r', 'r', 'y', 's', 'v', 'c'})

// writeFile writes size random bytes to root/name and returns them.
func writeFile(t testing.TB, root, name string, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	seed.Read(data)
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

// sparseFile makes root/name a hole of size bytes (all zeros) and returns
// its host path with symlinks resolved, as /proc shows it.
func sparseFile(t *testing.T, root, name string, size int64) string {
	t.Helper()
	p := filepath.Join(root, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return real
}

// startDownload calls the raw Download RPC and returns the stream and its
// first message, which must be an offer.
func startDownload(t *testing.T, ctx context.Context, api ferryv1.TransferServiceClient, req *ferryv1.DownloadRequest) (grpc.ServerStreamingClient[ferryv1.DownloadResponse], *ferryv1.Offer) {
	t.Helper()
	stream, err := api.Download(ctx, req)
	if err != nil {
		t.Fatalf("Download(%v) = %v", req, err)
	}
	msg, err := stream.Recv()
	if err != nil {
		t.Fatalf("Download(%v): first Recv() = %v, want an offer", req, err)
	}
	offer := msg.GetOffer()
	if offer == nil {
		t.Fatalf("Download(%v): first message = %v, want an offer", req, msg)
	}
	return stream, offer
}

// dialData opens the data channel by hand: the preamble is "FERY", version
// 1 and the 32-byte ticket; the server answers with one verdict byte. The
// connection has a generous deadline so that a broken server fails the
// test instead of hanging it.
func dialData(t *testing.T, addr string, ticket []byte) (net.Conn, transfer.Verdict) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialling the data channel %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	preamble := append([]byte{'F', 'E', 'R', 'Y', 1}, ticket...)
	if _, err := c.Write(preamble); err != nil {
		t.Fatalf("writing the preamble: %v", err)
	}
	var v [1]byte
	if _, err := io.ReadFull(c, v[:]); err != nil {
		t.Fatalf("reading the verdict: %v", err)
	}
	return c, transfer.Verdict(v[0])
}

// testCtx is the test's context with a deadline, so that an RPC the
// server never answers fails the test rather than hanging it.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
