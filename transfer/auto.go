package transfer

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// AutoMode says how the server's own choice of strategy (Auto) is made.
type AutoMode uint8

const (
	// AutoFixed follows Config.Preference and Config.SmallPreference as
	// written: nothing is measured.
	AutoFixed AutoMode = iota
	// AutoMeasure picks, per size class and network, the supported
	// strategy whose transfers moved the most bytes per second of
	// copy-loop time on this host, and sends every AutoExploreEvery-th
	// Auto transfer of a class with another strategy to keep measuring
	// it; early on, once each with every strategy the class has no live
	// figure of (chooser.choose). Until a class has figures, it follows
	// the fixed order.
	AutoMeasure
)

// autoWindow is how many recent transfers of one strategy in one class
// the chooser keeps; their median is the strategy's figure. A median
// shrugs off the odd transfer that a busy neighbour slowed down.
const autoWindow = 8

// autoMargin is how much more bytes per second a strategy must show than
// a class's current pick to take its place. Without it, two strategies
// within noise of each other traded places on a single figure: in one
// full ferry-bench run on a 2-core AMD EPYC guest, auto moved a 2 GiB
// file with MMAP in two transfers of round 3 and one of round 5, between
// READ_WRITE transfers, as MMAP's median of its last 8 passed
// READ_WRITE's and fell back. The target it serves allows auto 5% below
// the best strategy; a margin of as much keeps the pick through such
// noise and still lets a strategy that is clearly faster take over.
const autoMargin = 0.05

// liveFrom is the shortest transfer whose own figures the chooser keeps.
// The sender's copy loop ends when the kernel has taken the last byte,
// not when the receiver has it: a range that fits in the socket buffer
// leaves a zero-copy loop (which queues page references) looking many
// times faster than a copying one, though the receiver waits as long.
// From 16 MiB the buffer (at most 4 MiB by default) is a small part of
// the range, and the loop's time is close to the time to deliver. The
// classes below it keep the start-up probe's figures, which are measured
// where the bytes arrive, and are not explored.
const liveFrom = 16 * mib

// sizeClasses are the class boundaries, in bytes: [0, 64 KiB),
// [64 KiB, 1 MiB), [1 MiB, 16 MiB), [16 MiB, 256 MiB), [256 MiB, ∞).
// The costs of the strategies change with size (a READ_WRITE buffer, an
// MMAP window, page faults per byte), so each class is measured apart.
var sizeClasses = []int64{64 << 10, mib, 16 * mib, 256 * mib}

// Network tells a loopback receiver from one across a network: loopback
// hides zero-copy's saving (there is no NIC to gather from), so the two
// are measured apart.
type Network uint8

const (
	Loopback Network = iota // the receiver is on this host
	Remote                  // the receiver is across a network
)

func (n Network) String() string {
	if n == Loopback {
		return "loopback"
	}
	return "network"
}

// Sink is what the receiver does with the bytes, as its client says
// (Source.Sink). A receiver writing to its disk holds every strategy to
// the disk's pace, and one that reads every byte into its memory to its
// reads' pace, so a strategy's figures from one kind of receiver say
// little of how it does for another: from liveFrom up, where transfers
// are measured live, the kinds are measured apart. Were they mixed, the
// strategy auto picks would collect the slow receivers' figures while
// the others kept the fast ones', and auto would turn from each pick in
// turn. Smaller classes keep the probe's figures and do not tell them
// apart.
type Sink uint8

const (
	SinkFile   Sink = iota // lands a file on its disk; also what a client that says nothing gets
	SinkStream             // passes the bytes on unread: spliced to /dev/null
	SinkReader             // reads them into its memory: a checksum, a pipe, standard output
)

// sinks are the sinks in the order the classes list them.
var sinks = [...]Sink{SinkFile, SinkStream, SinkReader}

func (k Sink) String() string {
	switch k {
	case SinkStream:
		return "stream"
	case SinkReader:
		return "reader"
	}
	return "file"
}

// AutoChoice is how a transfer's strategy was chosen.
type AutoChoice struct {
	// ChosenByServer is true when the request left the strategy to the
	// server (Auto).
	ChosenByServer bool
	// Exploration is true when the server sent this transfer with another
	// strategy than its current pick, to keep measuring that one.
	Exploration bool
	// Class names the size class, network and, from liveFrom, sink, e.g.
	// "[16 MiB, 256 MiB) loopback, to a file".
	Class string
}

