package bench

import (
	"math"
	"slices"
	"testing"
)

func TestOrder(t *testing.T) {
	if got, want := order(4, 1), []int{0, 1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("order(4, round 1) = %v, want %v", got, want)
	}
	if got, want := order(4, 2), []int{3, 2, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("order(4, round 2) = %v, want %v", got, want)
	}
	paths := []path{{rows: make([]row, 1)}, {rows: make([]row, 2)}, {rows: make([]row, 1)}}
	if got, want := rowIndex(paths), []int{0, 1, 3}; !slices.Equal(got, want) {
		t.Errorf("rowIndex(1, 2, 1 rows) = %v, want %v", got, want)
	}
}

func TestPasses(t *testing.T) {
	// Round 1 starts forward and round 2 backward, as order does; the
	// passes of a round alternate, so each path runs early and late.
	for _, c := range []struct {
		round, repeat int
		want          [][]int
	}{
		{1, 3, [][]int{{0, 1, 2}, {2, 1, 0}, {0, 1, 2}}},
		{2, 2, [][]int{{2, 1, 0}, {0, 1, 2}}},
		{1, 0, [][]int{{0, 1, 2}}},
	} {
		got := passes(3, c.round, c.repeat)
		if !slices.EqualFunc(got, c.want, slices.Equal[[]int]) {
			t.Errorf("passes(3, round %d, repeat %d) = %v, want %v", c.round, c.repeat, got, c.want)
		}
	}
}

func TestAddSamples(t *testing.T) {
	a := []Sample{{Bytes: 2e9, Files: 1, WallSec: 1, SenderCPU: 0.5, ReceiverCPU: 0.25, ToolGBps: 2,
		Auto: &AutoUse{Transfers: 1, Strategies: map[string]int{"mmap": 1}}}}
	b := []Sample{{Bytes: 2e9, Files: 1, WallSec: 0.5, SenderCPU: 0.25, ReceiverCPU: 0.5, ToolGBps: 4, Note: "n",
		Auto: &AutoUse{Transfers: 1, Explorations: 1, Strategies: map[string]int{"splice": 1}, Explored: map[string]int{"splice": 1}}}}
	got := addSamples(addSamples(nil, a), b)
	if len(got) != 1 {
		t.Fatalf("addSamples made %d samples, want 1", len(got))
	}
	s := got[0]
	if s.Bytes != 4e9 || s.Files != 2 || s.WallSec != 1.5 || s.SenderCPU != 0.75 || s.ReceiverCPU != 0.75 || s.Note != "n" {
		t.Errorf("sum = %+v", s)
	}
	// 2 GB at 2 GB/s and 2 GB at 4 GB/s: 4 GB in 1.5 s.
	if want := 4.0 / 1.5; math.Abs(s.ToolGBps-want) > 1e-9 {
		t.Errorf("tool rate = %v, want %v", s.ToolGBps, want)
	}
	if s.GBps() < 2.66 || s.GBps() > 2.67 {
		t.Errorf("GBps() = %v, want 4 GB over 1.5 s", s.GBps())
	}
	if u := s.Auto; u.Transfers != 2 || u.Explorations != 1 || u.Strategies["mmap"] != 1 || u.Strategies["splice"] != 1 || u.Pick() != "mmap" {
		t.Errorf("auto = %+v, pick %q; want both transfers, mmap the pick", u, u.Pick())
	}
}
