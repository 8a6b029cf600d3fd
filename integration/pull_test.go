package integration

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// strategies are the CLI's --strategy values and what each asks the API
// for; "auto" leaves the choice to the server.
var strategies = []struct {
	flag string
	api  ferryv1.Strategy
}{
	{"read-write", ferryv1.Strategy_STRATEGY_READ_WRITE},
	{"mmap", ferryv1.Strategy_STRATEGY_MMAP},
	{"sendfile", ferryv1.Strategy_STRATEGY_SENDFILE},
	{"splice", ferryv1.Strategy_STRATEGY_SPLICE},
	{"auto", ferryv1.Strategy_STRATEGY_UNSPECIFIED},
}

// TestPull pulls whole files and ranges with every strategy through the
// ferry binary, compares the bytes landed with the source, and checks the
// --json report against the range and the strategy.
func TestPull(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	big := writeRandom(t, root, "big.bin", 3<<20+7)
	writeRandom(t, root, "empty", 0)
	d := startFerryd(t, root)
	auto := serverDefault(t, d)
	ranges := []struct {
		name           string
		path           string
		offset, length int
		want           []byte
	}{
		{"whole", "big.bin", 0, 0, big},
		{"empty-file", "empty", 0, 0, nil},
		{"range", "big.bin", 4097, 1<<20 + 3, big[4097 : 4097+1<<20+3]},
		{"range-cut-at-eof", "big.bin", len(big) - 10, 100, big[len(big)-10:]},
		{"empty-range-at-eof", "big.bin", len(big), 0, nil},
	}
	for _, s := range strategies {
		t.Run(s.flag, func(t *testing.T) {
			for _, r := range ranges {
				want := cmp.Or(s.api, auto(len(r.want)))
				t.Run(r.name, func(t *testing.T) {
					dest := filepath.Join(out, s.flag+"-"+r.name)
					res := ferryOK(t, "pull", "--json", "--server", d.Addr, "--strategy", s.flag,
						"--offset", strconv.Itoa(r.offset), "--length", strconv.Itoa(r.length), r.path, dest)
					got, err := os.ReadFile(dest)
					if err != nil {
						t.Fatal(err)
					}
					sameBytes(t, "landed file", got, r.want)
					checkJSONReport(t, res.stdout, r.path, r.offset, len(r.want), want)
				})
			}
		})
	}
}

// TestPullHuman checks the table a person reads: it names the strategy
// that moved the bytes and labels figures as measured or modelled.
func TestPullHuman(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	writeRandom(t, root, "big.bin", 2<<20+1)
	d := startFerryd(t, root)
	auto := serverDefault(t, d)
	for _, s := range strategies {
		t.Run(s.flag, func(t *testing.T) {
			dest := filepath.Join(out, s.flag)
			res := ferryOK(t, "pull", "--server", d.Addr, "--strategy", s.flag, "big.bin", dest)
			with := "with " + strings.TrimPrefix(cmp.Or(s.api, auto(2<<20+1)).String(), "STRATEGY_")
			if s.api == ferryv1.Strategy_STRATEGY_UNSPECIFIED {
				with += " (the server's choice for [1 MiB, 16 MiB) loopback)"
			}
			for _, want := range []string{"pulled big.bin -> " + dest, with + "\n",
				"sender (server)", "receiver (this host)", "MEASURED", "COUNTED", "DERIVED", "MODELLED"} {
				if !strings.Contains(res.stdout, want) {
					t.Errorf("ferry pull --strategy %s output lacks %q:\n%s", s.flag, want, res.stdout)
				}
			}
		})
	}
}

// TestPullToStdout checks that "-" puts exactly the file's bytes on
// standard output and nothing else.
func TestPullToStdout(t *testing.T) {
	root := t.TempDir()
	data := writeRandom(t, root, "f.bin", 1<<20+3)
	d := startFerryd(t, root)
	for _, s := range strategies {
		t.Run(s.flag, func(t *testing.T) {
			res := ferryOK(t, "pull", "--server", d.Addr, "--strategy", s.flag, "f.bin", "-")
			sameBytes(t, "standard output", []byte(res.stdout), data)
		})
	}
}

// serverDefault asks `ferry caps --json` which strategy auto gets, and
// checks the host offers all four. The answer depends on the transfer's
// length: the function it returns gives it for n bytes.
func serverDefault(t *testing.T, d *ferryd) func(n int) ferryv1.Strategy {
	t.Helper()
	res := ferryOK(t, "caps", "--json", "--server", d.Addr)
	var caps ferryv1.GetCapabilitiesResponse
	if err := protojson.Unmarshal([]byte(res.stdout), &caps); err != nil {
		t.Fatalf("ferry caps --json: %v\n%s", err, res.stdout)
	}
	for _, s := range strategies[:4] {
		if !slices.Contains(caps.GetStrategies(), s.api) {
			t.Fatalf("ferry caps: strategies %v lack %v; this host must support all four", caps.GetStrategies(), s.api)
		}
	}
	for _, def := range []ferryv1.Strategy{caps.GetDefaultStrategy(), caps.GetDefaultSmallStrategy()} {
		if !slices.Contains(caps.GetStrategies(), def) {
			t.Fatalf("ferry caps: default strategy %v is not among %v", def, caps.GetStrategies())
		}
	}
	if caps.GetSmallBelow() == 0 {
		t.Fatal("ferry caps: small_below is 0")
	}
	return func(n int) ferryv1.Strategy {
		for _, c := range caps.GetAuto().GetClasses() { // measured: the loopback class's pick
			if c.GetNetwork() == "loopback" && uint64(n) >= c.GetMinBytes() && (c.GetBelowBytes() == 0 || uint64(n) < c.GetBelowBytes()) {
				return c.GetPick()
			}
		}
		if uint64(n) < caps.GetSmallBelow() {
			return caps.GetDefaultSmallStrategy()
		}
		return caps.GetDefaultStrategy()
	}
}
