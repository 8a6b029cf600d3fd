package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestPrintReport(t *testing.T) {
	side := func(calls uint64) *ferryv1.TransferStats {
		return &ferryv1.TransferStats{
			Strategy: ferryv1.Strategy_STRATEGY_SPLICE, Bytes: 100000003,
			Duration: durationpb.New(97232 * time.Microsecond), ThroughputBytesPerSecond: 1 << 30,
			Syscalls: map[string]uint64{"splice": calls, "pipe2": 1}, ModeSwitches: 2 * (calls + 1),
			Model:   &ferryv1.CopyModel{DmaCopies: 2, ModeSwitches: 4, Description: "splice moves page references"},
			UserCpu: durationpb.New(0), SystemCpu: durationpb.New(50752 * time.Microsecond),
			VoluntaryContextSwitches: 8, InvoluntaryContextSwitches: 101, ThreadMeasured: true, ThreadId: 42,
			DmaCopiedBytes: 200000006, RateLimit: 50 << 20, ChecksumCpu: durationpb.New(1500 * time.Microsecond),
		}
	}
	r := &ferryv1.Report{
		Sender: side(206), Receiver: side(3),
		Checksum:         &ferryv1.Checksum{Algorithm: ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_CRC32C, Value: []byte{0xde, 0xad, 0xbe, 0xef}},
		ChecksumVerified: true,
	}
	var b bytes.Buffer
	printReport(&b, "big.bin", "/tmp/out", r, time.Second)
	out := b.String()
	for _, want := range []string{
		"pulled big.bin -> /tmp/out: 95.4 MiB in 97.2 ms (1.0 GiB/s) with SPLICE\n",
		"95.4 MiB (100000003)", "0 s / 50.8 ms", "8 / 101", "pipe2=1 splice=206", "190.7 MiB",
		"50.0 MiB/s", "1.50 ms", "tid 42 (locked)",
		"checksum: CRC32C deadbeef, matched by the receiver (a corruption check, not proof against tampering)",
		"MEASURED", "COUNTED", "DERIVED", "MODELLED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	r.Checksum, r.Sender.RateLimit, r.Receiver.RateLimit = nil, 0, 0
	r.Sender.ChecksumCpu, r.Receiver.ChecksumCpu = nil, nil
	b.Reset()
	printReport(&b, "big.bin", "/tmp/out", r, time.Second)
	for _, absent := range []string{"checksum", "rate limit"} {
		if strings.Contains(b.String(), absent) {
			t.Errorf("report without a checksum or limit mentions %q:\n%s", absent, b.String())
		}
	}
}

// TestPrintReportInline checks an inline pull's report: the header says
// the bytes came inline and gives the pull's wall time, not the
// receiver's one write, and the receiver's socket-read model is not
// shown as if a read had happened.
func TestPrintReportInline(t *testing.T) {
	r := &ferryv1.Report{
		Sender: &ferryv1.TransferStats{
			Strategy: ferryv1.Strategy_STRATEGY_READ_WRITE, Bytes: 6144, Inline: true, Rounds: 1,
			Duration: durationpb.New(3 * time.Microsecond), Syscalls: map[string]uint64{"pread64": 1}, ModeSwitches: 2,
			Model:          &ferryv1.CopyModel{CpuCopies: 1, DmaCopies: 2, ModeSwitches: 2, Description: "pread copies page cache into the offer"},
			CpuCopiedBytes: 6144, DmaCopiedBytes: 12288,
		},
		Receiver: &ferryv1.TransferStats{
			Strategy: ferryv1.Strategy_STRATEGY_READ_WRITE, Bytes: 6144, Inline: true, Rounds: 1,
			Duration: durationpb.New(19800 * time.Nanosecond), ThroughputBytesPerSecond: 310e6,
			Syscalls: map[string]uint64{"write": 1}, ModeSwitches: 2,
			Model:          &ferryv1.CopyModel{CpuCopies: 2, DmaCopies: 2, ModeSwitches: 4, Description: "read copies the socket buffer to a user buffer, write copies it to the page cache"},
			CpuCopiedBytes: 12288, DmaCopiedBytes: 12288,
		},
	}
	var b bytes.Buffer
	printReport(&b, "small.txt", "/tmp/small", r, 1500*time.Microsecond)
	out := b.String()
	header, _, _ := strings.Cut(out, "\n")
	want := "pulled small.txt -> /tmp/small: 6.0 KiB inline (inside the offer, no data connection) in 1.50 ms (3.9 MiB/s), the wall time of the whole pull"
	if header != want {
		t.Errorf("header = %q, want %q", header, want)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "copies per round") || strings.HasPrefix(line, "CPU-copied bytes") || strings.HasPrefix(line, "DMA-copied bytes") {
			if !strings.HasSuffix(line, "n/a: no socket read (inline)") {
				t.Errorf("receiver's modelled figure shown for an inline pull: %q", line)
			}
			if strings.HasPrefix(line, "copies per round") && !strings.Contains(line, "1 CPU, 2 DMA, 2 mode switches") {
				t.Errorf("sender's inline model missing: %q", line)
			}
		}
	}
	for _, want := range []string{
		"19.8 µs", "write=1", "pread64=1", // what the report says, in its rows
		"receiver model: n/a, no socket read happened (counted: write=1)",
		"inline: the bytes came inside the offer",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inline report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "in 19.8 µs") || strings.Contains(out, "2 CPU, 2 DMA, 4 mode switches") {
		t.Errorf("inline report presents the receiver's write or its read model as the pull:\n%s", out)
	}
	// A receiver whose counted calls do include a read keeps its model.
	r.Receiver.Syscalls["read"], r.Receiver.ModeSwitches = 1, 4
	b.Reset()
	printReport(&b, "small.txt", "/tmp/small", r, time.Millisecond)
	if strings.Contains(b.String(), "n/a") || !strings.Contains(b.String(), "2 CPU, 2 DMA, 4 mode switches") {
		t.Errorf("a receiver that read from a socket lost its model:\n%s", &b)
	}
}

