package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/ferrydev/ferry/internal/benchfmt"
)

// chartSeries is one panel of the chart: a value per strategy.
type chartSeries struct {
	id, title, axis, color string
	value                  func(strategyMedian) float64
	label                  func(float64) string
}

var chartPanels = []chartSeries{
	{"throughput", "Throughput (sender, median; higher is better)", "GiB/s", "#2b6cb0",
		func(s strategyMedian) float64 { return s.ThroughputBytesPerSecond / (1 << 30) },
		func(v float64) string { return fmt.Sprintf("%.2f", v) }},
	{"cpu", "Sender CPU user+sys per GiB (median; lower is better)", "ms per GiB", "#c05621",
		func(s strategyMedian) float64 { return float64(s.CPUNsPerGiB) / 1e6 },
		func(v float64) string { return fmt.Sprintf("%.1f", v) }},
}

// writeSVG writes the chart of c to path.
func writeSVG(path string, c *comparison) error {
	if err := os.WriteFile(path, benchfmt.SVG(compareChart(c)), 0o644); err != nil {
		return fmt.Errorf("ferry compare: writing the chart: %w", err)
	}
	return nil
}

// compareChart is the chart of c: one panel per series, a bar per
// strategy, its value at the bar's end.
func compareChart(c *comparison) benchfmt.Chart {
	ch := benchfmt.Chart{
		Width: 820, LabelWidth: 150,
		Title: fmt.Sprintf("ferry compare: %s (%s), host %s, %s", c.File, humanBytes(c.SizeBytes), c.Host, day(c.Date)),
		Subtitle: fmt.Sprintf("Median of %d interleaved pulls per strategy to /dev/null, page cache warm; server %s; %d cores, kernel %s",
			c.Runs, c.Server, c.Cores, c.Kernel),
		Note:      "Sender figures from ferry's reports: throughput DERIVED (bytes / data-path time), CPU MEASURED (getrusage of the sending thread).",
		LabelAttr: "strategy", // read by scripts and the integration test
	}
	for _, p := range chartPanels {
		panel := benchfmt.Panel{ID: p.id, Title: p.title, Unit: p.axis}
		for _, s := range c.Strategies {
			v := p.value(s)
			panel.Bars = append(panel.Bars, benchfmt.Bar{Label: columnName(s), Value: v, Text: p.label(v), Color: p.color})
		}
		ch.Panels = append(ch.Panels, panel)
	}
	return ch
}

// day is the date part of an RFC 3339 time.
func day(rfc3339 string) string {
	d, _, _ := strings.Cut(rfc3339, "T")
	return d
}
