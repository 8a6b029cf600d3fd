package main

import (
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
)

// printReport renders a pull's report as a two-column table: the server's
// sending side and this machine's receiving side, each figure labelled
// with how it was obtained.
func printReport(out io.Writer, src, dest string, r *ferryv1.Report) {
	s, rc := r.GetSender(), r.GetReceiver()
	fmt.Fprintf(out, "pulled %s -> %s: %s in %s (%s/s) with %s\n\n", src, dest,
		humanBytes(s.GetBytes()), round(rc.GetDuration().AsDuration()), humanBytes(uint64(rc.GetThroughputBytesPerSecond())), strategyName(s.GetStrategy()))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tsender (server)\treceiver (this host)")
	row := func(label string, f func(*ferryv1.TransferStats) string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", label, f(s), f(rc))
	}
	row("bytes [measured]", func(t *ferryv1.TransferStats) string { return fmt.Sprint(t.GetBytes()) })
	row("time [measured]", func(t *ferryv1.TransferStats) string { return round(t.GetDuration().AsDuration()).String() })
	row("throughput [derived]", func(t *ferryv1.TransferStats) string {
		return humanBytes(uint64(t.GetThroughputBytesPerSecond())) + "/s"
	})
	row("copies per round [model]", func(t *ferryv1.TransferStats) string {
		m := t.GetModel()
		return fmt.Sprintf("%d CPU, %d DMA, %d mode switches", m.GetCpuCopies(), m.GetDmaCopies(), m.GetModeSwitches())
	})
	row("CPU-copied bytes [model x bytes]", func(t *ferryv1.TransferStats) string { return fmt.Sprint(t.GetCpuCopiedBytes()) })
	row("rounds [counted]", func(t *ferryv1.TransferStats) string { return fmt.Sprint(t.GetRounds()) })
	row("syscalls [counted]", func(t *ferryv1.TransferStats) string { return syscalls(t.GetSyscalls()) })
	row("mode switches [2 x syscalls]", func(t *ferryv1.TransferStats) string { return fmt.Sprint(t.GetModeSwitches()) })
	row("context switches vol/invol [measured]", func(t *ferryv1.TransferStats) string {
		if !t.GetThreadMeasured() {
			return "not measured"
		}
		return fmt.Sprintf("%d / %d", t.GetVoluntaryContextSwitches(), t.GetInvoluntaryContextSwitches())
	})
	row("CPU user/system [measured]", func(t *ferryv1.TransferStats) string {
		if !t.GetThreadMeasured() {
			return "not measured"
		}
		return fmt.Sprintf("%s / %s", round(t.GetUserCpu().AsDuration()), round(t.GetSystemCpu().AsDuration()))
	})
	row("thread", func(t *ferryv1.TransferStats) string {
		if !t.GetThreadMeasured() {
			return "not locked"
		}
		return fmt.Sprintf("tid %d (locked)", t.GetThreadId())
	})
	tw.Flush()
	fmt.Fprintf(out, "\nsender model: %s\nreceiver model: %s\n", s.GetModel().GetDescription(), rc.GetModel().GetDescription())
	if s.GetPipeSize() > 0 {
		fmt.Fprintf(out, "splice pipe: %s\n", humanBytes(s.GetPipeSize()))
	}
}

func syscalls(m map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Microsecond)
	}
	return d
}

func fsMode(m uint32) fs.FileMode { return fs.FileMode(m) }
