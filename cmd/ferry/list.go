package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"text/tabwriter"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/spf13/cobra"
)

func newLsCmd(c *common) *cobra.Command {
	var recursive bool
	var pageSize uint
	cmd := &cobra.Command{
		Use:   "ls [flags] [REMOTE_PATH]",
		Short: "List a remote directory (the served root by default)",
		Long: `List a remote directory, every page of it: mode, size, modification time and
path of each entry; a symlink shows -> target and is not followed. --json
prints one ListFilesResponse holding every page's entries.`,
		Example:           "  ferry ls\n  ferry ls -r docs\n  ferry ls docs --json --server files.example:7070",
		Args:              arguments(0, 1),
		ValidArgsFunction: completeRemote(c, 1, true),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			req := &ferryv1.ListFilesRequest{Recursive: recursive, PageSize: uint32(pageSize)}
			if len(args) > 0 {
				req.Path = args[0]
			}
			return ls(cmd.Context(), c, req, cmd.OutOrStdout())
		}),
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "list the whole tree below PATH (symlinks are listed, not followed)")
	cmd.Flags().UintVar(&pageSize, "page-size", 0, "entries asked for per call (0: the server's default, 1000)")
	return cmd
}

// ls lists a remote directory, following every page. Human output is one
// line per entry, printed as pages arrive; --json prints one
// ListFilesResponse holding every page's entries.
func ls(ctx context.Context, c *common, req *ferryv1.ListFilesRequest, out io.Writer) error {
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	all := &ferryv1.ListFilesResponse{}
	for {
		resp, err := cl.API().ListFiles(ctx, req)
		if err != nil {
			return err
		}
		if c.json {
			all.Entries = append(all.Entries, resp.GetEntries()...)
		} else {
			printEntries(out, resp.GetEntries())
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if c.json {
		return printJSON(out, all)
	}
	return nil
}

// printEntries writes entries as "mode size mtime path [-> target]",
// the server's names through safe.
func printEntries(out io.Writer, entries []*ferryv1.FileEntry) {
	for _, e := range entries {
		size := "-"
		if e.GetType() == ferryv1.FileType_FILE_TYPE_REGULAR {
			size = humanBytes(e.GetSize())
		}
		line := fmt.Sprintf("%v %10s  %s  %s", fs.FileMode(e.GetMode()), size,
			e.GetModifyTime().AsTime().Local().Format("2006-01-02 15:04:05"), safe(e.GetPath()))
		if e.GetType() == ferryv1.FileType_FILE_TYPE_SYMLINK {
			line += " -> " + safe(e.GetSymlinkTarget())
		}
		fmt.Fprintln(out, line)
	}
}

func newTransfersCmd(c *common) *cobra.Command {
	var running bool
	cmd := &cobra.Command{
		Use:     "transfers [flags]",
		Short:   "The server's running and recently finished transfers",
		Example: "  ferry transfers\n  ferry transfers --running --json",
		Args:    arguments(0, 0),
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			return transfers(cmd.Context(), c, running, cmd.OutOrStdout())
		}),
	}
	cmd.Flags().BoolVar(&running, "running", false, "list only running transfers")
	return cmd
}

// transfers lists the server's running and recently finished transfers.
func transfers(ctx context.Context, c *common, running bool, out io.Writer) error {
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := cl.API().ListTransfers(ctx, &ferryv1.ListTransfersRequest{RunningOnly: running})
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(out, resp)
	}
	printTransfers(out, resp.GetTransfers(), time.Now())
	return nil
}

// printTransfers writes one row per transfer; failed ones are followed by
// their error. The server's text goes through safe.
func printTransfers(out io.Writer, ts []*ferryv1.TransferInfo, now time.Time) {
	if len(ts) == 0 {
		fmt.Fprintln(out, "no transfers")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSTATE\tPATH\tPEER\tPROGRESS\tRATE\tTOOK\tSTRATEGY")
	var errs []string
	for _, t := range ts {
		took := elapsed(t, now)
		rate := "-"
		if s := took.Seconds(); s > 0 {
			rate = humanRate(float64(t.GetBytesDone()) / s)
		}
		path := safe(t.GetPath())
		if t.GetDestination() != "" {
			path += " -> " + safe(t.GetDestination())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", safe(t.GetTransferId()), enumWord(t.GetKind().String(), "TRANSFER_KIND_"),
			enumWord(t.GetState().String(), "TRANSFER_STATE_"), path, safe(t.GetPeer()), progress(t), rate, humanDuration(took),
			strategyName(t.GetStrategy()))
		if t.GetState() == ferryv1.TransferState_TRANSFER_STATE_FAILED {
			errs = append(errs, fmt.Sprintf("%s: %s (%s)", safe(t.GetTransferId()), safe(t.GetError()), safe(t.GetErrorCode())))
		}
	}
	tw.Flush()
	for _, e := range errs {
		fmt.Fprintln(out, e)
	}
}

// progress is "45% of 64.0 MiB", with files for a tree.
func progress(t *ferryv1.TransferInfo) string {
	s := humanBytes(t.GetBytesDone())
	if total := t.GetBytesTotal(); total > 0 {
		s = fmt.Sprintf("%d%% of %s", t.GetBytesDone()*100/total, humanBytes(total))
	}
	if t.GetFilesTotal() > 0 {
		s += fmt.Sprintf(", %d/%d files", t.GetFilesDone(), t.GetFilesTotal())
	}
	return s
}

// elapsed is how long t ran, or has run until now.
func elapsed(t *ferryv1.TransferInfo, now time.Time) time.Duration {
	end := now
	if t.GetEndTime() != nil {
		end = t.GetEndTime().AsTime()
	}
	return max(end.Sub(t.GetStartTime().AsTime()), 0)
}

// enumWord turns "TRANSFER_KIND_DOWNLOAD_TREE" into "download-tree".
func enumWord(name, prefix string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, prefix)), "_", "-")
}
