package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits maps a size's suffix, lower-cased, to its multiplier. A bare
// K, M or G is binary, as in curl --limit-rate; kB, MB and GB are
// decimal; KiB, MiB and GiB (or Ki, Mi, Gi) say binary outright.
var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "ki": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mi": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gi": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "ti": 1 << 40, "tib": 1 << 40, "tb": 1e12,
}

// ParseSize reads a human size: a number of bytes, possibly fractional,
// with an optional unit (50MiB, 1.5G, 500kB, 4096) and, for a rate, an
// optional "/s" (50MiB/s). Units are case-insensitive: 50mib is 50MiB.
// The result is rounded down to whole bytes and must fit in 63 bits. A
// non-zero size that rounds down to 0 (0.5, 0.0001K) is an error, not
// 0: to a rate flag 0 means no limit, the opposite of what was asked.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSpace(s), "/s")
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (want B, K/KiB, kB, M/MiB, MB, G/GiB, GB, T/TiB or TB)", s, t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional unit, such as 50MiB", s)
	}
	n := math.Floor(v * mult)
	if n >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	if n == 0 && v > 0 {
		return 0, fmt.Errorf("size %q: less than 1 byte, and 0 would mean none (no limit for a rate): give at least 1 byte, or 0", s)
	}
	return int64(n), nil
}

// Size is a flag.Value for a human size (see ParseSize), held as bytes.
// Its String is the exact number of bytes.
type Size int64

// Set parses a human size into s.
func (s *Size) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}

func (s *Size) String() string { return strconv.FormatInt(int64(*s), 10) }

// Type names the value in pflag's usage (it makes Size a pflag.Value).
func (s *Size) Type() string { return "size" }
