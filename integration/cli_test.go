package integration

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The conventions of the ferry command line (docs/cli.md, "Conventions"),
// one test each, run as a user runs the built binary.

// cliServer starts a ferryd on a root holding a file, a file whose name
// starts with -, and a directory with a file in it.
func cliServer(t *testing.T) (*ferryd, map[string][]byte) {
	t.Helper()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"f.bin":         writeRandom(t, root, "f.bin", 4096),
		"-dash.bin":     writeRandom(t, root, "-dash.bin", 100),
		"dir/inner.bin": writeRandom(t, root, "dir/inner.bin", 10),
	}
	return startFerryd(t, root), files
}

// ferryEnv runs the ferry CLI with env added to the clean environment.
func ferryEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return run(t, append(cleanEnv(), env...), bin.ferry, args...)
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0") // a port the kernel chose, then released
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestCLIGlobalFlagsBeforeCommand: --server, --json (and any global
// flag) may come before the command's name.
func TestCLIGlobalFlagsBeforeCommand(t *testing.T) {
	d, files := cliServer(t)
	r := ferryOK(t, "--server", d.Addr, "--json", "stat", "f.bin")
	if !strings.Contains(r.stdout, `"path":  "f.bin"`) && !strings.Contains(r.stdout, `"path": "f.bin"`) {
		t.Errorf("ferry --server ADDR --json stat f.bin: stdout is no StatFileResponse JSON:\n%s", r.stdout)
	}
	dest := filepath.Join(t.TempDir(), "f.bin")
	ferryOK(t, "--server", d.Addr, "pull", "--no-progress", "f.bin", dest)
	got, _ := os.ReadFile(dest)
	sameBytes(t, "ferry --server ADDR pull f.bin DEST", got, files["f.bin"])
}

// TestCLIFlagsAfterArguments: a command's flags and the global ones may
// follow its positional arguments.
func TestCLIFlagsAfterArguments(t *testing.T) {
	d, files := cliServer(t)
	dest := filepath.Join(t.TempDir(), "f.bin")
	r := ferryOK(t, "pull", "f.bin", dest, "--strategy", "mmap", "--inline-max", "0", "--server", d.Addr)
	if !strings.Contains(r.stdout, "with MMAP") {
		t.Errorf("ferry pull f.bin DEST --strategy mmap: the report names no MMAP:\n%s", r.stdout)
	}
	got, _ := os.ReadFile(dest)
	sameBytes(t, "ferry pull f.bin DEST --strategy mmap --server ADDR", got, files["f.bin"])
	ls := ferryOK(t, "ls", "dir", "--server", d.Addr, "-r")
	if !strings.Contains(ls.stdout, "dir/inner.bin") {
		t.Errorf("ferry ls dir --server ADDR -r: no dir/inner.bin in\n%s", ls.stdout)
	}
}

// TestCLIDoubleDash: -- ends the flags, so a remote path may start with
// -; without it such a path is an unknown flag, a usage error.
func TestCLIDoubleDash(t *testing.T) {
	d, files := cliServer(t)
	r := ferryOK(t, "stat", "--server", d.Addr, "--", "-dash.bin")
	if !strings.HasPrefix(r.stdout, "-dash.bin: file, 100 B") {
		t.Errorf("ferry stat -- -dash.bin: stdout %q, want it to describe -dash.bin", r.stdout)
	}
	dest := filepath.Join(t.TempDir(), "dash")
	ferryOK(t, "pull", "--server", d.Addr, "--no-progress", "--", "-dash.bin", dest)
	got, _ := os.ReadFile(dest)
	sameBytes(t, "ferry pull -- -dash.bin DEST", got, files["-dash.bin"])
	if r := ferry(t, "stat", "--server", d.Addr, "-dash.bin"); r.code != 2 || r.stdout != "" {
		t.Errorf("ferry stat -dash.bin (no --): exit %d, stdout %q; want 2 (a flag it does not know) and no stdout", r.code, r.stdout)
	}
}

// TestCLIEnvironment: every flag falls back to FERRY_<NAME>, a global one
// (FERRY_SERVER) as a command's own (FERRY_STRATEGY); a flag on the
// command line wins over the environment, either way round.
func TestCLIEnvironment(t *testing.T) {
	d, _ := cliServer(t)
	closed := closedAddr(t)
	if r := ferryEnv(t, []string{"FERRY_SERVER=" + d.Addr}, "stat", "f.bin"); r.code != 0 {
		t.Errorf("FERRY_SERVER=ADDR ferry stat f.bin: exit %d, want 0\n%s", r.code, r.stderr)
	}
	if r := ferryEnv(t, []string{"FERRY_SERVER=" + closed}, "stat", "f.bin", "--server", d.Addr); r.code != 0 {
		t.Errorf("FERRY_SERVER=%s ferry stat f.bin --server ADDR: exit %d, want 0 (the flag wins)\n%s", closed, r.code, r.stderr)
	}
	if r := ferryEnv(t, []string{"FERRY_SERVER=" + d.Addr}, "--server", closed, "stat", "f.bin"); r.code != 1 {
		t.Errorf("FERRY_SERVER=ADDR ferry --server %s stat f.bin: exit %d, want 1 (the flag wins, and nothing listens there)", closed, r.code)
	}
	dest := filepath.Join(t.TempDir(), "f.bin")
	r := ferryEnv(t, []string{"FERRY_SERVER=" + d.Addr, "FERRY_STRATEGY=sendfile", "FERRY_INLINE_MAX=0"}, "pull", "f.bin", dest)
	if r.code != 0 || !strings.Contains(r.stdout, "with SENDFILE") {
		t.Errorf("FERRY_STRATEGY=sendfile ferry pull: exit %d, want 0 and a SENDFILE report\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = ferryEnv(t, []string{"FERRY_SERVER=" + d.Addr, "FERRY_STRATEGY=teleport"}, "pull", "f.bin", dest+"2")
	if r.code != 2 || !strings.Contains(r.stderr, "FERRY_STRATEGY") {
		t.Errorf("FERRY_STRATEGY=teleport ferry pull: exit %d, stderr %q; want 2 naming FERRY_STRATEGY", r.code, r.stderr)
	}
}

// TestCLIVersion: ferry version, ferry --version and ferryd --version
// print the version, the commit and the Go that built them; an -ldflags
// stamp names the version.
func TestCLIVersion(t *testing.T) {
	check := func(name string, r result) {
		t.Helper()
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if r.code != 0 || len(lines) != 3 || r.stderr != "" ||
			!strings.HasPrefix(lines[0], "version: ") || len(lines[0]) == len("version: ") ||
			!strings.HasPrefix(lines[1], "commit:  ") || len(lines[1]) == len("commit:  ") ||
			lines[2] != "go:      "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want version:, commit: and go:      %s %s/%s lines",
				name, r.code, r.stdout, r.stderr, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		}
	}
	v := ferryOK(t, "version")
	check("ferry version", v)
	long := ferryOK(t, "--version")
	check("ferry --version", long)
	if long.stdout != v.stdout {
		t.Errorf("ferry --version = %q, ferry version = %q; want the same", long.stdout, v.stdout)
	}
	check("ferryd --version", run(t, cleanEnv(), bin.ferryd, "--version"))

	stamped := filepath.Join(t.TempDir(), "ferry")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-cli", "-o", stamped, "./cmd/ferry")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -ldflags -X main.version: %v\n%s", err, out)
	}
	s := run(t, cleanEnv(), stamped, "version")
	check("stamped ferry version", s)
	if !strings.HasPrefix(s.stdout, "version: v9.8.7-cli\n") {
		t.Errorf("ferry built with -X main.version=v9.8.7-cli: version prints %q", s.stdout)
	}
}

// TestCLICompletionScripts: ferry completion bash|zsh|fish prints a
// script for that shell.
func TestCLICompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := ferryOK(t, "completion", shell)
		if len(r.stdout) < 200 || !strings.Contains(r.stdout, "ferry") || !strings.Contains(r.stdout, "__complete") {
			t.Errorf("ferry completion %s: %d bytes naming ferry and __complete? stdout starts %.200q", shell, len(r.stdout), r.stdout)
		}
	}
	if r := ferry(t, "completion", "tcsh"); r.code != 2 || r.stdout != "" {
		t.Errorf("ferry completion tcsh: exit %d, stdout %q; want 2 and nothing", r.code, r.stdout)
	}
}

// completions runs cobra's hidden __complete command and returns the
// candidates and the directive line (":6").
func completions(t *testing.T, args ...string) ([]string, string) {
	t.Helper()
	r := ferryOK(t, append([]string{"__complete"}, args...)...)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
		t.Fatalf("ferry __complete %q: no directive line in %q", args, r.stdout)
	}
	return lines[:len(lines)-1], lines[len(lines)-1]
}

// TestCLICompleteRemotePaths: REMOTE_PATH arguments complete from the
// server's listing, directories with a trailing / and no space (directive
// 2, NoSpace, with 4, NoFileComp); a server that cannot be reached gives
// none and no error; the security flags on the line are used.
func TestCLICompleteRemotePaths(t *testing.T) {
	d, _ := cliServer(t)
	names, dir := completions(t, "--server", d.Addr, "pull", "")
	if want := []string{"-dash.bin", "dir/", "f.bin"}; !slices.Equal(names, want) || dir != ":6" {
		t.Errorf("ferry __complete pull '': %q %s; want %q :6", names, dir, want)
	}
	names, dir = completions(t, "stat", "--server", d.Addr, "di")
	if !slices.Equal(names, []string{"dir/"}) || dir != ":6" {
		t.Errorf("ferry __complete stat di: %q %s; want [dir/] :6", names, dir)
	}
	names, dir = completions(t, "pull", "--server", d.Addr, "dir/")
	if !slices.Equal(names, []string{"dir/inner.bin"}) || dir != ":4" {
		t.Errorf("ferry __complete pull dir/: %q %s; want [dir/inner.bin] :4 (a file: a space after it)", names, dir)
	}
	names, _ = completions(t, "ls", "--server", d.Addr, "")
	if !slices.Equal(names, []string{"dir/"}) {
		t.Errorf("ferry __complete ls '': %q; want directories only, [dir/]", names)
	}
	names, dir = completions(t, "pull", "--server", d.Addr, "f.bin", "")
	if len(names) != 0 || dir != ":0" {
		t.Errorf("ferry __complete pull f.bin '': %q %s; want no names and :0 (DEST: the shell's own file completion)", names, dir)
	}
	r := ferryEnv(t, []string{"FERRY_SERVER=" + d.Addr}, "__complete", "compare", "f")
	if r.code != 0 || r.stdout != "f.bin\n:4\n" {
		t.Errorf("FERRY_SERVER=ADDR ferry __complete compare f: exit %d, stdout %q; want f.bin and :4", r.code, r.stdout)
	}

	for _, tt := range []struct{ args, want []string }{
		{[]string{"pull", "-r", "--sync=c"}, []string{"checksum"}},
		{[]string{"pull", "--strategy", "s"}, []string{"sendfile", "splice"}},
		{[]string{"pull", "--checksum", ""}, []string{"none", "crc32c", "sha256"}},
	} {
		if names, dir := completions(t, tt.args...); !slices.Equal(names, tt.want) || dir != ":4" {
			t.Errorf("ferry __complete %q: %q %s; want %q :4", tt.args, names, dir, tt.want)
		}
	}

	down := ferry(t, "__complete", "--server", closedAddr(t), "pull", "")
	if down.code != 0 || down.stdout != ":4\n" || strings.Contains(down.stderr, "ferry:") {
		t.Errorf("ferry __complete against a closed port: exit %d, stdout %q, stderr %q; want 0, only :4, no error line", down.code, down.stdout, down.stderr)
	}

	s := startSecured(t, t.TempDir())
	writeRandom(t, s.Root, "secret.bin", 10)
	flags := append(s.tlsFlags(), "--tls-server-name", "localhost", "--token-file", s.tokenFile)
	names, _ = completions(t, append(append([]string{"pull"}, flags...), "")...)
	if !slices.Equal(names, []string{"secret.bin"}) {
		t.Errorf("ferry __complete pull with the TLS and token flags: %q; want [secret.bin]", names)
	}
	names, _ = completions(t, append(append([]string{"pull"}, s.tlsFlags()...), "--tls-server-name", "localhost", "")...)
	if len(names) != 0 {
		t.Errorf("ferry __complete pull without the token: %q; want none", names)
	}
}

