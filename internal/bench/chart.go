package bench

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ferrydev/ferry/internal/benchfmt"
)

// chartedWorkloads are the throughput workloads throughput.svg shows.
var chartedWorkloads = []string{"large-null", "large-file", "medium", "dir", "streams"}

// throughputChart is throughput.svg: a panel of GB/s by path for each
// charted workload, all on one scale, Ferry's rows in blue, iperf3's in
// dark grey, the other peers' in light grey.
func throughputChart(r *Results) benchfmt.Chart {
	c := benchfmt.Chart{
		Width: 960, LabelWidth: 400,
		Title: fmt.Sprintf("Throughput by path, GB/s (median of %s rounds, %d cores, kernel %s, %s)",
			r.Settings["runs"], r.Machine.Cores, r.Machine.Kernel, r.Machine.Date),
		Note: "Ferry in blue, iperf3 (the loopback TCP reference) in dark grey, other peers in light grey. Source: results.json.",
	}
	for _, wl := range r.Workloads {
		if !slices.Contains(chartedWorkloads, wl.ID) {
			continue
		}
		p := benchfmt.Panel{ID: wl.ID, Title: wl.Title, Unit: "GB/s"}
		for _, path := range wl.Paths {
			bar := benchfmt.Bar{Label: path.Label, Text: "failed", Color: barColor(path.ID)}
			if path.Summary != nil {
				bar.Value, bar.Text = path.Summary.GBps, fmt.Sprintf("%.3f", path.Summary.GBps)
			}
			p.Bars = append(p.Bars, bar)
		}
		c.Panels = append(c.Panels, p)
	}
	return c
}

func barColor(id string) string {
	switch {
	case strings.HasPrefix(id, "ferry-"):
		return "#2b6cb0"
	case strings.HasPrefix(id, "iperf3"):
		return "#4a5568"
	}
	return "#a0aec0"
}
