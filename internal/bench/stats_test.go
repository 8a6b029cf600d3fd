package bench

import (
	"slices"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in     []float64
		want   float64
		wantOK bool
	}{
		{nil, 0, false},
		{[]float64{3}, 3, true},
		{[]float64{5, 1, 3}, 3, true},
		{[]float64{4, 1, 3, 2}, 2.5, true},
		{[]float64{9, 9, 1, 1, 5}, 5, true},
	} {
		in := slices.Clone(tc.in)
		got, ok := median(in)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("median(%v) = %v, %v, want %v, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("median(%v) reordered its input to %v", tc.in, in)
		}
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Microsecond // 100 µs down to 1 µs
	}
	for _, tc := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{[]time.Duration{7}, 99, 7},
		{slices.Clone(hundred), 50, 50 * time.Microsecond},
		{slices.Clone(hundred), 99, 99 * time.Microsecond},
		{slices.Clone(hundred), 100, 100 * time.Microsecond},
		{[]time.Duration{4, 1, 3, 2}, 50, 2},  // nearest rank: ceil(0.5*4) = 2nd
		{[]time.Duration{4, 1, 3, 2}, 99, 4},  // ceil(0.99*4) = 4th
		{[]time.Duration{4, 1, 3, 2}, 0.1, 1}, // at least the first
	} {
		if got := percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.in, tc.p, got, tc.want)
		}
	}
}

func TestPerGiBAndGBps(t *testing.T) {
	if got := perGiB(1.5, 3<<30); got != 0.5 {
		t.Errorf("perGiB(1.5, 3 GiB) = %v, want 0.5", got)
	}
	if got := gbps(2e9, 4); got != 0.5 {
		t.Errorf("gbps(2e9, 4) = %v, want 0.5", got)
	}
	if got := gbps(1, 0); got != 0 {
		t.Errorf("gbps(1, 0) = %v, want 0", got)
	}
}

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
