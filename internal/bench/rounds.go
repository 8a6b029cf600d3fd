package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// runRounds runs a warm-up pass of the small-file workloads, then the
// rounds: in each, every workload's paths one after another, forward in
// odd rounds and backward in even ones (A B C, C B A, ...), so linear
// drift on a shared machine cancels in pairs and no path always follows
// the same neighbour.
func runRounds(ctx context.Context, p *peers, res *Results) []error {
	ws := p.workloads()
	results := make([]*WorkloadResult, len(ws))
	for i, w := range ws {
		results[i] = newWorkloadResult(w)
	}
	res.Workloads = results
	warmUp(ctx, p)
	var failed []error
	for round := 1; round <= p.cfg.Runs && ctx.Err() == nil; round++ {
		for i, w := range ws {
			failed = append(failed, runWorkload(ctx, p, w, results[i], round)...)
		}
		p.snapshotPolicies(ctx, round, res)
	}
	return failed
}

func newWorkloadResult(w workload) *WorkloadResult {
	wr := &WorkloadResult{ID: w.id, Title: w.title, Note: w.note, Latency: w.latency}
	for _, pt := range w.paths {
		for _, r := range pt.rows {
			wr.Paths = append(wr.Paths, &PathResult{ID: r.id, Label: r.label, SenderCPU: r.sender, ReceiverCPU: r.receiver})
		}
	}
	return wr
}

// runWorkload runs one round of w and files each sample under its row.
// A workload that repeats its paths (w.repeat) runs them in passes: each
// pass runs every path once, forward or backward in turn, and a row's
// sample is the sum of its passes. Run back to back instead, a path's
// repeats all fell in the same few seconds of the round, so a slow spell
// of the shared host (a neighbour's burst) weighed on one row and not on
// the row it is compared with; spread over the round, it weighs on both.
// Before each run, outside the timing, ferry-bench collects its heap,
// lets the workload settle (w.settle) and waits until the servers are
// idle, so one path's aftermath (a server's garbage collection, say) is
// not billed to the next.
func runWorkload(ctx context.Context, p *peers, w workload, wr *WorkloadResult, round int) []error {
	if w.before != nil {
		if err := w.before(); err != nil {
			return []error{fmt.Errorf("%s: %w", w.id, err)}
		}
	}
	sums := make([][]Sample, len(w.paths))
	errs := make([]error, len(w.paths))
	for _, pass := range passes(len(w.paths), round, w.repeat) {
		for _, i := range pass {
			if errs[i] != nil {
				continue // a path stops at its first error
			}
			runtime.GC()
			if w.settle != nil {
				if err := w.settle(); err != nil {
					return []error{fmt.Errorf("%s: %w", w.id, err)}
				}
			}
			samples, err := runOnce(ctx, p, w.paths[i])
			if ctx.Err() != nil {
				return nil
			}
			sums[i], errs[i] = addSamples(sums[i], samples), err
		}
	}
	first := rowIndex(w.paths)
	var failed []error
	for _, i := range order(len(w.paths), round) {
		for j := range w.paths[i].rows {
			s := Sample{}
			if j < len(sums[i]) {
				s = sums[i][j]
			}
			s.Round = round
			if errs[i] != nil {
				s.Err = errs[i].Error()
			}
			pr := wr.Paths[first[i]+j]
			pr.Samples = append(pr.Samples, s)
			p.progress(w.id, pr, s)
		}
		if errs[i] != nil {
			failed = append(failed, fmt.Errorf("%s round %d: %w", w.id, round, errs[i]))
		}
	}
	return failed
}

// passes is the order of a round's runs of n paths repeated times (at
// least once): one pass per repeat, each running every path once,
// forward and backward in turn, starting the way order starts the round.
func passes(n, round, repeat int) [][]int {
	out := make([][]int, max(repeat, 1))
	for k := range out {
		out[k] = order(n, round+k)
	}
	return out
}

