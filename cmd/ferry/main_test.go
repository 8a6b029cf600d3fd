package main

import (
	"bytes"
	"net"
	"os"
	"strings"
	"testing"
)

// TestExitCodes: usage mistakes exit 2 with the error and which help to
// read on stderr, help exits 0 on stdout, and a failure of a command that
// ran exits 1. Nothing of a failure reaches stdout.
func TestExitCodes(t *testing.T) {
	t.Setenv("FERRY_SERVER", "")
	os.Unsetenv("FERRY_SERVER") // the default, whatever the test's environment says
	closed := closedAddr(t)
	for _, tt := range []struct {
		args   []string
		code   int
		stderr string // a substring of stderr; "" wants it empty
		stdout string // a substring of stdout; "" wants it empty
	}{
		{[]string{"--help"}, 0, "", "Exit status: 0 done"},
		{[]string{"help", "pull"}, 0, "", "ferry pull [flags] REMOTE_PATH [DEST]"},
		{[]string{"pull", "-h"}, 0, "", "--strategy string"},
		{[]string{"version"}, 0, "", "version: "},
		{[]string{"--version"}, 0, "", "version: "},
		{nil, 2, "ferry: no command given\nRun 'ferry --help' for usage.", ""},
		{[]string{"bogus"}, 2, `ferry: unknown command "bogus" for "ferry"`, ""},
		{[]string{"pull", "--bogus", "f"}, 2, "ferry: unknown flag: --bogus\nRun 'ferry pull --help' for usage.", ""},
		{[]string{"pull"}, 2, "ferry: pull: want at least 1 argument, got 0\nRun 'ferry pull --help'", ""},
		{[]string{"stat", "a", "b"}, 2, "ferry: stat: want 1 argument, got 2", ""},
		{[]string{"caps", "x"}, 2, "want 0 arguments, got 1", ""},
		{[]string{"pull", "f", "--strategy", "bogus"}, 2, "Run 'ferry pull --help'", ""},
		{[]string{"pull", "f", "--streams", "x"}, 2, `invalid argument "x" for "--streams" flag`, ""},
		{[]string{"pull", "-r", "--streams", "2", "d", "e"}, 2, "--streams splits one file", ""},
		{[]string{"pull", "--resume", "a", "b", "dir"}, 2, "take one REMOTE_PATH", ""},
		{[]string{"compare", "--runs", "0", "f"}, 2, "--runs must be at least 1", ""},
		{[]string{"compare", "--strategies", "bogus", "f"}, 2, "Run 'ferry compare --help'", ""},
		{[]string{"stat", "f", "--server", closed}, 1, "ferry: ", ""},
		{[]string{"--server", closed, "caps"}, 1, "ferry: ", ""},
	} {
		var stdout, stderr bytes.Buffer
		code := execute(t.Context(), tt.args, &stdout, &stderr)
		if code != tt.code || !contains(stderr.String(), tt.stderr) || !contains(stdout.String(), tt.stdout) {
			t.Errorf("ferry %q: exit %d, want %d\nstdout (want %q):\n%s\nstderr (want %q):\n%s",
				tt.args, code, tt.code, tt.stdout, &stdout, tt.stderr, &stderr)
		}
		if code == 1 && strings.Contains(stderr.String(), "Run 'ferry") {
			t.Errorf("ferry %q failed at run time and printed a usage hint:\n%s", tt.args, &stderr)
		}
	}
}

// contains is strings.Contains, but "" wants s empty.
func contains(s, sub string) bool {
	if sub == "" {
		return s == ""
	}
	return strings.Contains(s, sub)
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
