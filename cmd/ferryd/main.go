// Command ferryd serves a directory: a gRPC control plane that negotiates
// transfers and a TCP data channel that moves the bytes. Every flag can
// also be set through its FERRY_* environment variable (--data-listen is
// FERRY_DATA_LISTEN); a flag on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ferrydev/ferry/internal/cli"
	buildversion "github.com/ferrydev/ferry/internal/version"
	"github.com/ferrydev/ferry/service"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// errVersion is parse's answer to --version: print it and exit 0.
var errVersion = errors.New("version requested")

func main() {
	cfg, err := parse(os.Args[1:])
	switch {
	case errors.Is(err, errVersion):
		fmt.Print(buildversion.Get(version))
		return
	case errors.Is(err, flag.ErrHelp):
		return // the flag package printed the usage
	case err != nil:
		fmt.Fprintln(os.Stderr, "ferryd:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		log.Fatal("ferryd: ", err)
	}
}

func run(ctx context.Context, cfg service.Config) error {
	flush, err := setupTracing(ctx, &cfg)
	if err != nil {
		return err
	}
	defer flush()
	n, err := service.NewNode(cfg)
	if err != nil {
		return err
	}
	return n.Run(ctx)
}

func parse(args []string) (service.Config, error) {
	var cfg service.Config
	fs := flag.NewFlagSet("ferryd", flag.ContinueOnError)
	fs.StringVar(&cfg.Root, "root", ".", "directory to serve")
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:7070", "gRPC control-plane address")
	fs.StringVar(&cfg.DataListen, "data-listen", "127.0.0.1:7071", "TCP data-channel address")
	fs.StringVar(&cfg.AdvertiseData, "advertise-data", "", "data address put in offers, host or host:port (default: the data listener's)")
	fs.DurationVar(&cfg.Data.TicketTTL, "ticket-ttl", 0, "how long a ticket waits for its data connection (0: 30s)")
	fs.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", 0, "time running transfers get to finish on SIGTERM (0: 20s)")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "address of an unauthenticated HTTP listener serving Prometheus /metrics (default: none)")
	fs.StringVar(&cfg.HealthListen, "health-listen", "", "address of a plaintext gRPC listener serving grpc.health.v1 alone, for probes that cannot speak TLS (default: none)")
	sec := addSecurityFlags(fs)
	checkLimits := addLimitFlags(fs, &cfg)
	applyAuto := addAutoFlags(fs, &cfg)
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if err := cli.ApplyEnv(fs, "version"); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *showVersion {
		return cfg, errVersion
	}
	if err := sec.apply(&cfg); err != nil {
		return cfg, err
	}
	if err := checkLimits(); err != nil {
		return cfg, err
	}
	if err := applyAuto(); err != nil {
		return cfg, err
	}
	logger, err := newLogger(*logFormat, *logLevel)
	if err != nil {
		return cfg, err
	}
	cfg.Logger, cfg.Version = logger, version
	return cfg, nil
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: want text or json, not %q", format)
}
