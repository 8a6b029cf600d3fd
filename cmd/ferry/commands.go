package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/internal/cli"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// common are the flags every command takes: the root's persistent flags.
type common struct {
	server string
	json   bool
	sec    client.Security
}

func newPullCmd(c *common) *cobra.Command {
	p := &pullArgs{common: c}
	cmd := &cobra.Command{
		Use:   "pull [flags] REMOTE_PATH [DEST]",
		Short: "Fetch a file, several files, or a directory tree (-r)",
		Long: `Fetch REMOTE_PATH into DEST (default: its base name in this directory; - is
standard output, /dev/null discards). With several REMOTE_PATHs the last
argument is an existing directory DIR: each file lands as DIR/<base name>,
over one session. With -r, REMOTE_PATH is a directory copied into the new
directory DEST. The report goes to standard output (to standard error when
DEST is -).`,
		Example: `  ferry pull big.iso /tmp/big.iso
  ferry pull big.iso /tmp/big.iso --strategy mmap --checksum sha256
  ferry pull --limit-rate 50MiB --streams 4 big.iso big.iso
  ferry pull notes.txt models/m.bin /tmp/pulled     # several files into a directory
  ferry pull -r docs /tmp/docs --concurrency 8       # a directory tree
  ferry pull -r --sync docs /tmp/docs                # again: only what changed moves
  ferry pull -r --sync=checksum --delete --dry-run docs /tmp/docs   # what a mirror would change
  ferry pull big.iso - | sha256sum                   # to standard output
  ferry pull -- -odd-name.txt odd.txt                # a remote path that starts with -`,
		Args:              arguments(1, -1),
		ValidArgsFunction: completeRemote(c, 1, false),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			return p.run(cmd.Context(), args, cmd.OutOrStdout())
		}),
	}
	addPullFlags(cmd.Flags(), p)
	cmd.RegisterFlagCompletionFunc("sync", completeValues(slices.Sorted(maps.Keys(syncLevels))...))
	cmd.RegisterFlagCompletionFunc("strategy", completeValues("auto", "read-write", "mmap", "sendfile", "splice"))
	cmd.RegisterFlagCompletionFunc("checksum", completeValues("none", "crc32c", "sha256"))
	return cmd
}

