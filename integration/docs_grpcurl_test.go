package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// sessionDoc is the guide that holds the grpcurl session, relative to
// the repository root.
const sessionDoc = "docs/grpcurl.md"

// The guide's grpcurl session lies between these markers: ```console
// blocks whose "$ grpcurl" lines are commands, each followed by its output
// up to the next "$ " line or the end of the block.
const (
	sessionStart = "<!-- grpcurl-session: integration/docs_grpcurl_test.go runs these commands -->"
	sessionEnd   = "<!-- /grpcurl-session -->"
)

// The addresses the guide's session uses: node A serves /srv/a, node B
// (with --allow-pull) /srv/b.
var docAddrs = []string{"127.0.0.1:7070", "127.0.0.1:7071", "127.0.0.1:8070", "127.0.0.1:8071"}

// sessionCmd is one command of the guide's session and the output shown.
type sessionCmd struct {
	line   string // the command, without "$ "
	output []string
}

// TestDocsGrpcurl runs every grpcurl command of docs/grpcurl.md's
// session, in order, with the real grpcurl against two real ferryds
// holding the session's trees, and checks that each output has the
// guide's shape: the same messages and field names, the same values
// except those that vary from run to run (ids, times, durations,
// throughput, system call counts), and the same errors. A command whose
// output holds a ticket gets a data client, as the guide tells the reader
// to run.
func TestDocsGrpcurl(t *testing.T) {
	grpcurl := toolPath(t, grpcurlTool)
	cmds := docSession(t)
	rootA, rootB := t.TempDir(), t.TempDir()
	sessionTrees(t, rootA, rootB)
	// As the guide starts them: the fixed order, so that the strategy the
	// server picks, and so the output, is the same on every host.
	a, b := startFerryd(t, rootA, "--auto=fixed"), startFerryd(t, rootB, "--allow-pull", "--auto=fixed")
	actual := []string{a.Addr, a.DataAddr, b.Addr, b.DataAddr}
	var toActual, toDoc []string
	for i := range docAddrs {
		toActual = append(toActual, docAddrs[i], actual[i])
		toDoc = append(toDoc, actual[i], docAddrs[i])
	}
	for i, c := range cmds {
		args := shellWords(t, strings.NewReplacer(toActual...).Replace(c.line))
		if args[0] != "grpcurl" {
			t.Fatalf("%s: session command %d is not grpcurl: %q", sessionDoc, i, c.line)
		}
		// A Download's offer with a ticket needs its data fetched; a
		// Session's ticket (in SessionReady) binds connections, and the
		// guide's Session gets are inline.
		stdout, stderr, code := runSessionCmd(t, grpcurl, args[1:], !strings.Contains(c.line, "/Session") &&
			slices.ContainsFunc(c.output, func(l string) bool { return strings.Contains(l, `"ticket":`) }))
		back := strings.NewReplacer(toDoc...)
		checkSessionOutput(t, c, back.Replace(stdout), back.Replace(stderr), code)
	}
}

// docSession extracts the session's commands from docs/grpcurl.md.
func docSession(t *testing.T) []sessionCmd {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(repoRoot, sessionDoc))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), sessionStart)
	section, _, ok2 := strings.Cut(rest, sessionEnd)
	if !ok || !ok2 {
		t.Fatalf("%s lacks the grpcurl session markers %q ... %q", sessionDoc, sessionStart, sessionEnd)
	}
	var cmds []sessionCmd
	var cur *sessionCmd
	inBlock := false
	for _, line := range strings.Split(section, "\n") {
		switch {
		case strings.HasPrefix(line, "```console"):
			inBlock = true
		case strings.HasPrefix(line, "```"):
			inBlock, cur = false, nil
		case !inBlock:
		case strings.HasPrefix(line, "$ grpcurl "):
			cmds = append(cmds, sessionCmd{line: strings.TrimPrefix(line, "$ ")})
			cur = &cmds[len(cmds)-1]
		case strings.HasPrefix(line, "$ "):
			cur = nil
		case cur != nil:
			cur.output = append(cur.output, line)
		}
	}
	if len(cmds) == 0 {
		t.Fatalf("%s's grpcurl session holds no $ grpcurl commands", sessionDoc)
	}
	return cmds
}

