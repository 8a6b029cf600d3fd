package bench

import (
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/google/go-cmp/cmp"
)

// report is a transfer's report as the server would send it for auto.
func report(st ferryv1.Strategy, exploring, inline bool, class string) *ferryv1.Report {
	return &ferryv1.Report{
		Sender: &ferryv1.TransferStats{Strategy: st, Inline: inline},
		Auto:   &ferryv1.AutoChoice{ChosenByServer: true, Exploration: exploring, SizeClass: class},
	}
}

const (
	rw     = ferryv1.Strategy_STRATEGY_READ_WRITE
	mmap   = ferryv1.Strategy_STRATEGY_MMAP
	splice = ferryv1.Strategy_STRATEGY_SPLICE
)

func TestAutoUseAdd(t *testing.T) {
	var u AutoUse
	u.add(report(rw, false, true, "[0 B, 8 MiB)"))
	u.add(report(mmap, true, false, "[0 B, 8 MiB)"))
	// A split transfer counts once per part; its own sender is the sum.
	u.add(&ferryv1.Report{Sender: &ferryv1.TransferStats{Strategy: mmap}, Parts: []*ferryv1.Report{
		report(mmap, false, false, "[8 MiB, ∞)"), report(splice, true, false, "[8 MiB, ∞)"),
	}})
	// A server that does not say how it chose.
	u.add(&ferryv1.Report{Sender: &ferryv1.TransferStats{Strategy: rw}})
	want := AutoUse{
		Transfers:    5,
		Strategies:   map[string]int{"read_write": 2, "mmap": 2, "splice": 1},
		Explorations: 2, Explored: map[string]int{"mmap": 1, "splice": 1},
		ChosenByServer: 4, Inline: 1,
		SizeClasses: []string{"[0 B, 8 MiB)", "[8 MiB, ∞)"},
	}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("AutoUse after add (-want +got):\n%s", diff)
	}
	var m AutoUse
	m.merge(&u)
	m.merge(&AutoUse{Transfers: 1, Strategies: map[string]int{"mmap": 1}, ChosenByServer: 1, SizeClasses: []string{"[8 MiB, ∞)"}})
	want.Transfers, want.ChosenByServer, want.Strategies["mmap"] = 6, 5, 3
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("AutoUse after merge (-want +got):\n%s", diff)
	}
}

