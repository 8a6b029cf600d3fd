package transfer

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// Steal is the time the hypervisor ran something else on this virtual
// machine's CPUs while they had work: /proc/stat's eighth "cpu" figure.
// A live transfer during which it took much of the machine measured the
// other tenant, not the strategy; on a 2-core AMD EPYC guest, spells of
// 20-40% steal held single 2 GiB transfers of one strategy to half their
// rate, and the figures so taken moved auto's pick to a slower strategy
// for rounds. The measuring Auto leaves such a transfer's figure out
// (chooser.keep), as ferry-bench reruns its samples for the same cause.

// autoStealLimit is the share of the machine's CPU time the hypervisor
// may take while a transfer runs for its figure to count.
const autoStealLimit = 0.05

// autoStolenRun is how many figures in a row one class leaves out for
// steal; the next is kept. On a host whose steal never drops below the
// limit (an instance out of CPU credits), figures still come in, one in
// autoStolenRun+1, rather than never.
const autoStolenRun = 3

// userHZ is the unit of /proc/stat's times: USER_HZ, 100 on Linux
// whatever the kernel's tick.
const userHZ = 100

// stealMark is a reading of the machine's steal at a transfer's
// admission; the zero stealMark is no reading.
type stealMark struct {
	ticks uint64
	cpus  int
	at    time.Time
}

// markSteal reads the steal now; the zero stealMark where /proc/stat has
// none (not Linux, no /proc).
func markSteal() stealMark {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return stealMark{}
	}
	m, ok := parseSteal(b)
	if !ok {
		return stealMark{}
	}
	m.at = time.Now()
	return m
}

// stolen reports whether, since m, the hypervisor took more than
// autoStealLimit of the machine's CPU time. False without a reading.
func (m stealMark) stolen() bool {
	if m.at.IsZero() {
		return false
	}
	return m.stolenBy(markSteal())
}

// stolenBy is stolen with the later reading given.
func (m stealMark) stolenBy(now stealMark) bool {
	if m.at.IsZero() || now.at.IsZero() || now.ticks < m.ticks {
		return false
	}
	took := float64(now.ticks-m.ticks) / userHZ
	return took > autoStealLimit*now.at.Sub(m.at).Seconds()*float64(max(m.cpus, 1))
}

// parseSteal reads the steal, in ticks, from /proc/stat's first line
// ("cpu  user nice system idle iowait irq softirq steal ..."), and counts
// the machine's CPUs by their own lines ("cpu0", "cpu1", ...): the first
// line sums them all, which may be more than this process may run on.
func parseSteal(b []byte) (stealMark, bool) {
	line, rest, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return stealMark{}, false
	}
	ticks, err := strconv.ParseUint(string(f[8]), 10, 64)
	if err != nil {
		return stealMark{}, false
	}
	m := stealMark{ticks: ticks}
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		if len(line) > 3 && string(line[:3]) == "cpu" && line[3] >= '0' && line[3] <= '9' {
			m.cpus++
		}
	}
	return m, m.cpus > 0
}