// StrategyCost is what one strategy measured in one class.
type StrategyCost struct {
	Strategy Strategy
	Samples  int     // figures behind Rate: live transfers once there are any, else probe runs (at most the last few are kept)
	Rate     float64 // bytes per second of copy-loop time: the median of those kept
	CPUPerGB float64 // sender CPU seconds per GiB, median of the thread-measured ones; 0 if none
	Failed   bool    // refused on this host: never picked again
}

// AutoClass is one class of the chooser's table.
type AutoClass struct {
	Min, Below int64 // bytes; Below 0 means no bound
	Network    Network
	Sink       Sink
	BySink     bool // the class is one sink's (from liveFrom); false: both sinks share it
	Pick       Strategy
	Reason     string
	Costs      []StrategyCost
	// LeftOutForSteal counts the class's live figures left out because
	// the hypervisor took the machine meanwhile (see autoStealLimit).
	LeftOutForSteal int
}

// AutoPolicy is a snapshot of the server's choice (Server.AutoPolicy).
type AutoPolicy struct {
	Mode         AutoMode
	Objective    string
	ExploreShare float64 // 0 when the choice is fixed or exploration is off
	Seed         string  // "probe", "none" or "pinned"
	Classes      []AutoClass
}

// autoObjective is what the chooser maximises, in words.
const autoObjective = "throughput: the most bytes per second delivered, median of each strategy's last 8 measurements (live transfers' of 16 MiB and more, timed at the sender, once it has any; until then the start-up probe's, from the receiver's dial to its last byte); another strategy replaces the pick once its figure is 5% above the pick's"

// chooser is the measuring Auto (AutoMeasure). Its methods are safe for
// concurrent use.
type chooser struct {
	fixed   func(length int64) []Strategy // the order before anything is measured
	every   int                           // explore every n-th Auto transfer of a class; 0: never
	seeded  string                        // AutoPolicy.Seed
	support []Strategy

	mu      sync.Mutex
	classes map[classKey]*classCosts
	failed  map[Strategy]bool
	refused map[Strategy]int // refusals so far, towards failAfter
	usables []Strategy       // support less failed; rebuilt when one fails
}

type classKey struct {
	size int // index into the boundaries: 0 .. len(sizeClasses)
	net  Network
	sink Sink // SinkFile in the classes below liveFrom, which share it
}

type classCosts struct {
	autos     int                   // Auto transfers chosen in the class, for the exploration schedule
	stolen    int                   // live figures left out for steal, ever
	stolenRun int                   // of them, in a row up to the last figure: at most autoStolenRun
	tried     map[Strategy]bool     // sent by an Auto transfer of the class: picked or explored
	samples   map[Strategy]*samples // live transfers' figures
	probed    map[Strategy]*samples // the start-up probe's figures
	// The class's best measured strategy, kept until a figure or a
	// failure changes it, so that an Auto offer sorts no medians.
	best       Strategy
	bestReason string
	bestOK     bool
	bestFresh  bool
}

// samples is a strategy's recent figures in one class: a ring of the
// last autoWindow transfers.
type samples struct {
	n    int // ever recorded
	rate [autoWindow]float64
	cpu  [autoWindow]float64 // s/GiB; NaN-free: 0 marks "not thread-measured"
	last time.Time
}

func newChooser(supported []Strategy, fixed func(int64) []Strategy, every int) *chooser {
	return &chooser{
		fixed: fixed, every: every, seeded: "none", support: supported,
		classes: make(map[classKey]*classCosts), failed: make(map[Strategy]bool), refused: make(map[Strategy]int),
	}
}

func classOf(length int64, net Network, sink Sink) classKey {
	i := 0
	for i < len(sizeClasses) && length >= sizeClasses[i] {
		i++
	}
	k := classKey{size: i, net: net}
	if k.bySink() {
		k.sink = sink
	}
	return k
}

// bySink reports whether the class is measured apart per sink: the
// classes of liveFrom and up.
func (k classKey) bySink() bool {
	min, _ := k.bounds()
	return min >= liveFrom
}

// keys lists every class: by size, then network, then sink.
func keys() []classKey {
	var out []classKey
	for _, net := range []Network{Loopback, Remote} {
		for size := range len(sizeClasses) + 1 {
			k := classKey{size: size, net: net}
			out = append(out, k)
			if k.bySink() {
				for _, sink := range sinks[1:] {
					out = append(out, classKey{size: size, net: net, sink: sink})
				}
			}
		}
	}
	return out
}

