package bench

import (
	"fmt"
	"html"
	"io"
	"strings"
)

// chart geometry, in SVG user units.
const (
	svgWidth   = 960
	svgLabelW  = 400
	svgBarMaxW = 460
	svgRowH    = 22
	svgHeadH   = 30
)

// RenderSVG writes a horizontal bar chart of throughput by path, one
// section per throughput workload. It is hand-written SVG: no scripts,
// no fonts beyond the generic family.
func RenderSVG(w io.Writer, r *Results) {
	var sections []*WorkloadResult
	maxGB := 0.0
	for _, wl := range r.Workloads {
		if wl.ID == "large-null" || wl.ID == "large-file" || wl.ID == "medium" || wl.ID == "dir" {
			sections = append(sections, wl)
			for _, p := range wl.Paths {
				if p.Summary != nil {
					maxGB = max(maxGB, p.Summary.GBps)
				}
			}
		}
	}
	var b strings.Builder
	y := 50
	for _, wl := range sections {
		y = svgSection(&b, wl, y, maxGB)
	}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, y+30, svgWidth, y+30)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(w, `<text x="10" y="24" font-size="16" font-weight="bold">%s</text>`+"\n",
		esc(fmt.Sprintf("Throughput by path, GB/s (median of %s rounds, %d cores, kernel %s, %s)",
			r.Settings["runs"], r.Machine.Cores, r.Machine.Kernel, r.Machine.Date)))
	io.WriteString(w, b.String())
	fmt.Fprintf(w, `<text x="10" y="%d" fill="#555555">%s</text>`+"\n", y+15,
		esc("Ferry in blue, iperf3 (the loopback TCP reference) in dark grey, other peers in light grey. Source: results.json."))
	io.WriteString(w, "</svg>\n")
}

func svgSection(b *strings.Builder, wl *WorkloadResult, y int, maxGB float64) int {
	fmt.Fprintf(b, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+svgHeadH-10, esc(wl.Title))
	y += svgHeadH
	for _, p := range wl.Paths {
		gb, label := 0.0, "failed"
		if p.Summary != nil {
			gb, label = p.Summary.GBps, fmt.Sprintf("%.3f", p.Summary.GBps)
		}
		bw := 0.0
		if maxGB > 0 {
			bw = gb / maxGB * svgBarMaxW
		}
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", svgLabelW-8, y+15, esc(p.Label))
		fmt.Fprintf(b, `<rect class="bar" x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", svgLabelW, y+3, bw, svgRowH-6, barColor(p.ID))
		fmt.Fprintf(b, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(svgLabelW)+bw+6, y+15, label)
		y += svgRowH
	}
	return y + 8
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

func esc(s string) string { return html.EscapeString(s) }
