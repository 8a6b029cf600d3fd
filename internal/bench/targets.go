package bench

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/internal/benchfmt"
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

func info(id, text string, got *float64) Target { return infoIn(id, text, "x", got) }

func infoIn(id, text, unit string, got *float64) Target {
	return Target{ID: id, Text: text, Unit: unit, Measured: got, Info: true}
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
	case "s/GiB":
		return fmt.Sprintf("%.3f s/GiB", *v)
	}
	return fmt.Sprintf("%.1f %s", *v, t.Unit)
}

func tput(s Sample) float64     { return s.GBps() }
func toolTput(s Sample) float64 { return s.ToolGBps }
func p50(s Sample) float64      { return s.P50us }

// perWall is 1 / wall time: a ratio of two is the inverse ratio of
// their wall times.
func perWall(s Sample) float64 {
	if s.WallSec <= 0 {
		return 0
	}
	return 1 / s.WallSec
}

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

// roundRatioBest is roundRatio against the best of several rows in each
// round (the highest f): the median over rounds of f(a) / max f(bs).
// A round counts only when every one of bs has a sample in it. wins
// counts the rounds each of bs was the best, by index.
func roundRatioBest(a *PathResult, bs []*PathResult, f func(Sample) float64) (ratio *float64, wins []int) {
	if a == nil || len(bs) == 0 {
		return nil, nil
	}
	wins = make([]int, len(bs))
	var xs []float64
	for _, s := range a.Samples {
		if s.Err != "" {
			continue
		}
		best, at := 0.0, -1
		for i, b := range bs {
			t, ok := b.sampleIn(s.Round)
			if !ok {
				at = -2
				break
			}
			if v := f(t); at == -1 || v > best {
				best, at = v, i
			}
		}
		if at < 0 || best <= 0 {
			continue
		}
		wins[at]++
		xs = append(xs, f(s)/best)
	}
	return medianPtr(xs), wins
}

func evaluateTargets(r *Results) []Target {
	ln, md, sm := r.workload("large-null"), r.workload("medium"), r.workload("small")
	auto := ln.path("ferry-auto")
	// 1: auto as measured, explorations and all, against the best single
	// strategy in each size class.
	var ts []Target
	for _, c := range []struct {
		id    string
		w     *WorkloadResult
		byP50 bool
	}{{"1a", ln, false}, {"1b", md, false}, {"1c", sm, true}} {
		ts = append(ts, autoVsBest(c.id, c.w, c.byP50))
		if c.w != nil {
			ts = append(ts, autoVsBestInRun(c.id, c.w, c.byP50))
		}
		if t, ok := pickVsBest(c.id, c.w); ok && !c.byP50 {
			ts = append(ts, t)
		}
	}
	// 2: the large file to /dev/null against the peers.
	on, off := ln.path("nginx-sendfile-curl"), ln.path("nginx-nosendfile-curl")
	vsNginx, wins := roundRatioBest(auto, []*PathResult{on, off}, tput)
	nginx := target("2b", "large file → /dev/null: Ferry auto vs the better of nginx sendfile on / sendfile off + curl in each round",
		">=", 1.5, "x", vsNginx)
	if len(wins) == 2 {
		nginx.Note = fmt.Sprintf("sendfile on the better in %d of %d rounds", wins[0], wins[0]+wins[1])
	}
	ts = append(ts,
		target("2a", "large file → /dev/null: Ferry auto vs iperf3, one stream", ">=", 1.2, "x", roundRatio(auto, ln.path("iperf3"), tput)),
		info("2a", "large file → /dev/null: Ferry auto (wall) vs iperf3's own figure, which leaves out its process start and handshake",
			roundRatioOf(auto, tput, ln.path("iperf3"), toolTput)),
		info("2a", "large file → /dev/null: Ferry auto vs iperf3 -Z, one stream", roundRatio(auto, ln.path("iperf3-z"), tput)),
		nginx,
		target("2c", "large file → /dev/null: Ferry auto vs gRPC streaming, 1 MiB messages", ">=", 3.0, "x", roundRatio(auto, ln.path("grpc-1024k"), tput)),
		// 3: the measured choice against the fixed rule it replaced.
		target("3a", "4 KiB, warm client: Ferry auto vs auto with the fixed rule (ferryd --auto=fixed), by p50 (fixed p50 / auto p50)",
			">=", 0.95, "x", roundRatio(sm.path("ferry-auto-fixed"), sm.path("ferry-auto"), p50)),
		target("3b", "1 MiB files, warm client: Ferry auto vs auto with the fixed rule (ferryd --auto=fixed), by GB/s",
			">=", 0.95, "x", roundRatio(md.path("ferry-auto"), md.path("ferry-auto-fixed"), tput)),
	)
	ts = append(ts, tlsTargets(ln)...)
	ts = append(ts, streamsTargets(r.workload("streams"), r.Settings["flow_rate"])...)
	ts = append(ts, sessionTargets(r)...)
	return append(ts, contextFigures(r)...)
}