// sessionTrees makes the trees the guide's session ran on.
func sessionTrees(t *testing.T, a, b string) {
	t.Helper()
	for _, d := range []string{"docs/notes", "models"} {
		if err := os.MkdirAll(filepath.Join(a, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(b, "cache"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"docs/guide.md":       "# Guide\n\nFerry moves files at the speed of the kernel.\n",
		"docs/notes/todo.txt": "- ship it\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(a, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(a, "models/m.bin"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(a, "models/m.bin"), 8<<20); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("models/m.bin", filepath.Join(a, "latest")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{a, filepath.Join(a, "docs"), filepath.Join(a, "docs/notes"), filepath.Join(a, "models"), b, filepath.Join(b, "cache")} {
		if err := os.Chmod(d, 0o755); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
}

// runSessionCmd runs grpcurl; with dataClient, it reads the offer from
// grpcurl's output as it comes and fetches the bytes on the data channel,
// as the guide's reader does from a shell.
func runSessionCmd(t *testing.T, grpcurl string, args []string, dataClient bool) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, grpcurl, args...)
	var out, errb bytes.Buffer
	cmd.Stderr = &errb
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tee := io.TeeReader(pipe, &out)
	if dataClient {
		var first struct {
			Offer struct{ DataAddress, Ticket string }
		}
		if err := json.NewDecoder(tee).Decode(&first); err != nil {
			t.Fatalf("grpcurl %q: reading the offer: %v\n%s", args, err, &out)
		}
		fetch(t, first.Offer.DataAddress, first.Offer.Ticket)
	}
	io.Copy(io.Discard, tee)
	err = cmd.Wait()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("grpcurl %q: %v", args, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// fetch is the data client: preamble (magic, version 1, ticket), verdict
// byte 0, then every byte until the server closes.
func fetch(t *testing.T, addr, ticket string) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(ticket)
	if err != nil {
		t.Fatalf("offer's ticket %q: %v", ticket, err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := c.Write(append([]byte("FERY\x01"), key...)); err != nil {
		t.Fatal(err)
	}
	var verdict [1]byte
	if _, err := io.ReadFull(c, verdict[:]); err != nil || verdict[0] != 0 {
		t.Fatalf("data channel verdict %d, %v; want 0", verdict[0], err)
	}
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatal(err)
	}
}

// checkSessionOutput compares one command's real output with the guide's.
func checkSessionOutput(t *testing.T, c sessionCmd, stdout, stderr string, code int) {
	t.Helper()
	shown := strings.TrimSpace(strings.Join(c.output, "\n"))
	if strings.HasPrefix(shown, "ERROR:") {
		if code == 0 || strings.TrimSpace(stderr) != shown {
			t.Errorf("$ %s\nexit %d, stderr:\n%s\nwant non-zero and the guide's\n%s", c.line, code, stderr, shown)
		}
		return
	}
	if code != 0 {
		t.Errorf("$ %s\nexit %d, stderr:\n%s", c.line, code, stderr)
		return
	}
	elided := slices.ContainsFunc(c.output, func(l string) bool { return strings.TrimSpace(l) == "..." })
	want, wantKeys := leaves(t, sessionDoc+": $ "+c.line, unelide(shown))
	got, gotKeys := leaves(t, "grpcurl output", stdout)
	for _, l := range want {
		if !slices.Contains(got, l) {
			t.Errorf("$ %s\n%s shows %s; the real output does not:\n%s", c.line, sessionDoc, l, stdout)
		}
	}
	if elided {
		return // the guide left fields out on purpose
	}
	for _, k := range gotKeys {
		if !slices.Contains(wantKeys, k) {
			t.Errorf("$ %s\nthe real output has field %s, which %s does not show:\n%s", c.line, k, sessionDoc, stdout)
		}
	}
}

// unelide turns output cut with "..." lines back into JSON: the lines
// go, and with them the commas they leave before a closing bracket.
func unelide(s string) string {
	var kept []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "..." {
			kept = append(kept, l)
		}
	}
	return trailingComma.ReplaceAllString(strings.Join(kept, "\n"), "$1")
}

var trailingComma = regexp.MustCompile(`,(\s*[}\]])`)

// leaves flattens a stream of JSON messages into sorted "path=value"
// lines (array indices dropped) and their sorted key paths. Fields whose
// values vary from run to run are left out of both: protojson omits them
// when they happen to be zero.
func leaves(t *testing.T, what, s string) (vals, keys []string) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	seen, seenKeys := map[string]bool{}, map[string]bool{}
	for {
		var v any
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("%s: not JSON: %v\n%s", what, err, s)
		}
		flatten("", v, seen, seenKeys)
	}
	for k := range seen {
		vals = append(vals, k)
	}
	for k := range seenKeys {
		keys = append(keys, k)
	}
	slices.Sort(vals)
	slices.Sort(keys)
	return vals, keys
}

func flatten(path string, v any, vals, keys map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			flatten(path+"."+k, child, vals, keys)
		}
	case []any:
		for _, child := range v {
			flatten(path, child, vals, keys)
		}
	default:
		val := fmt.Sprint(v)
		if varies(path, val) {
			return
		}
		vals[path+"="+val] = true
		keys[path] = true
	}
}

// variesKeys are fields whose values differ from run to run.
var variesKeys = []string{"transferId", "ticket", "modifyTime", "startTime", "endTime", "duration", "throughputBytesPerSecond",
	"userCpu", "systemCpu", "voluntaryContextSwitches", "involuntaryContextSwitches", "threadId", "serverVersion",
	"bytesSent", "rounds", "checksumCpu", "dataConnections"}

var addrRE = regexp.MustCompile(`^127\.0\.0\.1:\d+$`)

func varies(path, val string) bool {
	parts := strings.Split(path, ".")
	key, parent := parts[len(parts)-1], parts[len(parts)-2]
	switch {
	case slices.Contains(variesKeys, key), slices.Contains(parts, "syscalls"):
		return true
	case key == "modeSwitches" && parent != "model": // derived from the syscall counts
		return true
	case addrRE.MatchString(val) && !slices.Contains(docAddrs, val): // a caller's ephemeral port
		return true
	}
	return false
}

// shellWords splits a command line the guide shows: words separated by
// spaces, single quotes around JSON.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case quoted && r == '\'':
			quoted = false
		case quoted:
			w.WriteRune(r)
		case r == '\'':
			quoted, inWord = true, true
		case r == ' ':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quote in %q", line)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}