// runOnce runs pt once, after the servers are idle. A run during which
// the hypervisor took more than stealLimit of the machine's CPU time
// (steal, from /proc/stat) is run again, at most stealRetries times: its
// figures are another guest's load, not the path's. Its samples carry
// the steal of the run kept.
func runOnce(ctx context.Context, p *peers, pt path) ([]Sample, error) {
	for try := 0; ; try++ {
		p.quiesce(ctx)
		before, start := stealNow(), time.Now()
		samples, err := pt.run(ctx)
		if err != nil || ctx.Err() != nil {
			return samples, err
		}
		stolen := stealNow() - before
		if try == stealRetries || stolen <= stealLimit*time.Since(start).Seconds()*float64(runtime.NumCPU()) {
			for i := range samples {
				samples[i].StealSec = stolen
			}
			return samples, nil
		}
		p.reran++
	}
}

// stealLimit is the share of the machine's CPU time the hypervisor may
// take during a run before the run is made again, and stealRetries how
// many times at most.
const (
	stealLimit   = 0.05
	stealRetries = 3
)

// addSamples adds each of more to the sample of the same row in sum:
// bytes, files, times and CPU add up; a tool's own rate is kept as the
// rate over the summed bytes and the summed time it implies.
func addSamples(sum, more []Sample) []Sample {
	for j, m := range more {
		if j >= len(sum) {
			sum = append(sum, m)
			continue
		}
		s := &sum[j]
		if s.ToolGBps > 0 && m.ToolGBps > 0 {
			secs := float64(s.Bytes)/(s.ToolGBps*1e9) + float64(m.Bytes)/(m.ToolGBps*1e9)
			s.ToolGBps = float64(s.Bytes+m.Bytes) / secs / 1e9
		}
		s.Bytes += m.Bytes
		s.Files += m.Files
		s.WallSec += m.WallSec
		s.SenderCPU += m.SenderCPU
		s.ReceiverCPU += m.ReceiverCPU
		s.StealSec += m.StealSec
		if m.Auto != nil {
			if s.Auto == nil {
				s.Auto = &AutoUse{}
			}
			s.Auto.merge(m.Auto)
		}
		s.Note = orStr(s.Note, m.Note)
	}
	return sum
}

// rowIndex maps each path to the index of its first row.
func rowIndex(paths []path) []int {
	idx, k := make([]int, len(paths)), 0
	for i, pt := range paths {
		idx[i], k = k, k+len(pt.rows)
	}
	return idx
}

// order is 0..n-1 in odd rounds and n-1..0 in even ones.
func order(n, round int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
		if round%2 == 0 {
			out[i] = n - 1 - i
		}
	}
	return out
}

func (p *peers) progress(workload string, pr *PathResult, s Sample) {
	if s.Err != "" {
		fmt.Fprintf(p.cfg.Log, "round %d %-10s %-44s ERROR %s\n", s.Round, workload, pr.Label, s.Err)
		return
	}
	lat := ""
	if s.P50us > 0 {
		lat = fmt.Sprintf("  p50 %.0f µs  p99 %.0f µs", s.P50us, s.P99us)
	}
	fmt.Fprintf(p.cfg.Log, "round %d %-10s %-44s %6.3f GB/s  %7.3f s%s\n", s.Round, workload, pr.Label, s.GBps(), s.WallSec, lat)
}

// warmUp runs each latency workload's paths once with a few files, so
// connections, page cache and server code paths are warm before round 1.
func warmUp(ctx context.Context, p *peers) {
	small := *p
	small.cfg.SmallCount, small.cfg.MediumCount = 50, 10
	for _, w := range []workload{small.medium(), small.small()} {
		if !p.cfg.wants(w.id) {
			continue
		}
		for _, pt := range w.paths {
			pt.run(ctx) // errors show up in the measured rounds
		}
	}
	if p.cfg.wants("streams") {
		p.warmStreams(ctx)
	}
}
