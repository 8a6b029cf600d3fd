package bench

import (
	"strings"
	"testing"
)

func TestEvaluateTargets(t *testing.T) {
	got := map[string]Target{}
	for _, tg := range fixtureResults().Targets {
		if !tg.Info && tg.ID != "5" { // 5 is one per size class: TestAutoVsBest
			got[tg.ID] = tg
		}
	}
	for _, tc := range []struct {
		key, verdict, value string
	}{
		// Same-round ratios 2/1, 2/2, 0.5/0.5: median 1.0, where the
		// ratio of medians would say 2.
		{"1a", "met", "1.00x"},
		{"1b", "met", "4.00x"},
		{"1c", "not measured", "—"},
		{"2", "not measured", "—"},
		{"3a", "missed", "2.00x"}, // 400/200, 300/300, 500/250
		{"3b", "met", "1200 µs"},
		{"4", "missed", "0.50x"},
		{"6a", "met", "20.0 MiB"},
		{"6b", "missed", "210.0 MiB"},
		{"6c", "not measured", "—"},
	} {
		tg, ok := got[tc.key]
		if !ok {
			t.Errorf("no target %q among %v", tc.key, keys(got))
			continue
		}
		if tg.Verdict() != tc.verdict || tg.Value(tg.Measured) != tc.value {
			t.Errorf("target %q = %s %s, want %s %s", tc.key, tg.Verdict(), tg.Value(tg.Measured), tc.verdict, tc.value)
		}
	}
}

func TestAutoVsBest(t *testing.T) {
	r := fixtureResults()
	// large-null: mmap has the best median (2 GB/s vs splice's 1); auto
	// vs mmap per round: 2/4, 2/2, 0.5/2 → median 0.5.
	tg := autoVsBest(r.workload("large-null"), false)
	if tg.Verdict() != "missed" || tg.Value(tg.Measured) != "0.50x" || !strings.Contains(tg.Text, "(mmap)") {
		t.Errorf("autoVsBest(large-null) = %q %s %s, want mmap as best, 0.50x missed", tg.Text, tg.Verdict(), tg.Value(tg.Measured))
	}
	// small, by p50: sendfile 200/400, 300/300, 250/500 → median 0.5.
	tg = autoVsBest(r.workload("small"), true)
	if tg.Verdict() != "missed" || tg.Value(tg.Measured) != "0.50x" {
		t.Errorf("autoVsBest(small) = %s %s, want 0.50x missed", tg.Verdict(), tg.Value(tg.Measured))
	}
	if tg := autoVsBest(nil, false); tg.Verdict() != "not measured" {
		t.Errorf("autoVsBest(nil) = %s, want not measured", tg.Verdict())
	}
}

func keys(m map[string]Target) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestRoundRatioOf(t *testing.T) {
	a := &PathResult{Samples: runs(2e9, 1, 2, 1)} // 2, 1, 2 GB/s by wall
	b := &PathResult{Samples: runs(2e9, 1, 1, 1)}
	for i, tool := range []float64{4, 0.5, 1} {
		b.Samples[i].ToolGBps = tool
	}
	b.Samples[2].Err = "lost" // round 3 has no partner
	// Round 1: 2/4, round 2: 1/0.5 → median 1.25.
	if got := roundRatioOf(a, tput, b, toolTput); got == nil || *got != 1.25 {
		t.Errorf("roundRatioOf(wall, tool) = %v, want 1.25", fmtOpt(got, "%v"))
	}
	if got := roundRatio(a, nil, tput); got != nil {
		t.Errorf("roundRatio(a, nil) = %v, want nil", *got)
	}
}

func TestPickVsBest(t *testing.T) {
	r := fixtureResults()
	ln := r.workload("large-null")
	auto := ln.path("ferry-auto")
	if _, ok := pickVsBest(ln); ok {
		t.Error("pickVsBest with no note on auto's row = a target, want none")
	}
	// auto picked splice: splice vs mmap per round 1/4, 1/2, 1/2 → 0.5.
	auto.Summary.Note = "server used STRATEGY_SPLICE"
	tg, ok := pickVsBest(ln)
	if !ok || !tg.Info || tg.Value(tg.Measured) != "0.50x" || !strings.Contains(tg.Text, "(splice) vs the best (mmap)") {
		t.Errorf("pickVsBest(auto picked splice) = %q %s (ok %v), want info 0.50x, splice vs mmap", tg.Text, tg.Value(tg.Measured), ok)
	}
	auto.Summary.Note = "server used STRATEGY_MMAP"
	if tg, ok := pickVsBest(ln); !ok || tg.Value(tg.Measured) != "1.00x" {
		t.Errorf("pickVsBest(auto picked mmap, the best) = %s (ok %v), want 1.00x", tg.Value(tg.Measured), ok)
	}
	auto.Summary.Note = "server used STRATEGY_READ_WRITE (inline in the offer)"
	if _, ok := pickVsBest(ln); ok {
		t.Error("pickVsBest(inline) = a target, want none: no row moves the bytes inline")
	}
}
