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
// Before each path, outside the timing, ferry-bench collects its heap,
// lets the workload settle (w.settle) and waits until the servers are idle, so one path's aftermath (a
// server's garbage collection, say) is not billed to the next.
func runWorkload(ctx context.Context, p *peers, w workload, wr *WorkloadResult, round int) []error {
	if w.before != nil {
		if err := w.before(); err != nil {
			return []error{fmt.Errorf("%s: %w", w.id, err)}
		}
	}
	first := rowIndex(w.paths)
	var failed []error
	for _, i := range order(len(w.paths), round) {
		pt := w.paths[i]
		runtime.GC()
		if w.settle != nil {
			if err := w.settle(); err != nil {
				return []error{fmt.Errorf("%s: %w", w.id, err)}
			}
		}
		samples, err := runRepeated(ctx, p, pt, w.repeat)
		if ctx.Err() != nil {
			return nil
		}
		for j := range pt.rows {
			s := Sample{}
			if j < len(samples) {
				s = samples[j]
			}
			s.Round = round
			if err != nil {
				s.Err = err.Error()
			}
			pr := wr.Paths[first[i]+j]
			pr.Samples = append(pr.Samples, s)
			p.progress(w.id, pr, s)
		}
		if err != nil {
			failed = append(failed, fmt.Errorf("%s round %d: %w", w.id, round, err))
		}
	}
	return failed
}

// runRepeated runs pt n times in a row (at least once), each after the
// servers are idle, and sums the runs' samples row by row: one transfer
// of a 2 GiB file takes about half a second, and on a shared host one
// such transfer ran anywhere from 0.75x to 1.3x of the row's median, too
// wide for ratios that are asked to be 0.95x. A run during which the
// hypervisor took more than stealLimit of the machine's CPU time (steal,
// from /proc/stat) is run again, at most stealRetries times: its figures
// are another guest's load, not the path's. It stops at the first error.
func runRepeated(ctx context.Context, p *peers, pt path, n int) ([]Sample, error) {
	var sum []Sample
	for range max(n, 1) {
		var samples []Sample
		var stolen float64
		for try := 0; ; try++ {
			p.quiesce(ctx)
			before, start := stealNow(), time.Now()
			var err error
			samples, err = pt.run(ctx)
			if err != nil || ctx.Err() != nil {
				return samples, err
			}
			stolen = stealNow() - before
			if try == stealRetries || stolen <= stealLimit*time.Since(start).Seconds()*float64(runtime.NumCPU()) {
				break
			}
			p.reran++
		}
		for i := range samples {
			samples[i].StealSec = stolen
		}
		sum = addSamples(sum, samples)
	}
	return sum, nil
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
