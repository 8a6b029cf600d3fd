package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"golang.org/x/sys/unix"
)

// Progress bar geometry and pacing.
const (
	barWidth      = 20                     // cells between the brackets
	redrawEvery   = 100 * time.Millisecond // at most ~10 redraws a second
	rateTimeConst = 2 * time.Second        // the smoothed rate's memory
)

// isTerminal reports whether fd is a terminal: whether it answers the
// TCGETS ioctl that only tty drivers implement.
func isTerminal(fd uintptr) bool {
	_, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
	return err == nil
}

// progressBar draws one line of a pull's progress (bytes done and total,
// percent, smoothed rate, ETA) and redraws it in place with a carriage
// return. When tty is false it writes nothing at all: piped output, CI
// logs and tests see no escape sequences.
type progressBar struct {
	w     io.Writer
	tty   bool
	start time.Time

	drawn    time.Time // last redraw; zero before the first
	width    int       // length of the last line drawn, to blank its tail
	lastAt   time.Time // time of the last sample
	lastSent uint64    // bytes_sent of the last sample
	rate     float64   // smoothed bytes per second; 0 before the first sample
}

// newProgressBar starts a bar whose clock starts at start.
func newProgressBar(w io.Writer, tty bool, start time.Time) *progressBar {
	return &progressBar{w: w, tty: tty, start: start, lastAt: start}
}

// Update takes a progress message as it arrives; it is the
// client.DownloadOptions.Progress callback.
func (b *progressBar) Update(p *ferryv1.Progress) { b.observe(p, time.Now()) }

// observe records a sample taken at now and redraws when the last redraw
// is at least redrawEvery old.
func (b *progressBar) observe(p *ferryv1.Progress, now time.Time) {
	b.sample(p.GetBytesSent(), now)
	if !b.tty || (!b.drawn.IsZero() && now.Sub(b.drawn) < redrawEvery) {
		return
	}
	b.drawn = now
	b.draw(p.GetBytesSent(), p.GetBytesTotal())
}

// sample folds the rate since the last sample into the smoothed rate: an
// exponential moving average whose weight grows with the time elapsed, so
// irregular message spacing does not skew it.
func (b *progressBar) sample(sent uint64, now time.Time) {
	dt := now.Sub(b.lastAt)
	if dt <= 0 || sent < b.lastSent {
		return
	}
	inst := float64(sent-b.lastSent) / dt.Seconds()
	if b.rate == 0 {
		b.rate = inst
	} else {
		alpha := 1 - math.Exp(-dt.Seconds()/rateTimeConst.Seconds())
		b.rate += alpha * (inst - b.rate)
	}
	b.lastAt, b.lastSent = now, sent
}

// Finish draws the final state when the pull succeeded (done bytes of
// total, at the average rate of the whole pull) and ends the line, so
// that what follows starts on its own.
func (b *progressBar) Finish(ok bool, done, total uint64) { b.finish(ok, done, total, time.Now()) }

func (b *progressBar) finish(ok bool, done, total uint64, now time.Time) {
	if !b.tty || (b.drawn.IsZero() && !ok) {
		return
	}
	if ok {
		if took := now.Sub(b.start); took > 0 {
			b.rate = float64(done) / took.Seconds()
		}
		b.draw(done, total)
	}
	fmt.Fprintln(b.w)
}

// draw writes the line, blanking what is left of a longer previous one.
func (b *progressBar) draw(sent, total uint64) {
	line := b.line(sent, total)
	pad := max(0, b.width-len(line))
	b.width = len(line)
	fmt.Fprintf(b.w, "\r%s%s", line, strings.Repeat(" ", pad))
}

// line is the text of the bar for sent of total bytes.
func (b *progressBar) line(sent, total uint64) string {
	frac := 1.0
	if total > 0 {
		frac = min(1, float64(sent)/float64(total))
	}
	filled := int(frac * barWidth)
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", barWidth-filled)
	if filled > 0 && filled < barWidth {
		bar = bar[:filled-1] + ">" + bar[filled:]
	}
	return fmt.Sprintf("[%s] %5.1f%%  %s / %s  %s  ETA %s", bar, frac*100,
		humanBytes(sent), humanBytes(total), humanRate(b.rate), eta(total-min(sent, total), b.rate))
}

// eta is the time left for remaining bytes at rate, as m:ss (h:mm:ss past
// an hour), or "--:--" while the rate is unknown.
func eta(remaining uint64, rate float64) string {
	if remaining == 0 {
		return "0:00"
	}
	if rate <= 0 {
		return "--:--"
	}
	secs := math.Ceil(float64(remaining) / rate)
	if secs >= 100*3600 {
		return "--:--"
	}
	s := int(secs)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
