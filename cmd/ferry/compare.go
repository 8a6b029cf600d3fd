package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/internal/benchfmt"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// compareArgs are ferry compare's own flags.
type compareArgs struct {
	runs       int
	list, svg  string
	noProgress bool
}

func newCompareCmd(c *common) *cobra.Command {
	a := &compareArgs{}
	cmd := &cobra.Command{
		Use:   "compare [flags] REMOTE_PATH",
		Short: "Pull a file to /dev/null with every strategy and compare the medians",
		Long: `Pull REMOTE_PATH to /dev/null with each strategy the server supports and with
auto, --runs times each, interleaved, after one warm-up pull, and print the
medians of the sender's figures side by side.`,
		Example: `  ferry compare big.bin
  ferry compare big.bin --runs 9 --strategies sendfile,splice,auto
  ferry compare --json --svg out.svg big.bin`,
		Args:              arguments(1, 1),
		ValidArgsFunction: completeRemote(c, 1, false),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			return compare(cmd.Context(), c, a, args[0], cmd.OutOrStdout())
		}),
	}
	fs := cmd.Flags()
	fs.IntVar(&a.runs, "runs", 5, "pulls per strategy")
	fs.StringVar(&a.list, "strategies", "", "comma-separated strategies to compare, auto included (default: every one the server supports, then auto)")
	fs.StringVar(&a.svg, "svg", "", "also write an SVG bar chart to this file")
	fs.BoolVar(&a.noProgress, "no-progress", false, "show no running count of pulls (none is shown unless standard error is a terminal)")
	return cmd
}

// compare pulls one file to /dev/null with each strategy, several times,
// interleaved (A B C A B C ..., so that a slow spell of the machine does
// not land on one strategy), and prints the medians side by side.
func compare(ctx context.Context, c *common, a *compareArgs, file string, out io.Writer) error {
	if a.runs < 1 {
		return usagef("ferry compare: --runs must be at least 1, got %d", a.runs)
	}
	if _, err := compareStrategies(nil, a.list); err != nil && !errors.Is(err, errUnsupported) {
		return usageError{err} // a name that is no strategy
	}
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	caps, err := cl.Capabilities(ctx)
	if err != nil {
		return err
	}
	strategies, err := compareStrategies(caps.GetStrategies(), a.list)
	if err != nil {
		return err
	}
	status := io.Discard
	if !a.noProgress && isTerminal(os.Stderr.Fd()) {
		status = os.Stderr
	}
	res, err := runComparison(ctx, cl, file, strategies, a.runs, status)
	if err != nil {
		return err
	}
	res.Server = c.server
	if a.svg != "" {
		if err := writeSVG(a.svg, res); err != nil {
			return err
		}
	}
	if c.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printComparison(out, res)
	return nil
}

// errUnsupported is compareStrategies' answer to a strategy the server
// does not support (a usage error is a name that is no strategy).
var errUnsupported = errors.New("the server does not support")

