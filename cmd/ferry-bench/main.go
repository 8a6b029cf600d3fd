// Command ferry-bench is Ferry's benchmark: Ferry side by side with
// iperf3, nginx + curl, a gRPC streaming download and tar c | nc on
// 127.0.0.1, in interleaved rounds, written to docs/bench as Markdown,
// JSON and an SVG chart. Run it from the module root:
//
//	go run ./cmd/ferry-bench [-runs 5] [-size 2GiB] [-out docs/bench]
//
// It installs iperf3, nginx and curl with apt-get when they are missing
// and it runs as root. It exits non-zero only when something could not be
// measured, never for a missed target. The logic is in internal/bench.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "helper" {
		if err := bench.Helper(ctx, os.Args[2:]); err != nil {
			log.Fatal("ferry-bench helper: ", err)
		}
		return
	}
	cfg, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferry-bench:", err)
		os.Exit(2)
	}
	if err := run(ctx, cfg); err != nil {
		log.Fatal("ferry-bench: ", err)
	}
}

func run(ctx context.Context, cfg bench.Config) error {
	res, err := bench.Run(ctx, cfg)
	if res != nil {
		bench.RenderMarkdown(os.Stdout, res)
		fmt.Println()
		bench.PrintTargets(os.Stdout, res.Targets)
		fmt.Printf("\nwrote results.md, results.json and throughput.svg to %s\n", cfg.Out)
	}
	return err
}

func parse(args []string) (bench.Config, error) {
	cfg := bench.Config{Log: os.Stderr}
	fs := flag.NewFlagSet("ferry-bench", flag.ContinueOnError)
	fs.IntVar(&cfg.Runs, "runs", 5, "interleaved rounds; the tables show medians")
	size := fs.String("size", "2GiB", "size of the large file (256MiB, 2GiB, ...)")
	fs.IntVar(&cfg.LargeRepeat, "large-repeat", 3, "times each large-null path moves the file per round; the round's sample sums them")
	fs.StringVar(&cfg.Out, "out", "docs/bench", "directory for results.md, results.json and throughput.svg")
	fs.StringVar(&cfg.Dir, "dir", "", "parent of the work directory for fixtures and logs (default: the system temp dir)")
	fs.StringVar(&cfg.DestDir, "dest-dir", "", "where the to-a-file workloads land (default: the work directory)")
	fs.IntVar(&cfg.SmallCount, "small-count", 1000, "4 KiB pulls per path and round")
	fs.IntVar(&cfg.MediumCount, "medium-count", 500, "1 MiB pulls per path and round")
	fs.IntVar(&cfg.DirFiles, "dir-files", 10000, "4 KiB files in the directory workload")
	fs.IntVar(&cfg.DirConcurrency, "dir-concurrency", 4, "Ferry's concurrent pulls in the directory workload")
	streamsSize := fs.String("streams-size", "1GiB", "size of the streams workload's file")
	flowRate := fs.String("flow-rate", "200MB", "per-connection pace of the streams workload's held ferryd (--max-flow-rate), bytes per second (200MB = 200,000,000)")
	fs.DurationVar(&cfg.MemProbe, "mem-probe", 2*time.Second, "length of each ferryd memory probe phase (negative: skip)")
	only := fs.String("only", "", "comma-separated workloads to run: "+strings.Join(bench.Workloads, ","))
	fs.BoolVar(&cfg.NoInstall, "no-install", false, "never run apt-get; missing peers are an error")
	fs.StringVar(&cfg.Ferryd, "ferryd", "", "prebuilt ferryd binary (default: build ./cmd/ferryd)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	if cfg.Size, err = bench.ParseSize(*size); err != nil {
		return cfg, err
	}
	if cfg.StreamsSize, err = bench.ParseSize(*streamsSize); err != nil {
		return cfg, fmt.Errorf("-streams-size: %w", err)
	}
	if cfg.FlowRate, err = bench.ParseSize(*flowRate); err != nil {
		return cfg, fmt.Errorf("-flow-rate: %w", err)
	}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
		for _, w := range cfg.Only {
			if !slices.Contains(bench.Workloads, w) {
				return cfg, fmt.Errorf("-only: unknown workload %q (want %s)", w, strings.Join(bench.Workloads, ","))
			}
		}
	}
	if cfg.Runs < 1 || cfg.LargeRepeat < 1 || cfg.SmallCount < 1 || cfg.MediumCount < 1 || cfg.DirFiles < 1 || cfg.DirConcurrency < 1 {
		return cfg, fmt.Errorf("-runs, -large-repeat, -small-count, -medium-count, -dir-files and -dir-concurrency must be at least 1")
	}
	return cfg, nil
}