func TestAutoUseString(t *testing.T) {
	for _, tc := range []struct {
		name string
		u    *AutoUse
		pick string
		want string
	}{
		{"none", nil, "", "—"},
		{"one transfer", &AutoUse{Transfers: 1, Strategies: map[string]int{"mmap": 1}, ChosenByServer: 1}, "mmap", "mmap"},
		{"explorations", &AutoUse{Transfers: 200, Strategies: map[string]int{"read_write": 196, "mmap": 3, "splice": 1},
			Explorations: 4, Explored: map[string]int{"mmap": 3, "splice": 1}, ChosenByServer: 200},
			"read_write", "read_write; 4 of 200 explored (mmap 3, splice 1)"},
		// The pick moved within the round: both show, most first.
		{"pick moved", &AutoUse{Transfers: 10, Strategies: map[string]int{"read_write": 4, "mmap": 6}, ChosenByServer: 10},
			"mmap", "mmap (mmap 6, read_write 4)"},
		// Explorations do not count toward the pick.
		{"explorations outnumber", &AutoUse{Transfers: 5, Strategies: map[string]int{"read_write": 2, "mmap": 3},
			Explorations: 3, Explored: map[string]int{"mmap": 3}, ChosenByServer: 5},
			"read_write", "read_write; 3 of 5 explored (mmap 3)"},
		{"explored only", &AutoUse{Transfers: 1, Strategies: map[string]int{"splice": 1}, Explorations: 1,
			Explored: map[string]int{"splice": 1}, ChosenByServer: 1}, "", "explored only; 1 of 1 explored (splice 1)"},
		{"tie by name", &AutoUse{Transfers: 2, Strategies: map[string]int{"splice": 1, "mmap": 1}, ChosenByServer: 2},
			"mmap", "mmap (mmap 1, splice 1)"},
		{"inline", &AutoUse{Transfers: 1000, Strategies: map[string]int{"read_write": 1000}, Inline: 1000, ChosenByServer: 1000},
			"read_write", "read_write, 1000 of 1000 inline"},
		{"not reported", &AutoUse{Transfers: 3, Strategies: map[string]int{"mmap": 3}}, "mmap", "mmap; not reported"},
		{"partly reported", &AutoUse{Transfers: 3, Strategies: map[string]int{"mmap": 3}, ChosenByServer: 2}, "mmap", "mmap; not reported for 1"},
	} {
		if got := tc.u.Pick(); got != tc.pick {
			t.Errorf("%s: Pick() = %q, want %q", tc.name, got, tc.pick)
		}
		if got := tc.u.String(); got != tc.want {
			t.Errorf("%s: String() = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestMostPicked(t *testing.T) {
	use := func(st string) *AutoUse { return &AutoUse{Transfers: 1, Strategies: map[string]int{st: 1}} }
	p := &PathResult{Samples: []Sample{
		{Round: 1, Auto: use("splice")}, {Round: 2, Auto: use("mmap")}, {Round: 3, Auto: use("mmap")},
		{Round: 4, Auto: use("splice"), Err: "failed"}, {Round: 5, Auto: use("splice")}, {Round: 6},
	}}
	if got := mostPicked(p); got != "mmap" { // failed rounds do not count: mmap 2, splice 2, mmap first to 2
		t.Errorf("mostPicked() = %q, want mmap", got)
	}
	if got := mostPicked(&PathResult{Samples: []Sample{{Round: 1}}}); got != "" {
		t.Errorf("mostPicked(no records) = %q, want none", got)
	}
}

func TestClassLabel(t *testing.T) {
	for _, tc := range []struct {
		min, below uint64
		network    string
		sink       string
		want       string
	}{
		{0, 8 << 20, "", "", "[0 B, 8 MiB)"},
		{8 << 20, 0, "loopback", "", "[8 MiB, ∞) loopback"},
		{64 << 10, 1 << 20, "network", "", "[64 KiB, 1 MiB) network"},
		{16 << 20, 256 << 20, "loopback", "stream", "[16 MiB, 256 MiB) loopback, to a stream"},
	} {
		if got := classLabel(tc.min, tc.below, tc.network, tc.sink); got != tc.want {
			t.Errorf("classLabel(%d, %d, %q, %q) = %q, want %q", tc.min, tc.below, tc.network, tc.sink, got, tc.want)
		}
	}
}

func TestAutoPolicyRecord(t *testing.T) {
	pol := func(small ferryv1.Strategy, gbps float64) *ferryv1.AutoPolicy {
		return &ferryv1.AutoPolicy{Objective: "throughput", ExploreShare: 0.05, Seed: "probe", Classes: []*ferryv1.AutoClass{
			{BelowBytes: 8 << 20, Network: "loopback", Pick: small, Reason: "most bytes per second", Costs: []*ferryv1.StrategyCost{
				{Strategy: small, Samples: 3, BytesPerSecond: gbps * 1e9, CpuSecondsPerGib: 0.25},
				{Strategy: splice, Failed: true},
			}},
			{MinBytes: 8 << 20, Pick: mmap},
		}}
	}
	ap := &AutoPolicy{Server: "ferryd"}
	ap.record(1, policyOf("ferryd", pol(rw, 1.5)))
	ap.record(2, policyOf("ferryd", pol(mmap, 2)))
	want := &AutoPolicy{Server: "ferryd", Objective: "throughput", ExploreShare: 0.05, Seed: "probe",
		Classes: []AutoClass{
			{Class: "[0 B, 8 MiB) loopback", Network: "loopback", Pick: "mmap", Reason: "most bytes per second", Costs: []StrategyCost{
				{Strategy: "mmap", Samples: 3, GBps: 2, CPUPerGiB: 0.25}, {Strategy: "splice", Failed: true}}},
			{Class: "[8 MiB, ∞)", Pick: "mmap"},
		},
		Rounds: []RoundPicks{
			{Round: 1, Picks: map[string]string{"[0 B, 8 MiB) loopback": "read_write", "[8 MiB, ∞)": "mmap"}},
			{Round: 2, Picks: map[string]string{"[0 B, 8 MiB) loopback": "mmap", "[8 MiB, ∞)": "mmap"}},
		}}
	if diff := cmp.Diff(want, ap); diff != "" {
		t.Errorf("AutoPolicy after two rounds (-want +got):\n%s", diff)
	}
	// A ferryd without a policy: a note, no rounds.
	none := &AutoPolicy{Server: "ferryd"}
	none.record(1, policyOf("ferryd", nil))
	if none.Note == "" || len(none.Rounds) != 0 || len(none.Classes) != 0 {
		t.Errorf("AutoPolicy of a ferryd without one = %+v, want a note only", none)
	}
}