// bounds returns the class's byte range; below 0 means no bound.
func (k classKey) bounds() (min, below int64) {
	if k.size > 0 {
		min = sizeClasses[k.size-1]
	}
	if k.size < len(sizeClasses) {
		below = sizeClasses[k.size]
	}
	return min, below
}

func (k classKey) String() string { return classNames[k] }

// classNames are the classes' names, made once: an Auto offer reports its
// class and should not format it.
var classNames = func() map[classKey]string {
	names := make(map[classKey]string)
	for _, k := range keys() {
		names[k] = k.name()
	}
	return names
}()

func (k classKey) name() string {
	min, below := k.bounds()
	hi := "∞"
	if below > 0 {
		hi = sizeName(below)
	}
	name := fmt.Sprintf("[%s, %s) %v", sizeName(min), hi, k.net)
	if k.bySink() {
		name += ", to a " + k.sink.String()
	}
	return name
}

func sizeName(n int64) string {
	switch {
	case n >= mib && n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// choose picks the strategy for an Auto transfer of length bytes to a
// receiver on net that puts the bytes in sink.
func (c *chooser) choose(length int64, net Network, sink Sink) (Strategy, AutoChoice) {
	k := classOf(length, net, sink)
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := c.class(k)
	cc.autos++
	pick, _ := c.pick(k, length)
	choice := AutoChoice{ChosenByServer: true, Class: k.String()}
	if c.every > 0 && length >= liveFrom {
		other, ok := c.untried(cc, pick)
		if !ok && cc.autos%c.every == 0 {
			other, ok = c.stalest(k, pick)
		}
		if ok {
			cc.tried[other] = true
			choice.Exploration = true
			return other, choice
		}
	}
	cc.tried[pick] = true
	return pick, choice
}

// untried is a usable strategy other than pick that no Auto transfer of
// the class has sent yet and that has no live figure there, once the
// class has sent one with its pick: the first few Auto transfers of a
// class measure each strategy once, instead of one in AutoExploreEvery.
// The start-up probe's short ranges (64 MiB for the largest class) can
// order the strategies otherwise than long transfers do, and a pick's
// live figure would otherwise stand against the others' probe figures
// for 3 × AutoExploreEvery transfers. Each strategy is sent this way at
// most once per class, whether or not its figure is kept (a transfer
// that shared the server keeps none): the cost is bounded by the number
// of strategies.
func (c *chooser) untried(cc *classCosts, pick Strategy) (Strategy, bool) {
	if !cc.tried[pick] {
		return 0, false
	}
	for _, st := range c.usable() {
		if st == pick || cc.tried[st] {
			continue
		}
		if s := cc.samples[st]; s != nil && s.n > 0 {
			continue
		}
		return st, true
	}
	return 0, false
}

func (c *chooser) class(k classKey) *classCosts {
	cc := c.classes[k]
	if cc == nil {
		cc = &classCosts{samples: make(map[Strategy]*samples), probed: make(map[Strategy]*samples), tried: make(map[Strategy]bool)}
		c.classes[k] = cc
	}
	return cc
}

// usable lists the supported strategies that have not failed.
func (c *chooser) usable() []Strategy {
	if c.usables == nil {
		for _, st := range c.support {
			if !c.failed[st] {
				c.usables = append(c.usables, st)
			}
		}
	}
	return c.usables
}

// pick returns the class's best measured strategy, or, with nothing
// measured in it, the first usable one of the fixed order; the reason
// says which. A class with no figures of its own borrows those of its
// neighbours (classKey.neighbours), the best guess until its own come in.
func (c *chooser) pick(k classKey, length int64) (Strategy, string) {
	usable := c.usable()
	if len(usable) == 0 {
		return ReadWrite, "nothing else works on this host"
	}
	if st, reason, ok := c.best(k, usable); ok {
		return st, reason
	}
	for _, n := range k.neighbours() {
		if st, reason, ok := c.best(n, usable); ok {
			return st, "nothing measured in this class yet; " + n.String() + ": " + reason
		}
	}
	for _, st := range c.fixed(length) {
		if slices.Contains(usable, st) {
			return st, "nothing measured yet: the fixed order"
		}
	}
	return usable[0], "nothing measured yet"
}

// neighbours are the classes whose figures k borrows while it has none,
// nearest first: the same size and network for the other sinks (the
// other receiver that does not land a file before one that does), then
// the same on loopback for a remote class.
func (k classKey) neighbours() []classKey {
	var out []classKey
	others := func(k classKey) {
		if !k.bySink() {
			return
		}
		for _, sink := range sinkOrder[k.sink] {
			o := k
			o.sink = sink
			out = append(out, o)
		}
	}
	others(k)
	if k.net == Remote {
		k.net = Loopback
		out = append(out, k)
		others(k)
	}
	return out
}

// sinkOrder is, for each sink, the other sinks nearest first.
var sinkOrder = map[Sink][]Sink{
	SinkFile:   {SinkStream, SinkReader},
	SinkStream: {SinkReader, SinkFile},
	SinkReader: {SinkStream, SinkFile},
}

// best is the usable strategy with the highest measured rate in the
// class, if any has one.
func (c *chooser) best(k classKey, usable []Strategy) (Strategy, string, bool) {
	cc := c.classes[k]
	if cc != nil && cc.bestFresh {
		return cc.best, cc.bestReason, cc.bestOK
	}
	st, reason, ok := c.measureBest(k, usable)
	if cc != nil {
		cc.best, cc.bestReason, cc.bestOK, cc.bestFresh = st, reason, ok, true
	}
	return st, reason, ok
}

// measureBest is best, worked out from the figures.
func (c *chooser) measureBest(k classKey, usable []Strategy) (Strategy, string, bool) {
	best, bestRate, n := Strategy(0), 0.0, 0
	for _, st := range usable {
		if r, ok := c.rate(k, st); ok {
			n++
			if r > bestRate {
				best, bestRate = st, r
			}
		}
	}
	if n == 0 {
		return 0, "", false
	}
	// The pick so far stays unless best beats it by autoMargin.
	if cc := c.classes[k]; cc != nil && cc.bestOK && cc.best != best && slices.Contains(usable, cc.best) {
		if held, ok := c.rate(k, cc.best); ok && bestRate < held*(1+autoMargin) {
			return cc.best, fmt.Sprintf("kept: %s is the fastest of %d measured strategies (%s), but less than %.0f%% above %s (%s)",
				best, n, rateName(bestRate), autoMargin*100, cc.best, rateName(held)), true
		}
	}
	return best, fmt.Sprintf("the most bytes per second of %d measured strategies (%s)", n, rateName(bestRate)), true
}

func (c *chooser) rate(k classKey, st Strategy) (float64, bool) {
	cc := c.classes[k]
	if cc == nil || cc.figures(st) == nil {
		return 0, false
	}
	return cc.figures(st).median(func(s *samples, i int) float64 { return s.rate[i] }), true
}

// figures are st's figures in the class: its live transfers' once it has
// any, the start-up probe's until then. The probe sends short ranges
// (64 MiB for the large classes) a couple of times; mixed with the live
// figures they held a class's medians for rounds after the transfers
// themselves had shown another order.
func (cc *classCosts) figures(st Strategy) *samples {
	if s := cc.samples[st]; s != nil && s.n > 0 {
		return s
	}
	if s := cc.probed[st]; s != nil && s.n > 0 {
		return s
	}
	return nil
}

// stalest is the usable strategy other than pick whose figures in the
// class are oldest (never measured first): the one exploration measures
// next.
func (c *chooser) stalest(k classKey, pick Strategy) (Strategy, bool) {
	cc := c.class(k)
	var out Strategy
	var oldest time.Time
	found := false
	for _, st := range c.usable() {
		if st == pick {
			continue
		}
		var last time.Time
		if s := cc.samples[st]; s != nil {
			last = s.last
		}
		if !found || last.Before(oldest) {
			out, oldest, found = st, last, true
		}
	}
	return out, found
}

// observe keeps a live transfer's figures (the sender's), when the
// transfer is long enough for them to say how fast it was delivered
// (liveFrom). stolen says the hypervisor took more than autoStealLimit
// of the machine while it ran: the class leaves the figure out, unless
// it left out the last autoStolenRun already.
func (c *chooser) observe(length int64, net Network, sink Sink, st Stats, at time.Time, stolen bool) {
	if length >= liveFrom {
		c.keep(length, net, sink, st, at, false, stolen)
	}
}

// record keeps figures of a live transfer of a class: bytes over the copy
// loop's time, and CPU per GiB when the loop was thread-measured. Paced
// transfers say nothing of a strategy's speed and are left out.
func (c *chooser) record(length int64, net Network, sink Sink, st Stats, at time.Time) {
	c.keep(length, net, sink, st, at, false, false)
}

// seed is record for the start-up probe's figures, which stand for a
// strategy only until it has live ones (classCosts.figures).
func (c *chooser) seed(length int64, net Network, sink Sink, st Stats, at time.Time) {
	c.keep(length, net, sink, st, at, true, false)
}

func (c *chooser) keep(length int64, net Network, sink Sink, st Stats, at time.Time, probe, stolen bool) {
	if st.Bytes <= 0 || st.Duration <= 0 || st.RateLimit > 0 {
		return
	}
	k := classOf(length, net, sink)
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := c.class(k)
	if !probe {
		if stolen && cc.stolenRun < autoStolenRun {
			cc.stolen++
			cc.stolenRun++
			return
		}
		cc.stolenRun = 0
	}
	into := cc.samples
	if probe {
		into = cc.probed
	}
	s := into[st.Strategy]
	if s == nil {
		s = &samples{}
		into[st.Strategy] = s
	}
	i := s.n % autoWindow
	s.rate[i] = float64(st.Bytes) / st.Duration.Seconds()
	s.cpu[i] = 0
	if st.ThreadMeasured {
		s.cpu[i] = (st.UserCPU + st.SystemCPU).Seconds() / (float64(st.Bytes) / (1 << 30))
	}
	s.n++
	s.last = at
	cc.bestFresh = false
}

// fail counts a refusal of st; after failAfter of them st is failed on
// this host and never chosen again.
func (c *chooser) fail(st Strategy) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refused[st]++; c.refused[st] < failAfter {
		return
	}
	c.failed[st], c.usables = true, nil
	for _, cc := range c.classes {
		cc.bestFresh = false
	}
}

// failAfter is how many refusals mark a strategy failed. One file on an
// odd file system (mmap's ENODEV, say) is not the host: a strategy the
// kernel refuses outright is refused every time.
const failAfter = 3

// median of the kept figures that f reads, leaving out zeros (CPU not
// measured).
func (s *samples) median(f func(*samples, int) float64) float64 {
	var xs []float64
	for i := range min(s.n, autoWindow) {
		if v := f(s, i); v > 0 {
			xs = append(xs, v)
		}
	}
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

func rateName(r float64) string { return fmt.Sprintf("%.2f GB/s", r/1e9) }

// policy is the chooser's table: every class of both networks (and, from
// liveFrom, both sinks), with the pick for a transfer of the class's
// lower bound.
func (c *chooser) policy() []AutoClass {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []AutoClass
	for _, k := range keys() {
		min, below := k.bounds()
		pick, reason := c.pick(k, min)
		ac := AutoClass{Min: min, Below: below, Network: k.net, Sink: k.sink, BySink: k.bySink(), Pick: pick, Reason: reason}
		if cc := c.classes[k]; cc != nil {
			ac.LeftOutForSteal = cc.stolen
		}
		for _, st := range c.support {
			sc := StrategyCost{Strategy: st, Failed: c.failed[st]}
			if s := c.classes[k]; s != nil && s.figures(st) != nil {
				sm := s.figures(st)
				sc.Samples = sm.n
				sc.Rate = sm.median(func(s *samples, i int) float64 { return s.rate[i] })
				sc.CPUPerGB = sm.median(func(s *samples, i int) float64 { return s.cpu[i] })
			}
			ac.Costs = append(ac.Costs, sc)
		}
		out = append(out, ac)
	}
	return out
}

// pickFor is the current pick for a transfer of length bytes to a
// receiver on net that puts them in sink, without exploring.
func (c *chooser) pickFor(length int64, net Network, sink Sink) (Strategy, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pick(classOf(length, net, sink), length)
}

// snapshot is the chooser's AutoPolicy.
func (c *chooser) snapshot() AutoPolicy {
	p := AutoPolicy{Mode: AutoMeasure, Objective: autoObjective, Classes: c.policy()}
	c.mu.Lock()
	defer c.mu.Unlock()
	p.Seed = c.seeded
	if c.every > 0 {
		p.ExploreShare = 1 / float64(c.every)
	}
	return p
}
