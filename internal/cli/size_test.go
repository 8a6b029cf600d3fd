package cli

import (
	"flag"
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
		{"0.5", 0},
	} {
		got, err := ParseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, nil", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "-5MiB", "1X", "1MiBs", "1..5M", "1e3", "9999999999TiB", "1/s/s", "0x10"} {
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
