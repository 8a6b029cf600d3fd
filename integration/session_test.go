package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
)

// TestPullMany runs `ferry pull A B C DIR` as a user would: the files
// land in DIR over one session, one report each (--json: one object
// each); a missing one fails alone, named in the error, exit status 1,
// and leaves nothing behind.
func TestPullMany(t *testing.T) {
	root := t.TempDir()
	want := map[string][]byte{}
	for i, n := range []int{1000, 200 << 10, 3<<20 + 5} {
		name := fmt.Sprintf("f%d", i)
		want[name] = writeRandom(t, root, name, n)
	}
	d := startFerryd(t, root)
	dest := t.TempDir()
	res := ferryOK(t, "pull", "--json", "--server", d.Addr, "f0", "f1", "f2", dest)
	reports := parseJSONReports(t, res.stdout)
	if len(reports) != 3 {
		t.Fatalf("%d reports, want 3:\n%s", len(reports), res.stdout)
	}
	for _, rep := range reports {
		if got := rep.GetReceiver().GetBytes(); got != uint64(len(want[rep.GetPath()])) {
			t.Errorf("%s: receiver bytes %d, want %d", rep.GetPath(), got, len(want[rep.GetPath()]))
		}
	}
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join(dest, name))
		if err != nil {
			t.Fatal(err)
		}
		sameBytes(t, name, got, b)
	}

	dest2 := t.TempDir()
	r := ferry(t, "pull", "--server", d.Addr, "f0", "missing", "f1", dest2)
	if r.code != 1 || !strings.Contains(r.stderr, "1 of 3 files failed") || !strings.Contains(r.stderr, "missing") {
		t.Errorf("pull with a missing file: exit %d, stderr %q; want 1 naming it", r.code, r.stderr)
	}
	checkEntries(t, dest2, "f0", "f1")

	if r := ferry(t, "pull", "--server", d.Addr, "f0", "f1", filepath.Join(dest2, "f0")); r.code != 1 || !strings.Contains(r.stderr, "existing directory") {
		t.Errorf("pull of several files into a file: exit %d, stderr %q; want 1 and a clear error", r.code, r.stderr)
	}
}

// checkEntries fails unless dir holds exactly names.
func checkEntries(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

// parseJSONReports parses the Report objects `ferry pull --json` printed,
// one after another, every field of each present.
func parseJSONReports(t *testing.T, out string) []*ferryv1.Report {
	t.Helper()
	var reps []*ferryv1.Report
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatalf("ferry pull --json: %v\n%s", err, out)
		}
		checkJSONKeys(t, string(raw))
		var rep ferryv1.Report
		if err := protojson.Unmarshal(raw, &rep); err != nil {
			t.Fatalf("ferry pull --json printed no ferry.v1.Report: %v\n%s", err, raw)
		}
		reps = append(reps, &rep)
	}
	return reps
}

// TestSessionClientKilled SIGKILLs `ferry pull A B DIR` while ferryd
// sends A on a session's bound connection, for each strategy: ferryd
// must close the file, drop its mapping, close the session's sockets
// and end their goroutines, back to what it held before, and serve the
// next session. The pull is stopped (SIGSTOP) once ferryd has A open, so
// that ferryd's write blocks on full socket buffers, in the middle of A
// and, under MMAP, with a window mapped: the kill finds it there, not
// between two paced rounds, when no window is mapped.
func TestSessionClientKilled(t *testing.T) {
	root := t.TempDir()
	big := sparseFile(t, root, "big.bin", 1<<30) // 64 s at the pull's rate
	small := writeRandom(t, root, "small.bin", 1<<20+5)
	writeRandom(t, root, "tiny.bin", 100)
	for _, s := range strategies[:4] {
		t.Run(s.flag, func(t *testing.T) {
			d := startFerryd(t, root, "--metrics-listen", "127.0.0.1:0")
			m := metricsLine.FindStringSubmatch(d.Log.String())
			if m == nil {
				t.Fatalf("no metrics URL in ferryd's log:\n%s", d.Log)
			}
			// A session first with the same strategy, one file at a time
			// as below, so that what ferryd keeps for reuse (a splice pipe
			// in its pool) is in the baseline, and a scrape, whose
			// keep-alive connection stays.
			warm := t.TempDir()
			ferryOK(t, "pull", "--server", d.Addr, "--concurrency", "1", "--strategy", s.flag, "small.bin", "tiny.bin", warm)
			goroutines := scrapeMetrics(t, m[1])["go_goroutines"]
			base := d.holdings(t)

			pull := startFerry(t, nil, "pull", "--server", d.Addr, "--concurrency", "1", "--strategy", s.flag, "--limit-rate", "16MiB",
				"big.bin", "small.bin", t.TempDir())
			d.awaitHoldings(t, "opening big.bin", releaseTimeout, func(h holdings) []string {
				if !h.opens(big) {
					return []string{"without big.bin open"}
				}
				return nil
			})
			if err := pull.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			killWhileSending(t, d, pull, big, s.flag) // faults_test.go
			d.awaitHoldings(t, "after its session's client was killed", releaseTimeout, func(h holdings) []string {
				p := h.beyond(base, big)
				if g := scrapeMetrics(t, m[1])["go_goroutines"]; g > goroutines {
					p = append(p, fmt.Sprintf("%v goroutines (baseline %v)", g, goroutines))
				}
				return p
			})
			dest := t.TempDir()
			ferryOK(t, "pull", "--server", d.Addr, "--strategy", s.flag, "small.bin", "tiny.bin", dest)
			got, _ := os.ReadFile(filepath.Join(dest, "small.bin"))
			sameBytes(t, "the next session's pull", got, small)
		})
	}
}
