package integration

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// TestOpenServicesFlood: a stranger with no token opens 2,000 health
// Watch streams over 8 connections and keeps them open. ferryd admits at
// most --max-open-streams of them (64) and refuses the rest with
// ResourceExhausted, its resident set grows by less than 32 MiB (48 under
// the race detector), and a pull with the token works throughout. Before the bound every watch was
// admitted and each held a goroutine and its buffers.
func TestOpenServicesFlood(t *testing.T) {
	root := t.TempDir()
	want := writeRandom(t, root, "f.bin", 1<<20+7)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte(rand.Text()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startFerryd(t, root, "--auth-token-file", token)
	rss := func() int {
		kb, _ := strconv.Atoi(strings.TrimSuffix(procStatus(t, d.cmd.Process.Pid, "VmRSS"), " kB"))
		return kb
	}
	before := rss()

	const conns, perConn = 8, 250
	var mu sync.Mutex
	admitted, refused, other := 0, 0, []error{}
	var wg sync.WaitGroup
	for range conns {
		conn, err := grpc.NewClient(d.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		wg.Go(func() {
			for range perConn {
				s, err := healthpb.NewHealthClient(conn).Watch(t.Context(), &healthpb.HealthCheckRequest{Service: serviceName})
				if err == nil {
					_, err = s.Recv() // an admitted watch answers at once, and stays open
				}
				mu.Lock()
				switch {
				case err == nil:
					admitted++
				case status.Code(err) == codes.ResourceExhausted:
					refused++
				default:
					other = append(other, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if admitted > 64 || admitted+refused != conns*perConn || len(other) > 0 {
		t.Errorf("%d watches: %d admitted, %d refused, other errors %v; want at most 64 admitted, the rest ResourceExhausted",
			conns*perConn, admitted, refused, other)
	}
	// Under the race detector (as CI runs) the refused calls' garbage alone
	// took the resident set up by 23-34 MiB in runs of the same code: its
	// shadow memory multiplies what the heap holds. The bound's own check
	// is the admitted count above; this one catches what it would miss:
	// 2,000 admitted watches would each hold a goroutine and a stream's
	// buffers, tens of KiB (an estimate, not measured here).
	limit := 32 << 10
	if raceEnabled {
		limit = 48 << 10
	}
	grew := rss() - before
	if grew > limit {
		t.Errorf("ferryd's resident set grew by %d KiB under the flood, want under %d MiB", grew, limit>>10)
	}
	t.Logf("ferryd's resident set grew by %d KiB (from %d KiB)", grew, before)
	dest := filepath.Join(t.TempDir(), "f.bin")
	ferryOK(t, "pull", "--server", d.Addr, "--token-file", token, "f.bin", dest)
	if got, err := os.ReadFile(dest); err != nil || string(got) != string(want) {
		t.Errorf("pull during the flood: %d bytes, %v; want the file", len(got), err)
	}
}

// TestListFilesFlood: 64 concurrent one-entry pages of a directory of
// 20,000 entries. Each page used to read and sort every name of the
// directory, and together they took ferryd's peak resident set up by
// over 100 MiB (700 MiB with 50,000 entries and 160 pages); a page now
// holds about two pages' worth of names per level, and at most 8
// listings read at once.
func TestListFilesFlood(t *testing.T) {
	root := t.TempDir()
	big := filepath.Join(root, "big")
	if err := os.Mkdir(big, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 20000
	for i := range n {
		f, err := os.Create(filepath.Join(big, fmt.Sprintf("entry-with-a-longish-name-%06d", i)))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	d := startFerryd(t, root)
	peak := func() int {
		kb, _ := strconv.Atoi(strings.TrimSuffix(procStatus(t, d.cmd.Process.Pid, "VmHWM"), " kB"))
		return kb
	}
	before := peak()
	api := ferryv1.NewTransferServiceClient(d.Conn())
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			token := ""
			for range 4 {
				resp, err := api.ListFiles(t.Context(), &ferryv1.ListFilesRequest{Path: "big", PageSize: 1, PageToken: token})
				if err != nil || len(resp.GetEntries()) != 1 {
					errs <- fmt.Errorf("caller %d: %d entries, %v", g, len(resp.GetEntries()), err)
					return
				}
				token = resp.GetNextPageToken()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if grew := peak() - before; grew > 48<<10 {
		t.Errorf("ferryd's peak resident set grew by %d KiB under 64 one-entry pages of %d entries, want under 48 MiB", grew, n)
	}
}
