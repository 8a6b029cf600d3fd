// Command ferry pulls files from a ferryd and reports what each transfer
// cost.
//
//	ferry pull [flags] REMOTE_PATH [DEST]   fetch a file (DEST: - or /dev/null too)
//	ferry pull [flags] REMOTE_PATH... DIR   fetch several files into DIR, over one session
//	ferry pull -r [flags] REMOTE_DIR DEST   copy a directory tree (--concurrency N)
//	ferry stat [flags] REMOTE_PATH          describe a remote path
//	ferry caps [flags]                      what the server supports
//	ferry ls [flags] [-r] [REMOTE_PATH]     list a remote directory
//	ferry transfers [flags] [--running]     the server's running and recent transfers
//	ferry compare [flags] REMOTE_PATH       pull with every strategy, compare
//
// Flags fall back to FERRY_* environment variables (--server is
// FERRY_SERVER). --json prints the API's messages as protojson, every
// field included (compare's medians, which are no API message, as plain
// JSON with exact integers); human output uses human units. On a terminal
// pull draws a progress bar on standard error, unless --no-progress.
// --tls-ca, --tls-cert, --tls-key, --tls-server-name and
// --token-file reach a ferryd that serves TLS, mutual TLS or requires a
// token. The token itself never goes on a command line, only its file.
// Over TLS the data channel is TLS too; --plaintext-data accepts a
// plaintext one from a ferryd run with --data-tls off.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage:
  ferry pull [flags] REMOTE_PATH [DEST]
  ferry pull [--concurrency N] [flags] REMOTE_PATH... DIR
  ferry pull -r [--concurrency N] [flags] REMOTE_DIR DEST
  ferry stat [flags] REMOTE_PATH
  ferry caps [flags]
  ferry ls [flags] [-r] [REMOTE_PATH]
  ferry transfers [flags] [--running]
  ferry compare [flags] REMOTE_PATH
Run "ferry COMMAND -h" for a command's flags.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferry:", errorText(err)) // escape.go
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError("no command")
	}
	cmds := map[string]func(context.Context, []string, io.Writer) error{
		"pull":      pull,
		"stat":      stat,
		"caps":      caps,
		"ls":        ls,
		"transfers": transfers,
		"compare":   compare,
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(out, usage)
		return nil
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		return usageError(fmt.Sprintf("unknown command %q", args[0]))
	}
	return cmd(ctx, args[1:], out)
}
