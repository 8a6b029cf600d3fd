package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/benchfmt"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// runs makes one sample per wall time, rounds 1, 2, ... of bytes each.
func runs(bytes int64, walls ...float64) []Sample {
	var out []Sample
	for i, w := range walls {
		out = append(out, Sample{Round: i + 1, Bytes: bytes, WallSec: w, SenderCPU: w / 2, ReceiverCPU: w / 4})
	}
	return out
}

func withLatency(ss []Sample, p50s ...float64) []Sample {
	for i := range ss {
		ss[i].P50us, ss[i].P99us, ss[i].Files = p50s[i], p50s[i]*3, 1000
	}
	return ss
}

// fixtureResults is a small run: 3 rounds, 2e9-byte large file.
func fixtureResults() *Results {
	pr := func(id, label string, ss []Sample) *PathResult {
		return &PathResult{ID: id, Label: label, SenderCPU: "P s", ReceiverCPU: "S r", Samples: ss}
	}
	failed := pr("grpc-64k", "gRPC <64 KiB> & co", []Sample{{Round: 1, Err: "boom"}})
	auto := pr("ferry-auto", "Ferry auto", runs(2e9, 1, 1, 4))
	auto.Samples = append(auto.Samples, Sample{Round: 4, Err: "lost"})
	ln := &WorkloadResult{ID: "large-null", Title: "2 GB file → /dev/null", Paths: []*PathResult{
		pr("iperf3", "iperf3, one stream", runs(2e9, 2, 1, 4)),
		pr("iperf3-z", "iperf3 -Z", runs(2e9, 2, 2, 2)),
		pr("nginx-sendfile-curl", "nginx sendfile on + curl", runs(2e9, 4, 4, 4)),
		failed,
		auto,
		pr("ferry-mmap", "Ferry mmap", runs(2e9, 0.5, 1, 1)),
		pr("ferry-splice", "Ferry splice", runs(2e9, 2, 2, 2)),
	}}
	sm := &WorkloadResult{ID: "small", Title: "4 KiB files, one after another", Latency: true, Paths: []*PathResult{
		pr("nginx-sendfile-go-http", "nginx sendfile on + Go net/http keep-alive", withLatency(runs(4096000, 1, 1, 1), 200, 300, 250)),
		pr("ferry-auto", "Ferry auto", withLatency(runs(4096000, 1, 1, 1), 400, 300, 500)),
		pr("ferry-sendfile", "Ferry sendfile", withLatency(runs(4096000, 1, 1, 1), 200, 300, 250)),
	}}
	dir := &WorkloadResult{ID: "dir", Title: "A directory", Paths: []*PathResult{
		pr("tar-nc-null", "tar c | nc → nc -l > /dev/null", runs(40960000, 0.5, 0.5, 0.5)),
		pr("ferry-auto-dir", "Ferry auto (10000 pulls, 4 concurrent)", runs(40960000, 1, 1, 1)),
		pr("tar-nc-tarx", "tar c | nc → nc -l | tar x", runs(40960000, 0.5, 0.5, 0.5)),
		pr("ferry-auto-tree", "Ferry auto pull -r → files", runs(40960000, 1, 1, 1)),
	}}
	r := &Results{
		Machine: Machine{Date: "2026-11-25T00:00:00Z", Cores: 2, CPUModel: "AMD EPYC",
			Virt: "hypervisor flag set; systemd-detect-virt --vm: kvm", Kernel: "6.18", GoVersion: "go1.26.8", Tools: map[string]string{"iperf3": "iperf 3.12"}},
		Settings:  map[string]string{"runs": "3", "command": "ferry-bench -runs 3"},
		Workloads: []*WorkloadResult{ln, sm, dir},
		Memory:    &Memory{SparseSize: 100 << 30, SingleMmapMiB: 20, Concurrent: 200, ConcurrentMiB: 210},
	}
	r.finish([]error{errors.New("large-null round 1: boom")})
	return r
}

func TestSummarize(t *testing.T) {
	r := fixtureResults()
	auto := r.workload("large-null").path("ferry-auto").Summary
	// GB/s per round 2, 2, 0.5 (round 4 failed); iperf3 -Z 1, 1, 1.
	if auto.Runs != 3 || auto.GBps != 2 || auto.WallSec != 1 || *auto.RatioIperfZ != 2 {
		t.Errorf("ferry-auto summary = %+v (ratio %v), want 3 runs, 2 GB/s, 1 s, ratio 2", auto, *auto.RatioIperfZ)
	}
	// CPU: sender wall/2 s per 2e9 bytes; median over rounds of 0.5 s per 2e9 B.
	if want := 0.5 / (2e9 / (1 << 30)); auto.SenderCPUPerGiB != want {
		t.Errorf("ferry-auto SenderCPUPerGiB = %v, want %v", auto.SenderCPUPerGiB, want)
	}
	if s := r.workload("large-null").path("grpc-64k").Summary; s != nil {
		t.Errorf("summary of a path whose only sample failed = %+v, want nil", s)
	}
	if s := r.workload("small").path("ferry-auto").Summary; s.P50us == nil || *s.P50us != 400 || *s.P99us != 1200 || s.RatioIperfZ != nil {
		t.Errorf("small ferry-auto summary = %+v, want p50 400, p99 1200, no ratio", s)
	}
}

