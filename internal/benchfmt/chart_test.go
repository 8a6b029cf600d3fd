package benchfmt

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// drawnBar is a bar of an SVG as the XML decoder sees it.
type drawnBar struct {
	Series, Label, Color string
	Value, Width         float64
}

// decode parses an SVG with encoding/xml, which fails on markup that is
// not well formed, and returns its bars, its texts and its height.
// Each bar's label is read from data-label.
func decode(t *testing.T, doc []byte) (bars []drawnBar, texts []string, height int) {
	return decodeAttr(t, doc, "data-label")
}

// decodeAttr is decode reading each bar's label from labelAttr.
func decodeAttr(t *testing.T, doc []byte, labelAttr string) (bars []drawnBar, texts []string, height int) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	root := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, doc)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if !root {
				root = true
				if el.Name.Local != "svg" || el.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("root element %v, want svg in the SVG namespace", el.Name)
				}
				height, _ = strconv.Atoi(attr(el, "height"))
			}
			if el.Name.Local == "rect" && attr(el, "class") == "bar" {
				v, _ := strconv.ParseFloat(attr(el, "data-value"), 64)
				w, err := strconv.ParseFloat(attr(el, "width"), 64)
				if err != nil || w < 0 {
					t.Errorf("bar %q has width %q, want a number >= 0", attr(el, labelAttr), attr(el, "width"))
				}
				bars = append(bars, drawnBar{attr(el, "data-series"), attr(el, labelAttr), attr(el, "fill"), v, w})
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(el)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	return bars, texts, height
}

