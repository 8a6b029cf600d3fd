package integration

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestShutdownDrains sends SIGTERM while a transfer is stalled mid-way on
// a reader that holds still: health turns NOT_SERVING at once, the
// transfer still completes byte-exact with its report once the reader
// reads, and ferryd exits 0 well within the grace, having aborted nothing
// and without waiting for the health Watch the test leaves open (a
// client's health checking holds one).
func TestShutdownDrains(t *testing.T) {
	const grace = 20 * time.Second
	root := t.TempDir()
	data := writeRandom(t, root, "big.bin", 64<<20)
	d := startFerryd(t, root, "--shutdown-grace", grace.String())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pull := startRawPull(ctx, t, d, &ferryv1.DownloadRequest{Path: "big.bin"})
	pull.awaitStalled(t)

	health := watchHealth(ctx, t, d)
	health.await(t, healthpb.HealthCheckResponse_SERVING)
	d.Signal(t, syscall.SIGTERM)
	health.awaitNotServing(ctx, t) // and leaves the Watch open: ferryd must not wait for it

	got, rep := pull.finish(t)
	sameBytes(t, "bytes read across SIGTERM", got, data)
	if rep.GetSender().GetBytes() != uint64(len(data)) {
		t.Errorf("report after SIGTERM: sender bytes %d, want %d", rep.GetSender().GetBytes(), len(data))
	}
	d.AwaitExit(t, grace/2) // a ferryd that sat out its grace would miss this
	if log := d.Log.String(); strings.Contains(log, "grace period over") {
		t.Errorf("ferryd aborted transfers instead of draining them:\n%s", log)
	}
}
