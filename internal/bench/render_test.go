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
	for i, st := range []string{"mmap", "mmap", "splice"} {
		auto.Samples[i].Auto = &AutoUse{Transfers: 1, Strategies: map[string]int{st: 1}, ChosenByServer: 1, SizeClasses: []string{"[8 MiB, ∞)"}}
	}
	auto.Samples[2].Auto.Explorations, auto.Samples[2].Auto.Explored = 1, map[string]int{"splice": 1}
	ln := &WorkloadResult{ID: "large-null", Title: "2 GB file → /dev/null", Paths: []*PathResult{
		pr("iperf3", "iperf3, one stream", runs(2e9, 2, 1, 4)),
		pr("iperf3-z", "iperf3 -Z", runs(2e9, 2, 2, 2)),
		pr("nginx-sendfile-curl", "nginx sendfile on + curl", runs(2e9, 4, 4, 4)),
		pr("nginx-nosendfile-curl", "nginx sendfile off + curl", runs(2e9, 1, 8, 2)),
		pr("grpc-1024k", "gRPC 1 MiB", runs(2e9, 4, 4, 4)),
		failed,
		auto,
		pr("ferry-mmap", "Ferry mmap", runs(2e9, 0.5, 1, 1)),
		pr("ferry-splice", "Ferry splice", runs(2e9, 2, 2, 2)),
	}}
	mdAuto := pr("ferry-auto", "Ferry auto", runs(2e8, 1, 1, 1))
	for i := range mdAuto.Samples {
		mdAuto.Samples[i].Auto = &AutoUse{Transfers: 200, Strategies: map[string]int{"read_write": 190, "mmap": 10},
			Explorations: 10, Explored: map[string]int{"mmap": 10}, ChosenByServer: 200}
	}
	md := &WorkloadResult{ID: "medium", Title: "1 MiB files, one after another", Latency: true, Paths: []*PathResult{
		mdAuto,
		pr("ferry-read-write", "Ferry read_write", runs(2e8, 1.25, 1.25, 1.25)),
		pr("ferry-mmap", "Ferry mmap", runs(2e8, 0.9, 0.9, 0.9)),
		pr("ferry-auto-fixed", "Ferry auto, fixed rule", runs(2e8, 0.8, 0.8, 0.8)),
		pr("nginx-sendfile-go-http", "nginx sendfile on", runs(2e8, 1, 2, 1)),
		pr("nginx-nosendfile-go-http", "nginx sendfile off", runs(2e8, 2, 1, 1)),
		pr("ferry-session", "Ferry session", runs(2e8, 1, 0.5, 2)),
		pr("nginx-sendfile-go-http-8", "nginx sendfile on, 8", runs(2e8, 2, 2, 2)),
		pr("ferry-session-8", "Ferry session, 8", runs(2e8, 1, 2, 0.5)),
	}}
	sm := &WorkloadResult{ID: "small", Title: "4 KiB files, one after another", Latency: true, Paths: []*PathResult{
		pr("nginx-sendfile-go-http", "nginx sendfile on + Go net/http keep-alive", withLatency(runs(4096000, 1, 1, 1), 200, 300, 250)),
		pr("ferry-auto", "Ferry auto", withLatency(runs(4096000, 1, 1, 1), 400, 300, 500)),
		pr("ferry-sendfile", "Ferry sendfile", withLatency(runs(4096000, 1, 1, 1), 200, 300, 250)),
		pr("ferry-auto-fixed", "Ferry auto, fixed rule", withLatency(runs(4096000, 1, 1, 1), 360, 300, 400)),
		pr("ferry-session", "Ferry session", withLatency(runs(4096000, 1, 1, 1), 150, 300, 100)),
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
		Workloads: []*WorkloadResult{ln, md, sm, dir},
		Memory:    &Memory{SparseSize: 100 << 30, SingleMmapMiB: 20, Concurrent: 200, ConcurrentMiB: 210},
		AutoPolicies: []*AutoPolicy{{Server: "ferryd", Objective: "throughput", ExploreShare: 0.05, Seed: "probe",
			Classes: []AutoClass{{Class: "[0 B, 8 MiB)", Pick: "read_write", Reason: "most bytes per second",
				Costs: []StrategyCost{{Strategy: "read_write", Samples: 12, GBps: 1.5}, {Strategy: "mmap", Failed: true}}, LeftOutForSteal: 2},
				{Class: "[0 B, 8 MiB) network", Network: "network", Pick: "splice"}}, // not rendered
			Rounds: []RoundPicks{{Round: 1, Picks: map[string]string{"[0 B, 8 MiB)": "mmap"}}, {Round: 2, Picks: map[string]string{"[0 B, 8 MiB)": "read_write"}}}},
			{Server: "ferryd --auto=fixed", Objective: "the fixed order", Seed: "pinned"},
			{Server: "ferryd --old", Note: "this ferryd reports no auto policy (GetCapabilities has no auto)"}},
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
		"## Targets\n\nRatios are medians of same-round ratios. ",
		"| Ferry auto | 2.000 | 1.000 | 2.00 | 0.268 | 0.134 | P s · S r | 3 |  |",
		"| gRPC <64 KiB> & co | — | — | — | — | — | P s · S r | 0 | failed |",
		"| nginx sendfile on + Go net/http keep-alive | 0.004 | 1.000 | — | 131.072 | 65.536 | P s · S r | 250 | 750 | 3 |  |",
		`| tar c \| nc → nc -l > /dev/null |`,
		"| 2a | large file → /dev/null: Ferry auto vs iperf3, one stream | 1.00x | >= 1.20x | missed |",
		"| ctx | ferryd peak RSS with 200 concurrent MMAP pulls of it | 210.0 MiB |  | info |",
		"## Auto's choice\n",
		"| row | round 1 | round 2 | round 3 | round 4 |\n|---|---|---|---|---|\n",
		"| large-null: Ferry auto | mmap | mmap | explored only; 1 of 1 explored (splice 1) | failed |\n",
		"| medium: Ferry auto | read_write; 10 of 200 explored (mmap 10) | read_write; 10 of 200 explored (mmap 10) | read_write; 10 of 200 explored (mmap 10) | — |\n",
		"**ferryd**, GetCapabilities auto: objective \"throughput\", explores 5.0% of auto transfers, seeded by \"probe\" (classes for a receiver across a network: results.json).\n\n",
		"| size class | round 1 | round 2 | at the end: why | measured by strategy at the end (GB/s, samples) |\n|---|---|---|---|---|\n" +
			"| [0 B, 8 MiB) | mmap | read_write | read_write: most bytes per second | read_write 1.500 (12), mmap failed, 2 left out for steal |\n",
		"**ferryd --auto=fixed**, GetCapabilities auto: objective \"the fixed order\", explores 0.0% of auto transfers, seeded by \"pinned\"; no size classes.\n\n",
		"**ferryd --old**, GetCapabilities auto: this ferryd reports no auto policy (GetCapabilities has no auto).\n\n",
		"## Errors\n\n- large-null round 1: boom\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("RenderMarkdown() lacks %q; got:\n%s", want, md)
		}
	}
	if strings.Contains(md, "8 MiB) network") {
		t.Errorf("RenderMarkdown() shows a class for a receiver across a network; got:\n%s", md)
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
		// large-null, medium and dir are charted; small (latency) is not.
		Panels: []benchfmt.Panel{
			{ID: "large-null", Title: "2 GB file → /dev/null", Unit: "GB/s", Bars: []benchfmt.Bar{
				{Label: "iperf3, one stream", Value: 1, Text: "1.000", Color: iperf},
				{Label: "iperf3 -Z", Value: 1, Text: "1.000", Color: iperf},
				{Label: "nginx sendfile on + curl", Value: 0.5, Text: "0.500", Color: peer},
				{Label: "nginx sendfile off + curl", Value: 1, Text: "1.000", Color: peer},
				{Label: "gRPC 1 MiB", Value: 0.5, Text: "0.500", Color: peer},
				{Label: "gRPC <64 KiB> & co", Value: 0, Text: "failed", Color: peer},
				{Label: "Ferry auto", Value: 2, Text: "2.000", Color: ferry},
				{Label: "Ferry mmap", Value: 2, Text: "2.000", Color: ferry},
				{Label: "Ferry splice", Value: 1, Text: "1.000", Color: ferry},
			}},
			{ID: "medium", Title: "1 MiB files, one after another", Unit: "GB/s", Bars: []benchfmt.Bar{
				{Label: "Ferry auto", Value: 0.2, Text: "0.200", Color: ferry},
				{Label: "Ferry read_write", Value: 0.16, Text: "0.160", Color: ferry},
				{Label: "Ferry mmap", Value: 0.2 / 0.9, Text: "0.222", Color: ferry},
				{Label: "Ferry auto, fixed rule", Value: 0.25, Text: "0.250", Color: ferry},
				{Label: "nginx sendfile on", Value: 0.2, Text: "0.200", Color: peer},
				{Label: "nginx sendfile off", Value: 0.2, Text: "0.200", Color: peer},
				{Label: "Ferry session", Value: 0.2, Text: "0.200", Color: ferry},
				{Label: "nginx sendfile on, 8", Value: 0.1, Text: "0.100", Color: peer},
				{Label: "Ferry session, 8", Value: 0.2, Text: "0.200", Color: ferry},
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
