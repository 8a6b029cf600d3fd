package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
)

// pullTree runs `ferry pull -r`: the directory src into the new
// directory dest, then the summary (or, with --json, the TreeReport). An
// existing dest (or entry in it) without --overwrite says which flag
// merges into it.
func pullTree(ctx context.Context, cl *client.Client, src, dest string, opts client.TreeOptions, bar *progressBar, json bool, out io.Writer) error {
	opts.Progress = bar.Update
	if opts.DryRun {
		opts.Changes = func(c *ferryv1.TreeChange) { printChange(out, c, json) }
	}
	r, err := cl.DownloadTree(ctx, src, dest, opts)
	bar.Finish(err == nil, r.GetBytes(), r.GetBytes())
	if errors.Is(err, client.ErrExists) && !opts.Overwrite && opts.Sync == ferryv1.SyncLevel_SYNC_LEVEL_UNSPECIFIED {
		return fmt.Errorf("%w (use --overwrite to merge into it)", err)
	}
	if err != nil {
		return err
	}
	if json {
		return printJSON(out, r)
	}
	printTreeReport(out, src, dest, r)
	return nil
}

// printTreeReport prints a TreeReport's summary line and its sums.
func printTreeReport(out io.Writer, src, dest string, r *ferryv1.TreeReport) {
	fmt.Fprintf(out, "%s → %s: %d files, %d directories, %d symlinks, %d skipped; %s in %s (%s) over %d data connections",
		src, dest, r.GetFiles(), r.GetDirectories(), r.GetSymlinks(), r.GetSkipped(),
		humanBytes(r.GetBytes()), humanDuration(r.GetDuration().AsDuration()), humanRate(r.GetThroughputBytesPerSecond()),
		r.GetDataConnections())
	if r.GetUnchanged() > 0 || r.GetReplaced() > 0 || r.GetDeleted() > 0 {
		fmt.Fprintf(out, "; %d unchanged (%s matched, not moved), %d replaced, %d deleted",
			r.GetUnchanged(), humanBytes(r.GetUnchangedBytes()), r.GetReplaced(), r.GetDeleted())
	}
	if r.GetDryRun() {
		fmt.Fprint(out, "; dry run: nothing changed, the counts are what would have")
	}
	if r.GetInlineFiles() > 0 {
		fmt.Fprintf(out, ", %d files inline", r.GetInlineFiles())
	}
	fmt.Fprintln(out)
	if r.GetFiles() == 0 || r.GetDryRun() { // a dry run moved nothing: no figures
		return
	}
	for _, side := range []struct {
		name string
		st   *ferryv1.TransferStats
	}{{"sender", r.GetSender()}, {"receiver", r.GetReceiver()}} {
		name := strategyName(side.st.GetStrategy())
		if side.st.GetStrategy() == ferryv1.Strategy_STRATEGY_UNSPECIFIED {
			name = "mixed strategies"
		}
		fmt.Fprintf(out, "  %-8s  %s, %d rounds, syscalls %s, CPU user %s system %s (summed over files)\n",
			side.name, name, side.st.GetRounds(), syscalls(side.st.GetSyscalls()),
			humanDuration(side.st.GetUserCpu().AsDuration()), humanDuration(side.st.GetSystemCpu().AsDuration()))
	}
}

// printChange prints one change of a dry run: a line (the server's path
// escaped), or with --json the TreeChange.
func printChange(out io.Writer, c *ferryv1.TreeChange, json bool) {
	if json {
		printJSON(out, c)
		return
	}
	verb := strings.ToLower(strings.TrimPrefix(c.GetAction().String(), "ACTION_"))
	if c.GetAction() == ferryv1.TreeChange_ACTION_DELETE {
		fmt.Fprintf(out, "%-7s %s\n", verb, safe(c.GetPath()))
		return
	}
	fmt.Fprintf(out, "%-7s %s (%s)\n", verb, safe(c.GetPath()), humanBytes(c.GetSize()))
}
