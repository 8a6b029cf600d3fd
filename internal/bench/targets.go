package bench

import (
	"fmt"
	"strings"
)

// Target is one performance target (or, with Info, a figure that puts one in
// context) and what this run measured for it.
type Target struct {
	ID       string   `json:"id"`
	Text     string   `json:"text"`
	Op       string   `json:"op,omitempty"` // ">=" or "<="
	Want     float64  `json:"want,omitempty"`
	Unit     string   `json:"unit,omitempty"` // "x" for a ratio, "µs", "MiB"
	Measured *float64 `json:"measured,omitempty"`
	Met      *bool    `json:"met,omitempty"` // nil: not measured
	Info     bool     `json:"info,omitempty"`
	Note     string   `json:"note,omitempty"`
}

func target(id, text, op string, want float64, unit string, got *float64) Target {
	t := Target{ID: id, Text: text, Op: op, Want: want, Unit: unit, Measured: got}
	if got != nil {
		met := (op == ">=" && *got >= want) || (op == "<=" && *got <= want)
		t.Met = &met
	}
	return t
}

func info(id, text string, got *float64) Target {
	return Target{ID: id, Text: text, Unit: "x", Measured: got, Info: true}
}

// Verdict is "met", "missed" or "not measured" ("info" for context rows).
func (t Target) Verdict() string {
	switch {
	case t.Info:
		return "info"
	case t.Met == nil:
		return "not measured"
	case *t.Met:
		return "met"
	}
	return "missed"
}

// Value formats a measured (or wanted) figure in the target's unit.
func (t Target) Value(v *float64) string {
	if v == nil {
		return "—"
	}
	switch t.Unit {
	case "x":
		return fmt.Sprintf("%.2fx", *v)
	case "µs":
		return fmt.Sprintf("%.0f µs", *v)
	}
	return fmt.Sprintf("%.1f %s", *v, t.Unit)
}

func tput(s Sample) float64     { return s.GBps() }
func toolTput(s Sample) float64 { return s.ToolGBps }
func p50(s Sample) float64      { return s.P50us }

// roundRatio is the median over rounds of f(a)/f(b), both samples from
// the same round: ratios drift less than absolute figures on a shared
// machine.
func roundRatio(a, b *PathResult, f func(Sample) float64) *float64 {
	return roundRatioOf(a, f, b, f)
}

// roundRatioOf is roundRatio with a metric per side.
func roundRatioOf(a *PathResult, fa func(Sample) float64, b *PathResult, fb func(Sample) float64) *float64 {
	if a == nil || b == nil {
		return nil
	}
	var xs []float64
	for _, s := range a.Samples {
		t, ok := b.sampleIn(s.Round)
		if s.Err != "" || !ok || fb(t) <= 0 {
			continue
		}
		xs = append(xs, fa(s)/fb(t))
	}
	return medianPtr(xs)
}

func evaluateTargets(r *Results) []Target {
	ln, lf, sm := r.workload("large-null"), r.workload("large-file"), r.workload("small")
	auto := ln.path("ferry-auto")
	ts := []Target{
		target("1a", "large file → /dev/null: Ferry auto vs iperf3, one stream", ">=", 1.0, "x", roundRatio(auto, ln.path("iperf3"), tput)),
		info("1a", "large file → /dev/null: Ferry auto (wall) vs iperf3's own figure, which leaves out its process start and handshake",
			roundRatioOf(auto, tput, ln.path("iperf3"), toolTput)),
		info("1a", "large file → /dev/null: Ferry auto vs iperf3 -Z, one stream", roundRatio(auto, ln.path("iperf3-z"), tput)),
		target("1b", "large file → /dev/null: Ferry auto vs nginx sendfile on + curl", ">=", 1.4, "x", roundRatio(auto, ln.path("nginx-sendfile-curl"), tput)),
		target("1c", "large file → /dev/null: Ferry auto vs gRPC streaming, 1 MiB messages", ">=", 2.5, "x", roundRatio(auto, ln.path("grpc-1024k"), tput)),
		target("2", "large file → a file: Ferry auto vs nginx + curl -o file", ">=", 1.2, "x",
			roundRatio(lf.path("ferry-auto-file"), lf.path("nginx-sendfile-curl-file"), tput)),
		info("2", "large file → a file: Ferry auto vs nginx + curl -o file, then fsync (like for like)",
			roundRatio(lf.path("ferry-auto-file"), lf.path("nginx-sendfile-curl-file-fsync"), tput)),
		target("3a", "4 KiB, warm client: Ferry auto p50 / nginx (sendfile on, Go HTTP keep-alive) p50", "<=", 1.0, "x",
			roundRatio(sm.path("ferry-auto"), sm.path("nginx-sendfile-go-http"), p50)),
		target("3b", "4 KiB, warm client: Ferry auto p99", "<=", 2000, "µs", summaryP99(sm.path("ferry-auto"))),
	}
	ts = append(ts, dirTargets(r.workload("dir"))...)
	ts = append(ts, autoVsBest(ln, false), autoVsBest(r.workload("medium"), false), autoVsBest(sm, true))
	for _, w := range []*WorkloadResult{ln, r.workload("medium")} {
		if t, ok := pickVsBest(w); ok {
			ts = append(ts, t)
		}
	}
	return append(ts, memoryTargets(r.Memory)...)
}

