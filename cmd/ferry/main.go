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
//	ferry version                           version, commit and Go of this binary
//	ferry completion bash|zsh|fish          a shell completion script
//
// The commands are spf13/cobra commands, with the conventions of kubectl
// and curl: --server, --json and the TLS and token flags are global and
// go before or after the command, flags may follow positional arguments,
// and -- ends the flags (for a remote path that starts with -). Every
// flag falls back to its FERRY_* environment variable (--server is
// FERRY_SERVER); a flag on the command line wins. --json prints the
// API's messages as protojson, every field included (compare's medians,
// which are no API message, as plain JSON with exact integers); human
// output uses human units. On a terminal pull draws a progress bar on
// standard error, unless --no-progress. --tls-ca, --tls-cert, --tls-key,
// --tls-server-name and --token-file reach a ferryd that serves TLS,
// mutual TLS or requires a token. The token itself never goes on a
// command line, only its file. Over TLS the data channel is TLS too;
// --plaintext-data accepts a plaintext one from a ferryd run with
// --data-tls off.
//
// Data goes to standard output, everything else (errors, progress, the
// report of a pull to -) to standard error. The exit status is 0 when
// the command did what it was asked, 1 when the transfer or operation
// failed, 2 for a usage error (see exitCodes).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/internal/tracing"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// The exit statuses, as ferry --help and docs/cli.md list them.
const (
	exitOK     = 0 // the command did what it was asked
	exitFailed = 1 // the transfer or operation failed
	exitUsage  = 2 // unknown command, bad flag or flag value, wrong argument count
	exitCodes  = "Exit status: 0 done, 1 the transfer or operation failed, 2 usage error\n(unknown command, bad flag or flag value, wrong number of arguments)."
)

// traced is whether the OTEL_* environment turned tracing on (see
// internal/tracing): then every call carries the trace (dial).
var traced bool

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	shutdown, on, err := tracing.Setup(ctx, "ferry", version)
	if err != nil { // the environment asked for what the CLI cannot do: it runs untraced
		fmt.Fprintln(os.Stderr, "ferry: tracing off:", err)
	}
	traced = on
	code := execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	// Spans are batched: send what is left before exiting, for a while.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	shutdown(sctx)
	cancel()
	os.Exit(code)
}

// execute runs the command line args and returns the exit status. A
// failure is one line on stderr, "ferry: " and the escaped error (see
// errorText); a usage error adds which help to read.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if f := (failure{}); errors.As(err, &f) {
		fmt.Fprintln(stderr, "ferry:", errorText(f.err)) // escape.go
		return exitFailed
	}
	// A usage error is about the command line, not the server's words:
	// printed as it is (cobra's may end in suggestions, "Did you mean").
	fmt.Fprintln(stderr, "ferry:", strings.TrimRight(strings.TrimPrefix(err.Error(), "ferry: "), "\n"))
	fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	return exitUsage
}

// failure is an error of a command that ran: the transfer or operation
// failed (exit 1). Any other error out of cobra is a usage error (exit 2):
// cobra returns those before a command runs.
type failure struct{ err error }

func (f failure) Error() string { return f.err.Error() }
func (f failure) Unwrap() error { return f.err }

// usageError is a command-line mistake a command finds itself once it
// runs, such as a flag value it cannot use (--strategy bogus): exit 2,
// as for the mistakes cobra finds.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// usagef makes a usageError.
func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }
