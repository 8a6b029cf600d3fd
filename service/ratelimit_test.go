package service_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/service"
	"github.com/ferrydev/ferry/transfer"
)

// checkPaced checks a paced report: the limit that applied, the bytes,
// and a sender no faster than the limit (pacing only ever slows a
// transfer, so only the upper side is checked).
func checkPaced(t *testing.T, report *ferryv1.Report, applied, size uint64) {
	t.Helper()
	s, r := report.GetSender(), report.GetReceiver()
	if got := s.GetRateLimit(); got != applied {
		t.Errorf("report.sender.rate_limit = %d, want %d", got, applied)
	}
	if s.GetBytes() != size || r.GetBytes() != size {
		t.Errorf("report bytes sent, received = %d, %d; want %d", s.GetBytes(), r.GetBytes(), size)
	}
	// Only the sender's rate is bounded: the receiver's clock starts when
	// it reads the verdict, and one that starts late drains bytes already
	// queued in the socket faster than the sender sent them.
	if got := s.GetThroughputBytesPerSecond(); applied > 0 && got > 1.1*float64(applied) {
		t.Errorf("report.sender.throughput = %.0f B/s, want at most %d × 1.1", got, applied)
	}
}

// TestDownloadRateLimit downloads through the real client with
// DownloadOptions.RateLimit from a node with and without --max-rate: the
// report's sender.rate_limit is the lower of the two (0 for neither) and
// the achieved rate stays under it.
func TestDownloadRateLimit(t *testing.T) {
	const size, ceiling = 2 << 20, 16 << 20
	for _, tt := range []struct {
		maxRate int64
		asked   uint64
		applied uint64
	}{
		{0, 0, 0},
		{0, 8 << 20, 8 << 20},
		{ceiling, 0, ceiling},
		{ceiling, 8 << 20, 8 << 20},
		{ceiling, 2 * ceiling, ceiling},
		{ceiling, math.MaxUint64, ceiling},
	} {
		n := startNode(t, service.Config{Data: transfer.Config{MaxRate: tt.maxRate}})
		want := writeFile(t, n.root, "f.bin", size)
		dest := filepath.Join(t.TempDir(), "f.bin")
		report, err := n.client.Download(testCtx(t), "f.bin", dest, client.DownloadOptions{
			Strategy: ferryv1.Strategy_STRATEGY_SPLICE, RateLimit: tt.asked,
		})
		if err != nil {
			t.Fatalf("max rate %d, Download(RateLimit %d) = %v", tt.maxRate, tt.asked, err)
		}
		t.Logf("max rate %d, asked %d: %s", tt.maxRate, tt.asked, report.GetSender().GetDuration().AsDuration())
		checkPaced(t, report, tt.applied, size)
		if got, err := os.ReadFile(dest); err != nil || !bytes.Equal(got, want) {
			t.Errorf("max rate %d, asked %d: destination holds %d bytes (err %v), want the %d source bytes", tt.maxRate, tt.asked, len(got), err, size)
		}
	}
}

// TestPullRateLimit passes PullRequest.rate_limit on to the peer: the
// peer's ceiling is higher, so the request's limit applies.
func TestPullRateLimit(t *testing.T) {
	const size, limit = 2 << 20, 8 << 20
	a := startNode(t, service.Config{Data: transfer.Config{MaxRate: 2 * limit}})
	b := startNode(t, service.Config{AllowPull: true})
	want := writeFile(t, a.root, "m.bin", size)
	msgs, err := pull(t, b, &ferryv1.PullRequest{Peer: a.Addr().String(), Path: "m.bin", Destination: "m.bin", RateLimit: limit})
	if err != nil {
		t.Fatalf("Pull(rate_limit %d) = %v", limit, err)
	}
	checkPaced(t, msgs[len(msgs)-1].GetReport(), limit, size)
	if got, err := os.ReadFile(filepath.Join(b.root, "m.bin")); err != nil || !bytes.Equal(got, want) {
		t.Errorf("destination holds %d bytes (err %v), want the %d source bytes", len(got), err, size)
	}
}
