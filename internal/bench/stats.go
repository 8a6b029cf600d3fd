package bench

import (
	"math"
	"slices"
	"time"
)

// median is the middle value of xs, the mean of the two middle ones for
// an even count, and 0 with ok false for none.
func median(xs []float64) (m float64, ok bool) {
	if len(xs) == 0 {
		return 0, false
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2], true
	}
	return (s[n/2-1] + s[n/2]) / 2, true
}

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of
// durations: the smallest value with at least p% of the samples at or
// below it. It sorts ds in place. None gives 0.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(math.Ceil(p / 100 * float64(len(ds))))
	rank = max(1, min(rank, len(ds)))
	return ds[rank-1]
}

// gbps is decimal gigabytes per second.
func gbps(bytes int64, wall float64) float64 {
	if wall <= 0 {
		return 0
	}
	return float64(bytes) / wall / 1e9
}

// perGiB scales seconds of CPU to seconds per GiB moved.
func perGiB(cpu float64, bytes int64) float64 {
	if bytes <= 0 {
		return 0
	}
	return cpu / (float64(bytes) / (1 << 30))
}
