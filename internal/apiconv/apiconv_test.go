package apiconv

import (
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/transfer"
)

// TestAutoPolicy: a class's figures, its sink and the figures it left
// out for steal reach GetCapabilities.
func TestAutoPolicy(t *testing.T) {
	p := AutoPolicy(transfer.AutoPolicy{Seed: "probe", Classes: []transfer.AutoClass{{
		Min: 256 << 20, Sink: transfer.SinkStream, BySink: true, Pick: transfer.ReadWrite, Reason: "r",
		LeftOutForSteal: 3,
		Costs:           []transfer.StrategyCost{{Strategy: transfer.ReadWrite, Samples: 8, Rate: 4e9}},
	}}})
	if len(p.GetClasses()) != 1 {
		t.Fatalf("classes = %v, want 1", p.GetClasses())
	}
	c := p.GetClasses()[0]
	if c.GetLeftOutForSteal() != 3 || c.GetSink() != "stream" || c.GetMinBytes() != 256<<20 || c.GetPick() != ferryv1.Strategy_STRATEGY_READ_WRITE ||
		c.GetCosts()[0].GetSamples() != 8 || c.GetCosts()[0].GetBytesPerSecond() != 4e9 {
		t.Errorf("class = %v", c)
	}
}
