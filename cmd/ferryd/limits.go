package main

import (
	"flag"
	"fmt"

	"github.com/ferrydev/ferry/internal/cli"
	"github.com/ferrydev/ferry/service"
)

// addLimitFlags registers the flags that bound load and harden the data
// channel, straight into cfg; the returned func checks them after Parse.
func addLimitFlags(fs *flag.FlagSet, cfg *service.Config) func() error {
	d := &cfg.Data
	fs.IntVar(&d.MaxTransfers, "max-transfers", 0, "transfers offered or running at once; past it Download is ResourceExhausted (0: 256)")
	fs.IntVar(&cfg.MaxStreams, "max-streams", 0, "TransferService streams (Download, DownloadTree, Pull, Session) at once, server-wide; past it ResourceExhausted (0: 512)")
	fs.IntVar(&cfg.MaxOpenStreams, "max-open-streams", 0, "health and reflection streams at once, server-wide (they need no credentials); past it ResourceExhausted (0: 64)")
	fs.IntVar(&cfg.MaxFileStreams, "max-file-streams", 0, "the most parallel streams (data connections) a client may split one file over, reported in GetCapabilities; not --max-streams (0: 8)")
	fs.IntVar(&d.MaxHandshakes, "max-handshakes", 0, "data connections still sending their preamble; past it they get verdict 3 (unavailable) and are closed (0: --max-transfers)")
	fs.DurationVar(&d.HandshakeTimeout, "handshake-timeout", 0, "time a data connection gets to send its preamble (0: 10s)")
	fs.IntVar(&d.MaxHandshakesPerIP, "max-handshakes-per-ip", 0, "data connections from one source address still sending their preamble; past it verdict 3 (unavailable), which clients retry (0: 32; -1: no cap of its own)")
	fs.DurationVar(&d.FirstByteTimeout, "first-byte-timeout", 0, "time a new data connection may stay silent before its first byte, counted from when ferryd is ready to read it (0: 2s)")
	fs.BoolVar(&d.BindDataToClient, "bind-data-to-client", false, "take a ticket's data connection only from the IP address that asked for it (NAT or a proxy breaks this)")
	fs.IntVar(&d.PipeSize, "pipe-size", 0, "SPLICE pipe capacity to ask for, in bytes (0: 1 MiB); the kernel may give less")
	fs.Var((*cli.Size)(&d.MaxRate), "max-rate", "server-wide ceiling on the data channel, a `rate` in bytes per second shared by all transfers, with K/M/G (binary) or kB/MB/GB suffixes: 100MiB (0: none)")
	fs.Var((*cli.Size)(&d.FlowRate), "max-flow-rate", "cap each data connection at this `rate` in bytes per second with kernel pacing (SO_MAX_PACING_RATE), with K/M/G (binary) or kB/MB/GB suffixes (0: none)")
	fs.IntVar(&d.SessionConns, "session-conns", 0, "data connections one Session call may bind at once; past it verdict 3 (unavailable) (0: 8)")
	fs.IntVar(&d.MaxBoundConns, "max-bound-conns", 0, "data connections bound to sessions at once, server-wide; past it verdict 3 (unavailable) (0: 1024)")
	fs.IntVar(&cfg.TransferHistory, "transfer-history", 0, "finished transfers ListTransfers keeps, newest first (0: 100)")
	var pullMax cli.Size
	fs.Var(&pullMax, "pull-max-bytes", "the most one Pull may write (a file, or a tree's files together), a `size` with K/M/G/T (binary) or kB/MB/GB/TB suffixes; past it ResourceExhausted (0: no cap; an offer must still fit in the free space, less 16 MiB)")
	fs.DurationVar(&cfg.PullIdleTimeout, "pull-idle-timeout", 0, "fail a Pull whose peer sends nothing for this long, on the data channel or the control plane (0: 60s; negative: no limit)")
	return func() error {
		cfg.PullMaxBytes = uint64(max(pullMax, 0))
		for name, v := range map[string]int64{
			"max-transfers": int64(d.MaxTransfers), "max-streams": int64(cfg.MaxStreams), "max-open-streams": int64(cfg.MaxOpenStreams), "max-file-streams": int64(cfg.MaxFileStreams),
			"max-handshakes": int64(d.MaxHandshakes), "handshake-timeout": int64(d.HandshakeTimeout),
			"pipe-size": int64(d.PipeSize), "ticket-ttl": int64(d.TicketTTL), "first-byte-timeout": int64(d.FirstByteTimeout),
			"shutdown-grace": int64(cfg.ShutdownGrace), "transfer-history": int64(cfg.TransferHistory),
			"pull-max-bytes": int64(pullMax), "session-conns": int64(d.SessionConns), "max-bound-conns": int64(d.MaxBoundConns),
		} {
			if v < 0 {
				return fmt.Errorf("--%s: must not be negative", name)
			}
		}
		if d.MaxHandshakesPerIP < -1 {
			return fmt.Errorf("--max-handshakes-per-ip: want -1, 0 or more, not %d", d.MaxHandshakesPerIP)
		}
		return nil
	}
}
