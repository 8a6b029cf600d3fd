package integration

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// compareJSON is the part of `ferry compare --json` the test reads.
type compareJSON struct {
	File       string `json:"file"`
	SizeBytes  uint64 `json:"size_bytes"`
	Runs       int    `json:"runs"`
	Strategies []struct {
		Requested                string  `json:"requested"`
		Strategy                 string  `json:"strategy"`
		Runs                     int     `json:"runs"`
		Bytes                    uint64  `json:"bytes"`
		ThroughputBytesPerSecond float64 `json:"throughput_bytes_per_second"`
		Syscalls                 uint64  `json:"syscalls"`
		SyscallsPerGiB           float64 `json:"syscalls_per_gib"`
		ModelCPUCopies           uint32  `json:"model_cpu_copies"`
		CPUCopiedBytes           uint64  `json:"cpu_copied_bytes"`
	} `json:"strategies"`
}

// TestCompare runs `ferry compare` against a ferryd: the table has a
// column per strategy the server supports and auto, the SVG parses and
// has a bar per strategy and series, and --json has one entry of medians
// per strategy.
func TestCompare(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	const size = 4<<20 + 5
	writeRandom(t, root, "big.bin", size)
	d := startFerryd(t, root)
	auto := strings.TrimPrefix(serverDefault(t, d)(size).String(), "STRATEGY_")
	names := []string{"READ_WRITE", "MMAP", "SENDFILE", "SPLICE", "auto (" + auto + ")"}

	svg := filepath.Join(out, "chart.svg")
	res := ferryOK(t, "compare", "--server", d.Addr, "--runs", "2", "--svg", svg, "big.bin")
	header := strings.SplitN(res.stdout, "\n", 5)
	if len(header) < 5 || !strings.Contains(header[0], "big.bin (4.0 MiB)") || !strings.Contains(header[0], "median of 2") {
		t.Fatalf("ferry compare: unexpected heading:\n%s", res.stdout)
	}
	for _, name := range names {
		if !strings.Contains(header[3], name) {
			t.Errorf("ferry compare: table header %q lacks %q", header[3], name)
		}
	}
	for _, row := range []string{"throughput", "sender CPU user+sys per GiB", "syscalls per GiB", "CPU copies per round",
		"mode switches", "context switches vol / invol"} {
		if !strings.Contains(res.stdout, "\n"+row) {
			t.Errorf("ferry compare: table lacks row %q:\n%s", row, res.stdout)
		}
	}
	checkChart(t, svg, names)

	res = ferryOK(t, "compare", "--server", d.Addr, "--runs", "2", "--json", "big.bin")
	var c compareJSON
	if err := json.Unmarshal([]byte(res.stdout), &c); err != nil {
		t.Fatalf("ferry compare --json: %v\n%s", err, res.stdout)
	}
	if c.File != "big.bin" || c.SizeBytes != size || c.Runs != 2 || len(c.Strategies) != len(names) {
		t.Fatalf("ferry compare --json: file %q, size %d, runs %d, %d strategies; want big.bin, %d, 2, %d\n%s",
			c.File, c.SizeBytes, c.Runs, len(c.Strategies), size, len(names), res.stdout)
	}
	copies := map[string]uint32{"READ_WRITE": 2, "MMAP": 1, "SPLICE": 0}
	for i, s := range c.Strategies {
		want := strings.TrimSuffix(strings.TrimPrefix(names[i], "auto ("), ")")
		if s.Strategy != want || s.Runs != 2 || s.Bytes != size {
			t.Errorf("entry %d: strategy %q, runs %d, bytes %d; want %q, 2, %d", i, s.Strategy, s.Runs, s.Bytes, want, size)
		}
		if s.ThroughputBytesPerSecond <= 0 || s.Syscalls == 0 || s.SyscallsPerGiB <= 0 {
			t.Errorf("entry %s: throughput %v, syscalls %d, per GiB %v; want all positive", s.Requested, s.ThroughputBytesPerSecond, s.Syscalls, s.SyscallsPerGiB)
		}
		if n, ok := copies[s.Strategy]; ok && s.ModelCPUCopies != n {
			t.Errorf("entry %s: model CPU copies %d, want %d", s.Requested, s.ModelCPUCopies, n)
		}
		if s.CPUCopiedBytes != size*uint64(s.ModelCPUCopies) {
			t.Errorf("entry %s: CPU-copied bytes %d, want %d x %d", s.Requested, s.CPUCopiedBytes, size, s.ModelCPUCopies)
		}
	}

	res = ferry(t, "compare", "--server", d.Addr, "--strategies", "splice,teleport", "big.bin")
	if res.code == 0 || !strings.Contains(res.stderr, "teleport") {
		t.Errorf("ferry compare --strategies splice,teleport: exit %d, stderr %q; want a failure naming teleport", res.code, res.stderr)
	}
}