func TestRenderMarkdown(t *testing.T) {
	var b bytes.Buffer
	RenderMarkdown(&b, fixtureResults())
	md := b.String()
	for _, want := range []string{
		"# Ferry benchmark\n\nMeasured 2026-11-25T00:00:00Z on 2 cores",
		"\n\nHost: AMD EPYC; virtualization: hypervisor flag set; systemd-detect-virt --vm: kvm.\n\n",
		"## Targets\n\nRatios are medians of same-round ratios.\n",
		"| Ferry auto | 2.000 | 1.000 | 2.00 | 0.268 | 0.134 | P s · S r | 3 |  |",
		"| gRPC <64 KiB> & co | — | — | — | — | — | P s · S r | 0 | failed |",
		"| nginx sendfile on + Go net/http keep-alive | 0.004 | 1.000 | — | 131.072 | 65.536 | P s · S r | 250 | 750 | 3 |  |",
		`| tar c \| nc → nc -l > /dev/null |`,
		"| 1a | large file → /dev/null: Ferry auto vs iperf3, one stream | 1.00x | >= 1.00x | met |",
		"| 6b | ferryd peak RSS with 200 concurrent MMAP pulls of it | 210.0 MiB | <= 64.0 MiB | missed |",
		"## Errors\n\n- large-null round 1: boom\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("RenderMarkdown() lacks %q; got:\n%s", want, md)
		}
	}
}

func TestResultsJSONRoundTrip(t *testing.T) {
	r := fixtureResults()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("json.Marshal() error = %v", err)
	}
	var got Results
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("json.Unmarshal() error = %v", err)
	}
	if diff := cmp.Diff(r, &got, cmpopts.IgnoreUnexported(Results{})); diff != "" {
		t.Errorf("JSON round trip mismatch (-want +got):\n%s", diff)
	}
	if !bytes.Contains(b, []byte(`"ratio_to_iperf3_z":2`)) || !bytes.Contains(b, []byte(`"error":"boom"`)) {
		t.Errorf("JSON lacks the ratio or the failed sample's error: %s", b)
	}
}

func TestThroughputChart(t *testing.T) {
	r := fixtureResults()
	got := throughputChart(r)
	const ferry, iperf, peer = "#2b6cb0", "#4a5568", "#a0aec0"
	want := benchfmt.Chart{
		Width: 960, LabelWidth: 400,
		Title: "Throughput by path, GB/s (median of 3 rounds, 2 cores, kernel 6.18, 2026-11-25T00:00:00Z)",
		Note:  "Ferry in blue, iperf3 (the loopback TCP reference) in dark grey, other peers in light grey. Source: results.json.",
		// large-null and dir are charted; small (latency) is not.
		Panels: []benchfmt.Panel{
			{ID: "large-null", Title: "2 GB file → /dev/null", Unit: "GB/s", Bars: []benchfmt.Bar{
				{Label: "iperf3, one stream", Value: 1, Text: "1.000", Color: iperf},
				{Label: "iperf3 -Z", Value: 1, Text: "1.000", Color: iperf},
				{Label: "nginx sendfile on + curl", Value: 0.5, Text: "0.500", Color: peer},
				{Label: "gRPC <64 KiB> & co", Value: 0, Text: "failed", Color: peer},
				{Label: "Ferry auto", Value: 2, Text: "2.000", Color: ferry},
				{Label: "Ferry mmap", Value: 2, Text: "2.000", Color: ferry},
				{Label: "Ferry splice", Value: 1, Text: "1.000", Color: ferry},
			}},
			{ID: "dir", Title: "A directory", Unit: "GB/s", Bars: []benchfmt.Bar{
				{Label: "tar c | nc → nc -l > /dev/null", Value: 0.08192, Text: "0.082", Color: peer},
				{Label: "Ferry auto (10000 pulls, 4 concurrent)", Value: 0.04096, Text: "0.041", Color: ferry},
				{Label: "tar c | nc → nc -l | tar x", Value: 0.08192, Text: "0.082", Color: peer},
				{Label: "Ferry auto pull -r → files", Value: 0.04096, Text: "0.041", Color: ferry},
			}},
		},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
		t.Errorf("throughputChart(%q) mismatch (-want +got):\n%s", r.Settings["command"], diff)
	}
}
