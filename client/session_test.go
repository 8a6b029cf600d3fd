package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/service"
)

// writeFiles writes n files of size bytes each (f0, f1, ...) into root
// and returns their contents.
func writeFiles(t *testing.T, root string, n, size int) [][]byte {
	t.Helper()
	var all [][]byte
	for i := range n {
		b := randomBytes(size + i) // lengths differ: a frame mixed up with another shows
		if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("f%d", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		all = append(all, b)
	}
	return all
}

// TestSessionGetsConcurrently: many Gets from many goroutines on one
// session, with every strategy and inline, land every file whole, each
// with its report; the bytes go on the bound connections, framed.
func TestSessionGetsConcurrently(t *testing.T) {
	c, root := startNodeRoot(t, service.Config{}, []byte("x"))
	files := writeFiles(t, root, 24, 150<<10)
	s, err := c.OpenSession(testCtx(t), client.SessionOptions{Window: 8, Connections: 3})
	if err != nil {
		t.Fatalf("OpenSession() = %v", err)
	}
	defer s.Close()
	strategies := []ferryv1.Strategy{ferryv1.Strategy_STRATEGY_UNSPECIFIED, ferryv1.Strategy_STRATEGY_READ_WRITE,
		ferryv1.Strategy_STRATEGY_MMAP, ferryv1.Strategy_STRATEGY_SENDFILE, ferryv1.Strategy_STRATEGY_SPLICE}
	dest := t.TempDir()
	var wg sync.WaitGroup
	for i := range files {
		wg.Go(func() {
			opts := client.GetOptions{Strategy: strategies[i%len(strategies)]}
			if i%7 == 0 {
				opts.InlineMax = 1 << 20 // capped at 64 KiB by the server: these still go framed
			}
			name := fmt.Sprintf("f%d", i)
			rep, err := s.Download(testCtx(t), name, filepath.Join(dest, name), opts)
			if err != nil {
				t.Errorf("Download(%s) = %v", name, err)
				return
			}
			if got := rep.GetSender().GetBytes(); got != uint64(len(files[i])) {
				t.Errorf("%s: sender bytes %d, want %d", name, got, len(files[i]))
			}
			if got := rep.GetReceiver().GetBytes(); got != uint64(len(files[i])) {
				t.Errorf("%s: receiver bytes %d, want %d", name, got, len(files[i]))
			}
		})
	}
	wg.Wait()
	checkFiles(t, dest, files)
	if dials, _ := c.DataConnections(); dials != 0 {
		t.Errorf("%d data connections dialled with tickets, want none: every frame on a bound connection", dials)
	}
}

// checkFiles fails unless dest holds f0, f1, ... with the contents given.
func checkFiles(t *testing.T, dest string, files [][]byte) {
	t.Helper()
	for i, want := range files {
		got, err := os.ReadFile(filepath.Join(dest, fmt.Sprintf("f%d", i)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("f%d: %d bytes (%v), want %d bytes as sent", i, len(got), err, len(want))
		}
	}
}

// TestSessionWithoutBoundConnections: a session that binds none (as a
// grpcurl user's) gets offers with tickets, which the client's pool
// fetches.
func TestSessionWithoutBoundConnections(t *testing.T) {
	c, root := startNodeRoot(t, service.Config{}, []byte("x"))
	files := writeFiles(t, root, 4, 100<<10)
	s, err := c.OpenSession(testCtx(t), client.SessionOptions{Connections: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dest := t.TempDir()
	for i := range files {
		if _, err := s.Download(testCtx(t), fmt.Sprintf("f%d", i), filepath.Join(dest, fmt.Sprintf("f%d", i)), client.GetOptions{}); err != nil {
			t.Fatalf("Download(f%d) = %v", i, err)
		}
	}
	checkFiles(t, dest, files)
	if dials, reuses := c.DataConnections(); dials != 1 || reuses != 3 {
		t.Errorf("%d dials and %d reuses with tickets, want 1 and 3", dials, reuses)
	}
}

// TestSessionOneFailureLeavesOthers: a request for a missing file fails
// alone with its own code; the session goes on serving the others.
func TestSessionOneFailureLeavesOthers(t *testing.T) {
	c, root := startNodeRoot(t, service.Config{}, []byte("x"))
	files := writeFiles(t, root, 2, 1000)
	s, err := c.OpenSession(testCtx(t), client.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dest := t.TempDir()
	_, err = s.Get(testCtx(t), "missing", filepath.Join(dest, "missing"), client.GetOptions{})
	if status.Code(err) != codes.NotFound {
		t.Errorf("Get(missing) = %v, want NotFound", err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "missing")); err == nil {
		t.Error("a file landed for the failed request")
	}
	for i := range files {
		if _, err := s.Download(testCtx(t), fmt.Sprintf("f%d", i), filepath.Join(dest, fmt.Sprintf("f%d", i)), client.GetOptions{}); err != nil {
			t.Errorf("Download(f%d) after a failed request = %v", i, err)
		}
	}
}

// TestSessionOutOfOrder: a paced transfer started first finishes after
// fast ones started later on the same session: completion in any order.
func TestSessionOutOfOrder(t *testing.T) {
	c, root := startNodeRoot(t, service.Config{}, []byte("x"))
	writeFiles(t, root, 4, 64<<10)
	s, err := c.OpenSession(testCtx(t), client.SessionOptions{Connections: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dest := t.TempDir()
	order := make(chan string, 4)
	var wg sync.WaitGroup
	wg.Go(func() {
		// 64 KiB at 128 KiB/s: about half a second.
		if _, err := s.Get(testCtx(t), "f0", filepath.Join(dest, "f0"), client.GetOptions{RateLimit: 128 << 10}); err != nil {
			t.Errorf("Get(f0) = %v", err)
		}
		order <- "f0"
	})
	time.Sleep(50 * time.Millisecond) // f0 is on one connection: the others take the other
	for i := 1; i < 4; i++ {
		if _, err := s.Get(testCtx(t), fmt.Sprintf("f%d", i), filepath.Join(dest, fmt.Sprintf("f%d", i)), client.GetOptions{}); err != nil {
			t.Errorf("Get(f%d) = %v", i, err)
		}
		order <- fmt.Sprintf("f%d", i)
	}
	wg.Wait()
	close(order)
	var got []string
	for n := range order {
		got = append(got, n)
	}
	if got[len(got)-1] != "f0" {
		t.Errorf("finished in the order %v, want f0, the paced one started first, last", got)
	}
}

// TestSessionCancelOne: cancelling one Get's context ends that request
// alone, with nothing landed; the next Get on the session works.
func TestSessionCancelOne(t *testing.T) {
	c, root := startNodeRoot(t, service.Config{}, []byte("x"))
	writeFiles(t, root, 2, 256<<10)
	s, err := c.OpenSession(testCtx(t), client.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dest := t.TempDir()
	ctx, cancel := context.WithCancel(testCtx(t))
	time.AfterFunc(100*time.Millisecond, cancel)
	// 256 KiB at 64 KiB/s: four seconds, unless cancelled.
	_, err = s.Get(ctx, "f0", filepath.Join(dest, "f0"), client.GetOptions{RateLimit: 64 << 10})
	if !errors.Is(err, context.Canceled) && status.Code(err) != codes.Canceled {
		t.Errorf("Get(f0) with its context cancelled = %v, want cancelled", err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "f0")); err == nil {
		t.Error("the cancelled request landed a file")
	}
	if _, err := s.Download(testCtx(t), "f1", filepath.Join(dest, "f1"), client.GetOptions{}); err != nil {
		t.Errorf("Download(f1) after a cancelled Get = %v", err)
	}
}

// TestSessionChecksum: a Get that asks for a checksum gets its offer
// (framed transfers without one get none), verifies the landed bytes
// against it and says so in the report.
func TestSessionChecksum(t *testing.T) {
	c, root := startNodeRoot(t, service.Config{}, []byte("x"))
	files := writeFiles(t, root, 2, 300<<10)
	s, err := c.OpenSession(testCtx(t), client.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dest := t.TempDir()
	for i, alg := range []ferryv1.ChecksumAlgorithm{ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_SHA256, ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_CRC32C} {
		name := fmt.Sprintf("f%d", i)
		rep, err := s.Download(testCtx(t), name, filepath.Join(dest, name), client.GetOptions{Checksum: alg})
		if err != nil {
			t.Fatalf("Download(%s, %v) = %v", name, alg, err)
		}
		if !rep.GetChecksumVerified() || rep.GetChecksum().GetAlgorithm() != alg {
			t.Errorf("%s: report checksum %v, verified %v; want %v verified", name, rep.GetChecksum(), rep.GetChecksumVerified(), alg)
		}
	}
	checkFiles(t, dest, files)
}