// compareStrategies picks the strategies to run: those listed, or every
// one the server supports followed by auto (STRATEGY_UNSPECIFIED). A
// listed strategy the server does not support is an error.
func compareStrategies(supported []ferryv1.Strategy, list string) ([]ferryv1.Strategy, error) {
	if list == "" {
		return append(slices.Clone(supported), ferryv1.Strategy_STRATEGY_UNSPECIFIED), nil
	}
	var out []ferryv1.Strategy
	for name := range strings.SplitSeq(list, ",") {
		s, err := client.ParseStrategy(strings.TrimSpace(name))
		if err != nil {
			return nil, err
		}
		if s != ferryv1.Strategy_STRATEGY_UNSPECIFIED && !slices.Contains(supported, s) {
			return nil, fmt.Errorf("ferry compare: %w %v (it supports %v)", errUnsupported, strategyName(s), strategyNames(supported))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// comparison is the outcome of ferry compare; --json prints it. Every
// figure is a median over the runs of one strategy (for an even count, the
// mean of the middle two), taken figure by figure, of the SENDER's
// statistics: the strategy is the sender's choice, the receiver is the
// same in every run.
type comparison struct {
	File       string           `json:"file"`
	SizeBytes  uint64           `json:"size_bytes"`
	Server     string           `json:"server"`
	Host       string           `json:"host"`   // the host ferry ran on
	Cores      int              `json:"cores"`  // its CPUs, as Go sees them
	Kernel     string           `json:"kernel"` // its uname -r
	Date       string           `json:"date"`   // RFC 3339, UTC
	Runs       int              `json:"runs"`   // pulls per strategy, after one warm-up pull
	Strategies []strategyMedian `json:"strategies"`
}

// strategyMedian is one strategy's medians. Names follow stats.proto; the
// per-GiB figures are DERIVED from those figures and the bytes.
type strategyMedian struct {
	Requested                  string  `json:"requested"` // as asked: auto, READ_WRITE, ...
	Strategy                   string  `json:"strategy"`  // what the sender used (auto's choice)
	Runs                       int     `json:"runs"`
	Bytes                      uint64  `json:"bytes"`
	DurationNs                 int64   `json:"duration_ns"`
	ThroughputBytesPerSecond   float64 `json:"throughput_bytes_per_second"`
	UserCPUNs                  int64   `json:"user_cpu_ns"`
	SystemCPUNs                int64   `json:"system_cpu_ns"`
	CPUNsPerGiB                int64   `json:"cpu_ns_per_gib"` // user + system, per GiB
	Syscalls                   uint64  `json:"syscalls"`
	SyscallsPerGiB             float64 `json:"syscalls_per_gib"`
	ModeSwitches               uint64  `json:"mode_switches"`
	ModelCPUCopies             uint32  `json:"model_cpu_copies"` // per round, MODELLED
	CPUCopiedBytes             uint64  `json:"cpu_copied_bytes"`
	VoluntaryContextSwitches   uint64  `json:"voluntary_context_switches"`
	InvoluntaryContextSwitches uint64  `json:"involuntary_context_switches"`
	ThreadMeasured             bool    `json:"thread_measured"` // every run's CPU and switches are the thread's own
}

// runComparison runs one warm-up pull (so that every strategy reads from
// a warm page cache), then runs rounds of one pull per strategy. It
// counts the pulls on status, a line redrawn in place, blanked at the end.
func runComparison(ctx context.Context, cl *client.Client, file string, strategies []ferryv1.Strategy, runs int, status io.Writer) (*comparison, error) {
	st, err := cl.Stat(ctx, file)
	if err != nil {
		return nil, err
	}
	if st.GetIsDir() {
		return nil, errors.New("ferry compare: " + file + " is a directory; compare pulls one file")
	}
	if _, err := cl.Download(ctx, file, os.DevNull, client.DownloadOptions{}); err != nil {
		return nil, fmt.Errorf("warm-up pull: %w", err)
	}
	reports := make([][]*ferryv1.Report, len(strategies))
	defer fmt.Fprintf(status, "\r%-60s\r", "")
	for run := range runs {
		for i, s := range strategies {
			fmt.Fprintf(status, "\rpull %d of %d: %-10s", run*len(strategies)+i+1, runs*len(strategies), requestedName(s))
			r, err := cl.Download(ctx, file, os.DevNull, client.DownloadOptions{Strategy: s})
			if err != nil {
				return nil, fmt.Errorf("pull with %s: %w", requestedName(s), err)
			}
			reports[i] = append(reports[i], r)
		}
	}
	res := &comparison{File: file, SizeBytes: st.GetSize(), Runs: runs, Date: time.Now().UTC().Format(time.RFC3339)}
	res.Host, _ = os.Hostname()
	res.Cores = runtime.NumCPU()
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		res.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	for i, s := range strategies {
		res.Strategies = append(res.Strategies, medians(requestedName(s), reports[i]))
	}
	return res, nil
}

// requestedName names a strategy as compare asked for it.
func requestedName(s ferryv1.Strategy) string {
	if s == ferryv1.Strategy_STRATEGY_UNSPECIFIED {
		return "auto"
	}
	return strategyName(s)
}

// medians takes each sender figure's median over reports.
func medians(requested string, reports []*ferryv1.Report) strategyMedian {
	senders := make([]*ferryv1.TransferStats, len(reports))
	used := map[string]bool{}
	measuredAll := true
	for i, r := range reports {
		senders[i] = r.GetSender()
		used[strategyName(senders[i].GetStrategy())] = true
		measuredAll = measuredAll && senders[i].GetThreadMeasured()
	}
	u := func(f func(*ferryv1.TransferStats) uint64) uint64 { return benchfmt.MedianOf(senders, f) }
	d := func(f func(*ferryv1.TransferStats) time.Duration) int64 { return int64(benchfmt.MedianOf(senders, f)) }
	m := strategyMedian{
		Requested:                  requested,
		Strategy:                   strings.Join(slices.Sorted(maps.Keys(used)), ","),
		Runs:                       len(reports),
		Bytes:                      u((*ferryv1.TransferStats).GetBytes),
		DurationNs:                 d(func(t *ferryv1.TransferStats) time.Duration { return t.GetDuration().AsDuration() }),
		ThroughputBytesPerSecond:   benchfmt.MedianOf(senders, (*ferryv1.TransferStats).GetThroughputBytesPerSecond),
		UserCPUNs:                  d(func(t *ferryv1.TransferStats) time.Duration { return t.GetUserCpu().AsDuration() }),
		SystemCPUNs:                d(func(t *ferryv1.TransferStats) time.Duration { return t.GetSystemCpu().AsDuration() }),
		Syscalls:                   u(totalSyscalls),
		ModeSwitches:               u((*ferryv1.TransferStats).GetModeSwitches),
		ModelCPUCopies:             uint32(u(func(t *ferryv1.TransferStats) uint64 { return uint64(t.GetModel().GetCpuCopies()) })),
		CPUCopiedBytes:             u((*ferryv1.TransferStats).GetCpuCopiedBytes),
		VoluntaryContextSwitches:   u((*ferryv1.TransferStats).GetVoluntaryContextSwitches),
		InvoluntaryContextSwitches: u((*ferryv1.TransferStats).GetInvoluntaryContextSwitches),
		ThreadMeasured:             measuredAll,
	}
	// Per GiB of each run, then the median: a run's CPU goes with its bytes.
	m.CPUNsPerGiB = int64(benchfmt.MedianOf(senders, func(t *ferryv1.TransferStats) float64 {
		return benchfmt.PerGiB(float64(t.GetUserCpu().AsDuration()+t.GetSystemCpu().AsDuration()), t.GetBytes())
	}))
	m.SyscallsPerGiB = benchfmt.MedianOf(senders, func(t *ferryv1.TransferStats) float64 {
		return benchfmt.PerGiB(float64(totalSyscalls(t)), t.GetBytes())
	})
	return m
}

func totalSyscalls(t *ferryv1.TransferStats) uint64 {
	var n uint64
	for _, c := range t.GetSyscalls() {
		n += c
	}
	return n
}

// printComparison prints the medians with one column per strategy and
// one row per figure, each labelled as stats.proto labels it.
func printComparison(out io.Writer, c *comparison) {
	fmt.Fprintf(out, "ferry compare: %s (%s) from %s; median of %d interleaved pulls per strategy to /dev/null, after one warm-up pull\n",
		c.File, humanBytes(c.SizeBytes), c.Server, c.Runs)
	fmt.Fprintf(out, "sender figures; host %s, %d cores, kernel %s, %s\n\n", c.Host, c.Cores, c.Kernel, c.Date)
	// Values align right; names, padded to one width, stay on the left.
	// Cells carry their own two-space gap, as right alignment would put
	// tabwriter's padding in front of the names.
	tw := tabwriter.NewWriter(out, 0, 0, 0, ' ', tabwriter.AlignRight)
	nameW := 0
	for _, row := range compareRows {
		nameW = max(nameW, len(row.name))
	}
	header := fmt.Sprintf("%-*s  %-8s", nameW, "", "")
	for _, s := range c.Strategies {
		header += "\t  " + columnName(s)
	}
	fmt.Fprintln(tw, header+"\t")
	for _, row := range compareRows {
		line := fmt.Sprintf("%-*s  %-8s", nameW, row.name, row.how)
		for _, s := range c.Strategies {
			line += "\t  " + row.value(s)
		}
		fmt.Fprintln(tw, line+"\t")
	}
	tw.Flush()
	if slices.ContainsFunc(c.Strategies, func(s strategyMedian) bool { return !s.ThreadMeasured }) {
		fmt.Fprintln(out, "\n* not every run's data path was on one locked thread: its CPU and switch figures may include other work")
	}
}

// columnName heads a strategy's column: auto says what it chose.
func columnName(s strategyMedian) string {
	if s.Requested == "auto" {
		return "auto (" + s.Strategy + ")"
	}
	return s.Requested
}

var compareRows = []struct {
	name, how string
	value     func(strategyMedian) string
}{
	{"throughput", derived, func(s strategyMedian) string { return humanRate(s.ThroughputBytesPerSecond) }},
	{"duration", measured, func(s strategyMedian) string { return humanDuration(time.Duration(s.DurationNs)) }},
	{"sender CPU user+sys per GiB", derived, func(s strategyMedian) string {
		return humanDuration(time.Duration(s.CPUNsPerGiB)) + threadMark(s)
	}},
	{"CPU user / sys", measured, func(s strategyMedian) string {
		return humanDuration(time.Duration(s.UserCPUNs)) + " / " + humanDuration(time.Duration(s.SystemCPUNs)) + threadMark(s)
	}},
	{"syscalls per GiB", derived, func(s strategyMedian) string { return fmt.Sprintf("%.0f", s.SyscallsPerGiB) }},
	{"syscalls", counted, func(s strategyMedian) string { return fmt.Sprint(s.Syscalls) }},
	{"mode switches (2 x syscalls)", derived, func(s strategyMedian) string { return fmt.Sprint(s.ModeSwitches) }},
	{"CPU copies per round", modelled, func(s strategyMedian) string { return fmt.Sprint(s.ModelCPUCopies) }},
	{"CPU-copied bytes", modelled, func(s strategyMedian) string { return humanBytes(s.CPUCopiedBytes) }},
	{"context switches vol / invol", measured, func(s strategyMedian) string {
		return fmt.Sprintf("%d / %d%s", s.VoluntaryContextSwitches, s.InvoluntaryContextSwitches, threadMark(s))
	}},
}

func threadMark(s strategyMedian) string {
	if s.ThreadMeasured {
		return ""
	}
	return "*"
}
