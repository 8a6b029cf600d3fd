package benchfmt

import (
	"cmp"
	"fmt"
	"html"
	"math"
	"strings"
)

// Chart is a horizontal bar chart: a title, panels of bars, a note.
type Chart struct {
	Width      int    // of the picture, in SVG user units
	LabelWidth int    // room left of the bars for their labels
	Title      string // bold, at the top
	Subtitle   string // grey, under the title; none when empty
	Panels     []Panel
	Note       string // grey, at the bottom; none when empty
	// LabelAttr is the name, in letters, digits and hyphens, of the data-
	// attribute that carries each bar's label for programs that read the
	// chart: "strategy" gives data-strategy; empty gives data-label.
	LabelAttr string
}

// Panel is one block of bars under a bold heading, with its own x axis.
type Panel struct {
	ID    string // every bar's data-series attribute
	Title string
	Unit  string // the axis caption; panels with the same Unit share a scale
	Bars  []Bar
}

// Bar is one row of a panel.
type Bar struct {
	Label string  // left of the bar
	Value float64 // its length; one not positive and finite draws none
	Text  string  // at the bar's end: the value as the caller prints it
	Color string  // its fill, as SVG takes it: "#2b6cb0"
}

// Chart geometry, in SVG user units.
const (
	textRoom = 100 // right of the longest bar, for its text
	rowH     = 22  // one bar and the gap under it
	headH    = 30  // a panel's heading
	axisH    = 34  // tick labels and the unit under a panel's bars
	panelGap = 8
)

// SVG draws c as a self-contained SVG document. Each bar is a rect of
// class "bar" that carries its panel's ID, its label and its value in
// data-series, data-label (or c.LabelAttr) and data-value attributes.
func SVG(c Chart) []byte {
	tops := scales(c.Panels)
	labelAttr := "data-" + cmp.Or(c.LabelAttr, "label")
	barMax := float64(max(1, c.Width-c.LabelWidth-textRoom))
	var body strings.Builder
	y := 50
	if c.Subtitle != "" {
		y += 20
	}
	for _, p := range c.Panels {
		y = panel(&body, p, tops[p.Unit], labelAttr, float64(c.LabelWidth), barMax, y)
	}
	h := y + 30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		c.Width, h, c.Width, h)
	b.WriteString(`<rect width="100%" height="100%" fill="#ffffff"/>` + "\n")
	fmt.Fprintf(&b, `<text x="10" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", esc(c.Title))
	if c.Subtitle != "" {
		fmt.Fprintf(&b, `<text x="10" y="44" fill="#555555">%s</text>`+"\n", esc(c.Subtitle))
	}
	b.WriteString(body.String())
	if c.Note != "" {
		fmt.Fprintf(&b, `<text x="10" y="%d" fill="#555555">%s</text>`+"\n", y+15, esc(c.Note))
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// scale is the top of an axis and its step.
type scale struct{ top, step float64 }

// scales gives each unit an axis that reaches past its largest value in
// four or so nice steps.
func scales(ps []Panel) map[string]scale {
	largest := map[string]float64{}
	for _, p := range ps {
		largest[p.Unit] = max(largest[p.Unit], 0)
		for _, bar := range p.Bars {
			if drawn(bar.Value) {
				largest[p.Unit] = max(largest[p.Unit], bar.Value)
			}
		}
	}
	out := map[string]scale{}
	for unit, v := range largest {
		step := niceStep(v / 4)
		out[unit] = scale{step * math.Max(1, math.Ceil(v/step)), step}
	}
	return out
}

// panel draws p with its heading at y and returns the y below it.
func panel(b *strings.Builder, p Panel, s scale, labelAttr string, left, barMax float64, y int) int {
	fmt.Fprintf(b, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+headH-10, esc(p.Title))
	y += headH
	top, bottom := y, y+len(p.Bars)*rowH
	right := left + barMax
	for i := 0; float64(i)*s.step <= s.top+s.step/2; i++ {
		v := float64(i) * s.step
		x := left + v/s.top*barMax
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#dddddd"/>`+"\n", x, top, x, bottom)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555555">%s</text>`+"\n", x, bottom+14, esc(trimFloat(v)))
	}
	fmt.Fprintf(b, `<line x1="%.0f" y1="%d" x2="%.0f" y2="%d" stroke="#333333"/>`+"\n", left, top, left, bottom)
	fmt.Fprintf(b, `<line x1="%.0f" y1="%d" x2="%.0f" y2="%d" stroke="#333333"/>`+"\n", left, bottom, right, bottom)
	for _, bar := range p.Bars {
		w := 0.0
		if drawn(bar.Value) {
			w = bar.Value / s.top * barMax
		}
		fmt.Fprintf(b, `<text x="%.0f" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+15, esc(bar.Label))
		fmt.Fprintf(b, `<rect class="bar" data-series="%s" %s="%s" data-value="%g" x="%.0f" y="%d" width="%.2f" height="%d" fill="%s"/>`+"\n",
			esc(p.ID), labelAttr, esc(bar.Label), bar.Value, left, y+3, w, rowH-6, esc(bar.Color))
		fmt.Fprintf(b, `<text x="%.1f" y="%d">%s</text>`+"\n", left+w+6, y+15, esc(bar.Text))
		y += rowH
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555555">%s</text>`+"\n", (left+right)/2, bottom+30, esc(p.Unit))
	return bottom + axisH + panelGap
}

// drawn reports whether a bar of value v has a length.
func drawn(v float64) bool { return v > 0 && !math.IsInf(v, 1) }

// niceStep rounds a tick step up to 1, 2 or 5 times a power of ten; 1
// for a step that is not positive and finite.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*pow >= raw {
			return m * pow
		}
	}
	return 10 * pow
}

// trimFloat prints a tick value with at most three decimals and no
// trailing zeros.
func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	return strings.TrimRight(strings.TrimRight(s, "0"), ".")
}

// esc makes s safe as SVG text or as a quoted attribute value.
func esc(s string) string { return html.EscapeString(s) }