// checkChart parses the SVG with encoding/xml and checks it has a bar per
// strategy in each of its two series, labelled with the strategy.
func checkChart(t *testing.T, path string, names []string) {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(doc))
	bars := map[string][]string{}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", path, err)
		}
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "rect" {
			a := map[string]string{}
			for _, at := range el.Attr {
				a[at.Name.Local] = at.Value
			}
			if a["class"] == "bar" {
				if _, err := strconv.ParseFloat(a["height"], 64); err != nil {
					t.Errorf("bar %v: height: %v", a, err)
				}
				bars[a["data-series"]] = append(bars[a["data-series"]], a["data-strategy"])
			}
		}
	}
	for _, series := range []string{"throughput", "cpu"} {
		if got := strings.Join(bars[series], ","); got != strings.Join(names, ",") {
			t.Errorf("chart series %s has bars %q, want %q", series, got, strings.Join(names, ","))
		}
	}
}

// TestPullProgress runs `ferry pull` with standard error on a pipe (no
// progress at all), on a pseudo-terminal (a bar, redrawn with carriage
// returns, ending at 100%), and on a terminal with --no-progress.
func TestPullProgress(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	writeRandom(t, root, "f.bin", 3<<20)
	d := startFerryd(t, root)
	dest := filepath.Join(out, "f.bin")

	res := ferryOK(t, "pull", "--server", d.Addr, "f.bin", dest)
	for _, stream := range []string{res.stdout, res.stderr} {
		if strings.ContainsAny(stream, "\r\x1b") || strings.Contains(stream, "ETA") {
			t.Errorf("ferry pull on pipes printed progress:\n%q", stream)
		}
	}

	tty := pullOnTerminal(t, "pull", "--server", d.Addr, "f.bin", dest+"2")
	if !strings.Contains(tty, "\r[====================] 100.0%  3.0 MiB / 3.0 MiB") || !strings.Contains(tty, "ETA 0:00") {
		t.Errorf("ferry pull on a terminal drew no finished bar:\n%q", tty)
	}
	if tty := pullOnTerminal(t, "pull", "--no-progress", "--server", d.Addr, "f.bin", dest+"3"); strings.Contains(tty, "\r") {
		t.Errorf("ferry pull --no-progress on a terminal drew a bar:\n%q", tty)
	}
}

// pullOnTerminal runs ferry with standard error on a new pseudo-terminal
// and returns what it wrote there.
func pullOnTerminal(t *testing.T, args ...string) string {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	check(t, unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	check(t, err)
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	check(t, err)
	// Raw mode: the terminal passes \r and \n through as written.
	tio, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	check(t, err)
	tio.Oflag &^= unix.OPOST
	check(t, unix.IoctlSetTermios(int(pts.Fd()), unix.TCSETS, tio))

	var got bytes.Buffer
	read := make(chan struct{})
	go func() { // ends with EIO once the last holder of pts closes it
		io.Copy(&got, ptmx)
		close(read)
	}()
	cmd := exec.Command(bin.ferry, args...)
	cmd.Env, cmd.Stderr = cleanEnv(), pts
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	err = cmd.Run()
	pts.Close()
	<-read
	if err != nil {
		t.Fatalf("ferry %q: %v\n%s", args, err, got.String())
	}
	return got.String()
}
