package main

import (
	"testing"

	"github.com/spf13/pflag"
)

// TestPullStreamsFlag: --streams takes 1 or more, and splits a file, not
// a tree.
func TestPullStreamsFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		ok   bool
		want int
	}{
		{[]string{"f"}, true, 1},
		{[]string{"--streams", "4", "f"}, true, 4},
		{[]string{"--streams", "0", "f"}, false, 0},
		{[]string{"-r", "--streams", "2", "d", "e"}, false, 0},
	} {
		p := &pullArgs{common: &common{}}
		fs := pflag.NewFlagSet("pull", pflag.ContinueOnError)
		addPullFlags(fs, p)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		err := p.resolve()
		if (err == nil) != tt.ok || tt.ok && p.opts.Streams != tt.want {
			t.Errorf("ferry pull %q: Streams %d, %v; want %d, ok %v", tt.args, p.opts.Streams, err, tt.want, tt.ok)
		}
	}
}
