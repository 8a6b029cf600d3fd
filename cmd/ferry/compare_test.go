package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestMedian(t *testing.T) {
	id := func(v int64) int64 { return v }
	tests := []struct {
		in   []int64
		want int64
	}{
		{nil, 0},
		{[]int64{7}, 7},
		{[]int64{9, 1, 5}, 5},
		{[]int64{4, 1, 3, 2}, 2}, // mean of 2 and 3, rounded down
		{[]int64{10, 20}, 15},
		{[]int64{math.MaxInt64, math.MaxInt64 - 2}, math.MaxInt64 - 1},
	}
	for _, tt := range tests {
		if got := median(tt.in, id); got != tt.want {
			t.Errorf("median(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
	if got := median([]float64{1, 2}, func(v float64) float64 { return v }); got != 1.5 {
		t.Errorf("median([1 2]) = %v, want 1.5", got)
	}
}

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

// svgBar is a bar of the chart as the XML decoder sees it.
type svgBar struct {
	series, strategy string
	value, height    float64
}

// decodeSVG parses the chart with encoding/xml, which fails on markup
// that is not well formed, and returns its bars and texts.
func decodeSVG(t *testing.T, doc []byte) (bars []svgBar, texts []string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	var root bool
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, doc)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if !root {
				root = true
				if el.Name.Local != "svg" || el.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("root element %v, want svg in the SVG namespace", el.Name)
				}
			}
			if el.Name.Local == "rect" && attr(el, "class") == "bar" {
				v, _ := strconv.ParseFloat(attr(el, "data-value"), 64)
				h, _ := strconv.ParseFloat(attr(el, "height"), 64)
				bars = append(bars, svgBar{attr(el, "data-series"), attr(el, "data-strategy"), v, h})
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(el)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	return bars, texts
}

func attr(el xml.StartElement, name string) string {
	for _, a := range el.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func TestRenderSVG(t *testing.T) {
	var b bytes.Buffer
	renderSVG(&b, sampleComparison())
	bars, texts := decodeSVG(t, b.Bytes())
	if len(bars) != 6 {
		t.Fatalf("got %d bars, want 2 series x 3 strategies", len(bars))
	}
	want := map[string][]float64{"throughput": {1.5, 3, 2.9}, "cpu": {600, 150, 0}}
	for series, values := range want {
		var got []svgBar
		for _, bar := range bars {
			if bar.series == series {
				got = append(got, bar)
			}
		}
		if len(got) != len(values) {
			t.Fatalf("series %s: %d bars, want %d", series, len(got), len(values))
		}
		tallest := got[0]
		for i, bar := range got {
			if math.Abs(bar.value-values[i]) > 1e-9 {
				t.Errorf("series %s bar %d: value %v, want %v", series, i, bar.value, values[i])
			}
			if bar.value > tallest.value {
				tallest = bar
			}
		}
		for _, bar := range got { // heights proportional to values
			if want := tallest.height * bar.value / tallest.value; math.Abs(bar.height-want) > 0.01 {
				t.Errorf("series %s %s: height %.3f for %v, want %.3f (tallest %.3f for %v)",
					series, bar.strategy, bar.height, bar.value, want, tallest.height, tallest.value)
			}
		}
		if tallest.height <= 0 || tallest.height > plotH {
			t.Errorf("series %s: tallest bar %.1f high, want in (0, %d]", series, tallest.height, plotH)
		}
	}
	all := strings.Join(texts, "\n")
	for _, w := range []string{"ferry compare: big.bin (512.0 MiB), host h<1>, 2026-11-26", "GiB/s", "ms per GiB",
		"strategy", "1.50", "3.00", "600.0", "auto (SPLICE)", "READ_WRITE"} {
		if !strings.Contains(all, w) {
			t.Errorf("SVG text lacks %q:\n%s", w, all)
		}
	}
}

func TestNiceStep(t *testing.T) {
	tests := []struct{ raw, want float64 }{
		{0, 1}, {0.3, 0.5}, {0.75, 1}, {1, 1}, {1.2, 2}, {3, 5}, {7, 10}, {120, 200},
	}
	for _, tt := range tests {
		if got := niceStep(tt.raw); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("niceStep(%v) = %v, want %v", tt.raw, got, tt.want)
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