// sessionTargets are the per-file targets of Session calls (session.go):
// 6, 4 KiB files one at a time against nginx keep-alive by p50, and a p99
// bound; 7, 1 MiB files one at a time and 8 in flight against nginx over
// as many keep-alive connections; 8, the directory pull against tar.
// Each nginx comparison takes the better of sendfile on and off in each
// round.
func sessionTargets(r *Results) []Target {
	sm, md, d := r.workload("small"), r.workload("medium"), r.workload("dir")
	nginx := func(w *WorkloadResult, suffix string) []*PathResult {
		return present(w.path("nginx-sendfile-go-http"+suffix), w.path("nginx-nosendfile-go-http"+suffix))
	}
	inverse := func(s Sample) float64 { // lower p50 is better: compare 1/p50
		if s.P50us <= 0 {
			return 0
		}
		return 1 / s.P50us
	}
	p50, _ := roundRatioBest(sm.path("ferry-session"), nginx(sm, ""), inverse)
	one, _ := roundRatioBest(md.path("ferry-session"), nginx(md, ""), tput)
	floorP50, _ := roundRatioBest(sm.path("grpc-floor"), nginx(sm, ""), inverse)
	floorReportP50, _ := roundRatioBest(sm.path("grpc-floor-report"), nginx(sm, ""), inverse)
	floorOne, _ := roundRatioBest(md.path("grpc-floor"), nginx(md, ""), tput)
	eight, _ := roundRatioBest(md.path("ferry-session-8"), nginx(md, "-8"), tput)
	return []Target{
		target("6a", "4 KiB, one at a time: Ferry session p50 vs nginx keep-alive p50 (the better of sendfile on/off; nginx p50 / Ferry p50)",
			">=", 1.0, "x", p50),
		info("6a", "4 KiB, one at a time: the floor (a gRPC bidi request, the bytes back on a bound TCP connection, no Ferry code) vs nginx keep-alive, by p50 (nginx p50 / floor p50)",
			floorP50),
		info("6a", "4 KiB, one at a time: the floor with a report per file vs nginx keep-alive, by p50 (nginx p50 / floor p50)",
			floorReportP50),
		info("6a", "4 KiB, one at a time: Ferry session vs the floor with a report per file, by p50 (floor p50 / Ferry p50)",
			roundRatio(sm.path("ferry-session"), sm.path("grpc-floor-report"), inverse)),
		target("6b", "4 KiB, one at a time: Ferry session p99", "<=", 1000, "µs", summaryP99(sm.path("ferry-session"))),
		target("7a", "1 MiB files, one at a time: Ferry session vs nginx keep-alive (the better of sendfile on/off), GB/s", ">=", 1.0, "x", one),
		info("7a", "1 MiB files, one at a time: the floor (which reads and writes the file through user space) vs nginx keep-alive, GB/s", floorOne),
		info("7a", "1 MiB files, one at a time: Ferry session vs the floor, GB/s", roundRatio(md.path("ferry-session"), md.path("grpc-floor"), tput)),
		target("7b", "1 MiB files, 8 in flight: Ferry session vs nginx over 8 keep-alive connections (the better of sendfile on/off), GB/s",
			">=", 1.3, "x", eight),
		target("8", "directory of 4 KiB files: ferry pull -r (files landed durably) vs tar c | nc | tar x (not fsynced)",
			">=", 1.5, "x", roundRatio(d.path("ferry-auto-tree"), d.path("tar-nc-tarx"), tput)),
	}
}

