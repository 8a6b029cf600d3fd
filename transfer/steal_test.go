package transfer

import (
	"os"
	"testing"
	"time"
)

func TestParseSteal(t *testing.T) {
	stat := "cpu  1975010 0 1995921 12103206 81233 0 347650 212545 0 0\n" +
		"cpu0 980257 0 955623 6131317 15632 0 166316 105191 0 0\n" +
		"cpu1 994753 0 1040297 5971889 65601 0 181334 107354 0 0\n" +
		"intr 343075107 0 0\nctxt 620678209\n"
	m, ok := parseSteal([]byte(stat))
	if !ok || m.ticks != 212545 || m.cpus != 2 {
		t.Errorf("parseSteal = %+v, %v; want 212545 ticks over 2 CPUs", m, ok)
	}
	for _, bad := range []string{"", "cpu  1 2 3 4 5 6 7\ncpu0 1 2 3 4 5 6 7 8\n", "cpu  1 2 3 4 5 6 7 x 0 0\ncpu0 1\n", "cpu  1 2 3 4 5 6 7 8 0 0\nintr 1\n"} {
		if m, ok := parseSteal([]byte(bad)); ok {
			t.Errorf("parseSteal(%q) = %+v, want no reading", bad, m)
		}
	}
	// This machine's own /proc/stat, where there is one.
	if _, err := os.Stat("/proc/stat"); err == nil {
		if m := markSteal(); m.at.IsZero() || m.cpus < 1 {
			t.Errorf("markSteal on this host = %+v, want a reading", m)
		}
	}
}

// TestStolenBy: the share is of the machine's CPU time over the wall
// time between the readings, in USER_HZ ticks.
func TestStolenBy(t *testing.T) {
	at := time.Unix(1000, 0)
	start := stealMark{ticks: 500, cpus: 2, at: at}
	later := func(ticks uint64, d time.Duration) stealMark { return stealMark{ticks: ticks, cpus: 2, at: at.Add(d)} }
	for _, c := range []struct {
		now  stealMark
		want bool
	}{
		{later(510, time.Second), false}, // 0.1 s of 2 s: exactly 5%, not more
		{later(511, time.Second), true},  // 0.11 s of 2 s
		{later(530, 4*time.Second), false},
		{later(400, time.Second), false},     // a counter that went back: no verdict
		{stealMark{ticks: 900}, false},       // no later reading
		{later(900, time.Millisecond), true}, // 4 s stolen in a millisecond: more than the limit
	} {
		if got := start.stolenBy(c.now); got != c.want {
			t.Errorf("stolenBy(%d ticks after %v) = %v, want %v", c.now.ticks-start.ticks, c.now.at.Sub(at), got, c.want)
		}
	}
	if (stealMark{}).stolenBy(later(900, time.Second)) {
		t.Error("a transfer with no reading at its start counted as stolen")
	}
}

// TestChooserLeavesOutStolen: a live figure taken while the hypervisor
// took the machine is left out, at most autoStolenRun in a row; the next
// is kept, so a host that is always stolen from still measures.
func TestChooserLeavesOutStolen(t *testing.T) {
	c := newChooser(Strategies, fixedOrder, 0)
	at := time.Now()
	gb := func(st Strategy, gbps float64) Stats {
		return Stats{Strategy: st, Bytes: 1 << 30, Duration: time.Duration(float64(1<<30) / (gbps * 1e9) * float64(time.Second))}
	}
	c.observe(1<<30, Loopback, SinkStream, gb(ReadWrite, 4), at, false)
	if got, _ := c.pickFor(1<<30, Loopback, SinkStream); got != ReadWrite {
		t.Fatalf("pick = %v, want %v", got, ReadWrite)
	}
	leftOut := func() int {
		for _, ac := range c.policy() {
			if ac.Min == 256*mib && ac.Network == Loopback && ac.Sink == SinkStream {
				return ac.LeftOutForSteal
			}
		}
		t.Fatal("no [256 MiB, ∞) loopback stream class in the policy")
		return 0
	}
	for i := range autoStolenRun {
		c.observe(1<<30, Loopback, SinkStream, gb(Mmap, 9), at, true)
		if got, _ := c.pickFor(1<<30, Loopback, SinkStream); got != ReadWrite {
			t.Fatalf("pick after %d stolen MMAP figures = %v, want %v: they are left out", i+1, got, ReadWrite)
		}
	}
	if n := leftOut(); n != autoStolenRun {
		t.Errorf("left out for steal = %d, want %d", n, autoStolenRun)
	}
	c.observe(1<<30, Loopback, SinkStream, gb(Mmap, 9), at, true)
	if got, _ := c.pickFor(1<<30, Loopback, SinkStream); got != Mmap {
		t.Errorf("pick after %d stolen figures in a row = %v, want %v: the next is kept", autoStolenRun+1, got, Mmap)
	}
	// A kept figure starts the run again.
	c.observe(1<<30, Loopback, SinkStream, gb(Sendfile, 20), at, true)
	if got, _ := c.pickFor(1<<30, Loopback, SinkStream); got != Mmap {
		t.Errorf("pick after a stolen SENDFILE figure = %v, want %v still", got, Mmap)
	}
	if n := leftOut(); n != autoStolenRun+1 {
		t.Errorf("left out for steal = %d, want %d", n, autoStolenRun+1)
	}
	// Other classes are not touched, and the probe's figures are never
	// left out.
	c.seed(64*mib, Loopback, SinkStream, gb(Splice, 5), at)
	if got, _ := c.pickFor(64*mib, Loopback, SinkStream); got != Splice {
		t.Errorf("[16 MiB, 256 MiB) pick = %v, want the probe's %v", got, Splice)
	}
}

// BenchmarkMarkSteal is what the steal check costs a transfer of 16 MiB
// or more: two of these, against tens of milliseconds of copying.
func BenchmarkMarkSteal(b *testing.B) {
	for b.Loop() {
		if m := markSteal(); m.at.IsZero() {
			b.Fatal("no reading of /proc/stat")
		}
	}
}
