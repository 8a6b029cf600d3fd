package transfer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseStrategy(t *testing.T) {
	tests := []struct {
		in   string
		want Strategy
		ok   bool
	}{
		{"auto", Auto, true},
		{"AUTO", Auto, true},
		{"read-write", ReadWrite, true},
		{"READ_WRITE", ReadWrite, true},
		{"Read_Write", ReadWrite, true},
		{"mmap", Mmap, true},
		{"sendfile", Sendfile, true},
		{"SPLICE", Splice, true},
		{"", 0, false},
		{"readwrite", 0, false},
		{"splice ", 0, false},
		{"zero-copy", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseStrategy(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseStrategy(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	for _, s := range append([]Strategy{Auto}, Strategies...) {
		if got, err := ParseStrategy(s.String()); got != s || err != nil {
			t.Errorf("ParseStrategy(%q) = %v, %v; want %v, nil", s.String(), got, err, s)
		}
	}
	for _, s := range []Strategy{-1, 5} {
		if got, want := s.String(), "Strategy("; len(got) < len(want) || got[:len(want)] != want {
			t.Errorf("Strategy(%d).String() = %q, want %q…", int(s), got, want)
		}
	}
}

func TestProbe(t *testing.T) {
	got := probe()
	if len(got) == 0 || got[0] != ReadWrite {
		t.Fatalf("probe() = %v, want READ_WRITE first", got)
	}
	// The kernels Ferry runs on (Linux >= 2.6.33) have them all; a
	// sandbox that refuses one shows up here.
	if diff := cmp.Diff(Strategies, got); diff != "" {
		t.Errorf("probe() mismatch (-want +got):\n%s", diff)
	}
}

// TestModels pins the per-round models to docs/strategies.md's table.
func TestModels(t *testing.T) {
	tests := []struct {
		m                    Model
		cpu, dma, modeSwitch int
	}{
		{senderModel(ReadWrite, false), 2, 2, 4},
		{senderModel(ReadWrite, true), 2, 2, 4},
		{senderModel(Mmap, false), 1, 2, 8},
		{senderModel(Sendfile, false), 1, 2, 2},
		{senderModel(Sendfile, true), 0, 2, 2},
		{senderModel(Splice, false), 0, 2, 4},
		{receiverModel(true, false), 1, 1, 2},
		{receiverModel(false, false), 2, 2, 4},
		{receiverModel(true, true), 0, 1, 4},
		{receiverModel(false, true), 1, 2, 4},
		{inlineReceiverModel(true), 0, 0, 0},
		{inlineReceiverModel(false), 1, 1, 2},
	}
	for _, tt := range tests {
		if tt.m.CPUCopies != tt.cpu || tt.m.DMACopies != tt.dma || tt.m.ModeSwitches != tt.modeSwitch || tt.m.Description == "" {
			t.Errorf("model %q = %d CPU, %d DMA copies, %d switches; want %d, %d, %d",
				tt.m.Description, tt.m.CPUCopies, tt.m.DMACopies, tt.m.ModeSwitches, tt.cpu, tt.dma, tt.modeSwitch)
		}
	}
	if got := senderModel(Auto, false); got != (Model{}) {
		t.Errorf("senderModel(AUTO) = %+v, want the zero Model", got)
	}
}
