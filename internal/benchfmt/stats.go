package benchfmt

import (
	"cmp"
	"math"
	"slices"
)

// Number is what Median and Percentile take the middle of.
type Number interface {
	~int64 | ~uint64 | ~float64
}

// Median is the middle value of xs; for an even count, the mean of the
// two middle values, rounded toward the lower for integers. 0 for none.
func Median[N Number](xs []N) N {
	if len(xs) == 0 {
		return 0
	}
	vs := slices.Clone(xs)
	slices.SortFunc(vs, cmp.Compare[N])
	mid := len(vs) / 2
	if len(vs)%2 == 1 {
		return vs[mid]
	}
	lo, hi := vs[mid-1], vs[mid]
	return lo + (hi-lo)/2 // no overflow for sorted values of one sign
}

// MedianOf is the Median of f over xs.
func MedianOf[T any, N Number](xs []T, f func(T) N) N {
	vs := make([]N, len(xs))
	for i, x := range xs {
		vs[i] = f(x)
	}
	return Median(vs)
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of xs:
// the smallest value with at least p% of the samples at or below it.
// 0 for none.
func Percentile[N Number](xs []N, p float64) N {
	if len(xs) == 0 {
		return 0
	}
	vs := slices.Clone(xs)
	slices.SortFunc(vs, cmp.Compare[N])
	rank := int(math.Ceil(p / 100 * float64(len(vs))))
	rank = max(1, min(rank, len(vs)))
	return vs[rank-1]
}

// GBps is bytes over seconds in decimal gigabytes per second; 0 when no
// time passed.
func GBps(bytes int64, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return float64(bytes) / seconds / 1e9
}

// PerGiB scales a figure v for a number of bytes to one for a GiB
// (1 << 30 bytes); 0 for no bytes.
func PerGiB[B ~int64 | ~uint64](v float64, bytes B) float64 {
	if bytes <= 0 {
		return 0
	}
	return v * (1 << 30) / float64(bytes)
}