// TestPrintReportEscapes checks that the server's words in a report
// (model descriptions, syscall names) cannot forge lines or carry
// terminal escapes.
func TestPrintReportEscapes(t *testing.T) {
	st := &ferryv1.TransferStats{
		Syscalls: map[string]uint64{"read\nforged=1": 1},
		Model:    &ferryv1.CopyModel{Description: "copies\x1b[31m\nreceiver model: FORGED"},
	}
	var b bytes.Buffer
	printReport(&b, "a\nb", "out", &ferryv1.Report{Sender: st, Receiver: &ferryv1.TransferStats{}}, time.Second)
	if strings.ContainsRune(b.String(), 0x1b) || strings.Contains(b.String(), "\nreceiver model: FORGED") ||
		strings.Contains(b.String(), "\nforged=1") || strings.Contains(b.String(), "a\nb") {
		t.Errorf("report prints the server's text raw:\n%s", &b)
	}
	for _, want := range []string{`"read\nforged=1"=1`, `"copies\x1b[31m\nreceiver model: FORGED"`, `pulled "a\nb" -> out`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %s:\n%s", want, &b)
		}
	}
}

// TestPrintReportParts: a parallel-streams pull's report says over how
// many streams, gives one line per part after the summed table, and
// says each part's checksum was verified.
func TestPrintReportParts(t *testing.T) {
	side := func(bytes uint64, d time.Duration) *ferryv1.TransferStats {
		return &ferryv1.TransferStats{Strategy: ferryv1.Strategy_STRATEGY_SENDFILE, Bytes: bytes, Duration: durationpb.New(d),
			ThroughputBytesPerSecond: float64(bytes) / d.Seconds(), Model: &ferryv1.CopyModel{}}
	}
	sum := &ferryv1.Checksum{Algorithm: ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_CRC32C, Value: []byte{1, 2, 3, 4}}
	r := &ferryv1.Report{
		Length: 3 << 20, Sender: side(3<<20, 20*time.Millisecond), Receiver: side(3<<20, 21*time.Millisecond), ChecksumVerified: true,
		Parts: []*ferryv1.Report{
			{Offset: 0, Length: 1 << 20, Sender: side(1<<20, 10*time.Millisecond), Receiver: side(1<<20, 11*time.Millisecond), Checksum: sum, ChecksumVerified: true},
			{Offset: 1 << 20, Length: 2 << 20, Sender: side(2<<20, 20*time.Millisecond), Receiver: side(2<<20, 21*time.Millisecond), Checksum: sum, ChecksumVerified: true},
		},
	}
	var b bytes.Buffer
	printReport(&b, "big.bin", "/tmp/out", r, time.Second)
	out := b.String()
	for _, want := range []string{
		"with SENDFILE over 2 streams\n",
		"checksum: CRC32C of each part's range, matched by the receiver (a corruption check, not proof against tampering)\n",
		"2 parts at once",
		"  part 1  bytes 0-1048575        SENDFILE  1.0 MiB  in 11.0 ms  (90.9 MiB/s)  checksum verified\n",
		"  part 2  bytes 1048576-3145727  SENDFILE  2.0 MiB  in 21.0 ms  (95.2 MiB/s)  checksum verified\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if got := heldBefore(r, 0); got != 0 {
		t.Errorf("heldBefore(parts covering the range) = %d, want 0", got)
	}
	r.Parts = r.Parts[1:]
	if got := heldBefore(r, 0); got != 1<<20 {
		t.Errorf("heldBefore(a resumed pull that fetched the second part) = %d, want %d", got, 1<<20)
	}
}
