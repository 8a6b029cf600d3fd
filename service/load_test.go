package service_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/service"
	"github.com/ferrydev/ferry/transfer"
	"golang.org/x/sys/unix"
)

// TestLoad runs 200 concurrent pulls of distinct 8 MiB files, cycling
// through every strategy and the server's choice, against one node with
// the default limits (which must admit them all). Every file must land
// byte-exact (by SHA-256 of the landed file), and afterwards the process
// must hold no more goroutines and descriptors than before, but for the
// splice pipes the pool keeps for reuse. It counts this process's
// goroutines and descriptors, so it must not run in parallel with other
// tests.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 1.6 GiB")
	}
	const pulls, size = 200, 8 << 20
	n := startNode(t, service.Config{Root: scratchDir(t, 2*pulls*size)})
	want := writeDistinct(t, n.root, pulls, size)
	strategies := []ferryv1.Strategy{
		ferryv1.Strategy_STRATEGY_READ_WRITE, ferryv1.Strategy_STRATEGY_MMAP, ferryv1.Strategy_STRATEGY_SENDFILE,
		ferryv1.Strategy_STRATEGY_SPLICE, ferryv1.Strategy_STRATEGY_UNSPECIFIED,
	}
	dest := scratchDir(t, pulls*size)
	// Warm up: the first transfers start what the process keeps (buffers,
	// a splice pipe, the client's connection), so the baseline holds it.
	for _, s := range strategies {
		pullAndCheck(t, n, 0, s, dest, want[0])
	}
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)

	start := time.Now()
	var wg sync.WaitGroup
	for i := range pulls {
		wg.Go(func() { pullAndCheck(t, n, i, strategies[i%len(strategies)], dest, want[i]) })
	}
	wg.Wait()
	t.Logf("%d concurrent pulls of %d MiB: %v", pulls, size>>20, time.Since(start))
	// The client keeps up to 16 data connections for its next pulls (for
	// 5 s); the server holds its end of each until the client closes it
	// or the handshake timeout passes. Close them now rather than wait.
	n.client.CloseIdleConnections()

	// The server's pool keeps up to transfer.Config.IdlePipes' default 16
	// pipes, and the receivers' (this process is the client too) 16.
	const keptPipeFDs = 2 * (16 + 16)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		g := runtime.NumGoroutine()
		extra, pipes := newFDs(fds, openFDs(t))
		if g <= goroutines && len(extra) == 0 && pipes <= keptPipeFDs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the pulls: %d goroutines (baseline %d), %d pipe descriptors beyond the baseline (at most %d kept), other descriptors left open: %q",
				g, goroutines, pipes, keptPipeFDs, extra)
		}
	}
	if root, _ := filepath.EvalSymlinks(n.root); mappedUnder(t, root) {
		t.Error("a served file is still mapped")
	}
}

// scratchDir is a new directory on /dev/shm when that is a tmpfs with
// room for need bytes, else t.TempDir(). The load test is about the
// server, not the disk: on tmpfs it neither waits for a busy disk nor
// makes other work wait for it.
func scratchDir(t *testing.T, need int64) string {
	t.Helper()
	var fs unix.Statfs_t
	if unix.Statfs("/dev/shm", &fs) != nil || fs.Type != unix.TMPFS_MAGIC || int64(fs.Bavail)*fs.Bsize < need+need/4 {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "ferry-load-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// writeDistinct writes files f000, f001... of size bytes under root and
// returns their SHA-256 sums. The files share random content, but every
// 4 KiB page starts with its file and page numbers: a page landing in the
// wrong file or place changes the sum.
func writeDistinct(t *testing.T, root string, files, size int) [][32]byte {
	t.Helper()
	data := make([]byte, size)
	seed.Read(data)
	sums := make([][32]byte, files)
	for i := range files {
		for p := 0; p < size; p += 4096 {
			binary.LittleEndian.PutUint32(data[p:], uint32(i))
			binary.LittleEndian.PutUint32(data[p+4:], uint32(p/4096))
		}
		if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("f%03d", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		sums[i] = sha256.Sum256(data)
	}
	return sums
}

// receiveCfg keeps the test's 200 receivers off locked threads, and
// patient: they are clients of the server under test, not part of it,
// and locking 200 more threads in the same process would only slow the
// server's goroutines down (every run of a locked goroutine hands its P
// to another thread).
var receiveCfg = transfer.ReceiveConfig{ThreadMeasureMin: math.MaxInt64, HandshakeTimeout: time.Minute}

// pullAndCheck pulls file i with strategy into dir, checks its SHA-256 and
// the report, and removes it.
func pullAndCheck(t *testing.T, n *testNode, i int, strategy ferryv1.Strategy, dir string, want [32]byte) {
	name := fmt.Sprintf("f%03d", i)
	out := filepath.Join(dir, fmt.Sprintf("%s-%v", name, strategy))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	rep, err := n.client.Download(ctx, name, out, client.DownloadOptions{Strategy: strategy, Receive: receiveCfg})
	if err != nil {
		t.Errorf("Download(%s, %v) = %v", name, strategy, err)
		return
	}
	defer os.Remove(out)
	f, err := os.Open(out)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Error(err)
		return
	}
	if got := [32]byte(h.Sum(nil)); got != want {
		t.Errorf("Download(%s, %v) landed a file with SHA-256 %x, want %x", name, strategy, got, want)
	}
	if s := rep.GetSender(); s.GetBytes() != rep.GetLength() || s.GetBytes() != rep.GetReceiver().GetBytes() {
		t.Errorf("Download(%s, %v): report says sender %d, receiver %d bytes of %d", name, strategy,
			s.GetBytes(), rep.GetReceiver().GetBytes(), rep.GetLength())
	}
}

// openFDs maps this process's descriptors to what they point to.
func openFDs(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	fds := make(map[string]string, len(ents))
	for _, e := range ents {
		// The directory's own descriptor is listed too, and closed by now:
		// no link. Counting it as "" made a descriptor closed since the
		// baseline, its number taken by the listing, look left open.
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			fds[e.Name()] = target
		}
	}
	return fds
}

// newFDs lists the descriptors in after that were not in before, pipes
// apart: it returns how many pipe descriptors after holds beyond before's.
func newFDs(before, after map[string]string) (extra []string, pipes int) {
	for fd, target := range after {
		switch {
		case strings.HasPrefix(target, "pipe:"):
			if !strings.HasPrefix(before[fd], "pipe:") {
				pipes++
			}
		case before[fd] != target:
			extra = append(extra, fd+" -> "+target)
		}
	}
	return extra, pipes
}

// mappedUnder reports whether any of this process's mappings is of a
// file beneath dir.
func mappedUnder(t *testing.T, dir string) bool {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(maps), " "+dir+"/")
}
