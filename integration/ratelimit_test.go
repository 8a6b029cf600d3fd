package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// checkPacedReport checks a paced pull's report: the limit that applied,
// the bytes, and a sender no faster than that limit (pacing can only slow
// a transfer down, so the lower side is not checked).
func checkPacedReport(t *testing.T, what string, rep *ferryv1.Report, applied uint64, n int) {
	t.Helper()
	s, r := rep.GetSender(), rep.GetReceiver()
	if got := s.GetRateLimit(); got != applied {
		t.Errorf("%s: report.sender.rate_limit = %d, want %d", what, got, applied)
	}
	if s.GetBytes() != uint64(n) || r.GetBytes() != uint64(n) {
		t.Errorf("%s: bytes sent, received = %d, %d; want %d", what, s.GetBytes(), r.GetBytes(), n)
	}
	// Only the sender's rate is bounded: the receiver's clock starts when
	// it reads the verdict, and one that starts late drains bytes already
	// queued in the socket faster than the sender sent them.
	if got := s.GetThroughputBytesPerSecond(); got > 1.1*float64(applied) {
		t.Errorf("%s: report.sender.throughput = %.0f B/s, want at most %d × 1.1", what, got, applied)
	}
}

// TestRateLimit runs ferryd with --max-rate and pulls with
// ferry pull --limit-rate: the report says which limit applied (the lower
// of the two) and the rate achieved stays under it, in --json and in the
// table; bad sizes are refused by both binaries.
func TestRateLimit(t *testing.T) {
	const size, ceiling, limit = 2 << 20, 8 << 20, 4 << 20 // 0.25 s at the ceiling, 0.5 s at the limit
	root, out := t.TempDir(), t.TempDir()
	want := writeRandom(t, root, "f.bin", size)
	d := startFerryd(t, root, "--max-rate", "8MiB")

	for _, tt := range []struct {
		flag    string
		applied uint64
	}{
		{"4MiB", limit},  // under the ceiling: the request's limit
		{"1GB", ceiling}, // over it: the ceiling
		{"0", ceiling},   // none asked: the ceiling
	} {
		dest := filepath.Join(out, "json-"+tt.flag)
		res := ferryOK(t, "pull", "--json", "--server", d.Addr, "--strategy", "splice", "--limit-rate", tt.flag, "f.bin", dest)
		var rep ferryv1.Report
		if err := protojson.Unmarshal([]byte(res.stdout), &rep); err != nil {
			t.Fatalf("--limit-rate %s: ferry pull --json printed no report: %v\n%s", tt.flag, err, res.stdout)
		}
		checkPacedReport(t, "--limit-rate "+tt.flag, &rep, tt.applied, size)
		got, err := os.ReadFile(dest)
		if err != nil {
			t.Fatal(err)
		}
		sameBytes(t, "--limit-rate "+tt.flag+" landed file", got, want)
	}

	res := ferryOK(t, "pull", "--server", d.Addr, "--limit-rate", "4MiB/s", "f.bin", filepath.Join(out, "human"))
	for _, line := range []string{"rate limit", "4.0 MiB/s", "throughput"} {
		if !strings.Contains(res.stdout, line) {
			t.Errorf("ferry pull --limit-rate 4MiB/s output lacks %q:\n%s", line, res.stdout)
		}
	}

	if r := ferry(t, "pull", "--server", d.Addr, "--limit-rate", "fast", "f.bin", filepath.Join(out, "bad")); r.code == 0 || !strings.Contains(r.stderr, "limit-rate") {
		t.Errorf("ferry pull --limit-rate fast: exit %d, stderr %q; want a failure naming --limit-rate", r.code, r.stderr)
	}
	env := append(cleanEnv(), "FERRY_MAX_RATE=fast")
	if r := run(t, env, bin.ferryd, "--root", root); r.code != 2 || !strings.Contains(r.stderr, "FERRY_MAX_RATE") {
		t.Errorf("ferryd with FERRY_MAX_RATE=fast: exit %d, stderr %q; want 2 and a message naming FERRY_MAX_RATE", r.code, r.stderr)
	}
}

// TestRateLimitPullRPC asks a node for a paced pull with the real
// grpcurl: rate_limit reaches the peer and its report.
func TestRateLimitPullRPC(t *testing.T) {
	const size, limit = 2 << 20, 4 << 20
	grpcurl := toolPath(t, grpcurlTool)
	rootA, rootB := t.TempDir(), t.TempDir()
	want := writeRandom(t, rootA, "m.bin", size)
	a, b := startFerryd(t, rootA), startFerryd(t, rootB, "--allow-pull")
	body := `{"peer": "` + a.Addr + `", "path": "m.bin", "destination": "m.bin", "rate_limit": "` + strconv.Itoa(limit) + `"}`
	r := run(t, os.Environ(), grpcurl, "-plaintext", "-d", body, b.Addr, serviceName+"/Pull")
	if r.code != 0 {
		t.Fatalf("grpcurl Pull: exit %d\n%s", r.code, r.stderr)
	}
	msgs := pullMessages(t, r.stdout)
	checkPacedReport(t, "grpcurl Pull", msgs[len(msgs)-1].GetReport(), limit, size)
	if !strings.Contains(r.stdout, `"rateLimit": "4194304"`) {
		t.Errorf("grpcurl Pull output lacks \"rateLimit\": \"4194304\":\n%s", r.stdout)
	}
	got, err := os.ReadFile(filepath.Join(rootB, "m.bin"))
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "pulled file", got, want)
}
