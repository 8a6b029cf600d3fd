package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/internal/apiconv"
	"github.com/ferrydev/ferry/internal/cli"
	"github.com/ferrydev/ferry/transfer"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// common are the flags every command takes.
type common struct {
	server string
	json   bool
}

func newFlags(name string, c *common) *flag.FlagSet {
	fs := flag.NewFlagSet("ferry "+name, flag.ContinueOnError)
	fs.StringVar(&c.server, "server", "127.0.0.1:7070", "ferryd control-plane address")
	fs.BoolVar(&c.json, "json", false, "print the API messages as JSON")
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
	if err := parse(fs, args, 1, 2); err != nil {
		return err
	}
	st, err := transfer.ParseStrategy(*strategy)
	if err != nil {
		return err
	}
	opts.Strategy = apiconv.Strategy(st)
	src := fs.Arg(0)
	dest := fs.Arg(1)
	if dest == "" {
		dest = path.Base(src)
	}
	cl, err := client.Dial(c.server)
	if err != nil {
		return err
	}
	defer cl.Close()
	report, err := cl.Download(ctx, src, dest, opts)
	if err != nil {
		return err
	}
	if dest == "-" { // the bytes went to standard output: the report goes to stderr
		if c.json {
			return printJSON(os.Stderr, report)
		}
		printReport(os.Stderr, src, dest, report)
		return nil
	}
	if c.json {
		return printJSON(out, report)
	}
	printReport(out, src, dest, report)
	return nil
}

func stat(ctx context.Context, args []string, out io.Writer) error {
	var c common
	fs := newFlags("stat", &c)
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	cl, err := client.Dial(c.server)
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
	fmt.Fprintf(out, "%s: %s, %s (%d bytes), mode %v, modified %s\n", resp.GetPath(), kind,
		humanBytes(resp.GetSize()), resp.GetSize(), fsMode(resp.GetMode()), resp.GetModifyTime().AsTime().Local().Format("2006-01-02 15:04:05"))
	return nil
}

func caps(ctx context.Context, args []string, out io.Writer) error {
	var c common
	fs := newFlags("caps", &c)
	if err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	cl, err := client.Dial(c.server)
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
	fmt.Fprintf(out, "server version:   %s\ndata address:     %s\nstrategies:       %v\ndefault strategy: %v\n",
		resp.GetServerVersion(), resp.GetDataAddress(), strategyNames(resp.GetStrategies()), strategyName(resp.GetDefaultStrategy()))
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
	st, err := apiconv.FromStrategy(s)
	if err != nil {
		return s.String()
	}
	return st.String()
}

func strategyNames(ss []ferryv1.Strategy) []string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = strategyName(s)
	}
	return names
}
