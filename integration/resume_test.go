package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestNetworkCutResume cuts the data connection after a given number of
// bytes, with a proxy between ferry and ferryd's data listener, for each
// strategy. ferry --resume must fail with exit 1, say the data channel
// came up short and that it kept the partial file, which must hold
// exactly the count it reported: a prefix of the file, no longer than
// what got through (it may be shorter: when ferryd's status arrives
// before the receiver has read all that was in flight, the receive is
// stopped). A second ferry --resume over a sound network must fetch only
// the rest (its report's offset and length say so, and both sides
// counted exactly the rest) and land the file byte-exact. Without
// --resume the same cut leaves no file at all.
func TestNetworkCutResume(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	const size, cut = 16 << 20, 5<<20 + 4099
	data := writeRandom(t, root, "f.bin", size)
	proxy := listenDataProxy(t)
	d := startFerryd(t, root, "--advertise-data", proxy.Addr())
	proxy.serve(d.DataAddr)
	for _, s := range strategies[:4] {
		t.Run(s.flag, func(t *testing.T) {
			dest := filepath.Join(out, s.flag)
			pull := func(flags ...string) []string {
				return append(append([]string{"pull", "--server", d.Addr, "--strategy", s.flag}, flags...), "f.bin", dest)
			}
			proxy.cutAfter(1 + cut) // the verdict byte, then the file's
			res := ferry(t, pull("--resume")...)
			got := checkCut(t, res, cut, size)
			if !strings.Contains(res.stderr, fmt.Sprintf("kept %s.partial (%d bytes)", dest, got)) {
				t.Errorf("ferry --resume after a cut: stderr %q does not say it kept the partial file with the %d bytes", res.stderr, got)
			}
			checkFile(t, dest+".partial", data[:got])
			noFile(t, dest)

			proxy.cutAfter(0)
			res = ferryOK(t, pull("--resume", "--json")...)
			rep := checkJSONReport(t, res.stdout, "f.bin", got, size-got, s.api)
			if rep.GetSender().GetBytes() != uint64(size-got) || rep.GetReceiver().GetBytes() != uint64(size-got) {
				t.Errorf("resumed pull moved %d (sender) and %d (receiver) bytes, want the %d after the partial file",
					rep.GetSender().GetBytes(), rep.GetReceiver().GetBytes(), size-got)
			}
			checkFile(t, dest, data)
			noFile(t, dest+".partial")

			// The control: without --resume a cut leaves nothing.
			check(t, os.Remove(dest))
			proxy.cutAfter(1 + cut)
			checkCut(t, ferry(t, pull()...), cut, size)
			noFile(t, dest)
			noFile(t, dest+".partial")
			proxy.cutAfter(0)
		})
	}
}

// shortCount is the receiver's report of a data channel that came up
// short.
var shortCount = regexp.MustCompile(`data channel did not carry exactly the offered bytes: got (\d+) of (\d+) bytes`)

// checkCut requires a pull whose data channel was cut after at most limit
// of want bytes to fail with exit 1 and the receiver's count, which it
// returns.
func checkCut(t *testing.T, res result, limit, want int) int {
	t.Helper()
	m := shortCount.FindStringSubmatch(res.stderr)
	if res.code != 1 || m == nil || m[2] != strconv.Itoa(want) || atoi(t, m[1]) > limit {
		t.Fatalf("pull cut after %d bytes: exit %d, stderr %q; want exit 1 and %q with at most %d got, of %d",
			limit, res.code, res.stderr, shortCount, limit, want)
	}
	return atoi(t, m[1])
}

// checkFile requires path to hold want.
func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
		return
	}
	sameBytes(t, path, got, want)
}

// TestResumeCases covers what --resume does with the partial file it
// finds, through the ferry binary: a range continues within the range; a
// partial file that holds everything lands with nothing moved; one
// larger than the remote file is refused and left alone; and without
// --resume an old partial file is overwritten, not continued.
func TestResumeCases(t *testing.T) {
	root := t.TempDir()
	const size = 3<<20 + 11
	data := writeRandom(t, root, "f.bin", size)
	d := startFerryd(t, root)
	tests := []struct {
		name           string
		partial        []byte
		offset, length int
		resume         bool
		want           []byte // the landed file; nil: the pull fails
		moved          int    // bytes the report says moved
	}{
		{"range", data[1000 : 1000+1<<20], 1000, 2 << 20, true, data[1000 : 1000+2<<20], 1 << 20},
		{"range-already-held", data[1000 : 1000+1<<20], 1000, 1 << 20, true, data[1000 : 1000+1<<20], 0},
		{"file-already-held", data, 0, 0, true, data, 0},
		{"nothing-held", nil, 0, 0, true, data, size},
		{"partial-larger-than-file", append(data[:size:size], 'x'), 0, 0, true, nil, 0},
		{"partial-larger-than-range", data[:2<<20], 0, 1 << 20, true, nil, 0},
		{"without-resume", []byte("a partial file of another pull"), 0, 0, false, data, size},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "f")
			if tc.partial != nil {
				check(t, os.WriteFile(dest+".partial", tc.partial, 0o644))
			}
			args := []string{"pull", "--json", "--server", d.Addr, "--offset", strconv.Itoa(tc.offset), "--length", strconv.Itoa(tc.length)}
			if tc.resume {
				args = append(args, "--resume")
			}
			args = append(args, "f.bin", dest)
			res := ferry(t, args...)
			if tc.want == nil {
				if res.code != 1 || !strings.Contains(res.stderr, "cannot resume") || strings.Contains(res.stderr, "kept") {
					t.Errorf("ferry %q: exit %d, stderr %q; want exit 1 and cannot resume", args, res.code, res.stderr)
				}
				checkFile(t, dest+".partial", tc.partial)
				noFile(t, dest)
				return
			}
			if res.code != 0 {
				t.Fatalf("ferry %q: exit %d, want 0\nstderr:\n%s", args, res.code, res.stderr)
			}
			checkFile(t, dest, tc.want)
			noFile(t, dest+".partial")
			rep := checkReportRange(t, res.stdout, tc.offset+len(tc.want)-tc.moved, tc.moved)
			if rep.GetReceiver().GetBytes() != uint64(tc.moved) {
				t.Errorf("ferry %q: receiver moved %d bytes, want %d", args, rep.GetReceiver().GetBytes(), tc.moved)
			}
		})
	}
}

// checkReportRange parses `ferry pull --json` output and requires the
// report to cover n bytes from offset, as both sides counted them.
func checkReportRange(t *testing.T, out string, offset, n int) *ferryv1.Report {
	t.Helper()
	var rep ferryv1.Report
	if err := protojson.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("ferry pull --json printed no ferry.v1.Report: %v\n%s", err, out)
	}
	if rep.GetOffset() != uint64(offset) || rep.GetLength() != uint64(n) || rep.GetSender().GetBytes() != uint64(n) {
		t.Errorf("report: offset %d, length %d, sender bytes %d; want %d, %d, %d",
			rep.GetOffset(), rep.GetLength(), rep.GetSender().GetBytes(), offset, n, n)
	}
	return &rep
}
