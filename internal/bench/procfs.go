package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// which Linux fixes at 100 on every architecture Go supports.
const userHZ = 100

// procStat is what the harness reads from /proc/<pid>/stat.
type procStat struct {
	PPID         int
	UTime, STime uint64 // clock ticks (1/userHZ s), all threads, dead ones included
}

func (p procStat) cpu() time.Duration {
	return time.Duration(p.UTime+p.STime) * time.Second / userHZ
}

// parseProcStat reads fields 4 (ppid), 14 (utime) and 15 (stime) of a
// /proc/<pid>/stat line. The command name (field 2) may hold spaces and
// parentheses, so fields are counted after its last ')'.
func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("proc stat: no ')' in %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 { // f[0] is field 3 (state)
		return procStat{}, fmt.Errorf("proc stat: %d fields after the name, want at least 13", len(f))
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseUint(f[11], 10, 64)
	st, err3 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return procStat{}, fmt.Errorf("proc stat: bad ppid/utime/stime %q %q %q", f[1], f[11], f[12])
	}
	return procStat{PPID: ppid, UTime: ut, STime: st}, nil
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

// descendants returns root and every process below it, given each
// process's parent.
func descendants(parents map[int]int, root int) []int {
	children := map[int][]int{}
	for pid, ppid := range parents {
		children[ppid] = append(children[ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// processTree lists pid and its descendants now, from a scan of /proc.
func processTree(pid int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	parents := map[int]int{}
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if st, err := readProcStat(p); err == nil {
			parents[p] = st.PPID
		}
	}
	return descendants(parents, pid)
}

// listeningPorts parses /proc/net/tcp or /proc/net/tcp6: the local ports
// of sockets in state LISTEN (0A).
func listeningPorts(b []byte) map[int]bool {
	ports := map[int]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
			ports[int(p)] = true
		}
	}
	return ports
}

// parseStatusKiB reads a line such as "VmRSS:" of /proc/<pid>/status, in
// bytes.
func parseStatusKiB(b []byte, key string) (int64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, key+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status: odd %s line %q", key, line)
		}
		kib, err := strconv.ParseInt(f[0], 10, 64)
		return kib << 10, err
	}
	return 0, fmt.Errorf("status: no %s line", key)
}

// parseSteal reads the time the hypervisor took from every CPU (steal,
// the 8th number of /proc/stat's "cpu" line), in seconds.
func parseSteal(b []byte) (float64, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: no cpu line with a steal field")
	}
	ticks, err := strconv.ParseUint(f[8], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/stat steal: %w", err)
	}
	return float64(ticks) / userHZ, nil
}

// stealNow is parseSteal of this machine's /proc/stat; 0 when it cannot
// be read (then no sample is ever run again for it).
func stealNow() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	s, _ := parseSteal(b)
	return s
}
