package apiconv

import (
	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// SumStats adds one file's statistics st to a tree's sum and returns the
// sum (a copy of st when sum is nil). Counts, bytes, CPU times, context
// switches and copy-loop durations add up (files that ran at once make
// the summed duration longer than the wall time: a tree's wall time is
// TreeReport.duration); the throughput is re-derived from the sums. The
// strategy and model stay only while every file had the same, else they
// are unset; thread_measured holds only if every file was measured, and
// thread_id is dropped once several files are summed. pipe_size is the
// largest seen; rate_limit, checksum_cached and inline hold only if they
// held for every file; encryption is "mixed" once files differ (inline
// ones, which came over the control plane, have none).
func SumStats(sum, st *ferryv1.TransferStats) *ferryv1.TransferStats {
	if st == nil {
		return sum
	}
	if sum == nil {
		return proto.Clone(st).(*ferryv1.TransferStats)
	}
	if sum.Strategy != st.Strategy {
		sum.Strategy = ferryv1.Strategy_STRATEGY_UNSPECIFIED
	}
	if !proto.Equal(sum.Model, st.Model) {
		sum.Model = nil
	}
	sum.Bytes += st.Bytes
	sum.Rounds += st.Rounds
	if sum.Syscalls == nil {
		sum.Syscalls = make(map[string]uint64)
	}
	for k, v := range st.Syscalls {
		sum.Syscalls[k] += v
	}
	sum.ModeSwitches += st.ModeSwitches
	sum.CpuCopiedBytes += st.CpuCopiedBytes
	sum.DmaCopiedBytes += st.DmaCopiedBytes
	sum.VoluntaryContextSwitches += st.VoluntaryContextSwitches
	sum.InvoluntaryContextSwitches += st.InvoluntaryContextSwitches
	sum.Duration = addDuration(sum.Duration, st.Duration)
	sum.UserCpu = addDuration(sum.UserCpu, st.UserCpu)
	sum.SystemCpu = addDuration(sum.SystemCpu, st.SystemCpu)
	sum.ChecksumCpu = addDuration(sum.ChecksumCpu, st.ChecksumCpu)
	sum.ThreadMeasured = sum.ThreadMeasured && st.ThreadMeasured
	sum.ThreadId = 0
	sum.PipeSize = max(sum.PipeSize, st.PipeSize)
	if sum.RateLimit != st.RateLimit {
		sum.RateLimit = 0
	}
	sum.ChecksumCached = sum.ChecksumCached && st.ChecksumCached
	sum.Inline = sum.Inline && st.Inline
	if sum.Encryption != st.Encryption {
		sum.Encryption = "mixed"
	}
	sum.ThroughputBytesPerSecond = 0
	if d := sum.Duration.AsDuration(); d > 0 {
		sum.ThroughputBytesPerSecond = float64(sum.Bytes) / d.Seconds()
	}
	return sum
}

func addDuration(a, b *durationpb.Duration) *durationpb.Duration {
	return durationpb.New(a.AsDuration() + b.AsDuration())
}
