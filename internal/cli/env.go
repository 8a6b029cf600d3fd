// Package cli holds what both binaries' mains share: flags that fall back
// to FERRY_* environment variables, and human sizes in flags (50MiB). It
// has no other job.
package cli

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// EnvName is the environment variable a flag falls back to:
// "data-listen" reads FERRY_DATA_LISTEN.
func EnvName(flagName string) string {
	return "FERRY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ApplyEnv sets every flag of fs that was not given on the command line
// from its environment variable, when that is set. Flags named in skip
// (such as --version, which must never come from a pod's environment)
// are left alone. Call it after Parse.
func ApplyEnv(fs *flag.FlagSet, skip ...string) error {
	given := map[string]bool{}
	for _, name := range skip {
		given[name] = true
	}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(EnvName(f.Name))
		if given[f.Name] || !ok || err != nil {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, e)
		}
	})
	return err
}
