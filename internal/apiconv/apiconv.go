// Package apiconv converts between the data plane's Go types (package
// transfer) and the ferry.v1 API messages. It exists so that the server
// and the client report statistics through one code path and label them
// identically; it holds no logic beyond the mapping.
package apiconv

import (
	"fmt"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/transfer"
	"google.golang.org/protobuf/types/known/durationpb"
)

var toProto = map[transfer.Strategy]ferryv1.Strategy{
	transfer.Auto:      ferryv1.Strategy_STRATEGY_UNSPECIFIED,
	transfer.ReadWrite: ferryv1.Strategy_STRATEGY_READ_WRITE,
	transfer.Mmap:      ferryv1.Strategy_STRATEGY_MMAP,
	transfer.Sendfile:  ferryv1.Strategy_STRATEGY_SENDFILE,
	transfer.Splice:    ferryv1.Strategy_STRATEGY_SPLICE,
}

// Strategy maps a data-plane strategy to the API enum.
func Strategy(s transfer.Strategy) ferryv1.Strategy { return toProto[s] }

// Strategies maps a list of strategies.
func Strategies(ss []transfer.Strategy) []ferryv1.Strategy {
	out := make([]ferryv1.Strategy, len(ss))
	for i, s := range ss {
		out[i] = Strategy(s)
	}
	return out
}

// FromStrategy maps the API enum to a data-plane strategy; a number the
// enum does not define is an error.
func FromStrategy(s ferryv1.Strategy) (transfer.Strategy, error) {
	for k, v := range toProto {
		if v == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown strategy %d", int32(s))
}

// FromSink maps what the receiver does with the bytes. It is a hint, so a
// value this server does not know counts as a file, as an unset one does.
func FromSink(k ferryv1.Sink) transfer.Sink {
	switch k {
	case ferryv1.Sink_SINK_STREAM:
		return transfer.SinkStream
	case ferryv1.Sink_SINK_READER:
		return transfer.SinkReader
	}
	return transfer.SinkFile
}

// Stats maps one side's statistics.
func Stats(st transfer.Stats) *ferryv1.TransferStats {
	sys := make(map[string]uint64, len(st.Syscalls))
	for k, v := range st.Syscalls {
		sys[k] = uint64(v)
	}
	return &ferryv1.TransferStats{
		Strategy:                   Strategy(st.Strategy),
		Bytes:                      uint64(st.Bytes),
		Duration:                   durationpb.New(st.Duration),
		ThroughputBytesPerSecond:   st.Throughput(),
		Model:                      Model(st.Model),
		Rounds:                     uint64(st.Rounds),
		Syscalls:                   sys,
		ModeSwitches:               uint64(st.ModeSwitches()),
		CpuCopiedBytes:             uint64(st.CPUCopiedBytes()),
		DmaCopiedBytes:             uint64(st.DMACopiedBytes()),
		VoluntaryContextSwitches:   uint64(st.VoluntaryCtxSwitches),
		InvoluntaryContextSwitches: uint64(st.InvoluntaryCtxSwitches),
		UserCpu:                    durationpb.New(st.UserCPU),
		SystemCpu:                  durationpb.New(st.SystemCPU),
		ThreadMeasured:             st.ThreadMeasured,
		ThreadId:                   int64(st.ThreadID),
		PipeSize:                   uint64(st.PipeSize),
		RateLimit:                  uint64(st.RateLimit),
		ChecksumCpu:                durationpb.New(st.ChecksumCPU),
		ChecksumCached:             st.ChecksumCached,
		Inline:                     st.Inline,
		Encryption:                 st.Encryption,
	}
}

// Model maps a copy model.
func Model(m transfer.Model) *ferryv1.CopyModel {
	return &ferryv1.CopyModel{
		CpuCopies:    uint32(m.CPUCopies),
		DmaCopies:    uint32(m.DMACopies),
		ModeSwitches: uint32(m.ModeSwitches),
		Gather:       m.Gather,
		Description:  m.Description,
	}
}

var checksumToProto = map[transfer.ChecksumAlgorithm]ferryv1.ChecksumAlgorithm{
	transfer.NoChecksum: ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_UNSPECIFIED,
	transfer.CRC32C:     ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_CRC32C,
	transfer.SHA256:     ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_SHA256,
}

// ChecksumAlgorithm maps a data-plane checksum algorithm to the API enum.
func ChecksumAlgorithm(a transfer.ChecksumAlgorithm) ferryv1.ChecksumAlgorithm {
	return checksumToProto[a]
}

// FromChecksumAlgorithm maps the API enum to a data-plane algorithm; a
// number the enum does not define is an error.
func FromChecksumAlgorithm(a ferryv1.ChecksumAlgorithm) (transfer.ChecksumAlgorithm, error) {
	for k, v := range checksumToProto {
		if v == a {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown checksum algorithm %d", int32(a))
}

// Checksum maps a checksum; nil for none.
func Checksum(c transfer.Checksum) *ferryv1.Checksum {
	if c.Algorithm == transfer.NoChecksum {
		return nil
	}
	return &ferryv1.Checksum{Algorithm: ChecksumAlgorithm(c.Algorithm), Value: c.Value}
}

// FromChecksum maps an API checksum; the zero Checksum for nil.
func FromChecksum(c *ferryv1.Checksum) (transfer.Checksum, error) {
	if c == nil {
		return transfer.Checksum{}, nil
	}
	a, err := FromChecksumAlgorithm(c.GetAlgorithm())
	return transfer.Checksum{Algorithm: a, Value: c.GetValue()}, err
}

// AutoChoice maps how a transfer's strategy was chosen; nil when the
// request named its strategy, so that reports of named transfers carry
// nothing.
func AutoChoice(c transfer.AutoChoice) *ferryv1.AutoChoice {
	if !c.ChosenByServer {
		return nil
	}
	return &ferryv1.AutoChoice{ChosenByServer: true, Exploration: c.Exploration, SizeClass: c.Class}
}

// AutoPolicy maps the server's Auto policy.
func AutoPolicy(p transfer.AutoPolicy) *ferryv1.AutoPolicy {
	out := &ferryv1.AutoPolicy{Objective: p.Objective, ExploreShare: p.ExploreShare, Seed: p.Seed}
	for _, c := range p.Classes {
		ac := &ferryv1.AutoClass{
			MinBytes: uint64(c.Min), BelowBytes: uint64(c.Below), Network: c.Network.String(),
			Pick: Strategy(c.Pick), Reason: c.Reason, LeftOutForSteal: uint64(c.LeftOutForSteal),
		}
		if c.BySink {
			ac.Sink = c.Sink.String()
		}
		for _, sc := range c.Costs {
			ac.Costs = append(ac.Costs, &ferryv1.StrategyCost{
				Strategy: Strategy(sc.Strategy), Samples: uint64(sc.Samples),
				BytesPerSecond: sc.Rate, CpuSecondsPerGib: sc.CPUPerGB, Failed: sc.Failed,
			})
		}
		out.Classes = append(out.Classes, ac)
	}
	return out
}