// completeValues completes a flag's value from a fixed list.
func completeValues(vals ...string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, v := range vals {
			if strings.HasPrefix(v, prefix) {
				out = append(out, v)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// run is ferry pull, its flags parsed.
func (p *pullArgs) run(ctx context.Context, args []string, out io.Writer) error {
	if err := p.resolve(); err != nil {
		return usageError{err}
	}
	if len(args) > 2 { // multi.go
		if err := p.manyAllowed(); err != nil {
			return usageError{err}
		}
		cl, err := p.dial()
		if err != nil {
			return err
		}
		defer cl.Close()
		return p.pullMany(ctx, cl, args[:len(args)-1], args[len(args)-1], out)
	}
	src, dest := args[0], path.Base(args[0])
	if len(args) == 2 {
		dest = args[1]
	} else if p.syncLevel != ferryv1.SyncLevel_SYNC_LEVEL_UNSPECIFIED {
		// A sync may replace and delete what DEST holds: it is named,
		// never derived ("sub/.." would make it ".").
		return usagef("--sync needs DEST: name the directory it may change")
	}
	cl, err := p.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	bar := newProgressBar(os.Stderr, !p.noProgress && isTerminal(os.Stderr.Fd()), time.Now())
	if p.recursive { // tree.go
		return pullTree(ctx, cl, src, dest, client.TreeOptions{
			Strategy: p.opts.Strategy, Checksum: p.opts.Checksum, RateLimit: p.opts.RateLimit, InlineMax: p.opts.InlineMax,
			Concurrency: p.concurrency, Overwrite: p.overwrite, Receive: p.opts.Receive, MaxBytes: p.opts.MaxBytes,
			Sync: p.syncLevel, Delete: p.delete, DryRun: p.dryRun,
		}, bar, p.json, out)
	}
	return p.pullFile(ctx, cl, src, dest, bar, out)
}

// pullArgs are ferry pull's flags, and the download options they make.
type pullArgs struct {
	*common
	opts                  client.DownloadOptions
	strategy, checksum    string
	limit, maxBytes       cli.Size
	inlineMax             int64
	noProgress, recursive bool
	overwrite             bool
	concurrency           int
	sync                  string // --sync's level; "" when not given
	syncLevel             ferryv1.SyncLevel
	delete, dryRun        bool
}

// syncLevels are --sync's values.
var syncLevels = map[string]ferryv1.SyncLevel{
	"exists": ferryv1.SyncLevel_SYNC_LEVEL_EXISTS, "size": ferryv1.SyncLevel_SYNC_LEVEL_SIZE,
	"mtime": ferryv1.SyncLevel_SYNC_LEVEL_MTIME, "checksum": ferryv1.SyncLevel_SYNC_LEVEL_CHECKSUM,
}

// addPullFlags defines ferry pull's flags on fs, bound to p: the one
// place a pull flag is added.
func addPullFlags(fs *pflag.FlagSet, p *pullArgs) {
	fs.StringVar(&p.strategy, "strategy", "auto", "copy strategy: auto, read-write, mmap, sendfile or splice")
	fs.Uint64Var(&p.opts.Offset, "offset", 0, "first byte to fetch")
	fs.Uint64Var(&p.opts.Length, "length", 0, "bytes to fetch (0: to the end)")
	fs.BoolVar(&p.opts.Resume, "resume", false, "continue from DEST.partial if a failed pull left one, and keep DEST.partial if this pull fails")
	fs.Var(&p.limit, "limit-rate", "pace the transfer to at most this `rate` in bytes per second, with K/M/G (binary) or kB/MB/GB suffixes: 50MiB (0: no limit; the server's --max-rate still applies)")
	fs.BoolVar(&p.noProgress, "no-progress", false, "draw no progress bar (none is drawn unless standard error is a terminal)")
	fs.StringVar(&p.checksum, "checksum", "none", "verify the bytes end to end before keeping the file: crc32c, sha256 or none")
	fs.BoolVarP(&p.recursive, "recursive", "r", false, "copy the directory REMOTE_PATH and everything in it into the new directory DEST")
	fs.IntVar(&p.concurrency, "concurrency", 4, "with -r or several REMOTE_PATHs: files in flight at once, sharing a few data connections")
	fs.IntVar(&p.opts.Streams, "streams", 1, "split the file over up to N data connections at once (parallel streams), each part written at its offset; no part under 8 MiB, and at most the server's max_streams; DEST - takes 1")
	fs.BoolVar(&p.overwrite, "overwrite", false, "with -r: merge into DEST if it exists (files of the tree replace those of the same name; nothing is deleted)")
	fs.BoolVar(&p.opts.Receive.ReadWrite, "receive-read", false, "receive by read(2) into a buffer and write(2) out, instead of splicing socket -> pipe -> file (or /dev/null) with no copy through user space")
	fs.Var(&p.maxBytes, "max-bytes", "refuse a file (or with -r a tree's files together) larger than this `size`, with K/M/G/T (binary) or kB/MB/GB/TB suffixes, before writing it (0: no cap; an offer must still fit in the destination's free space, less 16 MiB)")
	fs.DurationVar(&p.opts.Receive.IdleTimeout, "idle-timeout", 0, "fail when the server sends nothing for this long: no byte on the data channel, no message while no file is in flight (0: 60s; negative: no limit)")
	fs.StringVar(&p.sync, "sync", "", "with -r: sync into DEST, which may exist: skip the files DEST holds that match at this `level` (exists, size, mtime: size and modification time, checksum: size and SHA-256, hashed on both sides), replace the others whole; --sync alone is mtime")
	fs.Lookup("sync").NoOptDefVal = "mtime"
	fs.BoolVar(&p.delete, "delete", false, "with --sync: once every file has landed, remove what DEST holds and the tree does not (never outside DEST, never through a symlink), and let a file or symlink replace a directory")
	fs.BoolVar(&p.dryRun, "dry-run", false, "with --sync: print what would be sent, replaced and deleted, and change nothing")
	fs.Int64Var(&p.inlineMax, "inline-max", -1, "take a range of at most this many `bytes` inside the offer, with no data connection; the server caps it at 64 KiB (default: 64 KiB with --strategy auto; 0 with a named strategy, which asks for that copy path)")
}

// resolve fills in the download options the parsed flags name.
func (p *pullArgs) resolve() error {
	var err error
	if p.opts.Strategy, err = client.ParseStrategy(p.strategy); err != nil {
		return err
	}
	if p.opts.Checksum, err = client.ParseChecksum(p.checksum); err != nil {
		return err
	}
	p.opts.InlineMax = uint64(max(p.inlineMax, 0))
	if p.inlineMax < 0 && p.opts.Strategy == ferryv1.Strategy_STRATEGY_UNSPECIFIED {
		p.opts.InlineMax = client.MaxInline
	}
	p.opts.RateLimit = uint64(p.limit)
	p.opts.MaxBytes = uint64(max(p.maxBytes, 0))
	switch {
	case p.opts.Streams < 1:
		return fmt.Errorf("--streams %d: want 1 or more", p.opts.Streams)
	case p.recursive && p.opts.Streams > 1:
		return errors.New("--streams splits one file; -r moves files whole, --concurrency of them at once")
	}
	if p.sync != "" {
		level, ok := syncLevels[p.sync]
		switch {
		case !ok:
			return fmt.Errorf("--sync=%s: want exists, size, mtime or checksum", p.sync)
		case !p.recursive:
			return errors.New("--sync is for a directory: use it with -r")
		}
		p.syncLevel = level
	} else if p.delete || p.dryRun {
		return errors.New("--delete and --dry-run need --sync (a copy deletes nothing)")
	}
	return nil
}

// pullFile downloads one file and prints its report: to out, or to
// standard error when the bytes went to standard output.
func (p *pullArgs) pullFile(ctx context.Context, cl *client.Client, src, dest string, bar *progressBar, out io.Writer) error {
	opts := p.opts
	opts.Progress = bar.Update
	start := time.Now()
	report, err := cl.Download(ctx, src, dest, opts)
	wall := time.Since(start)
	bar.Finish(err == nil, report.GetSender().GetBytes(), report.GetSender().GetBytes())
	if err != nil {
		return keptHint(err, dest, opts.Resume)
	}
	if held := heldBefore(report, opts.Offset); opts.Resume && held > 0 && !p.json {
		fmt.Fprintf(out, "resumed %s: %d bytes were already in %s.partial\n", dest, held, dest)
	}
	if dest == "-" { // the bytes went to standard output: the report goes to stderr
		out = os.Stderr
	}
	if p.json {
		return printJSON(out, report)
	}
	printReport(out, src, dest, report, wall)
	return nil
}

// heldBefore is how many bytes of a resumed pull's range the partial
// file already held: those before the report's offset, or, over parallel
// streams, those of the range no part moved.
func heldBefore(r *ferryv1.Report, offset uint64) uint64 {
	if len(r.GetParts()) == 0 {
		return r.GetOffset() - offset
	}
	held := r.GetLength()
	for _, p := range r.GetParts() {
		held -= p.GetLength()
	}
	return held
}

// keptHint adds to a failed resumable pull's error what it kept.
func keptHint(err error, dest string, resume bool) error {
	fi, serr := os.Stat(dest + ".partial")
	if !resume || serr != nil || errors.Is(err, client.ErrNotResumable) {
		return err
	}
	hint := fmt.Sprintf("; kept %s.partial (%d bytes): run the same pull with --resume to continue", dest, fi.Size())
	if st, ok := status.FromError(err); ok {
		return status.Error(st.Code(), st.Message()+hint)
	}
	return errors.New(err.Error() + hint)
}

func newStatCmd(c *common) *cobra.Command {
	return &cobra.Command{
		Use:               "stat [flags] REMOTE_PATH",
		Short:             "Describe a remote path: kind, size, mode, modification time",
		Example:           "  ferry stat big.iso\n  ferry stat --json docs/guide.md\n  ferry stat -- -odd-name.txt",
		Args:              arguments(1, 1),
		ValidArgsFunction: completeRemote(c, 1, false),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			return stat(cmd.Context(), c, args[0], cmd.OutOrStdout())
		}),
	}
}

func stat(ctx context.Context, c *common, remote string, out io.Writer) error {
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := cl.Stat(ctx, remote)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(out, resp)
	}
	kind := "file"
	if resp.GetIsDir() {
		kind = "directory"
	}
	fmt.Fprintf(out, "%s: %s, %s (%d bytes), mode %v, modified %s\n", safe(resp.GetPath()), kind,
		humanBytes(resp.GetSize()), resp.GetSize(), fsMode(resp.GetMode()), resp.GetModifyTime().AsTime().Local().Format("2006-01-02 15:04:05"))
	return nil
}