// TestCLIExitCodes: 0 done, 1 the operation failed, 2 a usage error;
// standard output stays empty on failure, and only a usage error says
// which help to read.
func TestCLIExitCodes(t *testing.T) {
	d, _ := cliServer(t)
	out := t.TempDir()
	for _, tt := range []struct {
		name string
		args []string
		code int
	}{
		{"success", []string{"stat", "--server", d.Addr, "f.bin"}, 0},
		{"missing remote file", []string{"pull", "--server", d.Addr, "missing.bin", filepath.Join(out, "m")}, 1},
		{"unreachable server", []string{"caps", "--server", closedAddr(t)}, 1},
		{"unknown command", []string{"fetch", "--server", d.Addr, "f.bin"}, 2},
		{"no command", nil, 2},
		{"unknown flag", []string{"pull", "--server", d.Addr, "--speed", "9", "f.bin", filepath.Join(out, "u")}, 2},
		{"too many arguments", []string{"stat", "--server", d.Addr, "f.bin", "g.bin"}, 2},
		{"too few arguments", []string{"pull", "--server", d.Addr}, 2},
		{"bad flag value", []string{"pull", "--server", d.Addr, "--strategy", "teleport", "f.bin", filepath.Join(out, "b")}, 2},
		{"bad flag type", []string{"pull", "--server", d.Addr, "--streams", "many", "f.bin", filepath.Join(out, "t")}, 2},
	} {
		r := ferry(t, tt.args...)
		hint := strings.Contains(r.stderr, "--help' for usage.")
		switch {
		case r.code != tt.code:
			t.Errorf("%s: ferry %q: exit %d, want %d\nstderr:\n%s", tt.name, tt.args, r.code, tt.code, r.stderr)
		case tt.code != 0 && (r.stdout != "" || !strings.HasPrefix(r.stderr, "ferry: ")):
			t.Errorf("%s: ferry %q: stdout %q, stderr %q; want no stdout and a ferry: line on stderr", tt.name, tt.args, r.stdout, r.stderr)
		case hint != (tt.code == 2):
			t.Errorf("%s: ferry %q: stderr %q; want a --help hint exactly for a usage error", tt.name, tt.args, r.stderr)
		case strings.Contains(r.stderr, "Error:") || strings.Contains(r.stderr, "Usage:"):
			t.Errorf("%s: ferry %q: stderr %q holds cobra's own Error: or Usage: lines", tt.name, tt.args, r.stderr)
		}
	}
}

// TestCLIHelp: --help and help COMMAND print to standard output and
// exit 0; the root's help lists the exit codes, a command's its examples.
func TestCLIHelp(t *testing.T) {
	root := ferryOK(t, "--help")
	if root.stderr != "" || !strings.Contains(root.stdout, "Exit status: 0 done, 1 the transfer or operation failed, 2 usage error") {
		t.Errorf("ferry --help: stderr %q; want the exit codes on stdout:\n%s", root.stderr, root.stdout)
	}
	pull := ferryOK(t, "help", "pull")
	for _, want := range []string{"ferry pull [flags] REMOTE_PATH [DEST]", "Examples:", "-r, --recursive", "--server string"} {
		if !strings.Contains(pull.stdout, want) {
			t.Errorf("ferry help pull: no %q in\n%s", want, pull.stdout)
		}
	}
	if short := ferryOK(t, "pull", "-h"); short.stdout != pull.stdout {
		t.Errorf("ferry pull -h differs from ferry help pull")
	}
}