func attr(el xml.StartElement, name string) string {
	for _, a := range el.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func sampleChart() Chart {
	return Chart{
		Width: 700, LabelWidth: 200,
		Title: `a <title> & "quotes"`, Subtitle: "the subtitle", Note: "the note",
		Panels: []Panel{
			{ID: "fast", Title: "Fast", Unit: "GB/s", Bars: []Bar{
				{Label: "one", Value: 3, Text: "3.000", Color: "#2b6cb0"},
				{Label: "two <&>", Value: 1.5, Text: "1.500", Color: "#a0aec0"},
			}},
			{ID: "cpu", Title: "CPU", Unit: "ms per GiB", Bars: []Bar{
				{Label: "one", Value: 600, Text: "600.0", Color: "#c05621"},
				{Label: "two <&>", Value: 150, Text: "150.0", Color: "#c05621"},
				{Label: "none", Value: 0, Text: "failed", Color: "#c05621"},
			}},
			{ID: "slow", Title: "Slow", Unit: "GB/s", Bars: []Bar{
				{Label: "three", Value: 0.75, Text: "0.750", Color: "#4a5568"},
			}},
		},
	}
}

func TestSVGBars(t *testing.T) {
	tests := []struct{ labelAttr, read string }{
		{"", "data-label"},
		{"strategy", "data-strategy"},
	}
	for _, tt := range tests {
		c := sampleChart()
		c.LabelAttr = tt.labelAttr
		bars, _, _ := decodeAttr(t, SVG(c), tt.read)
		var got, want []drawnBar
		for _, bar := range bars {
			got = append(got, drawnBar{bar.Series, bar.Label, bar.Color, bar.Value, 0})
		}
		for _, p := range c.Panels {
			for _, bar := range p.Bars {
				want = append(want, drawnBar{p.ID, bar.Label, bar.Color, bar.Value, 0})
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("SVG(%q) with LabelAttr %q: bars read from %s (-want +got):\n%s", c.Title, tt.labelAttr, tt.read, diff)
		}
	}
}

func TestSVGScales(t *testing.T) {
	bars, _, _ := decode(t, SVG(sampleChart()))
	if len(bars) != 6 {
		t.Fatalf("SVG(sampleChart()) drew %d bars, want 6", len(bars))
	}
	barMax := 700.0 - 200 - textRoom
	// Each unit has one scale: GB/s over the first and third panels
	// (3, 1.5, 0.75), ms per GiB over the second (600, 150, 0).
	for _, unit := range [][]drawnBar{{bars[0], bars[1], bars[5]}, {bars[2], bars[3], bars[4]}} {
		tallest := unit[0]
		if tallest.Width <= 0.6*barMax || tallest.Width > barMax {
			t.Errorf("bar %s/%s: width %.2f for the largest value, want in (%.0f, %.0f]", tallest.Series, tallest.Label, tallest.Width, 0.6*barMax, barMax)
		}
		for _, bar := range unit {
			if want := tallest.Width * bar.Value / tallest.Value; math.Abs(bar.Width-want) > 0.01 {
				t.Errorf("bar %s/%s: width %.2f for %v, want %.2f (%.2f for %v)", bar.Series, bar.Label, bar.Width, bar.Value, want, tallest.Width, tallest.Value)
			}
		}
	}
}

func TestSVGTexts(t *testing.T) {
	c := sampleChart()
	_, texts, _ := decode(t, SVG(c))
	all := "\n" + strings.Join(texts, "\n") + "\n"
	for _, want := range []string{c.Title, c.Subtitle, c.Note, "Fast", "CPU", "GB/s", "ms per GiB", "two <&>", "3.000", "failed",
		"0", "1", "2", "3", // GB/s ticks: step 1 up to 3
		"200", "400", "600", // ms per GiB ticks: step 200 up to 600
	} {
		if !strings.Contains(all, "\n"+want+"\n") {
			t.Errorf("SVG(%q) lacks the text %q:\n%s", c.Title, want, all)
		}
	}
	c.Subtitle, c.Note = "", ""
	_, texts, _ = decode(t, SVG(c))
	for _, text := range texts {
		if text == "the subtitle" || text == "the note" {
			t.Errorf("SVG(%q) without subtitle and note drew %q", c.Title, text)
		}
	}
}

func TestSVGOddValues(t *testing.T) {
	for _, v := range []float64{0, -1, math.NaN(), math.Inf(1), math.Inf(-1)} {
		c := Chart{Width: 500, LabelWidth: 100, Title: "odd", Panels: []Panel{{ID: "p", Unit: "u", Bars: []Bar{
			{Label: "odd", Value: v}, {Label: "two", Value: 2},
		}}}}
		bars, _, height := decode(t, SVG(c))
		if len(bars) != 2 || bars[0].Width != 0 || bars[1].Width <= 0 {
			t.Errorf("SVG with values %v and 2: bars %+v, want the first 0 wide and the second wider", v, bars)
		}
		if height <= 0 || height > 500 {
			t.Errorf("SVG with values %v and 2: height %d, want in (0, 500]", v, height)
		}
	}
}

func TestNiceStep(t *testing.T) {
	tests := []struct{ raw, want float64 }{
		{0, 1}, {-3, 1}, {math.NaN(), 1}, {math.Inf(1), 1},
		{0.3, 0.5}, {0.75, 1}, {1, 1}, {1.2, 2}, {3, 5}, {7, 10}, {120, 200}, {0.0012, 0.002},
	}
	for _, tt := range tests {
		if got := niceStep(tt.raw); math.Abs(got-tt.want) > 1e-9*tt.want {
			t.Errorf("niceStep(%v) = %v, want %v", tt.raw, got, tt.want)
		}
	}
}

func TestTrimFloat(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {1, "1"}, {2.5, "2.5"}, {0.125, "0.125"}, {0.0004, "0"}, {1000, "1000"}, {0.30000000000000004, "0.3"},
	}
	for _, tt := range tests {
		if got := trimFloat(tt.in); got != tt.want {
			t.Errorf("trimFloat(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEsc(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{`<a href="x">&'`, "&lt;a href=&#34;x&#34;&gt;&amp;&#39;"},
	}
	for _, tt := range tests {
		if got := esc(tt.in); got != tt.want {
			t.Errorf("esc(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
