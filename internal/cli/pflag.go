package cli

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"
)

// ApplyPFlagEnv is ApplyEnv for a pflag.FlagSet (ferry's, built by
// cobra): every flag of fs not given on the command line is set from its
// environment variable, when that is set; flags named in skip are left
// alone. A flag's shorthand (-r) has no variable of its own: it is the
// flag (--recursive, FERRY_RECURSIVE). Call it after parsing.
func ApplyPFlagEnv(fs *pflag.FlagSet, skip ...string) error {
	given := map[string]bool{}
	for _, name := range skip {
		given[name] = true
	}
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		v, ok := os.LookupEnv(EnvName(f.Name))
		if f.Changed || given[f.Name] || !ok || err != nil {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, e)
		}
	})
	return err
}