func newCapsCmd(c *common) *cobra.Command {
	return &cobra.Command{
		Use:     "caps [flags]",
		Short:   "What the server supports: strategies, how auto picks, parallel streams",
		Example: "  ferry caps --server files.example:7070\n  ferry caps --json",
		Args:    arguments(0, 0),
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			return caps(cmd.Context(), c, cmd.OutOrStdout())
		}),
	}
}

func caps(ctx context.Context, c *common, out io.Writer) error {
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := cl.Capabilities(ctx)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(out, resp)
	}
	fmt.Fprintf(out, "server version:   %s\ndata address:     %s\nstrategies:       %v\ndefault strategy: %v (under %s: %v)\n",
		safe(resp.GetServerVersion()), safe(resp.GetDataAddress()), strategyNames(resp.GetStrategies()), strategyName(resp.GetDefaultStrategy()),
		humanBytes(resp.GetSmallBelow()), strategyName(resp.GetDefaultSmallStrategy()))
	printAuto(out, resp.GetAuto())
	fmt.Fprintf(out, "parallel streams: at most %d per file\nkernel TLS:       %v (not used yet)\n", max(resp.GetMaxStreams(), 1), resp.GetKernelTls())
	return nil
}

// printAuto prints how the server picks a strategy and, when it measures,
// each class's pick and every strategy's MEASURED median rate there.
func printAuto(out io.Writer, p *ferryv1.AutoPolicy) {
	if len(p.GetClasses()) == 0 {
		fmt.Fprintf(out, "auto:             fixed order\n")
		return
	}
	fmt.Fprintf(out, "auto:             measured (seed: %s, explores %.0f%% of auto transfers)\n  objective: %s\n",
		safe(p.GetSeed()), 100*p.GetExploreShare(), safe(p.GetObjective()))
	var labels []string
	width := 0
	for _, c := range p.GetClasses() {
		hi := "∞"
		if c.GetBelowBytes() > 0 {
			hi = humanBytes(c.GetBelowBytes())
		}
		label := fmt.Sprintf("%-8s [%s, %s)", safe(c.GetNetwork()), humanBytes(c.GetMinBytes()), hi)
		if c.GetSink() != "" {
			label += " to a " + safe(c.GetSink())
		}
		labels, width = append(labels, label+":"), max(width, utf8.RuneCountInString(label)+1)
	}
	for i, c := range p.GetClasses() {
		var costs []string
		for _, sc := range c.GetCosts() {
			v := "-"
			switch {
			case sc.GetFailed():
				v = "failed"
			case sc.GetSamples() > 0:
				v = fmt.Sprintf("%.2f GB/s (%d)", sc.GetBytesPerSecond()/1e9, sc.GetSamples())
			}
			costs = append(costs, strategyName(sc.GetStrategy())+" "+v)
		}
		steal := ""
		if n := c.GetLeftOutForSteal(); n > 0 {
			steal = fmt.Sprintf("; %d left out for steal", n)
		}
		fmt.Fprintf(out, "  %-*s %-10s MEASURED %s%s\n", width, labels[i], strategyName(c.GetPick()), strings.Join(costs, ", "), steal)
	}
}

func printJSON(out io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{EmitUnpopulated: true, Multiline: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, string(b))
	return err
}

func strategyName(s ferryv1.Strategy) string {
	if s == ferryv1.Strategy_STRATEGY_UNSPECIFIED {
		return "AUTO"
	}
	return strings.TrimPrefix(s.String(), "STRATEGY_")
}

func strategyNames(ss []ferryv1.Strategy) []string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = strategyName(s)
	}
	return names
}