func dirTargets(d *WorkloadResult) []Target {
	ferry := d.path("ferry-auto-dir")
	return []Target{
		// The directory pull against its like: a tree landed as files.
		// tar x does not fsync; ferry pull -r lands every file durably.
		target("4", "directory of 4 KiB files: ferry pull -r (one DownloadTree, files landed durably) vs tar c | nc | tar x (files, not fsynced)",
			">=", 1.0, "x", roundRatio(d.path("ferry-auto-tree"), d.path("tar-nc-tarx"), tput)),
		info("4", "directory of 4 KiB files: Ferry (one pull per file, warm client, to /dev/null) vs tar c | nc → /dev/null",
			roundRatio(ferry, d.path("tar-nc-null"), tput)),
		info("4", "directory of 4 KiB files: Ferry (one pull per file, to /dev/null) vs tar c | nc | tar x (files)", roundRatio(ferry, d.path("tar-nc-tarx"), tput)),
	}
}

// autoVsBest is target 5 for one size class: Ferry auto against the
// strategy with the best median throughput (or p50, byP50), as a
// same-round ratio where higher is better.
func autoVsBest(w *WorkloadResult, byP50 bool) Target {
	id := "5"
	text := "auto vs the best single strategy"
	if w == nil {
		return target(id, text, ">=", 0.95, "x", nil)
	}
	text = w.ID + " (" + strings.SplitN(w.Title, ",", 2)[0] + "): " + text
	auto, best := w.path("ferry-auto"), bestStrategy(w, byP50)
	if best == nil || auto == nil {
		return target(id, text, ">=", 0.95, "x", nil)
	}
	text += " (" + strings.TrimPrefix(best.Label, "Ferry ") + ")"
	if !byP50 {
		return target(id, text+", by GB/s", ">=", 0.95, "x", roundRatio(auto, best, tput))
	}
	inv := roundRatio(best, auto, p50) // best p50 / auto p50: higher is better
	return target(id, text+", by p50 (best p50 / auto p50)", ">=", 0.95, "x", inv)
}

func bestStrategy(w *WorkloadResult, byP50 bool) *PathResult {
	var best *PathResult
	for _, p := range w.Paths {
		// Single strategies only: not auto, not the reading-receiver rows.
		if !strings.HasPrefix(p.ID, "ferry-") || p.ID == "ferry-auto" || strings.HasSuffix(p.ID, "-read") || p.Summary == nil {
			continue
		}
		if best == nil || better(p.Summary, best.Summary, byP50) {
			best = p
		}
	}
	return best
}

func better(a, b *Summary, byP50 bool) bool {
	if byP50 && a.P50us != nil && b.P50us != nil {
		return *a.P50us < *b.P50us
	}
	return a.GBps > b.GBps
}

func summaryP99(p *PathResult) *float64 {
	if p == nil || p.Summary == nil {
		return nil
	}
	return p.Summary.P99us
}

func memoryTargets(m *Memory) []Target {
	var one, many *float64
	if m != nil && m.Note == "" {
		one, many = &m.SingleMmapMiB, &m.ConcurrentMiB
	}
	return []Target{
		target("6a", "ferryd peak RSS serving a 100 GiB sparse file with MMAP (one pull)", "<=", 64, "MiB", one),
		target("6b", fmt.Sprintf("ferryd peak RSS with %d concurrent MMAP pulls of it", concurrentPulls), "<=", 64, "MiB", many),
		{ID: "6c", Text: "allocation-free steady-state copy loops",
			Note: "not measured by ferry-bench: go test -run '^$' -bench . -benchmem ./transfer/"},
	}
}

// pickVsBest is context for target 5 on a size class moved through the
// data channel: the row of the strategy auto picked (as its note says)
// against the best row. When auto picked the best strategy this is 1.00x,
// and autoVsBest's ratio, two measurements of the same strategy, is
// run-to-run noise.
func pickVsBest(w *WorkloadResult) (Target, bool) {
	if w == nil {
		return Target{}, false
	}
	auto, best := w.path("ferry-auto"), bestStrategy(w, false)
	if auto == nil || auto.Summary == nil || best == nil {
		return Target{}, false
	}
	picked, ok := strings.CutPrefix(auto.Summary.Note, "server used STRATEGY_")
	if !ok || strings.Contains(picked, " ") {
		return Target{}, false
	}
	pick := w.path("ferry-" + strings.ReplaceAll(strings.ToLower(picked), "_", "-"))
	if pick == nil {
		return Target{}, false
	}
	text := w.ID + ": the strategy auto picked (" + strings.TrimPrefix(pick.Label, "Ferry ") + ") vs the best (" +
		strings.TrimPrefix(best.Label, "Ferry ") + "), each from its own row, by GB/s"
	return info("5", text, roundRatio(pick, best, tput)), true
}
