package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/service"
	"github.com/ferrydev/ferry/transfer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// startNode runs a real Node on loopback serving a new directory, with
// src written to <root>/src, and returns a client dialled to it. Cleanup
// closes the client, stops the node and checks Run returned nil.
func startNode(t *testing.T, cfg service.Config, src []byte) *client.Client {
	t.Helper()
	c, _ := startNodeRoot(t, cfg, src)
	return c
}

// startNodeRoot is startNode that also returns the served root, and
// dials with opts when given.
func startNodeRoot(t testing.TB, cfg service.Config, src []byte, opts ...grpc.DialOption) (*client.Client, string) {
	t.Helper()
	cfg.Root = t.TempDir()
	cfg.Listen, cfg.DataListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Logger = slog.New(slog.DiscardHandler)
	if err := os.WriteFile(filepath.Join(cfg.Root, "src"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := service.NewNode(cfg)
	if err != nil {
		t.Fatalf("NewNode() = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- n.Run(ctx) }()
	c, err := client.Dial(n.Addr().String(), opts...)
	t.Cleanup(func() {
		if c != nil {
			c.Close()
		}
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run() = %v after its context was cancelled, want nil", err)
		}
	})
	if err != nil {
		t.Fatalf("Dial(%s) = %v", n.Addr(), err)
	}
	return c, cfg.Root
}

var seed = rand.NewChaCha8([32]byte{'f', 'e', 'r', 'r', 'y', 'c', 'l', 'i'})

func randomBytes(n int) []byte {
	b := make([]byte, n)
	seed.Read(b)
	return b
}

// checkDir fails unless dir holds exactly the named files.
func checkDir(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

func TestDownloadReplacesDestination(t *testing.T) {
	src := randomBytes(1<<20 + 3)
	c := startNode(t, service.Config{}, src)
	dir := t.TempDir()
	dest := filepath.Join(dir, "dest")
	if err := os.WriteFile(dest, []byte("old content, longer than nothing"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := client.DownloadOptions{Offset: 100, Length: 5000, Strategy: ferryv1.Strategy_STRATEGY_READ_WRITE}
	report, err := c.Download(testCtx(t), "src", dest, opts)
	if err != nil {
		t.Fatalf("Download(%+v) = %v", opts, err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, src[100:5100]) {
		t.Errorf("Download(%+v) landed %d bytes, want the %d bytes of the range", opts, len(got), 5000)
	}
	checkDir(t, dir, "dest")
	if report.GetSender().GetBytes() != 5000 || report.GetReceiver().GetBytes() != 5000 {
		t.Errorf("report bytes (sender, receiver) = (%d, %d), want (5000, 5000)",
			report.GetSender().GetBytes(), report.GetReceiver().GetBytes())
	}
}

func TestDownloadMissingDestinationDir(t *testing.T) {
	c := startNode(t, service.Config{}, []byte("payload"))
	dir := t.TempDir()
	dest := filepath.Join(dir, "no-such-dir", "dest")
	if _, err := c.Download(testCtx(t), "src", dest, client.DownloadOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Download(to %s) = %v, want an error that is %v", dest, err, os.ErrNotExist)
	}
	checkDir(t, dir)
}

// A failed Download leaves neither the destination nor a partial file,
// and an existing destination untouched.
func TestDownloadFailureLeavesNoFile(t *testing.T) {
	// A data address that accepts and hangs up at once: the offer is
	// made, the destination created, then the data channel fails.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { ln.Close() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	c := startNode(t, service.Config{AdvertiseData: ln.Addr().String()}, []byte("payload"))
	tests := []struct {
		name, path string
		check      func(error) bool
		want       string
	}{
		{"missing file", "missing", func(err error) bool { return status.Code(err) == codes.NotFound }, "NotFound"},
		{"data channel hangs up", "src", func(err error) bool { return errors.Is(err, transfer.ErrRefused) }, "ErrRefused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := c.Download(testCtx(t), tt.path, filepath.Join(dir, "dest"), client.DownloadOptions{}); !tt.check(err) {
				t.Errorf("Download(%q) = %v, want %s", tt.path, err, tt.want)
			}
			checkDir(t, dir)

			old := []byte("old content")
			dest := filepath.Join(dir, "existing")
			if err := os.WriteFile(dest, old, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Download(testCtx(t), tt.path, dest, client.DownloadOptions{}); !tt.check(err) {
				t.Errorf("Download(%q) = %v, want %s", tt.path, err, tt.want)
			}
			if got, _ := os.ReadFile(dest); !bytes.Equal(got, old) {
				t.Errorf("after a failed Download the destination holds %q, want %q", got, old)
			}
			checkDir(t, dir, "existing")
		})
	}
}

// testCtx is the test's context with a deadline, so that an RPC the
// server never answers fails the test rather than hanging it.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestDownloadReusesDataConnections: a warm client's downloads, one after
// another and with every strategy, go over one data connection; a failed
// one (a range past the end) does not spoil it; CloseIdleConnections
// makes the next download dial again.
func TestDownloadReusesDataConnections(t *testing.T) {
	src := randomBytes(3<<20 + 11)
	c := startNode(t, service.Config{}, src)
	dir := t.TempDir()
	strategies := []ferryv1.Strategy{
		ferryv1.Strategy_STRATEGY_READ_WRITE, ferryv1.Strategy_STRATEGY_MMAP,
		ferryv1.Strategy_STRATEGY_SENDFILE, ferryv1.Strategy_STRATEGY_SPLICE,
	}
	pull := func(i int, s ferryv1.Strategy) {
		t.Helper()
		dest := filepath.Join(dir, fmt.Sprint("d", i))
		if _, err := c.Download(testCtx(t), "src", dest, client.DownloadOptions{Strategy: s}); err != nil {
			t.Fatalf("Download(%v) = %v", s, err)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, src) {
			t.Fatalf("Download(%v) landed %d bytes, want the %d sent", s, len(got), len(src))
		}
	}
	for i, s := range strategies {
		pull(i, s)
	}
	if dials, reuses := c.DataConnections(); dials != 1 || reuses != int64(len(strategies)-1) {
		t.Errorf("after %d downloads: %d dials, %d reuses; want 1 and %d", len(strategies), dials, reuses, len(strategies)-1)
	}
	if _, err := c.Download(testCtx(t), "src", filepath.Join(dir, "bad"), client.DownloadOptions{Offset: 4 << 20}); err == nil {
		t.Fatal("Download past the end = nil error")
	}
	pull(10, ferryv1.Strategy_STRATEGY_SENDFILE)
	if dials, _ := c.DataConnections(); dials != 1 {
		t.Errorf("after a refused request: %d dials, want still 1", dials)
	}
	c.CloseIdleConnections()
	pull(11, ferryv1.Strategy_STRATEGY_MMAP)
	if dials, _ := c.DataConnections(); dials != 2 {
		t.Errorf("after CloseIdleConnections: %d dials, want 2", dials)
	}
}

// TestIdleClientDoesNotLockOthersOut: a client whose downloads left data
// connections idle in its pool does not take the server's handshake
// places (2 here, as --max-transfers 2 makes them) from another client.
// A review found the second client refused ("server unavailable") until
// the first one's idle connections timed out.
func TestIdleClientDoesNotLockOthersOut(t *testing.T) {
	src := randomBytes(64 << 10)
	a := startNode(t, service.Config{Data: transfer.Config{MaxTransfers: 2}}, src)
	dir := t.TempDir()
	opts := client.DownloadOptions{Strategy: ferryv1.Strategy_STRATEGY_SENDFILE}
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			if _, err := a.Download(testCtx(t), "src", filepath.Join(dir, fmt.Sprint("a", i)), opts); err != nil {
				t.Errorf("client A: Download() = %v", err)
			}
		})
	}
	wg.Wait()
	b, err := client.Dial(a.Target())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := range 3 {
		if _, err := b.Download(testCtx(t), "src", filepath.Join(dir, fmt.Sprint("b", i)), opts); err != nil {
			t.Fatalf("client B, download %d, while A's connections are idle: %v", i, err)
		}
	}
}

// TestDownloadSaysItsSink: the client tells the server what it does with
// the bytes, and the measuring auto files a large transfer under that
// sink: /dev/null and standard output pass the bytes on, a path lands a
// file. The report's size class names the one the server used, for a
// Download and for a session's Get.
func TestDownloadSaysItsSink(t *testing.T) {
	cfg := service.Config{Data: transfer.Config{Auto: transfer.AutoMeasure, AutoExploreEvery: -1}}
	c := startNode(t, cfg, randomBytes(16<<20))
	ctx := testCtx(t)
	dir := t.TempDir()
	reads := client.DownloadOptions{Receive: client.ReceiveConfig{ReadWrite: true}}
	hashes := client.DownloadOptions{Checksum: ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_SHA256}
	for _, tt := range []struct {
		dest string
		opts client.DownloadOptions
		want string
	}{
		{os.DevNull, client.DownloadOptions{}, "[16 MiB, 256 MiB) loopback, to a stream"},
		{os.DevNull, reads, "[16 MiB, 256 MiB) loopback, to a reader"},
		{os.DevNull, hashes, "[16 MiB, 256 MiB) loopback, to a reader"},
		{filepath.Join(dir, "landed"), client.DownloadOptions{}, "[16 MiB, 256 MiB) loopback, to a file"},
		{filepath.Join(dir, "read"), reads, "[16 MiB, 256 MiB) loopback, to a file"},
	} {
		rep, err := c.Download(ctx, "src", tt.dest, tt.opts)
		if err != nil {
			t.Fatalf("Download to %s: %v", tt.dest, err)
		}
		if got := rep.GetAuto().GetSizeClass(); got != tt.want {
			t.Errorf("Download to %s, read %v, checksum %v: size class %q, want %q",
				tt.dest, tt.opts.Receive.ReadWrite, tt.opts.Checksum, got, tt.want)
		}
	}
	s, err := c.OpenSession(ctx, client.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for dest, want := range map[string]string{
		os.DevNull:                    "[16 MiB, 256 MiB) loopback, to a stream",
		filepath.Join(dir, "session"): "[16 MiB, 256 MiB) loopback, to a file",
	} {
		rep, err := s.Download(ctx, "src", dest, client.GetOptions{})
		if err != nil {
			t.Fatalf("session Download to %s: %v", dest, err)
		}
		if got := rep.GetAuto().GetSizeClass(); got != want {
			t.Errorf("session Download to %s: size class %q, want %q", dest, got, want)
		}
	}
}
