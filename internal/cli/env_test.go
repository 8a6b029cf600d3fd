package cli

import (
	"flag"
	"testing"
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
