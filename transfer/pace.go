package transfer

import (
	"context"
	"math"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Pacing holds a transfer to a rate (Source.RateLimit, Config.MaxRate)
// the way nginx's limit_rate and iperf3 -b do: the copy loop moves the
// range in bounded rounds and waits before each one until the rate
// allows its bytes. The rounds are the strategy's own (sendfile, splice,
// mmap+write, pread+write), only smaller, so a paced transfer stays
// zero-copy where its strategy is.
//
// The rate is a ceiling: a round waits for the end of its slot before it
// goes, the first round a whole slot, and slots follow each other without
// overlap, so from its start to any point a transfer has sent no more
// than its limit allows (there is no burst allowance to spend, and idle
// time earns no credit). The server-wide clock's slots are booked the
// same way, never beginning before the transfer that books them, so each
// transfer stays under the ceiling from its start, and transfers together
// stay under Config.MaxRate over their run; over a shorter stretch one may
// be a round ahead, when its own limit made it send after its shared slot
// ended.

// paceRoundsPerSecond sizes a paced round: a second's worth of the rate
// is split into this many rounds (50 ms each), rounded down to whole
// pages and clamped to [minPaceRound, the strategy's normal chunk].
const paceRoundsPerSecond = 20

// minPaceRound is the smallest paced round: below it the per-round calls
// would cost more than pacing is worth.
const minPaceRound = 64 << 10

// clock paces one stream of bytes (a transfer, or all of a server's
// transfers together) at rate bytes per second. Reserving n bytes books
// the next slot, n/rate long, beginning where the last slot booked ended;
// the bytes may go once their slot has ended. A slot may thus begin a
// little in the past, when the round before it took time to send: the
// rounds keep to the rate instead of falling behind it by their sending
// time. But a clock idle for a whole slot or more starts afresh at now,
// with a full wait: idle time earns no credit.
type clock struct {
	rate   int64 // bytes per second, > 0
	mu     sync.Mutex
	next   time.Time // end of the last slot booked
	booked int64     // bytes booked and not released, for tests
}

// newClock returns a clock for rate bytes per second; nil for rate <= 0,
// which means no limit.
func newClock(rate int64) *clock {
	if rate <= 0 {
		return nil
	}
	return &clock{rate: rate}
}

// reserve books a slot for n bytes of a transfer that began at since,
// and returns when the slot ends. The slot never begins before since, so
// a transfer gets no credit from the slots of those before it.
func (c *clock) reserve(n int64, since time.Time) time.Time {
	d := time.Duration(math.Ceil(float64(n) * float64(time.Second) / float64(c.rate)))
	c.mu.Lock()
	defer c.mu.Unlock()
	start, now := later(c.next, since), time.Now()
	if now.Sub(start) >= d { // idle for a whole slot: no credit
		start = now
	}
	c.next = start.Add(d)
	c.booked += n
	return c.next
}

// release gives back the slot ending at end, of n bytes that will not be
// sent, if no later slot was booked since.
func (c *clock) release(end time.Time, n int64) {
	d := time.Duration(math.Ceil(float64(n) * float64(time.Second) / float64(c.rate)))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next.Equal(end) {
		c.next = end.Add(-d)
	}
	c.booked -= n
}

// pacer paces one transfer's copy loop against its own clock and the
// server's shared one.
type pacer struct {
	ctx    context.Context // the transfer's: cancelling it ends a wait
	since  time.Time       // when the copy loop began (its Duration's start)
	round  int64           // bytes per round at most
	own    *clock          // the transfer's limit; nil when the ceiling is lower
	shared *clock          // Config.MaxRate, shared by all transfers; nil if none
	meter  *meter
	timer  *time.Timer
}

// pacerFor returns the pacer for t's copy loop, measured by m, or nil
// when t is not limited.
func (s *Server) pacerFor(t *Transfer, m *meter) *pacer {
	if t.RateLimit <= 0 {
		return nil
	}
	round := max(t.RateLimit/paceRoundsPerSecond&^(pageSize-1), minPaceRound) // whole pages
	p := &pacer{ctx: t.ctx, since: m.start, round: round, shared: s.ceiling, meter: m}
	if s.ceiling == nil || t.RateLimit < s.ceiling.rate {
		p.own = newClock(t.RateLimit)
	}
	return p
}

// appliedRate is the pace a transfer asking for want gets under a
// server-wide ceiling: the lower of the two, 0 meaning none.
func appliedRate(want, ceiling int64) int64 {
	switch {
	case ceiling <= 0:
		return max(want, 0)
	case want <= 0:
		return ceiling
	}
	return min(want, ceiling)
}

// nextRound sizes the job's next round: at most limit bytes, and no more
// than the range has left. A paced job caps the round at its pacer's and
// first waits until the round may go. Unpaced, it is min(limit, j.left).
func (j *sendJob) nextRound(limit int64) (int64, error) {
	n := min(limit, j.left)
	if j.pace == nil {
		return n, nil
	}
	n = min(n, j.pace.round)
	return n, j.pace.wait(n)
}

// inRounds runs step, which moves bytes while j.left > 0 (a RawConn
// callback such as sendfileStep), one paced round at a time of at most
// limit bytes: it waits outside the callback, where the transfer's
// cancellation can reach it, and shows step only the round's share of
// the range. Unpaced, it runs step once.
func (j *sendJob) inRounds(limit int64, step func() error) error {
	if j.pace == nil {
		return step()
	}
	for j.left > 0 {
		n, err := j.nextRound(limit)
		if err != nil {
			return err
		}
		rest := j.left - n
		j.left = n
		err = step()
		j.left += rest
		if err != nil {
			return err
		}
	}
	return nil
}

// wait blocks until n more bytes may go under both clocks, or the
// transfer is cancelled. Both slots are booked at once and the round
// waits for the later end: booking the shared slot only after the own
// wait would stack the two waits, and booking it ahead in the future
// would leave a hole in the shared clock that no other transfer could use.
//
// The copy loop's thread is not held meanwhile: the meter pauses, the
// goroutine unlocks its thread and parks on a timer, and the measurement
// resumes, possibly on another thread, when the wait ends. The thread
// figures then sum the rounds' own cost and leave the waits out (their
// time is in the wall-clock Duration).
func (p *pacer) wait(n int64) error {
	var ends [2]time.Time
	var last time.Time
	for i, c := range [...]*clock{p.own, p.shared} {
		if c != nil {
			ends[i] = c.reserve(n, p.since)
			last = later(last, ends[i])
		}
	}
	d := time.Until(last)
	if d <= 0 {
		return nil
	}
	p.meter.pause()
	defer p.meter.resume()
	if err := p.sleep(d); err != nil {
		for i, c := range [...]*clock{p.own, p.shared} {
			if c != nil {
				c.release(ends[i], n)
			}
		}
		return err
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sleep waits d, or until the transfer's context ends.
func (p *pacer) sleep(d time.Duration) error {
	if p.timer == nil {
		p.timer = time.NewTimer(d)
	} else {
		p.timer.Reset(d)
	}
	select {
	case <-p.timer.C:
		return nil
	case <-p.ctx.Done():
		p.timer.Stop()
		return context.Cause(p.ctx)
	}
}

// pause ends a measured stretch of the copy loop before a pacing wait:
// it keeps what the thread has spent so far and unlocks it.
func (m *meter) pause() {
	if !m.locked {
		return
	}
	var now unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &now) != nil {
		m.locked = false
		runtime.UnlockOSThread()
		return
	}
	m.spent = rusageDelta(now, m.ru)
	m.paused = true
	runtime.UnlockOSThread()
}

// resume starts the next measured stretch on whatever thread the
// goroutine runs on now, carrying what was spent before, so that stop's
// delta covers every stretch and none of the waits.
func (m *meter) resume() {
	if !m.paused {
		return
	}
	m.paused = false
	runtime.LockOSThread()
	var now unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &now) != nil {
		m.locked = false
		runtime.UnlockOSThread()
		return
	}
	m.ru = rusageDelta(now, m.spent) // stop subtracts it from its own reading
}

// rusageDelta is a - b for the fields a meter reports.
func rusageDelta(a, b unix.Rusage) unix.Rusage {
	return unix.Rusage{
		Utime: unix.NsecToTimeval(a.Utime.Nano() - b.Utime.Nano()),
		Stime: unix.NsecToTimeval(a.Stime.Nano() - b.Stime.Nano()),
		Nvcsw: a.Nvcsw - b.Nvcsw, Nivcsw: a.Nivcsw - b.Nivcsw,
	}
}
