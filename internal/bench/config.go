package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Config is one benchmark run. Zero fields take the documented defaults.
type Config struct {
	// Runs is the number of interleaved rounds. 0 means 5.
	Runs int
	// Size is the large file's size in bytes. 0 means 2 GiB.
	Size int64
	// LargeRepeat is how many times each path of the large-null workload
	// moves the file in a round; the round's sample sums them. 0 means 3.
	LargeRepeat int
	// Out is where results.md, results.json and throughput.svg go.
	// "" means docs/bench.
	Out string
	// Dir is the parent of the work directory (fixtures, configs, logs),
	// removed at the end. "" means the system temporary directory.
	Dir string
	// DestDir is where the to-a-file workloads land. "" means the work
	// directory (so the same file system as the fixtures).
	DestDir string
	// SmallCount is the number of 4 KiB pulls per path and round. 0 means
	// 1000.
	SmallCount int
	// MediumCount is the number of 1 MiB pulls per path and round. 0
	// means 500.
	MediumCount int
	// DirFiles is the number of 4 KiB files in the directory workload. 0
	// means 10,000.
	DirFiles int
	// DirConcurrency bounds Ferry's concurrent pulls in the directory
	// workload. 0 means 4.
	DirConcurrency int
	// StreamsSize is the size of the streams workload's file. 0 means
	// 1 GiB.
	StreamsSize int64
	// FlowRate is the per-connection pace, in bytes per second, of the
	// streams workload's held ferryd (--max-flow-rate). 0 means 200 MB/s.
	FlowRate int64
	// MemProbe is how long each ferryd memory probe runs. 0 means 2 s;
	// negative skips the probe.
	MemProbe time.Duration
	// Only names the workloads to run (see Workloads). nil means all.
	Only []string
	// NoInstall forbids apt-get: missing peers are an error.
	NoInstall bool
	// Ferryd is a prebuilt ferryd binary. "" means build ./cmd/ferryd of
	// the module in the current directory.
	Ferryd string
	// Log receives progress lines. nil means io.Discard.
	Log io.Writer
}

// Workloads are the workload ids, in the order they run in a round.
var Workloads = []string{"large-null", "large-file", "medium", "small", "dir", "streams", "memory"}

func (c Config) withDefaults() Config {
	c.Runs = orInt(c.Runs, 5)
	if c.Size == 0 {
		c.Size = 2 << 30
	}
	c.Out = orStr(c.Out, "docs/bench")
	c.SmallCount = orInt(c.SmallCount, 1000)
	c.MediumCount = orInt(c.MediumCount, 500)
	c.LargeRepeat = orInt(c.LargeRepeat, 3)
	c.DirFiles = orInt(c.DirFiles, 10000)
	c.DirConcurrency = orInt(c.DirConcurrency, 4)
	if c.StreamsSize == 0 {
		c.StreamsSize = 1 << 30
	}
	if c.FlowRate == 0 {
		c.FlowRate = 200e6
	}
	if c.MemProbe == 0 {
		c.MemProbe = 2 * time.Second
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}

func (c Config) wants(workload string) bool {
	if len(c.Only) == 0 {
		return true
	}
	for _, w := range c.Only {
		if w == workload {
			return true
		}
	}
	return false
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func orStr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// ParseSize reads a byte count: a plain number, or one with a binary
// suffix (KiB, MiB, GiB, TiB) or a decimal one (KB, MB, GB, TB).
func ParseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a positive number with an optional unit (256MiB, 2GiB)", s)
	}
	return n * mult, nil
}

// FormatSize writes n in the largest binary unit that divides it.
func FormatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return fmt.Sprintf("%d %s", n/u.mult, u.suffix)
		}
	}
	return fmt.Sprintf("%d B", n)
}
