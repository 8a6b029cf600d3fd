package bench

import (
	"testing"
)

// streamsFixture is a streams workload of 4 rounds, 1 GB moved per row:
// held flows at 0.2 GB/s each, the link at 1.5 GB/s.
func streamsFixture() *WorkloadResult {
	pr := func(id string, walls ...float64) *PathResult {
		return &PathResult{ID: id, Label: id, Samples: runs(1e9, walls...)}
	}
	held8 := pr("ferry-streams-held-8", 1/1.2, 1/1.2, 1/1.0, 1/1.2) // 1.2, 1.2, 1.0, 1.2 GB/s
	held8.Samples[3].Err = "lost"
	return &WorkloadResult{ID: "streams", Title: "1 GiB file → /dev/null in parallel streams", Paths: []*PathResult{
		pr("ferry-streams-held-1", 5, 5, 5, 5),        // 0.2 GB/s
		pr("ferry-streams-held-2", 2.5, 2.5, 5, 2.5),  // 0.4, 0.4, 0.2, 0.4
		pr("ferry-streams-held-4", 1.25, 1.5, 1.5, 2), // 0.8, 0.667, 0.667, 0.5
		held8, // expected min(1.6, 0.9 × 1.5 = 1.35) = 1.35
		pr("ferry-streams-1", 1/1.5, 1/1.5, 1/1.5, 1), // the link: 1.5 GB/s, round 4 1.0
		pr("ferry-streams-4", 1/1.5, 1/1.2, 1/1.5, 1), // 1.5, 1.2, 1.5, 1.0
	}}
}

func TestHeldVsExpected(t *testing.T) {
	w := streamsFixture()
	held1, link := w.path("ferry-streams-held-1"), w.path("ferry-streams-1")
	for _, tc := range []struct {
		n              int
		want           string
		capped, rounds int
	}{
		// 0.4/0.4, 0.4/0.4, 0.2/0.4, 0.4/0.4 → 1.
		{2, "1.000", 0, 4},
		// 0.8/0.8, 0.667/0.8, 0.667/0.8, 0.5/0.8 (round 4's link, 1.0
		// GB/s, is slower, but 0.9 × 1.0 still exceeds 4 × 0.2): sorted
		// 0.625 0.833 0.833 1 → 0.833.
		{4, "0.833", 0, 4},
		// 1.2/1.35, 1.2/1.35, 1.0/1.35, every round capped (8 × 0.2 =
		// 1.6 > 1.35); round 4 lost → median 1.2/1.35 = 0.889.
		{8, "0.889", 3, 3},
	} {
		got, capped, rounds := heldVsExpected(w.path(streamsRowID(true, tc.n)), held1, link, tc.n)
		if fmtOpt(got, "%.3f") != tc.want || capped != tc.capped || rounds != tc.rounds {
			t.Errorf("heldVsExpected(%d streams) = %s, capped %d of %d, want %s, capped %d of %d",
				tc.n, fmtOpt(got, "%.3f"), capped, rounds, tc.want, tc.capped, tc.rounds)
		}
	}
	if got, _, _ := heldVsExpected(w.path(streamsRowID(true, 2)), held1, nil, 2); got != nil {
		t.Errorf("heldVsExpected with no link row = %v, want nil", *got)
	}
}

func TestStreamsTargets(t *testing.T) {
	ts := streamsTargets(streamsFixture(), "200000000")
	type row struct{ id, verdict, value, note string }
	var got []row
	for _, tg := range ts {
		got = append(got, row{tg.ID, tg.Verdict(), tg.Value(tg.Measured), tg.Note})
	}
	want := []row{
		{"4", "info", "1.00x", ""}, // 0.2 GB/s against 200 MB/s
		{"4a", "met", "1.00x", "the link set the expectation in 0 of 4 rounds"},
		{"4b", "missed", "0.83x", "the link set the expectation in 0 of 4 rounds"},
		{"4c", "missed", "0.89x", "the link set the expectation in 3 of 3 rounds"},
		// 1.5/1.5, 1.2/1.5, 1.5/1.5, 1/1 → 1.
		{"4d", "met", "1.00x", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("streamsTargets() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("streamsTargets()[%d] = %+v, want %+v (%s)", i, got[i], want[i], ts[i].Text)
		}
	}
	if ts := streamsTargets(nil, "200000000"); ts != nil {
		t.Errorf("streamsTargets(no workload) = %v, want none", ts)
	}
}

func TestStreamsRow(t *testing.T) {
	for _, tc := range []struct {
		held bool
		n    int
		want row
	}{
		{true, 1, row{"ferry-streams-held-1", "Ferry auto, 1 stream, each flow held at 200 MB/s", "P ferryd --max-flow-rate", "S ferry-bench"}},
		{true, 8, row{"ferry-streams-held-8", "Ferry auto, 8 streams, each flow held at 200 MB/s", "P ferryd --max-flow-rate", "S ferry-bench"}},
		{false, 4, row{"ferry-streams-4", "Ferry auto, 4 streams, plain loopback", "P ferryd", "S ferry-bench"}},
	} {
		if got := streamsRow(tc.held, tc.n, 200e6); got != tc.want {
			t.Errorf("streamsRow(%v, %d) = %+v, want %+v", tc.held, tc.n, got, tc.want)
		}
	}
}
