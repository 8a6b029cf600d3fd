package integration

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// TestOpenServicesFlood: a stranger with no token opens 2,000 health
// Watch streams over 8 connections and keeps them open. ferryd admits at
// most --max-open-streams of them (64) and refuses the rest with
// ResourceExhausted, its resident set grows by less than 32 MiB, and a
// pull with the token works throughout. Before the bound every watch was
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
	if grew := rss() - before; grew > 32<<10 {
		t.Errorf("ferryd's resident set grew by %d KiB under the flood, want under 32 MiB", grew)
	}
	dest := filepath.Join(t.TempDir(), "f.bin")
	ferryOK(t, "pull", "--server", d.Addr, "--token-file", token, "f.bin", dest)
	if got, err := os.ReadFile(dest); err != nil || string(got) != string(want) {
		t.Errorf("pull during the flood: %d bytes, %v; want the file", len(got), err)
	}
}
