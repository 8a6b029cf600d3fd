package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ferrydev/ferry/internal/benchfmt"
)

// writeResults writes results.md, results.json and throughput.svg under
// dir, each through a temporary file renamed into place.
func writeResults(dir string, r *Results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	var md bytes.Buffer
	RenderMarkdown(&md, r)
	for name, b := range map[string][]byte{"results.json": append(js, '\n'), "results.md": md.Bytes(), "throughput.svg": benchfmt.SVG(throughputChart(r))} {
		if err := writeFile(filepath.Join(dir, name), b); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// PrintTargets writes one line per target: id, measured, wanted, verdict.
func PrintTargets(w io.Writer, ts []Target) {
	for _, t := range ts {
		want := ""
		if !t.Info && t.Op != "" {
			v := t.Want
			want = t.Op + " " + t.Value(&v)
		}
		fmt.Fprintf(w, "target %-3s %-12s %-10s %-8s %s\n", t.ID, t.Verdict(), t.Value(t.Measured), want, t.Text)
	}
}
