package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ferrydev/ferry/internal/cli"
	buildversion "github.com/ferrydev/ferry/internal/version"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// newRoot builds the ferry command and its subcommands. Its persistent
// flags (--server, --json, the TLS and token flags) are every command's,
// before or after the command's name.
func newRoot() *cobra.Command {
	c := &common{}
	root := &cobra.Command{
		Use:   "ferry",
		Short: "Pull files from a ferryd and report what each transfer cost",
		Long: `ferry pulls files and directories from a ferryd, lists and inspects what it
serves, and compares the copy strategies side by side.

Global flags (--server, --json, --tls-*, --token-file, --plaintext-data) go
before or after the command; a command's flags may follow its arguments, and
-- ends the flags (ferry stat -- -name.txt). Every flag falls back to its
FERRY_* environment variable (--server is FERRY_SERVER, --limit-rate is
FERRY_LIMIT_RATE); a flag on the command line wins.

Data goes to standard output; errors, progress and reports of a pull to -
go to standard error.

` + exitCodes,
		Example: `  ferry --server files.example:7070 pull big.iso /tmp/big.iso
  ferry ls -r docs --server files.example:7070
  FERRY_SERVER=files.example:7070 ferry stat big.iso
  source <(ferry completion bash)`,
		Version: buildversion.Get(version).String(),
		// main prints errors ("ferry: ..."), once; a failure at run time
		// is no reason to print the usage.
		SilenceErrors: true,
		SilenceUsage:  true,
		// No Args: cobra's own check then answers "unknown command" for
		// ferry bogus; ferry alone runs this.
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef("no command given")
		},
	}
	root.SetVersionTemplate("{{.Version}}")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&c.server, "server", "127.0.0.1:7070", "ferryd control-plane address")
	pf.BoolVar(&c.json, "json", false, "print the API messages as JSON")
	addSecurityFlags(pf, &c.sec)
	root.AddCommand(newPullCmd(c), newStatCmd(c), newCapsCmd(c), newLsCmd(c), newTransfersCmd(c), newCompareCmd(c), newVersionCmd())
	completionUsage(root)
	return root
}

// completionUsage makes cobra's completion command (bash, zsh, fish,
// powershell) refuse a missing or unknown shell as a usage error (exit 2),
// where cobra would print its help and exit 0.
func completionUsage(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, cmd := range root.Commands() {
		if cmd.Name() != "completion" {
			continue
		}
		cmd.Args = cobra.ArbitraryArgs
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			var shells []string
			for _, sub := range cmd.Commands() {
				shells = append(shells, sub.Name())
			}
			if len(args) == 0 {
				return usagef("completion: name a shell: %s", strings.Join(shells, ", "))
			}
			return usagef("completion: unknown shell %q (want %s)", args[0], strings.Join(shells, ", "))
		}
	}
}

// run wraps a command's work: first the FERRY_* fallbacks of the flags
// not given (a bad value there is a usage error, as on the command line),
// then f, whose errors are failures (exit 1) unless it says usageError.
func run(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		given := map[string]bool{}
		cmd.Flags().Visit(func(f *pflag.Flag) { given[f.Name] = true })
		if err := applyEnv(cmd.Flags()); err != nil {
			return usageError{err}
		}
		err := f(cmd, args)
		if u := (usageError{}); errors.As(err, &u) {
			// A value the command refused may have come from the
			// environment, where the user may not think to look.
			var env []string
			cmd.Flags().Visit(func(f *pflag.Flag) {
				if !given[f.Name] {
					env = append(env, fmt.Sprintf("%s=%q", cli.EnvName(f.Name), f.Value.String()))
				}
			})
			if len(env) > 0 {
				return usagef("%w (flags from the environment: %s)", u.err, strings.Join(env, " "))
			}
			return err
		}
		if err != nil {
			return failure{err}
		}
		return nil
	}
}

// applyEnv sets the flags not given on the command line from FERRY_*
// variables. --help and --version never come from the environment, nor
// --delete: an exported FERRY_DELETE would make every later sync remove
// files; deleting is asked for on the command line only.
func applyEnv(fs *pflag.FlagSet) error {
	return cli.ApplyPFlagEnv(fs, "help", "version", "delete")
}

// arguments checks the count of positional arguments: at least min, at
// most max (-1: no limit).
func arguments(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		n := len(args)
		switch {
		case n < min || max >= 0 && n > max:
			want := fmt.Sprintf("%d to %d arguments", min, max)
			switch {
			case max < 0:
				want = fmt.Sprintf("at least %d argument%s", min, plural(min))
			case min == max:
				want = fmt.Sprintf("%d argument%s", min, plural(min))
			}
			return usagef("%s: want %s, got %d", cmd.Name(), want, n)
		}
		return nil
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit and Go of this binary (as --version does)",
		Args:    arguments(0, 0),
		Example: "  ferry version\n  ferry --version",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := fmt.Fprint(cmd.OutOrStdout(), buildversion.Get(version)); err != nil {
				return failure{err}
			}
			return nil
		},
	}
}
