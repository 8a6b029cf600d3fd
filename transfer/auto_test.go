package transfer

import (
	"bytes"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// synthetic feeds a chooser transfers of length bytes whose strategies
// cost what rates say (bytes per second), as many as n, each chosen by
// the chooser itself, and returns how often each strategy was chosen and
// how many of those were explorations.
func synthetic(c *chooser, length int64, net Network, rates map[Strategy]float64, n int) (chosen map[Strategy]int, explored int) {
	chosen = make(map[Strategy]int)
	at := time.Unix(0, 0)
	for range n {
		st, choice := c.choose(length, net, SinkFile)
		chosen[st]++
		if choice.Exploration {
			explored++
		}
		at = at.Add(time.Second)
		c.record(length, net, SinkFile, Stats{
			Strategy: st, Bytes: length,
			Duration: time.Duration(float64(length) / rates[st] * float64(time.Second)),
		}, at)
	}
	return chosen, explored
}

func fixedOrder(int64) []Strategy { return []Strategy{Mmap, Sendfile, Splice, ReadWrite} }

// TestChooserConverges: fed the costs of a host where READ_WRITE is the
// fastest (as on a VM where page faults are dear) and the fixed order
// starts at MMAP, the chooser moves to READ_WRITE once it has measured
// it, and from then on picks it for every transfer that does not
// explore. The same chooser, in another size class where SENDFILE wins,
// picks SENDFILE there.
func TestChooserConverges(t *testing.T) {
	c := newChooser(Strategies, fixedOrder, 10)
	large := map[Strategy]float64{ReadWrite: 3e9, Mmap: 1.4e9, Sendfile: 1.5e9, Splice: 1.6e9}
	// Warm-up: until each strategy has a figure, exploration measures them.
	synthetic(c, 64*mib, Loopback, large, 40)
	if got, reason := c.pickFor(64*mib, Loopback, SinkFile); got != ReadWrite {
		t.Fatalf("after 40 transfers the pick for 64 MiB = %v (%s), want %v", got, reason, ReadWrite)
	}
	chosen, explored := synthetic(c, 64*mib, Loopback, large, 100)
	if want := 100 - explored; chosen[ReadWrite] != want {
		t.Errorf("over 100 more transfers READ_WRITE was chosen %d times, want every one that did not explore (%d); chosen %v",
			chosen[ReadWrite], want, chosen)
	}
	// Below liveFrom only the probe's figures count, and nothing explores.
	medium := map[Strategy]float64{ReadWrite: 1e9, Mmap: 0.8e9, Sendfile: 2e9, Splice: 1.2e9}
	for st, r := range medium {
		c.record(2*mib, Loopback, SinkFile, Stats{Strategy: st, Bytes: 2 * mib, Duration: time.Duration(2 * mib / r * 1e9)}, time.Now())
	}
	if got, _ := c.pickFor(2*mib, Loopback, SinkFile); got != Sendfile {
		t.Errorf("pick for 2 MiB = %v, want %v (its own class's figures)", got, Sendfile)
	}
	if chosen, explored := synthetic(c, 2*mib, Loopback, medium, 40); explored != 0 || chosen[Sendfile] != 40 {
		t.Errorf("40 transfers of 2 MiB: chosen %v, %d explored; want SENDFILE every time, none explored", chosen, explored)
	}
	if got, _ := c.pickFor(64*mib, Loopback, SinkFile); got != ReadWrite {
		t.Errorf("pick for 64 MiB after 2 MiB transfers = %v, want %v (classes are measured apart)", got, ReadWrite)
	}
}

// TestChooserFollowsChange: a strategy that becomes slower (the host
// changed under it) loses the pick once its recent figures say so.
func TestChooserFollowsChange(t *testing.T) {
	c := newChooser(Strategies, fixedOrder, 5)
	rates := map[Strategy]float64{ReadWrite: 1e9, Mmap: 3e9, Sendfile: 2e9, Splice: 1e9}
	synthetic(c, 64*mib, Loopback, rates, 60)
	if got, _ := c.pickFor(64*mib, Loopback, SinkFile); got != Mmap {
		t.Fatalf("pick = %v, want %v", got, Mmap)
	}
	rates[Mmap] = 0.5e9
	synthetic(c, 64*mib, Loopback, rates, 60)
	if got, _ := c.pickFor(64*mib, Loopback, SinkFile); got != Sendfile {
		t.Errorf("after MMAP slowed to 0.5 GB/s the pick = %v, want %v", got, Sendfile)
	}
}

// TestChooserKeepsPickWithinMargin: two strategies within noise of each
// other (their figures alternate, READ_WRITE's median a little above
// MMAP's, then a little below) do not trade the pick: the pick moves only
// to a strategy whose figure is autoMargin above it, and then at once.
func TestChooserKeepsPickWithinMargin(t *testing.T) {
	c := newChooser(Strategies, fixedOrder, 0)
	at := time.Unix(0, 0)
	feed := func(st Strategy, rate float64, n int) {
		for range n {
			at = at.Add(time.Second)
			c.record(64*mib, Loopback, SinkFile, Stats{Strategy: st, Bytes: 64 * mib,
				Duration: time.Duration(64 * mib / rate * float64(time.Second))}, at)
		}
	}
	feed(ReadWrite, 3.0e9, autoWindow)
	feed(Mmap, 2.9e9, autoWindow)
	feed(Sendfile, 2.0e9, autoWindow)
	if got, reason := c.pickFor(64*mib, Loopback, SinkFile); got != ReadWrite {
		t.Fatalf("pick = %v (%s), want %v", got, reason, ReadWrite)
	}
	// MMAP's median now 3% above READ_WRITE's: within the margin.
	feed(Mmap, 3.09e9, autoWindow)
	if got, reason := c.pickFor(64*mib, Loopback, SinkFile); got != ReadWrite || !strings.Contains(reason, "kept") {
		t.Errorf("with MMAP 3%% above READ_WRITE the pick = %v (%s), want %v kept", got, reason, ReadWrite)
	}
	// And 10% above: MMAP takes the pick.
	feed(Mmap, 3.3e9, autoWindow)
	if got, reason := c.pickFor(64*mib, Loopback, SinkFile); got != Mmap {
		t.Errorf("with MMAP 10%% above READ_WRITE the pick = %v (%s), want %v", got, reason, Mmap)
	}
	// READ_WRITE back 3% above MMAP: MMAP, now the pick, is kept.
	feed(ReadWrite, 3.4e9, autoWindow)
	if got, reason := c.pickFor(64*mib, Loopback, SinkFile); got != Mmap {
		t.Errorf("with READ_WRITE 3%% above MMAP the pick = %v (%s), want %v kept", got, reason, Mmap)
	}
	// A pick that fails on the host is dropped whatever the margin.
	for range failAfter {
		c.fail(Mmap)
	}
	if got, reason := c.pickFor(64*mib, Loopback, SinkFile); got != ReadWrite {
		t.Errorf("after MMAP failed the pick = %v (%s), want %v", got, reason, ReadWrite)
	}
}

// TestChooserExplorationBudget: exploration takes exactly one Auto
// transfer in every AutoExploreEvery of a class, plus one early transfer
// for each strategy other than the first pick (three here), and none
// when it is off.
func TestChooserExplorationBudget(t *testing.T) {
	rates := map[Strategy]float64{ReadWrite: 1e9, Mmap: 2e9, Sendfile: 1.5e9, Splice: 1.2e9}
	for _, tt := range []struct{ every, n, want int }{{20, 400, 20 + 3}, {10, 95, 9 + 3}, {0, 200, 0}} {
		c := newChooser(Strategies, fixedOrder, tt.every)
		if _, explored := synthetic(c, 64*mib, Loopback, rates, tt.n); explored != tt.want {
			t.Errorf("every %d, %d transfers: %d explored, want %d", tt.every, tt.n, explored, tt.want)
		}
	}
}

// TestChooserMeasuresEachEarly: the start-up probe's figures put SPLICE
// first, but long transfers run fastest with READ_WRITE (as on an AMD
// EPYC VM: 3.86 GB/s against SPLICE's 3.16). The first Auto transfer
// takes the probe's pick; the next three measure the other strategies
// once each, so that from the fifth on auto picks READ_WRITE, instead
// of after 3 × 20 transfers. That costs three explorations per class,
// once, even when no figure is kept (transfers that shared the server).
func TestChooserMeasuresEachEarly(t *testing.T) {
	probe := map[Strategy]float64{Splice: 3.0e9, ReadWrite: 2.6e9, Mmap: 2.7e9, Sendfile: 2.8e9}
	live := map[Strategy]float64{ReadWrite: 3.86e9, Mmap: 3.49e9, Splice: 3.16e9, Sendfile: 2.89e9}
	seeded := func() *chooser {
		c := newChooser(Strategies, fixedOrder, 20)
		for st, r := range probe {
			c.seed(1<<30, Loopback, SinkFile, Stats{Strategy: st, Bytes: 64 * mib, Duration: time.Duration(64 * mib / r * 1e9)}, time.Unix(0, 0)) // as the probe seeds the largest class
		}
		return c
	}
	c := seeded()
	if got, _ := c.pickFor(1<<30, Loopback, SinkFile); got != Splice {
		t.Fatalf("pick from the probe's figures = %v, want %v", got, Splice)
	}
	chosen, explored := synthetic(c, 1<<30, Loopback, live, 4)
	if explored != 3 || len(chosen) != 4 {
		t.Errorf("first 4 transfers: chosen %v, %d explored; want each strategy once, 3 of them explorations", chosen, explored)
	}
	if got, reason := c.pickFor(1<<30, Loopback, SinkFile); got != ReadWrite {
		t.Errorf("pick after 4 transfers = %v (%s), want %v", got, reason, ReadWrite)
	}
	chosen, explored = synthetic(c, 1<<30, Loopback, live, 100)
	if explored != 5 || chosen[ReadWrite] != 95 {
		t.Errorf("next 100 transfers: chosen %v, %d explored; want READ_WRITE for the 95 that did not explore (one in 20)", chosen, explored)
	}
	// No figure kept: the early explorations still end.
	c = seeded()
	explored = 0
	for range 60 {
		if _, choice := c.choose(1<<30, Loopback, SinkFile); choice.Exploration {
			explored++
		}
	}
	if explored != 3+3 {
		t.Errorf("60 transfers whose figures were not kept: %d explored, want 3 early and 3 scheduled", explored)
	}
}

// TestChooserNeverPicksFailed: a strategy refused on this host (failAfter
// times) is never chosen again, neither as the pick nor to explore,
// however fast it was; one refusal is not enough.
func TestChooserNeverPicksFailed(t *testing.T) {
	c := newChooser(Strategies, fixedOrder, 2)
	rates := map[Strategy]float64{ReadWrite: 1e9, Mmap: 1e9, Sendfile: 1e9, Splice: 9e9}
	synthetic(c, 64*mib, Loopback, rates, 20)
	if got, _ := c.pickFor(64*mib, Loopback, SinkFile); got != Splice {
		t.Fatalf("pick = %v, want %v before it fails", got, Splice)
	}
	c.fail(Splice)
	if got, _ := c.pickFor(64*mib, Loopback, SinkFile); got != Splice {
		t.Errorf("pick after one refusal = %v, want %v still: one odd file is not the host", got, Splice)
	}
	for range failAfter - 1 {
		c.fail(Splice)
	}
	chosen, _ := synthetic(c, 64*mib, Loopback, rates, 100)
	if chosen[Splice] != 0 {
		t.Errorf("SPLICE chosen %d times after it failed, want 0", chosen[Splice])
	}
	for _, class := range c.policy() {
		if class.Pick == Splice {
			t.Errorf("class %v picks SPLICE after it failed", class)
		}
	}
}

// TestChooserUnmeasured: with nothing measured a class follows the fixed
// order; a remote class borrows the loopback class's figures until it
// has its own; paced and short transfers are not figures.
func TestChooserUnmeasured(t *testing.T) {
	c := newChooser(Strategies, fixedOrder, 0)
	if got, reason := c.pickFor(64*mib, Loopback, SinkFile); got != Mmap {
		t.Errorf("pick with nothing measured = %v (%s), want the fixed order's first, %v", got, reason, Mmap)
	}
	c.observe(64*mib, Loopback, SinkFile, Stats{Strategy: Splice, Bytes: 64 * mib, Duration: time.Millisecond, RateLimit: 1}, time.Now(), false)
	if got, _ := c.pickFor(64*mib, Loopback, SinkFile); got != Mmap {
		t.Errorf("pick after a paced transfer = %v, want %v (it is no figure)", got, Mmap)
	}
	// A live transfer shorter than liveFrom says how fast the kernel took
	// it, not how fast it arrived: no figure either.
	c.observe(2*mib, Loopback, SinkFile, Stats{Strategy: Splice, Bytes: 2 * mib, Duration: time.Microsecond}, time.Now(), false)
	if got, _ := c.pickFor(2*mib, Loopback, SinkFile); got != Mmap {
		t.Errorf("pick for 2 MiB after a live 2 MiB transfer = %v, want %v (below liveFrom: no figure)", got, Mmap)
	}
	c.record(64*mib, Loopback, SinkFile, Stats{Strategy: Sendfile, Bytes: 64 * mib, Duration: 20 * time.Millisecond}, time.Now())
	if got, _ := c.pickFor(64*mib, Remote, SinkFile); got != Sendfile {
		t.Errorf("remote pick with only loopback figures = %v, want theirs, %v", got, Sendfile)
	}
	c.record(64*mib, Remote, SinkFile, Stats{Strategy: ReadWrite, Bytes: 64 * mib, Duration: 20 * time.Millisecond}, time.Now())
	if got, _ := c.pickFor(64*mib, Remote, SinkFile); got != ReadWrite {
		t.Errorf("remote pick with its own figures = %v, want %v", got, ReadWrite)
	}
}

// TestChooserProbeGivesWay: the probe's figures stand for a strategy
// until it has live ones, and then no longer count. Mixed in, two probe
// runs would have outvoted one live transfer.
func TestChooserProbeGivesWay(t *testing.T) {
	c := newChooser(Strategies, fixedOrder, 0)
	at := time.Now()
	at1 := func(st Strategy, gbps float64) Stats {
		return Stats{Strategy: st, Bytes: 1 << 30, Duration: time.Duration(float64(time.Second) / gbps)}
	}
	for range 2 {
		for st, gbps := range map[Strategy]float64{Splice: 5, Mmap: 1, Sendfile: 1, ReadWrite: 1} {
			c.seed(1<<30, Loopback, SinkStream, at1(st, gbps), at)
		}
	}
	c.record(1<<30, Loopback, SinkStream, at1(Mmap, 4), at)
	if got, reason := c.pickFor(1<<30, Loopback, SinkStream); got != Splice {
		t.Errorf("pick = %v (%s), want %v: its probe figures stand until it has live ones", got, reason, Splice)
	}
	for st, gbps := range map[Strategy]float64{Splice: 3, Sendfile: 2, ReadWrite: 2} {
		c.record(1<<30, Loopback, SinkStream, at1(st, gbps), at)
	}
	if got, reason := c.pickFor(1<<30, Loopback, SinkStream); got != Mmap {
		t.Errorf("pick = %v (%s), want %v: with live figures for every strategy the probe's no longer count", got, reason, Mmap)
	}
	for _, ac := range c.policy() {
		if ac.BySink && ac.Sink == SinkStream && ac.Min == 256*mib && ac.Network == Loopback {
			for _, sc := range ac.Costs {
				if sc.Samples != 1 {
					t.Errorf("%v: %d samples shown, want the 1 live one", sc.Strategy, sc.Samples)
				}
			}
		}
	}
}

// TestChooserSinks: a large class keeps the figures of receivers that land
// files apart from those of receivers that pass the bytes on. Mixed, the
// slow disk-bound figures of one strategy would sink it below the others
// for fast receivers too, which is how the benchmark saw auto pass over
// the fastest strategy to /dev/null. A sink with no figures borrows the
// other's.
func TestChooserSinks(t *testing.T) {
	c := newChooser(Strategies, fixedOrder, 0)
	at := time.Now()
	// To /dev/null, MMAP is fastest (4 GB/s against 3).
	for st, gbps := range map[Strategy]float64{Mmap: 4, Sendfile: 3, Splice: 3, ReadWrite: 3} {
		for range autoWindow {
			c.record(1<<30, Loopback, SinkStream, Stats{Strategy: st, Bytes: 1 << 30, Duration: time.Duration(float64(time.Second) / gbps)}, at)
		}
	}
	if got, reason := c.pickFor(1<<30, Loopback, SinkFile); got != Mmap {
		t.Errorf("file pick with only stream figures = %v (%s), want theirs, %v", got, reason, Mmap)
	}
	// Landing files, every strategy waits on the disk, MMAP a little more.
	for st, gbps := range map[Strategy]float64{Mmap: 1.7, Sendfile: 1.9, Splice: 1.8, ReadWrite: 0.6} {
		for range autoWindow {
			c.record(1<<30, Loopback, SinkFile, Stats{Strategy: st, Bytes: 1 << 30, Duration: time.Duration(float64(time.Second) / gbps)}, at)
		}
	}
	if got, _ := c.pickFor(1<<30, Loopback, SinkStream); got != Mmap {
		t.Errorf("stream pick after file figures = %v, want %v: the disk's figures are not a stream's", got, Mmap)
	}
	if got, _ := c.pickFor(1<<30, Loopback, SinkFile); got != Sendfile {
		t.Errorf("file pick with its own figures = %v, want %v", got, Sendfile)
	}
	// Below liveFrom the sinks share one class.
	if a, b := classOf(mib, Loopback, SinkFile), classOf(mib, Loopback, SinkStream); a != b {
		t.Errorf("1 MiB classes differ by sink: %v, %v", a, b)
	}
	names := map[string]bool{}
	for _, ac := range c.policy() {
		k := classOf(ac.Min, ac.Network, ac.Sink)
		names[k.String()] = true
		if ac.BySink != (ac.Min >= liveFrom) {
			t.Errorf("class %s: BySink %v", k, ac.BySink)
		}
	}
	for _, want := range []string{"[256 MiB, ∞) loopback, to a file", "[256 MiB, ∞) loopback, to a stream", "[256 MiB, ∞) loopback, to a reader", "[0 B, 64 KiB) network"} {
		if !names[want] {
			t.Errorf("policy has no class %q; has %v", want, names)
		}
	}
}

// TestChooserReadersApart: figures from receivers that read every byte
// into memory, slower whatever the strategy, are kept apart from those of
// a receiver that splices. Mixed (as a reading receiver's were with a
// stream's), the strategy auto picked collected the slow readers'
// figures while the others kept only fast ones, and auto turned away
// from each pick in turn.
func TestChooserReadersApart(t *testing.T) {
	c := newChooser(Strategies, fixedOrder, 0)
	at := time.Now()
	record := func(sink Sink, st Strategy, gbps float64) {
		c.record(1<<30, Loopback, sink, Stats{Strategy: st, Bytes: 1 << 30, Duration: time.Duration(float64(time.Second) / gbps)}, at)
	}
	// Every strategy named by splicing receivers: MMAP the fastest.
	for range autoWindow {
		for st, gbps := range map[Strategy]float64{Mmap: 3.4, ReadWrite: 3.0, Sendfile: 2.9, Splice: 2.8} {
			record(SinkStream, st, gbps)
		}
	}
	// Reading receivers take what auto picks for them, and every one of
	// their transfers runs at their own pace, below any stream figure.
	first, _ := c.pickFor(1<<30, Loopback, SinkReader)
	if first != Mmap {
		t.Errorf("reader pick with only stream figures = %v, want theirs, %v", first, Mmap)
	}
	for range 2 * autoWindow {
		st, _ := c.pickFor(1<<30, Loopback, SinkReader)
		record(SinkReader, st, 2.4)
	}
	if got, reason := c.pickFor(1<<30, Loopback, SinkStream); got != Mmap {
		t.Errorf("stream pick after readers' figures = %v (%s), want %v: a reader's pace says nothing of a stream's", got, reason, Mmap)
	}
	if a, b := classOf(1<<30, Loopback, SinkReader), classOf(1<<30, Loopback, SinkStream); a == b {
		t.Errorf("readers and streams share the class %v", a)
	}
}

// TestAutoMeasureServer runs the measuring Auto in a real server: the
// start-up probe seeds every loopback class of a passing-on receiver
// with a figure for every supported strategy (the classes of receivers
// landing files or reading the bytes borrow them), an Auto offer reports that the server chose it and in which
// class, a named strategy is always honoured, and the offer's strategy
// is the policy's pick for its class unless the offer explored.
func TestAutoMeasureServer(t *testing.T) {
	ts := startServer(t, Config{Auto: AutoMeasure, AutoProbe: true, AutoProbeDir: t.TempDir(), AutoExploreEvery: -1})
	ts.probing.Wait()
	p := ts.AutoPolicy()
	if p.Seed != "probe" || p.Mode != AutoMeasure {
		t.Fatalf("AutoPolicy() = mode %v, seed %q; want measured, seeded by the probe", p.Mode, p.Seed)
	}
	for _, class := range p.Classes {
		if class.Network != Loopback {
			continue
		}
		if class.BySink && class.Sink != SinkStream {
			if !strings.Contains(class.Reason, "to a stream: ") {
				t.Errorf("class [%d, %d) to a %v: reason %q; want the stream class's figures borrowed", class.Min, class.Below, class.Sink, class.Reason)
			}
			continue
		}
		for _, cost := range class.Costs {
			if cost.Samples == 0 || cost.Rate <= 0 {
				t.Errorf("class [%d, %d): %v has %d samples at %.0f B/s; want the probe's figures",
					class.Min, class.Below, cost.Strategy, cost.Samples, cost.Rate)
			}
		}
	}
	dir := t.TempDir()
	path, data := writeFile(t, dir, 3*mib)
	tr := ts.offer(t, path, Source{ClientIP: loopbackIP})
	want, _ := ts.auto.pickFor(3*mib, Loopback, SinkFile)
	if !tr.Auto.ChosenByServer || tr.Auto.Exploration || tr.Strategy != want || tr.Auto.Class != "[1 MiB, 16 MiB) loopback" {
		t.Errorf("Auto offer: strategy %v, %+v; want the pick %v, chosen by the server in [1 MiB, 16 MiB) loopback", tr.Strategy, tr.Auto, want)
	}
	if _, got := ts.receiveFile(t, tr, dir, ReceiveConfig{}); !bytes.Equal(got, data) {
		t.Fatal("received bytes differ")
	}
	for _, st := range ts.Supported() {
		tr := ts.offer(t, path, Source{Strategy: st, ClientIP: loopbackIP})
		if tr.Strategy != st || tr.Auto.ChosenByServer {
			t.Errorf("offer naming %v got %v, %+v", st, tr.Strategy, tr.Auto)
		}
		tr.Cancel()
	}
}

// TestAutoFiguresOnlyAlone: a live transfer that shared the server with
// another is no figure (its rate was its share of the host); one that had
// the server to itself is. Two offers taken up one after the other
// overlap from the second's admission to the first's end.
func TestAutoFiguresOnlyAlone(t *testing.T) {
	ts := startServer(t, Config{Auto: AutoMeasure, AutoExploreEvery: -1})
	dir := t.TempDir()
	path, data := writeFile(t, dir, liveFrom)
	samples := func() (n int) {
		for _, c := range ts.AutoPolicy().Classes {
			if c.Network == Loopback && c.Min == liveFrom && c.Sink == SinkFile {
				for _, sc := range c.Costs {
					n += sc.Samples
				}
			}
		}
		return n
	}
	first := ts.offer(t, path, Source{Strategy: ReadWrite, ClientIP: loopbackIP})
	second := ts.offer(t, path, Source{Strategy: ReadWrite, ClientIP: loopbackIP})
	for _, tr := range []*Transfer{first, second} {
		if _, got := ts.receiveFile(t, tr, dir, ReceiveConfig{}); !bytes.Equal(got, data) {
			t.Fatal("received bytes differ")
		}
		if _, err := tr.Result(); err != nil { // the sender has finished, and kept or dropped its figure
			t.Fatal(err)
		}
	}
	if n := samples(); n != 0 {
		t.Errorf("after two overlapping transfers the class has %d figures, want 0", n)
	}
	alone := ts.offer(t, path, Source{Strategy: ReadWrite, ClientIP: loopbackIP})
	if _, got := ts.receiveFile(t, alone, dir, ReceiveConfig{}); !bytes.Equal(got, data) {
		t.Fatal("received bytes differ")
	}
	if _, err := alone.Result(); err != nil {
		t.Fatal(err)
	}
	if n := samples(); n != 1 {
		t.Errorf("after a transfer alone the class has %d figures, want 1", n)
	}
}

// TestAutoProbeStopsWithServer: closing the server while the probe runs
// ends the probe and leaves no goroutine or descriptor behind.
func TestAutoProbeStopsWithServer(t *testing.T) {
	before := openFDs(t)
	s := NewServer(Config{Logger: quiet, Auto: AutoMeasure, AutoProbe: true, AutoProbeDir: t.TempDir()})
	s.Close()
	checkNoGoroutines(t)
	after := openFDs(t)
	for fd, target := range after {
		if _, ok := before[fd]; !ok {
			t.Errorf("descriptor %s (%s) left open after Close", fd, target)
		}
	}
}

// TestAutoFixedByDefault: the zero Config keeps the fixed order and
// reports no measurement.
func TestAutoFixedByDefault(t *testing.T) {
	s := NewServer(Config{Logger: quiet})
	defer s.Close()
	if p := s.AutoPolicy(); p.Mode != AutoFixed || len(p.Classes) != 0 {
		t.Errorf("zero Config: AutoPolicy() = %+v, want the fixed order", p)
	}
	var want Strategy
	for _, st := range defaultPreference {
		if slices.Contains(s.Supported(), st) {
			want = st
			break
		}
	}
	if got, _ := s.ChooseFor(Auto, 64*mib); got != want {
		t.Errorf("zero Config: ChooseFor(Auto, 64 MiB) = %v, want %v, the fixed order's first supported", got, want)
	}
}

var loopbackIP = netip.MustParseAddr("127.0.0.1")

// TestAutoProbeIsNoTransfer: the probe's own transfers reach neither the
// Events (metrics) nor the log: nobody asked for them.
func TestAutoProbeIsNoTransfer(t *testing.T) {
	var rec recorder
	var log bytes.Buffer
	s := NewServer(Config{Logger: slog.New(slog.NewTextHandler(&log, nil)), Events: rec.events(),
		Auto: AutoMeasure, AutoProbe: true, AutoProbeDir: t.TempDir()})
	s.probing.Wait()
	defer s.Close()
	if issued, started, refused, finished := rec.summary(); issued+started+len(refused)+len(finished) > 0 {
		t.Errorf("after the probe: %d issued, %d started, refused %v, finished %v; want no events", issued, started, refused, finished)
	}
	if got := log.String(); strings.Contains(got, "transfer finished") || !strings.Contains(got, "seeded by the start-up probe") {
		t.Errorf("log after the probe:\n%s\nwant the probe's one line and no transfer's", got)
	}
}

// TestAutoProbeUnpaced: under a server-wide ceiling and a per-flow cap
// the probe still finishes (paced at 1 MiB/s it would move its 0.6 GB in
// ten minutes), and its figures are not the ceiling's.
func TestAutoProbeUnpaced(t *testing.T) {
	s := NewServer(Config{Logger: quiet, Auto: AutoMeasure, AutoProbe: true, AutoProbeDir: t.TempDir(),
		MaxRate: 1 << 20, FlowRate: 1 << 20})
	defer s.Close()
	done := make(chan struct{})
	go func() { s.probing.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the start-up probe did not end within a minute under a 1 MiB/s ceiling")
	}
	for _, c := range s.AutoPolicy().Classes {
		for _, cost := range c.Costs {
			if c.Network == Loopback && c.Min >= 16*mib && cost.Rate > 0 && cost.Rate < 8<<20 {
				t.Errorf("class %d+: %v measured %.0f B/s, the pace of the ceiling", c.Min, cost.Strategy, cost.Rate)
			}
		}
	}
}

// BenchmarkChooserChoose is the chooser's cost per Auto offer, with every
// class measured: a lock, a class lookup and the kept pick.
func BenchmarkChooserChoose(b *testing.B) {
	c := newChooser(Strategies, fixedOrder, 20)
	for st, r := range map[Strategy]float64{ReadWrite: 1e9, Mmap: 2e9, Sendfile: 1.5e9, Splice: 1.2e9} {
		for range autoWindow {
			c.record(2*mib, Loopback, SinkFile, Stats{Strategy: st, Bytes: 2 * mib, Duration: time.Duration(2 * mib / r * 1e9)}, time.Now())
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		c.choose(2*mib, Loopback, SinkFile)
	}
}

// TestAutoProbeBoundToClient: with BindDataToClient the probe's offers
// name loopback as their client, and the probe still seeds the chooser.
func TestAutoProbeBoundToClient(t *testing.T) {
	s := NewServer(Config{Logger: quiet, Auto: AutoMeasure, AutoProbe: true, AutoProbeDir: t.TempDir(), BindDataToClient: true})
	defer s.Close()
	s.probing.Wait()
	if p := s.AutoPolicy(); p.Seed != "probe" {
		t.Errorf("with BindDataToClient the probe's seed = %q, want %q", p.Seed, "probe")
	}
}

// TestAutoIgnoresFlowPacedTransfers: a transfer on a kernel-paced
// connection (FlowRate) runs at the pace whatever its strategy, so it
// adds no figure.
func TestAutoIgnoresFlowPacedTransfers(t *testing.T) {
	ts := startServer(t, Config{Auto: AutoMeasure, FlowRate: 128 << 20, AutoExploreEvery: -1})
	dir := t.TempDir()
	path, _ := writeFile(t, dir, 17*mib)
	tr := ts.offer(t, path, Source{ClientIP: loopbackIP})
	ts.receiveFile(t, tr, dir, ReceiveConfig{})
	if _, err := tr.Result(); err != nil {
		t.Fatal(err)
	}
	for _, c := range ts.AutoPolicy().Classes {
		for _, cost := range c.Costs {
			if cost.Samples > 0 {
				t.Errorf("class [%d, %d) %v: %v has %d samples from a paced transfer, want none", c.Min, c.Below, c.Network, cost.Strategy, cost.Samples)
			}
		}
	}
}
