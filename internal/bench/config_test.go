package bench

import "testing"

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"2GiB", 2 << 30},
		{"256MiB", 256 << 20},
		{"4 KiB", 4 << 10},
		{"1GB", 1e9},
		{"512B", 512},
		{"1048576", 1 << 20},
	} {
		got, err := ParseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v, want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "GiB", "-1MiB", "0", "2 GiBs", "1.5GiB", "99999999TiB"} {
		if got, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", bad, got)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want string
	}{{2 << 30, "2 GiB"}, {256 << 20, "256 MiB"}, {4096, "4 KiB"}, {1500, "1500 B"}, {3 << 29, "1536 MiB"}} {
		if got := FormatSize(tc.in); got != tc.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
