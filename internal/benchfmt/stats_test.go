package benchfmt

import (
	"math"
	"slices"
	"testing"
	"time"
)

// medianCase is one input of Median and its wanted result.
type medianCase[N Number] struct {
	in   []N
	want N
}

// checkMedians runs Median on each case, checking its result and that
// it left the input as it was.
func checkMedians[N Number](t *testing.T, tests []medianCase[N]) {
	t.Helper()
	for _, tt := range tests {
		in := slices.Clone(tt.in)
		if got := Median(in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("Median(%v) reordered its input to %v", tt.in, in)
		}
	}
}

func TestMedian(t *testing.T) {
	checkMedians(t, []medianCase[int64]{
		{nil, 0},
		{[]int64{7}, 7},
		{[]int64{9, 1, 5}, 5},
		{[]int64{4, 1, 3, 2}, 2}, // mean of 2 and 3, rounded down
		{[]int64{10, 20}, 15},
		{[]int64{-5, -2}, -4}, // -3.5, toward the lower
		{[]int64{math.MaxInt64, math.MaxInt64 - 2}, math.MaxInt64 - 1},
	})
	checkMedians(t, []medianCase[uint64]{
		{[]uint64{3, 4}, 3},
		{[]uint64{math.MaxUint64, math.MaxUint64 - 2}, math.MaxUint64 - 1},
	})
	checkMedians(t, []medianCase[float64]{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{1, 2}, 1.5},
		{[]float64{9, 9, 1, 1, 5}, 5},
	})
}

func TestMedianOf(t *testing.T) {
	type run struct {
		name string
		took time.Duration
	}
	runs := []run{{"a", 3 * time.Second}, {"b", time.Second}, {"c", 2 * time.Second}, {"d", 5 * time.Second}}
	took := func(r run) time.Duration { return r.took }
	tests := []struct {
		in   []run
		want time.Duration
	}{
		{nil, 0},
		{runs[:1], 3 * time.Second},
		{runs[:3], 2 * time.Second},
		{runs, 2500 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := MedianOf(tt.in, took); got != tt.want {
			t.Errorf("MedianOf(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if got, want := runs[0].name, "a"; got != want {
		t.Errorf("MedianOf reordered its input: runs[0] = %q, want %q", got, want)
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Microsecond // 100 µs down to 1 µs
	}
	tests := []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{[]time.Duration{7}, 99, 7},
		{hundred, 50, 50 * time.Microsecond},
		{hundred, 99, 99 * time.Microsecond},
		{hundred, 100, 100 * time.Microsecond},
		{[]time.Duration{4, 1, 3, 2}, 50, 2},  // nearest rank: ceil(0.5*4) = 2nd
		{[]time.Duration{4, 1, 3, 2}, 99, 4},  // ceil(0.99*4) = 4th
		{[]time.Duration{4, 1, 3, 2}, 0.1, 1}, // at least the first
	}
	for _, tt := range tests {
		in := slices.Clone(tt.in)
		if got := Percentile(in, tt.p); got != tt.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tt.in, tt.p, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("Percentile(%v, %v) reordered its input to %v", tt.in, tt.p, in)
		}
	}
}

func TestGBps(t *testing.T) {
	tests := []struct {
		bytes   int64
		seconds float64
		want    float64
	}{
		{2e9, 4, 0.5},
		{3e9, 1, 3},
		{1, 0, 0},
		{1, -1, 0},
	}
	for _, tt := range tests {
		if got := GBps(tt.bytes, tt.seconds); got != tt.want {
			t.Errorf("GBps(%v, %v) = %v, want %v", tt.bytes, tt.seconds, got, tt.want)
		}
	}
}

func TestPerGiB(t *testing.T) {
	tests := []struct {
		v     float64
		bytes int64
		want  float64
	}{
		{1.5, 3 << 30, 0.5},
		{10, 1 << 29, 20},
		{0.5, 2e9, 0.5 * (1 << 30) / 2e9},
		{10, 0, 0},
		{10, -1, 0},
	}
	for _, tt := range tests {
		if got := PerGiB(tt.v, tt.bytes); got != tt.want {
			t.Errorf("PerGiB(%v, %v) = %v, want %v", tt.v, tt.bytes, got, tt.want)
		}
		if tt.bytes >= 0 {
			if got := PerGiB(tt.v, uint64(tt.bytes)); got != tt.want {
				t.Errorf("PerGiB(%v, uint64 %v) = %v, want %v", tt.v, tt.bytes, got, tt.want)
			}
		}
	}
}
