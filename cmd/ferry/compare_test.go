package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/internal/benchfmt"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestCompareStrategies(t *testing.T) {
	rw, mm, sf := ferryv1.Strategy_STRATEGY_READ_WRITE, ferryv1.Strategy_STRATEGY_MMAP, ferryv1.Strategy_STRATEGY_SENDFILE
	auto := ferryv1.Strategy_STRATEGY_UNSPECIFIED
	supported := []ferryv1.Strategy{rw, mm, sf}
	tests := []struct {
		list string
		want []ferryv1.Strategy
	}{
		{"", []ferryv1.Strategy{rw, mm, sf, auto}},
		{"sendfile,auto", []ferryv1.Strategy{sf, auto}},
		{" mmap , read-write,mmap", []ferryv1.Strategy{mm, rw}},
	}
	for _, tt := range tests {
		got, err := compareStrategies(supported, tt.list)
		if err != nil || !slicesEqual(got, tt.want) {
			t.Errorf("compareStrategies(%q) = %v, %v; want %v", tt.list, got, err, tt.want)
		}
	}
	for _, bad := range []string{"splice", "teleport"} {
		if _, err := compareStrategies(supported, bad); err == nil {
			t.Errorf("compareStrategies(%q) = nil error, want one", bad)
		}
	}
}

func slicesEqual(a, b []ferryv1.Strategy) bool { return cmp.Equal(a, b) }

func stats(s ferryv1.Strategy, bytes uint64, took, user, sys time.Duration, calls uint64) *ferryv1.Report {
	return &ferryv1.Report{Sender: &ferryv1.TransferStats{
		Strategy: s, Bytes: bytes, Duration: durationpb.New(took),
		ThroughputBytesPerSecond: float64(bytes) / took.Seconds(),
		UserCpu:                  durationpb.New(user), SystemCpu: durationpb.New(sys),
		Syscalls: map[string]uint64{"splice": calls}, ModeSwitches: 2 * calls,
		Model:          &ferryv1.CopyModel{CpuCopies: 0},
		ThreadMeasured: true,
	}}
}

func TestMedians(t *testing.T) {
	sp := ferryv1.Strategy_STRATEGY_SPLICE
	reports := []*ferryv1.Report{
		stats(sp, 1<<30, time.Second, 10*time.Millisecond, 100*time.Millisecond, 1000),
		stats(sp, 1<<30, 2*time.Second, 30*time.Millisecond, 300*time.Millisecond, 3000),
		stats(sp, 1<<29, 4*time.Second, 20*time.Millisecond, 200*time.Millisecond, 2000),
	}
	got := medians("auto", reports)
	want := strategyMedian{
		Requested: "auto", Strategy: "SPLICE", Runs: 3, Bytes: 1 << 30,
		DurationNs:               int64(2 * time.Second),
		ThroughputBytesPerSecond: float64(1<<30) / 2,
		UserCPUNs:                int64(20 * time.Millisecond), SystemCPUNs: int64(200 * time.Millisecond),
		CPUNsPerGiB: int64(330 * time.Millisecond), // per run: 110, 330, 440 ms per GiB
		Syscalls:    2000, SyscallsPerGiB: 3000, ModeSwitches: 4000,
		ThreadMeasured: true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("medians (-want +got):\n%s", diff)
	}
}

func sampleComparison() *comparison {
	return &comparison{
		File: "big.bin", SizeBytes: 512 << 20, Server: "127.0.0.1:7070", Host: "h<1>", Kernel: "6.1", Runs: 5,
		Date: "2026-11-26T01:00:00Z",
		Strategies: []strategyMedian{
			{Requested: "READ_WRITE", Strategy: "READ_WRITE", ThroughputBytesPerSecond: 1.5 * (1 << 30), CPUNsPerGiB: 600e6, ThreadMeasured: true},
			{Requested: "SPLICE", Strategy: "SPLICE", ThroughputBytesPerSecond: 3 * (1 << 30), CPUNsPerGiB: 150e6, ThreadMeasured: true},
			{Requested: "auto", Strategy: "SPLICE", ThroughputBytesPerSecond: 2.9 * (1 << 30), CPUNsPerGiB: 0},
		},
	}
}

func TestCompareChart(t *testing.T) {
	c := sampleComparison()
	got := compareChart(c)
	bars := func(color string, values []float64, texts ...string) []benchfmt.Bar {
		var out []benchfmt.Bar
		for i, label := range []string{"READ_WRITE", "SPLICE", "auto (SPLICE)"} {
			out = append(out, benchfmt.Bar{Label: label, Value: values[i], Text: texts[i], Color: color})
		}
		return out
	}
	want := benchfmt.Chart{
		Width: 820, LabelWidth: 150,
		Title:     "ferry compare: big.bin (512.0 MiB), host h<1>, 2026-11-26",
		Subtitle:  "Median of 5 interleaved pulls per strategy to /dev/null, page cache warm; server 127.0.0.1:7070; 0 cores, kernel 6.1",
		Note:      "Sender figures from ferry's reports: throughput DERIVED (bytes / data-path time), CPU MEASURED (getrusage of the sending thread).",
		LabelAttr: "strategy",
		Panels: []benchfmt.Panel{
			{ID: "throughput", Title: "Throughput (sender, median; higher is better)", Unit: "GiB/s",
				Bars: bars("#2b6cb0", []float64{1.5, 3, 2.9}, "1.50", "3.00", "2.90")},
			{ID: "cpu", Title: "Sender CPU user+sys per GiB (median; lower is better)", Unit: "ms per GiB",
				Bars: bars("#c05621", []float64{600, 150, 0}, "600.0", "150.0", "0.0")},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("compareChart(%q) mismatch (-want +got):\n%s", c.File, diff)
	}
}

func TestWriteSVG(t *testing.T) {
	c := sampleComparison()
	path := filepath.Join(t.TempDir(), "out.svg")
	if err := writeSVG(path, c); err != nil {
		t.Fatalf("writeSVG(%q) error = %v", path, err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := benchfmt.SVG(compareChart(c)); !bytes.Equal(got, want) {
		t.Errorf("writeSVG(%q) wrote %d bytes, want the %d of benchfmt.SVG(compareChart(c))", path, len(got), len(want))
	}
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "out.svg")
	if err := writeSVG(missing, c); err == nil {
		t.Errorf("writeSVG(%q) = nil error, want one", missing)
	}
}

func TestDay(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2026-11-26T01:00:00Z", "2026-11-26"},
		{"2026-11-26", "2026-11-26"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := day(tt.in); got != tt.want {
			t.Errorf("day(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPrintComparison(t *testing.T) {
	var b bytes.Buffer
	printComparison(&b, sampleComparison())
	out := b.String()
	for _, w := range []string{"READ_WRITE", "SPLICE", "auto (SPLICE)", "1.5 GiB/s", "3.0 GiB/s", "600 ms", "150 ms",
		"throughput", "DERIVED", "MEASURED", "COUNTED", "MODELLED", "not every run's data path"} {
		if !strings.Contains(out, w) {
			t.Errorf("table lacks %q:\n%s", w, out)
		}
	}
}
