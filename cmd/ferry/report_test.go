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
	printReport(&b, "big.bin", "/tmp/out", r)
	out := b.String()
	for _, want := range []string{
		"pulled big.bin -> /tmp/out: 95.4 MiB in 97.2 ms (1.0 GiB/s) with SPLICE\n",
		"95.4 MiB (100000003)", "0 s / 50.8 ms", "8 / 101", "pipe2=1 splice=206", "190.7 MiB",
		"50.0 MiB/s", "1.50 ms", "tid 42 (locked)",
		"checksum: CRC32C deadbeef, verified by the receiver",
		"MEASURED", "COUNTED", "DERIVED", "MODELLED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	r.Checksum, r.Sender.RateLimit, r.Receiver.RateLimit = nil, 0, 0
	r.Sender.ChecksumCpu, r.Receiver.ChecksumCpu = nil, nil
	b.Reset()
	printReport(&b, "big.bin", "/tmp/out", r)
	for _, absent := range []string{"checksum", "rate limit"} {
		if strings.Contains(b.String(), absent) {
			t.Errorf("report without a checksum or limit mentions %q:\n%s", absent, b.String())
		}
	}
}
