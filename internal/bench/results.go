package bench

import (
	"time"

	"github.com/ferrydev/ferry/internal/benchfmt"
)

// Sample is one path's measurement in one round.
type Sample struct {
	Round       int     `json:"round"`
	Bytes       int64   `json:"bytes"`
	Files       int     `json:"files"`
	WallSec     float64 `json:"wall_s"`
	SenderCPU   float64 `json:"sender_cpu_s"`
	ReceiverCPU float64 `json:"receiver_cpu_s"`
	// P50us and P99us are per-transfer latencies, for batches of small
	// files.
	P50us float64 `json:"p50_us,omitempty"`
	P99us float64 `json:"p99_us,omitempty"`
	// ToolGBps is the tool's own figure where it reports one (iperf3's
	// receiver, Ferry's receiver stats); the table uses WallSec.
	ToolGBps float64 `json:"tool_gbps,omitempty"`
	Note     string  `json:"note,omitempty"`
	// StealSec is the CPU time the hypervisor took from this machine
	// while the sample ran (/proc/stat steal), after any reruns.
	StealSec float64 `json:"steal_s,omitempty"`
	// Auto is, for a row whose strategy the server chose, how it chose
	// in this round (from each transfer's report).
	Auto *AutoUse `json:"auto,omitempty"`
	Err  string   `json:"error,omitempty"`
}

// GBps is the sample's throughput from the harness's wall time.
func (s Sample) GBps() float64 { return benchfmt.GBps(s.Bytes, s.WallSec) }

// Summary holds the medians over a path's successful samples.
type Summary struct {
	Runs              int      `json:"runs"`
	GBps              float64  `json:"gbps"`
	WallSec           float64  `json:"wall_s"`
	SenderCPUPerGiB   float64  `json:"sender_cpu_s_per_gib"`
	ReceiverCPUPerGiB float64  `json:"receiver_cpu_s_per_gib"`
	RatioIperfZ       *float64 `json:"ratio_to_iperf3_z,omitempty"`
	P50us             *float64 `json:"p50_us,omitempty"`
	P99us             *float64 `json:"p99_us,omitempty"`
	Note              string   `json:"note,omitempty"`
}

// PathResult is one row: a way of moving the workload's bytes.
type PathResult struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	// SenderCPU and ReceiverCPU say how CPU was measured: P, W or S (see
	// the package doc), with the process it was measured on.
	SenderCPU   string   `json:"sender_cpu_source"`
	ReceiverCPU string   `json:"receiver_cpu_source"`
	Samples     []Sample `json:"samples"`
	Summary     *Summary `json:"summary,omitempty"`
}

// WorkloadResult is one table.
type WorkloadResult struct {
	ID      string        `json:"id"`
	Title   string        `json:"title"`
	Note    string        `json:"note,omitempty"`
	Latency bool          `json:"latency"`
	Paths   []*PathResult `json:"paths"`
}

// Memory is what the ferryd memory probe saw.
type Memory struct {
	SparseSize      int64   `json:"sparse_file_bytes"`
	SingleMmapMiB   float64 `json:"single_mmap_pull_peak_rss_mib"`
	Concurrent      int     `json:"concurrent_pulls"`
	ConcurrentMiB   float64 `json:"concurrent_mmap_pulls_peak_rss_mib"`
	DurationSec     float64 `json:"probe_s"`
	BytesSingle     int64   `json:"bytes_single"`
	BytesConcurrent int64   `json:"bytes_concurrent"`
	Note            string  `json:"note,omitempty"`
}

// Results is everything a run wrote.
type Results struct {
	Machine   Machine           `json:"machine"`
	Settings  map[string]string `json:"settings"`
	Workloads []*WorkloadResult `json:"workloads"`
	Memory    *Memory           `json:"memory,omitempty"`
	// AutoPolicies are the ferryds' auto policies, round by round.
	AutoPolicies []*AutoPolicy `json:"auto_policies,omitempty"`
	Targets      []Target      `json:"targets"`
	Errors       []string      `json:"errors,omitempty"`
	// RerunForSteal counts the runs made again because the hypervisor
	// took too much of the machine meanwhile (see runOnce).
	RerunForSteal int    `json:"rerun_for_steal"`
	Took          string `json:"took"`
	started       time.Time
}

func (r *Results) workload(id string) *WorkloadResult {
	for _, w := range r.Workloads {
		if w.ID == id {
			return w
		}
	}
	return nil
}

func (w *WorkloadResult) path(id string) *PathResult {
	if w == nil {
		return nil
	}
	for _, p := range w.Paths {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// sampleIn returns the path's successful sample of a round.
func (p *PathResult) sampleIn(round int) (Sample, bool) {
	if p == nil {
		return Sample{}, false
	}
	for _, s := range p.Samples {
		if s.Round == round && s.Err == "" {
			return s, true
		}
	}
	return Sample{}, false
}

// summarize fills every path's Summary. ref is the iperf3 -Z row whose
// same-round throughput the ratio column divides by (nil: no ratio).
func (w *WorkloadResult) summarize(ref *PathResult) {
	for _, p := range w.Paths {
		p.Summary = p.summarize(ref, w.Latency)
	}
}

func (p *PathResult) summarize(ref *PathResult, latency bool) *Summary {
	var gb, wall, scpu, rcpu, ratio, p50, p99 []float64
	note := ""
	for _, s := range p.Samples {
		if s.Err != "" {
			continue
		}
		gb, wall = append(gb, s.GBps()), append(wall, s.WallSec)
		scpu = append(scpu, benchfmt.PerGiB(s.SenderCPU, s.Bytes))
		rcpu = append(rcpu, benchfmt.PerGiB(s.ReceiverCPU, s.Bytes))
		p50, p99 = append(p50, s.P50us), append(p99, s.P99us)
		if r, ok := ref.sampleIn(s.Round); ok && ref != p && r.GBps() > 0 {
			ratio = append(ratio, s.GBps()/r.GBps())
		}
		note = orStr(s.Note, note)
	}
	if len(gb) == 0 {
		return nil
	}
	sum := &Summary{Runs: len(gb), Note: note}
	sum.GBps = benchfmt.Median(gb)
	sum.WallSec = benchfmt.Median(wall)
	sum.SenderCPUPerGiB = benchfmt.Median(scpu)
	sum.ReceiverCPUPerGiB = benchfmt.Median(rcpu)
	sum.RatioIperfZ = medianPtr(ratio)
	if ref == p {
		one := 1.0
		sum.RatioIperfZ = &one
	}
	if latency {
		sum.P50us, sum.P99us = medianPtr(p50), medianPtr(p99)
	}
	return sum
}

// medianPtr is the median of xs, nil for none: a figure not measured.
func medianPtr(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	m := benchfmt.Median(xs)
	return &m
}
