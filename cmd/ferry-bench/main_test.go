package main

import (
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	cfg, err := parse([]string{"-only", "streams,small", "-streams-size", "512MiB", "-flow-rate", "250MB", "-runs", "2"})
	if err != nil {
		t.Fatalf("parse() error = %v", err)
	}
	if cfg.StreamsSize != 512<<20 || cfg.FlowRate != 250e6 || cfg.Runs != 2 || !slices.Equal(cfg.Only, []string{"streams", "small"}) {
		t.Errorf("parse() = streams size %d, flow rate %d, runs %d, only %v; want 512 MiB, 250e6, 2, [streams small]",
			cfg.StreamsSize, cfg.FlowRate, cfg.Runs, cfg.Only)
	}
	if cfg, err := parse(nil); err != nil || cfg.StreamsSize != 1<<30 || cfg.FlowRate != 200e6 {
		t.Errorf("parse(no flags) = streams size %d, flow rate %d, %v; want 1 GiB, 200e6", cfg.StreamsSize, cfg.FlowRate, err)
	}
	for _, bad := range [][]string{
		{"-only", "streams,nope"},
		{"-flow-rate", "fast"},
		{"-streams-size", "0"},
		{"-runs", "0"},
		{"extra"},
	} {
		if _, err := parse(bad); err == nil {
			t.Errorf("parse(%q) succeeded, want an error", bad)
		}
	}
}
