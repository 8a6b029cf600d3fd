package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/internal/cli"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// common are the flags every command takes.
type common struct {
	server string
	json   bool
	sec    client.Security
}

func newFlags(name string, c *common) *flag.FlagSet {
	fs := flag.NewFlagSet("ferry "+name, flag.ContinueOnError)
	fs.StringVar(&c.server, "server", "127.0.0.1:7070", "ferryd control-plane address")
	fs.BoolVar(&c.json, "json", false, "print the API messages as JSON")
	addSecurityFlags(fs, &c.sec)
	return fs
}

func parse(fs *flag.FlagSet, args []string, min, max int) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cli.ApplyEnv(fs); err != nil {
		return err
	}
	if fs.NArg() < min || fs.NArg() > max {
		return fmt.Errorf("%s: want %d to %d arguments, got %d", fs.Name(), min, max, fs.NArg())
	}
	return nil
}

func pull(ctx context.Context, args []string, out io.Writer) error {
	var c common
	var opts client.DownloadOptions
	fs := newFlags("pull", &c)
	strategy := fs.String("strategy", "auto", "copy strategy: auto, read-write, mmap, sendfile or splice")
	fs.Uint64Var(&opts.Offset, "offset", 0, "first byte to fetch")
	fs.Uint64Var(&opts.Length, "length", 0, "bytes to fetch (0: to the end)")
	fs.BoolVar(&opts.Resume, "resume", false, "continue from DEST.partial if a failed pull left one, and keep DEST.partial if this pull fails")
	var limit cli.Size
	fs.Var(&limit, "limit-rate", "pace the transfer to at most this `rate` in bytes per second, with K/M/G (binary) or kB/MB/GB suffixes: 50MiB (0: no limit; the server's --max-rate still applies)")
	noProgress := fs.Bool("no-progress", false, "draw no progress bar (none is drawn unless standard error is a terminal)")
	checksum := fs.String("checksum", "none", "verify the bytes end to end before keeping the file: crc32c, sha256 or none")
	recursive := fs.Bool("r", false, "copy the directory REMOTE_PATH and everything in it into the new directory DEST")
	concurrency := fs.Int("concurrency", 4, "with -r: files in flight at once, sharing a few data connections")
	overwrite := fs.Bool("overwrite", false, "with -r: merge into DEST if it exists (files of the tree replace those of the same name; nothing is deleted)")
	fs.BoolVar(&opts.Receive.ReadWrite, "receive-read", false, "receive by read(2) into a buffer and write(2) out, instead of splicing socket -> pipe -> file (or /dev/null) with no copy through user space")
	inlineMax := fs.Int64("inline-max", -1, "take a range of at most this many `bytes` inside the offer, with no data connection; the server caps it at 64 KiB (default: 64 KiB with --strategy auto; 0 with a named strategy, which asks for that copy path)")
	if err := parse(fs, args, 1, 2); err != nil {
		return err
	}
	var err error
	if opts.Strategy, err = client.ParseStrategy(*strategy); err != nil {
		return err
	}
	if opts.Checksum, err = client.ParseChecksum(*checksum); err != nil {
		return err
	}
	opts.InlineMax = uint64(max(*inlineMax, 0))
	if *inlineMax < 0 && opts.Strategy == ferryv1.Strategy_STRATEGY_UNSPECIFIED {
		opts.InlineMax = client.MaxInline
	}
	opts.RateLimit = uint64(limit)
	src := fs.Arg(0)
	dest := fs.Arg(1)
	if dest == "" {
		dest = path.Base(src)
	}
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	bar := newProgressBar(os.Stderr, !*noProgress && isTerminal(os.Stderr.Fd()), time.Now())
	if *recursive { // tree.go
		return pullTree(ctx, cl, src, dest, client.TreeOptions{
			Strategy: opts.Strategy, Checksum: opts.Checksum, RateLimit: opts.RateLimit, InlineMax: opts.InlineMax,
			Concurrency: *concurrency, Overwrite: *overwrite, Receive: opts.Receive,
		}, bar, c.json, out)
	}
	opts.Progress = bar.Update
	start := time.Now()
	report, err := cl.Download(ctx, src, dest, opts)
	wall := time.Since(start)
	bar.Finish(err == nil, report.GetSender().GetBytes(), report.GetSender().GetBytes())
	if err != nil {
		return keptHint(err, dest, opts.Resume)
	}
	if held := report.GetOffset() - opts.Offset; opts.Resume && held > 0 && !c.json {
		fmt.Fprintf(out, "resumed %s: %d bytes were already in %s.partial\n", dest, held, dest)
	}
	if dest == "-" { // the bytes went to standard output: the report goes to stderr
		if c.json {
			return printJSON(os.Stderr, report)
		}
		printReport(os.Stderr, src, dest, report, wall)
		return nil
	}
	if c.json {
		return printJSON(out, report)
	}
	printReport(out, src, dest, report, wall)
	return nil
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

func stat(ctx context.Context, args []string, out io.Writer) error {
	var c common
	fs := newFlags("stat", &c)
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := cl.Stat(ctx, fs.Arg(0))
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

func caps(ctx context.Context, args []string, out io.Writer) error {
	var c common
	fs := newFlags("caps", &c)
	if err := parse(fs, args, 0, 0); err != nil {
		return err
	}
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
	return nil
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
