package cli

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"4096", 4096},
		{"4096B", 4096},
		{"1K", 1 << 10},
		{"1k", 1 << 10},
		{"1KiB", 1 << 10},
		{"1Ki", 1 << 10},
		{"1kB", 1000},
		{"1KB", 1000},
		{"50MiB", 50 << 20},
		{"50M", 50 << 20},
		{"50mib", 50 << 20},
		{"50MB", 50e6},
		{"50MiB/s", 50 << 20},
		{"1.5G", 3 << 29},
		{"1.5GiB", 3 << 29},
		{"2GB", 2e9},
		{"1TiB", 1 << 40},
		{" 100MiB ", 100 << 20},
		{"100 MiB", 100 << 20},
		{"0.0", 0},
		{"0MiB", 0},
		{"0.001K", 1},
		{"1.9", 1},
	} {
		got, err := ParseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, nil", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "-5MiB", "1X", "1MiBs", "1..5M", "1e3", "9999999999TiB", "1/s/s", "0x10", "0.5", "0.5B/s", "0.9", "0.0001K", "0.0000000001GiB"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, nil; want an error", in, got)
		}
	}
}

func TestSizeFlag(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var s Size
	fs.Var(&s, "rate", "a `rate`")
	if err := fs.Parse([]string{"--rate", "20MiB"}); err != nil || s != 20<<20 {
		t.Fatalf("Parse(--rate 20MiB) = %v, Size %d; want nil, %d", err, s, 20<<20)
	}
	if got := s.String(); got != "20971520" {
		t.Errorf("String() = %q, want %q", got, "20971520")
	}
	if err := fs.Parse([]string{"--rate", "fast"}); err == nil {
		t.Error("Parse(--rate fast) = nil, want an error")
	}
	t.Setenv("FERRY_RATE", "1GB")
	fs = flag.NewFlagSet("test", flag.ContinueOnError)
	s = 0
	fs.Var(&s, "rate", "a `rate`")
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := ApplyEnv(fs); err != nil || s != 1e9 {
		t.Errorf("ApplyEnv with FERRY_RATE=1GB = %v, Size %d; want nil, %d", err, s, int64(1e9))
	}
}

// TestRateBelowOneByte runs the two binaries' parse paths, ferry's
// --limit-rate and ferryd's --max-rate, each from the command line and
// from its FERRY_* variable: a rate below 1 byte/s is an error that says
// why, never a silent "no limit".
func TestRateBelowOneByte(t *testing.T) {
	for _, name := range []string{"limit-rate", "max-rate"} {
		for _, in := range []string{"0.5", "0.5B/s", "0.0001KiB/s"} {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var s Size
			fs.Var(&s, name, "a `rate`")
			err := fs.Parse([]string{"--" + name, in})
			if err == nil || !strings.Contains(err.Error(), "less than 1 byte") {
				t.Errorf("Parse(--%s %s) = %v, Size %d; want a \"less than 1 byte\" error", name, in, err, s)
			}
			t.Setenv(EnvName(name), in)
			fs = flag.NewFlagSet("test", flag.ContinueOnError)
			fs.Var(&s, name, "a `rate`")
			if err := fs.Parse(nil); err != nil {
				t.Fatal(err)
			}
			if err := ApplyEnv(fs); err == nil || !strings.Contains(err.Error(), "less than 1 byte") {
				t.Errorf("ApplyEnv with %s=%s = %v, Size %d; want a \"less than 1 byte\" error", EnvName(name), in, err, s)
			}
		}
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		var s Size = 7
		fs.Var(&s, name, "a `rate`")
		if err := fs.Parse([]string{"--" + name, "0"}); err != nil || s != 0 {
			t.Errorf("Parse(--%s 0) = %v, Size %d; want nil, 0 (no limit)", name, err, s)
		}
	}
}
