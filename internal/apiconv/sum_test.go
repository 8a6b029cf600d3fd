package apiconv

import (
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestSumStats(t *testing.T) {
	a := &ferryv1.TransferStats{
		Strategy: ferryv1.Strategy_STRATEGY_SENDFILE, Bytes: 100, Rounds: 1, Syscalls: map[string]uint64{"sendfile": 1},
		Duration: durationpb.New(time.Second), ThreadMeasured: true, ThreadId: 7, PipeSize: 0, Inline: false,
	}
	b := &ferryv1.TransferStats{
		Strategy: ferryv1.Strategy_STRATEGY_SENDFILE, Bytes: 300, Rounds: 2, Syscalls: map[string]uint64{"sendfile": 2, "write": 1},
		Duration: durationpb.New(time.Second), ThreadMeasured: true, ThreadId: 8,
	}
	sum := SumStats(SumStats(nil, a), b)
	if sum == a {
		t.Fatalf("SumStats(nil, a) returned a itself, want a copy")
	}
	if sum.Strategy != ferryv1.Strategy_STRATEGY_SENDFILE || sum.Bytes != 400 || sum.Rounds != 3 ||
		sum.Syscalls["sendfile"] != 3 || sum.Syscalls["write"] != 1 || !sum.ThreadMeasured || sum.ThreadId != 0 {
		t.Errorf("SumStats = %v, want sendfile, 400 bytes, 3 rounds, sendfile=3 write=1, measured, no thread id", sum)
	}
	if got := sum.ThroughputBytesPerSecond; got != 200 {
		t.Errorf("summed throughput = %v, want 200 (400 bytes / 2 s)", got)
	}
	if a.Bytes != 100 || a.Syscalls["sendfile"] != 1 {
		t.Errorf("SumStats changed its first operand: %v", a)
	}
	c := &ferryv1.TransferStats{Strategy: ferryv1.Strategy_STRATEGY_MMAP, Bytes: 1}
	sum = SumStats(sum, c)
	if sum.Strategy != ferryv1.Strategy_STRATEGY_UNSPECIFIED || sum.ThreadMeasured {
		t.Errorf("after a file of another strategy, unmeasured: strategy %v, measured %v; want UNSPECIFIED, false", sum.Strategy, sum.ThreadMeasured)
	}
}
