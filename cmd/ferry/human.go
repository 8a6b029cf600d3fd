package main

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Human units, for human output only: --json keeps exact integers.

// humanBytes writes n in binary units with one decimal ("1.5 MiB"); below
// 1 KiB it prints the exact count ("1023 B"). A value that would round up
// to 1024.0 of a unit is written in the next unit instead.
func humanBytes(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n) / 1024
	unit := 0
	for unit < len(byteUnits)-1 && math.Round(v*10)/10 >= 1024 {
		v /= 1024
		unit++
	}
	return fmt.Sprintf("%.1f %s", v, byteUnits[unit])
}

var byteUnits = []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// humanRate writes a rate in bytes per second ("945.9 MiB/s").
func humanRate(bytesPerSecond float64) string {
	if bytesPerSecond <= 0 || math.IsNaN(bytesPerSecond) {
		return "0 B/s"
	}
	return humanBytes(uint64(math.Min(bytesPerSecond, 1<<63))) + "/s"
}

// durationUnits are humanDuration's units, largest first.
var durationUnits = []struct {
	size time.Duration
	name string
}{{time.Second, "s"}, {time.Millisecond, "ms"}, {time.Microsecond, "µs"}, {time.Nanosecond, "ns"}}

// humanDuration writes d with three significant digits in the largest unit
// of s, ms, µs and ns that keeps it at least 1 ("97.2 ms", "1.00 s",
// "850 ns"). Durations of 1000 s and more print whole seconds.
func humanDuration(d time.Duration) string {
	if d < 0 {
		return "-" + humanDuration(-d)
	}
	if d == 0 {
		return "0 s"
	}
	if d >= 1000*time.Second {
		return fmt.Sprintf("%.0f s", d.Seconds())
	}
	for i, u := range durationUnits {
		if d < u.size {
			continue
		}
		v := sig3(float64(d) / float64(u.size))
		if v >= 1000 && i > 0 { // 999.96 ms is 1.00 s
			return fmt.Sprintf("%.2f %s", v/1000, durationUnits[i-1].name)
		}
		return fixed3(v) + " " + u.name
	}
	return "0 s" // unreachable: d >= 1ns
}

// sig3 rounds v to three significant digits.
func sig3(v float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 3, 64), 64)
	return r
}

// fixed3 prints v, already rounded to three significant digits and in
// [1, 1000), with its three digits and no exponent.
func fixed3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