// present is paths without the nil ones (rows a run did not have).
func present(paths ...*PathResult) []*PathResult {
	var out []*PathResult
	for _, p := range paths {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// linkShare is the share of the link N held streams are expected to
// reach at most: N flows that together would pass it are held by the
// link, not by their pacing.
const linkShare = 0.9

// heldVsExpected is the median over rounds of heldN's GB/s over what N
// streams of one held flow should reach in that round: N times the one
// held stream, but no more than linkShare of the link (plain loopback's
// one stream). capped counts the rounds where the link set the
// expectation.
func heldVsExpected(heldN, held1, link *PathResult, n int) (ratio *float64, capped, rounds int) {
	if heldN == nil {
		return nil, 0, 0
	}
	var xs []float64
	for _, s := range heldN.Samples {
		one, ok1 := held1.sampleIn(s.Round)
		l, ok2 := link.sampleIn(s.Round)
		if s.Err != "" || !ok1 || !ok2 {
			continue
		}
		want := float64(n) * one.GBps()
		if lim := linkShare * l.GBps(); lim < want {
			want = lim
			capped++
		}
		if want <= 0 {
			continue
		}
		xs = append(xs, s.GBps()/want)
	}
	return medianPtr(xs), capped, len(xs)
}

// streamsTargets is target 4: with each flow held below the link, N
// streams reach N times one (up to the link); on plain loopback, where
// one flow fills it, more streams cost nothing.
func streamsTargets(w *WorkloadResult, flowRate string) []Target {
	if w == nil {
		return nil
	}
	held1, link := w.path(streamsRowID(true, 1)), w.path(streamsRowID(false, 1))
	rate, _ := strconv.ParseFloat(flowRate, 64)
	var ts []Target
	var perRate []float64
	if held1 != nil {
		for _, s := range held1.Samples {
			if s.Err == "" && rate > 0 {
				perRate = append(perRate, s.GBps()*1e9/rate)
			}
		}
	}
	ts = append(ts, info("4", fmt.Sprintf("streams: one stream held at %.0f MB/s vs that rate (pacing holds the flow where it should)", rate/1e6),
		medianPtr(perRate)))
	id := 'a'
	next := func() string { id++; return fmt.Sprintf("4%c", id-1) }
	for _, n := range heldStreams[1:] {
		ratio, capped, rounds := heldVsExpected(w.path(streamsRowID(true, n)), held1, link, n)
		t := target(next(), fmt.Sprintf("streams, each flow held at %.0f MB/s: %d streams vs min(%d × one held stream, %.1f × the link), "+
			"the link being plain loopback's one stream in the same round", rate/1e6, n, n, linkShare), ">=", 0.9, "x", ratio)
		if rounds > 0 {
			t.Note = fmt.Sprintf("the link set the expectation in %d of %d rounds", capped, rounds)
		}
		ts = append(ts, t)
	}
	for _, n := range plainStreams[1:] {
		ts = append(ts, target(next(), fmt.Sprintf("streams, plain loopback: %d streams vs one stream", n),
			">=", 0.95, "x", roundRatio(w.path(streamsRowID(false, n)), link, tput)))
	}
	return ts
}

// contextFigures are figures that were targets before and are kept for
// context, without a verdict: the large file into a file, single small
// files against nginx, the directory against tar, ferryd's memory.
func contextFigures(r *Results) []Target {
	lf, sm, d := r.workload("large-file"), r.workload("small"), r.workload("dir")
	ferry := d.path("ferry-auto-dir")
	ts := []Target{
		info("ctx", "large file → a file: Ferry auto vs nginx + curl -o file", roundRatio(lf.path("ferry-auto-file"), lf.path("nginx-sendfile-curl-file"), tput)),
		info("ctx", "large file → a file: Ferry auto vs nginx + curl -o file, then fsync (like for like)",
			roundRatio(lf.path("ferry-auto-file"), lf.path("nginx-sendfile-curl-file-fsync"), tput)),
		info("ctx", "4 KiB, warm client: Ferry auto p50 / nginx (sendfile on, Go HTTP keep-alive) p50",
			roundRatio(sm.path("ferry-auto"), sm.path("nginx-sendfile-go-http"), p50)),
		infoIn("ctx", "4 KiB, warm client: Ferry auto p99", "µs", summaryP99(sm.path("ferry-auto"))),
		// The directory pull against its like: a tree landed as files.
		// tar x does not fsync; ferry pull -r lands every file durably.
		info("ctx", "directory of 4 KiB files: ferry pull -r (one DownloadTree, files landed durably) vs tar c | nc | tar x (files, not fsynced)",
			roundRatio(d.path("ferry-auto-tree"), d.path("tar-nc-tarx"), tput)),
		info("ctx", "directory of 4 KiB files: Ferry (one pull per file, warm client, to /dev/null) vs tar c | nc → /dev/null",
			roundRatio(ferry, d.path("tar-nc-null"), tput)),
		// What a repeat sync saves: the same tree, already in place.
		info("ctx", "directory of 4 KiB files: a second ferry pull -r --sync of the unchanged tree vs a full ferry pull -r, by wall time (pull's / sync's)",
			roundRatio(d.path("ferry-auto-sync"), d.path("ferry-auto-tree"), perWall)),
	}
	if m := r.Memory; m != nil && m.Note == "" {
		ts = append(ts,
			infoIn("ctx", "ferryd peak RSS serving a 100 GiB sparse file with MMAP (one pull)", "MiB", &m.SingleMmapMiB),
			infoIn("ctx", fmt.Sprintf("ferryd peak RSS with %d concurrent MMAP pulls of it", m.Concurrent), "MiB", &m.ConcurrentMiB))
	}
	return ts
}

// autoVsBest is target 1 for one size class: Ferry auto, as measured
// (its explorations included), against the single strategy with the
// best median throughput (or p50, byP50), as a same-round ratio where
// higher is better.
func autoVsBest(id string, w *WorkloadResult, byP50 bool) Target {
	text := "auto (explorations included) vs the best single strategy"
	if w == nil {
		return target(id, text, ">=", 0.95, "x", nil)
	}
	text = w.ID + " (" + strings.SplitN(w.Title, ",", 2)[0] + "): " + text
	auto := w.path("ferry-auto")
	ratio, picks := heldOutBest(auto, strategyRows(w), byP50)
	if ratio == nil {
		return target(id, text, ">=", 0.95, "x", nil)
	}
	text += ", chosen for each round from the other rounds' medians (" + picks + ")"
	if !byP50 {
		return target(id, text+", by GB/s", ">=", 0.95, "x", ratio)
	}
	return target(id, text+", by p50 (best p50 / auto p50)", ">=", 0.95, "x", ratio)
}

// autoVsBestInRun is target 1 as it was computed before held-out
// choice: against the row with the best median over all rounds, the
// rounds compared included. Kept as an info row beside target 1.
func autoVsBestInRun(id string, w *WorkloadResult, byP50 bool) Target {
	auto, best := w.path("ferry-auto"), bestStrategy(w, byP50)
	text := "as before: auto vs the row with the best median over all rounds"
	if best == nil || auto == nil {
		return info(id, text, nil)
	}
	text += " (" + strings.TrimPrefix(best.Label, "Ferry ") + "), the rounds it is compared in included"
	if !byP50 {
		return info(id, text+", by GB/s", roundRatio(auto, best, tput))
	}
	return info(id, text+", by p50", roundRatio(best, auto, p50))
}

// heldOutBest compares auto, round by round, with the single strategy
// that has the best median in the other rounds, and returns the median
// of those same-round ratios (higher is better: GB/s auto / best, or
// p50 best / auto) and how often each row was the one chosen. Choosing
// the best row with the very round it is compared in lets that round's
// noise do the choosing: the best of several medians that differ only by
// noise is above what any of them will do next, so auto, even when it
// sends with the best row's strategy, measures below it. A row chosen
// from the other rounds is chosen independently of the round's noise.
func heldOutBest(auto *PathResult, rows []*PathResult, byP50 bool) (*float64, string) {
	if auto == nil || len(rows) == 0 {
		return nil, ""
	}
	f := tput
	if byP50 {
		f = p50
	}
	var xs []float64
	picks := map[string]int{}
	for _, s := range auto.Samples {
		if s.Err != "" {
			continue
		}
		var best *PathResult
		var bestMed float64
		for _, row := range rows {
			var vals []float64
			for _, o := range row.Samples {
				if o.Round != s.Round && o.Err == "" && f(o) > 0 {
					vals = append(vals, f(o))
				}
			}
			if len(vals) == 0 {
				continue
			}
			m := benchfmt.Median(vals)
			if best == nil || (byP50 && m < bestMed) || (!byP50 && m > bestMed) {
				best, bestMed = row, m
			}
		}
		t, ok := best.sampleIn(s.Round)
		if best == nil || !ok || f(t) <= 0 || f(s) <= 0 {
			continue
		}
		picks[strings.TrimPrefix(best.Label, "Ferry ")]++
		if byP50 {
			xs = append(xs, f(t)/f(s))
		} else {
			xs = append(xs, f(s)/f(t))
		}
	}
	var names []string
	for _, name := range slices.Sorted(maps.Keys(picks)) {
		names = append(names, fmt.Sprintf("%s %d", name, picks[name]))
	}
	return medianPtr(xs), strings.Join(names, ", ")
}

// strategyRows are w's rows of one named strategy each, with a summary.
func strategyRows(w *WorkloadResult) []*PathResult {
	var out []*PathResult
	for _, p := range w.Paths {
		if strategyRowIDs[p.ID] && p.Summary != nil {
			out = append(out, p)
		}
	}
	return out
}

// strategyRowIDs are the ids of the rows of one named strategy each.
var strategyRowIDs = func() map[string]bool {
	ids := map[string]bool{}
	for v := range ferryv1.Strategy_name {
		if st := ferryv1.Strategy(v); st != ferryv1.Strategy_STRATEGY_UNSPECIFIED {
			ids[ferryRow(st, "", "").id] = true
		}
	}
	return ids
}()

// bestStrategy is the single-strategy row (not auto, not the
// reading-receiver or fixed-rule rows) with the best median.
func bestStrategy(w *WorkloadResult, byP50 bool) *PathResult {
	var best *PathResult
	for _, p := range w.Paths {
		if !strategyRowIDs[p.ID] || p.Summary == nil {
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

// pickVsBest is context for target 1 on a size class moved through the
// data channel: the row of the strategy auto picked in most rounds (from
// the reports) against the best row. When auto picked the best strategy
// this is 1.00x, and autoVsBest's ratio, two measurements of the same
// strategy, is run-to-run noise plus what exploring cost.
func pickVsBest(id string, w *WorkloadResult) (Target, bool) {
	if w == nil {
		return Target{}, false
	}
	auto, best := w.path("ferry-auto"), bestStrategy(w, false)
	picked := mostPicked(auto)
	if picked == "" || best == nil {
		return Target{}, false
	}
	pick := w.path("ferry-" + strings.ReplaceAll(picked, "_", "-"))
	if pick == nil || !strategyRowIDs[pick.ID] {
		return Target{}, false
	}
	text := w.ID + ": the strategy auto picked in most rounds (" + strings.TrimPrefix(pick.Label, "Ferry ") + ") vs the best (" +
		strings.TrimPrefix(best.Label, "Ferry ") + "), each from its own row, by GB/s"
	return info(id, text, roundRatio(pick, best, tput)), true
}
