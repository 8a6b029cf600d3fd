package main

import (
	"math"
	"testing"
	"time"
)

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{1024*1024 - 52, "1023.9 KiB"},
		{1024*1024 - 51, "1.0 MiB"}, // 1023.95 KiB rounds to 1024.0: the next unit
		{1024*1024 - 1, "1.0 MiB"},
		{1 << 20, "1.0 MiB"},
		{100000003, "95.4 MiB"},
		{1<<30 - 1, "1.0 GiB"},
		{1 << 30, "1.0 GiB"},
		{5 << 30, "5.0 GiB"},
		{1 << 40, "1.0 TiB"},
		{1 << 60, "1.0 EiB"},
		{math.MaxUint64, "16.0 EiB"},
	}
	for _, tt := range tests {
		if got := humanBytes(tt.n); got != tt.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestHumanRate(t *testing.T) {
	tests := []struct {
		r    float64
		want string
	}{
		{0, "0 B/s"},
		{-5, "0 B/s"},
		{math.NaN(), "0 B/s"},
		{512, "512 B/s"},
		{1.5 * (1 << 30), "1.5 GiB/s"},
		{math.Inf(1), "8.0 EiB/s"},
	}
	for _, tt := range tests {
		if got := humanRate(tt.r); got != tt.want {
			t.Errorf("humanRate(%v) = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0 s"},
		{1, "1.00 ns"},
		{999, "999 ns"},
		{1000, "1.00 µs"},
		{1234, "1.23 µs"},
		{999_499, "999 µs"},
		{999_500, "1.00 ms"}, // 999.5 µs rounds to 1000 µs: the next unit
		{time.Millisecond, "1.00 ms"},
		{97_232 * time.Microsecond, "97.2 ms"},
		{100_820 * time.Microsecond, "101 ms"},
		{999_960 * time.Microsecond, "1.00 s"},
		{time.Second, "1.00 s"},
		{1234567 * time.Microsecond, "1.23 s"},
		{59 * time.Second, "59.0 s"},
		{999 * time.Second, "999 s"},
		{999_600 * time.Millisecond, "1000 s"},
		{1000 * time.Second, "1000 s"},
		{2 * time.Hour, "7200 s"},
		{-1500 * time.Microsecond, "-1.50 ms"},
	}
	for _, tt := range tests {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%d) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
