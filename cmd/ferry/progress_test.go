package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"golang.org/x/sys/unix"
)

// feed gives bar a pull of total bytes at a steady 100 MiB/s, one progress
// message every gap, and finishes it.
func feed(bar *progressBar, start time.Time, total uint64, gap time.Duration) {
	const rate = 100 << 20
	at := start
	for sent := uint64(0); sent < total; {
		at = at.Add(gap)
		sent = min(total, uint64(at.Sub(start).Seconds()*rate))
		bar.observe(&ferryv1.Progress{BytesSent: sent, BytesTotal: total}, at)
	}
	bar.finish(true, total, total, at)
}

func TestProgressNotATerminal(t *testing.T) {
	var out bytes.Buffer
	start := time.Unix(1000, 0)
	feed(newProgressBar(&out, false, start), start, 512<<20, 250*time.Millisecond)
	if out.Len() != 0 {
		t.Errorf("progress bar off a terminal wrote %q, want nothing", out.String())
	}
}

func TestProgressTerminal(t *testing.T) {
	var out bytes.Buffer
	start := time.Unix(1000, 0)
	feed(newProgressBar(&out, true, start), start, 512<<20, 250*time.Millisecond)
	frames := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\r")[1:]
	// 512 MiB at 100 MiB/s is 5.12 s: 21 messages, one frame each, and
	// the final frame.
	if len(frames) != 22 {
		t.Fatalf("got %d frames, want 22:\n%q", len(frames), out.String())
	}
	if !strings.HasSuffix(out.String(), "\n") {
		t.Error("the bar's last line does not end with a newline")
	}
	first := strings.TrimSpace(frames[0])
	for _, want := range []string{"[    ", "  4.9%", "25.0 MiB / 512.0 MiB", "100.0 MiB/s", "ETA 0:05"} {
		if !strings.Contains(first, want) {
			t.Errorf("first frame %q lacks %q", first, want)
		}
	}
	mid := strings.TrimSpace(frames[9]) // at 2.5 s: half done, 2.62 s left
	for _, want := range []string{"[========>           ]", "48.8%", "250.0 MiB / 512.0 MiB", "100.0 MiB/s", "ETA 0:03"} {
		if !strings.Contains(mid, want) {
			t.Errorf("frame at 2.5 s %q lacks %q", mid, want)
		}
	}
	// The last frame has the pull's average rate: 512 MiB in 5.25 s.
	last := strings.TrimSpace(frames[len(frames)-1])
	for _, want := range []string{"[====================]", "100.0%", "512.0 MiB / 512.0 MiB", "97.5 MiB/s", "ETA 0:00"} {
		if !strings.Contains(last, want) {
			t.Errorf("last frame %q lacks %q", last, want)
		}
	}
}

// TestProgressRedrawRate sends messages 10 ms apart: the bar redraws at
// most every 100 ms.
func TestProgressRedrawRate(t *testing.T) {
	var out bytes.Buffer
	start := time.Unix(1000, 0)
	feed(newProgressBar(&out, true, start), start, 100<<20, 10*time.Millisecond) // 1 s, 100 messages
	if frames := strings.Count(out.String(), "\r"); frames < 10 || frames > 11 {
		t.Errorf("100 messages over 1 s drew %d frames, want 10 or 11 (at most one per 100 ms, and the last)", frames)
	}
}

// TestProgressSmoothedRate halves the rate midway: the bar's rate moves
// toward the new one without jumping to it.
func TestProgressSmoothedRate(t *testing.T) {
	bar := newProgressBar(&bytes.Buffer{}, true, time.Unix(0, 0))
	at, sent := time.Unix(0, 0), uint64(0)
	step := func(rate float64) {
		at = at.Add(250 * time.Millisecond)
		sent += uint64(rate / 4)
		bar.observe(&ferryv1.Progress{BytesSent: sent, BytesTotal: 1 << 40}, at)
	}
	for range 20 {
		step(200 << 20)
	}
	if r := bar.rate / (1 << 20); r < 199 || r > 201 {
		t.Fatalf("steady 200 MiB/s: rate %.1f MiB/s", r)
	}
	step(100 << 20)
	if r := bar.rate / (1 << 20); r <= 100 || r >= 200 {
		t.Errorf("one message at 100 MiB/s after 200: rate %.1f MiB/s, want between", r)
	}
	for range 40 {
		step(100 << 20)
	}
	if r := bar.rate / (1 << 20); r < 99 || r > 102 {
		t.Errorf("10 s at 100 MiB/s: rate %.1f MiB/s, want about 100", r)
	}
}

func TestProgressFailedPull(t *testing.T) {
	var out bytes.Buffer
	bar := newProgressBar(&out, true, time.Unix(0, 0))
	bar.finish(false, 0, 0, time.Unix(1, 0))
	if out.Len() != 0 {
		t.Errorf("a pull that failed before any progress drew %q, want nothing", out.String())
	}
	bar.observe(&ferryv1.Progress{BytesSent: 10, BytesTotal: 100}, time.Unix(1, 0))
	bar.finish(false, 0, 0, time.Unix(2, 0))
	if !strings.HasSuffix(out.String(), "\n") || strings.Count(out.String(), "\r") != 1 {
		t.Errorf("a failed pull after one frame wrote %q, want that frame and a newline", out.String())
	}
}

func TestETA(t *testing.T) {
	tests := []struct {
		remaining uint64
		rate      float64
		want      string
	}{
		{0, 0, "0:00"},
		{100, 0, "--:--"},
		{100, 100, "0:01"},
		{101, 100, "0:02"},
		{6000, 100, "1:00"},
		{360000, 100, "1:00:00"},
		{1 << 62, 1, "--:--"},
	}
	for _, tt := range tests {
		if got := eta(tt.remaining, tt.rate); got != tt.want {
			t.Errorf("eta(%d, %v) = %q, want %q", tt.remaining, tt.rate, got, tt.want)
		}
	}
}

// TestIsTerminal asks a real pseudo-terminal and a pipe.
func TestIsTerminal(t *testing.T) {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pts.Close()
	if !isTerminal(pts.Fd()) {
		t.Errorf("isTerminal(/dev/pts/%d) = false, want true", n)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w.Fd()) {
		t.Error("isTerminal(pipe) = true, want false")
	}
}
