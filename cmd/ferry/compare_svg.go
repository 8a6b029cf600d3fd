package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"strings"
)

// Chart geometry, in SVG user units.
const (
	chartW      = 820
	chartTitleH = 64  // title and subtitle
	panelH      = 250 // one panel: plot, axis and labels
	plotLeft    = 90  // room for the y axis' ticks and label
	plotRight   = 20
	plotTop     = 36 // the panel's heading above its plot
	plotH       = 160
	barFill     = 0.6 // share of a slot a bar fills
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
	var b strings.Builder
	renderSVG(&b, c)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("ferry compare: writing the chart: %w", err)
	}
	return nil
}

// renderSVG draws c as a self-contained SVG: one panel of vertical bars per
// series, strategies along the x axis, values on the bars. Hand-written:
// no scripts, no fonts beyond the generic family. Each bar carries its
// series and value in data- attributes.
func renderSVG(w io.Writer, c *comparison) {
	h := chartTitleH + len(chartPanels)*panelH + 30
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartW, h, chartW, h)
	fmt.Fprintln(w, `<rect width="100%" height="100%" fill="#ffffff"/>`)
	fmt.Fprintf(w, `<text x="10" y="24" font-size="16" font-weight="bold">%s</text>`+"\n",
		esc(fmt.Sprintf("ferry compare: %s (%s), host %s, %s", c.File, humanBytes(c.SizeBytes), c.Host, day(c.Date))))
	fmt.Fprintf(w, `<text x="10" y="44" fill="#555555">%s</text>`+"\n",
		esc(fmt.Sprintf("Median of %d interleaved pulls per strategy to /dev/null, page cache warm; server %s; %d cores, kernel %s",
			c.Runs, c.Server, c.Cores, c.Kernel)))
	for i, p := range chartPanels {
		svgPanel(w, c.Strategies, p, chartTitleH+i*panelH)
	}
	fmt.Fprintf(w, `<text x="10" y="%d" fill="#555555">%s</text>`+"\n", h-12,
		esc("Sender figures from ferry's reports: throughput DERIVED (bytes / data-path time), CPU MEASURED (getrusage of the sending thread)."))
	io.WriteString(w, "</svg>\n")
}

// svgPanel draws one series as a bar chart whose top is at y.
func svgPanel(w io.Writer, ss []strategyMedian, p chartSeries, y int) {
	top := float64(y + plotTop)
	bottom := top + plotH
	right := float64(chartW - plotRight)
	maxV := 0.0
	for _, s := range ss {
		maxV = max(maxV, p.value(s))
	}
	step := niceStep(maxV / 4)
	axisTop := step * math.Max(1, math.Ceil(maxV/step))
	fmt.Fprintf(w, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+20, esc(p.title))
	for v := 0.0; v <= axisTop+step/2; v += step { // grid lines and ticks
		ty := bottom - v/axisTop*plotH
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#dddddd"/>`+"\n", plotLeft, ty, right, ty)
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end" fill="#555555">%s</text>`+"\n", plotLeft-6, ty+4, esc(trimFloat(v)))
	}
	fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#333333"/>`+"\n", plotLeft, top, plotLeft, bottom)
	fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#333333"/>`+"\n", plotLeft, bottom, right, bottom)
	mid := (top + bottom) / 2
	fmt.Fprintf(w, `<text x="24" y="%.1f" text-anchor="middle" transform="rotate(-90 24 %.1f)">%s</text>`+"\n", mid, mid, esc(p.axis))
	slot := (right - plotLeft) / float64(max(1, len(ss)))
	for i, s := range ss {
		v := p.value(s)
		bh := v / axisTop * plotH
		x := plotLeft + float64(i)*slot + slot*(1-barFill)/2
		fmt.Fprintf(w, `<rect class="bar" data-series="%s" data-strategy="%s" data-value="%g" x="%.2f" y="%.4f" width="%.2f" height="%.4f" fill="%s"/>`+"\n",
			p.id, esc(columnName(s)), v, x, bottom-bh, slot*barFill, bh, p.color)
		cx := x + slot*barFill/2
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" font-weight="bold">%s</text>`+"\n", cx, bottom-bh-5, esc(p.label(v)))
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", cx, bottom+16, esc(columnName(s)))
	}
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555555">strategy</text>`+"\n", (plotLeft+right)/2, bottom+34)
}

// niceStep rounds a tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*pow >= raw {
			return m * pow
		}
	}
	return 10 * pow
}

// trimFloat prints a tick value without trailing zeros.
func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// day is the date part of an RFC 3339 time.
func day(rfc3339 string) string {
	d, _, _ := strings.Cut(rfc3339, "T")
	return d
}

func esc(s string) string { return html.EscapeString(s) }
