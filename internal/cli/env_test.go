package cli

import (
	"flag"
	"testing"

	"github.com/spf13/pflag"
)

func TestApplyEnv(t *testing.T) {
	t.Setenv("FERRY_DATA_LISTEN", "from-env")
	t.Setenv("FERRY_ROOT", "from-env")
	t.Setenv("FERRY_VERSION", "true")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	root := fs.String("root", "def", "")
	data := fs.String("data-listen", "def", "")
	version := fs.Bool("version", false, "")
	if err := fs.Parse([]string{"--root", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyEnv(fs, "version"); err != nil {
		t.Fatalf("ApplyEnv() = %v", err)
	}
	if *root != "from-flag" || *data != "from-env" || *version {
		t.Errorf("root, data-listen, version = %q, %q, %v; want from-flag, from-env, false", *root, *data, *version)
	}
}

func TestApplyEnvBadValue(t *testing.T) {
	t.Setenv("FERRY_COUNT", "many")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Int("count", 1, "")
	if err := ApplyEnv(fs); err == nil {
		t.Error("ApplyEnv() with FERRY_COUNT=many = nil, want an error")
	}
}

func TestApplyPFlagEnv(t *testing.T) {
	t.Setenv("FERRY_SERVER", "from-env")
	t.Setenv("FERRY_STRATEGY", "from-env")
	t.Setenv("FERRY_RECURSIVE", "true")
	t.Setenv("FERRY_VERSION", "true")
	t.Setenv("FERRY_LIMIT_RATE", "1KiB")
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	server := fs.String("server", "def", "")
	strategy := fs.String("strategy", "def", "")
	recursive := fs.BoolP("recursive", "r", false, "")
	version := fs.Bool("version", false, "")
	var rate Size
	fs.Var(&rate, "limit-rate", "")
	if err := fs.Parse([]string{"--server", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyPFlagEnv(fs, "version"); err != nil {
		t.Fatalf("ApplyPFlagEnv() = %v", err)
	}
	if *server != "from-flag" || *strategy != "from-env" || !*recursive || *version || rate != 1024 {
		t.Errorf("server, strategy, recursive, version, limit-rate = %q, %q, %v, %v, %d; want from-flag, from-env, true, false, 1024",
			*server, *strategy, *recursive, *version, rate)
	}
}

func TestApplyPFlagEnvBadValue(t *testing.T) {
	t.Setenv("FERRY_COUNT", "many")
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.Int("count", 1, "")
	if err := ApplyPFlagEnv(fs); err == nil {
		t.Error("ApplyPFlagEnv() with FERRY_COUNT=many = nil, want an error")
	}
}
