package service

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// defaultTransferHistory is Config.TransferHistory's zero value.
const defaultTransferHistory = 100

// registry is what ListTransfers reads: the transfers running now and the
// last finished ones, at most limit of them. Memory is bounded by the
// running transfers (themselves bounded by the stream limit) and the
// history; a finished transfer keeps its report.
//
// Use: r := s.transfers.start(info) when a transfer starts, r.progress
// as it moves, r.finish(report, treeReport, err) once it ends. A nil
// *registry records nothing, and its records are nil, whose methods do
// nothing.
type registry struct {
	mu       sync.Mutex
	limit    int
	started  uint64               // transfers started, for ids and order
	running  map[*record]struct{} // guarded by mu
	finished []*record            // oldest first, at most limit
}

func newRegistry(limit int) *registry {
	if limit <= 0 {
		limit = defaultTransferHistory
	}
	return &registry{limit: limit, running: make(map[*record]struct{})}
}

// record is one transfer in a registry.
type record struct {
	reg  *registry
	seq  uint64
	info *ferryv1.TransferInfo // guarded by reg.mu
	// live, when set, reads the bytes done at listing time (a Download's
	// transfer.Transfer.Sent); otherwise progress sets them.
	live func() int64
	done bool
}

// start records a transfer as RUNNING from now. An info without a
// transfer_id gets one made of its kind and a sequence number
// ("pull-3"). The registry owns info from here on.
func (r *registry) start(info *ferryv1.TransferInfo) *record {
	return r.startLive(info, nil)
}

// startLive is start for a transfer whose bytes done live reads at
// listing time. It is set before the record is published, so listings
// never race with it.
func (r *registry) startLive(info *ferryv1.TransferInfo, live func() int64) *record {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started++
	if info.GetTransferId() == "" {
		kind := strings.TrimPrefix(info.GetKind().String(), "TRANSFER_KIND_")
		info.TransferId = fmt.Sprintf("%s-%d", strings.ReplaceAll(strings.ToLower(kind), "_", "-"), r.started)
	}
	info.State = ferryv1.TransferState_TRANSFER_STATE_RUNNING
	if info.StartTime == nil {
		info.StartTime = timestamppb.Now()
	}
	rec := &record{reg: r, seq: r.started, info: info, live: live}
	r.running[rec] = struct{}{}
	return rec
}

// progress records how far a running transfer has got.
func (e *record) progress(bytes, files uint64) {
	if e == nil {
		return
	}
	e.reg.mu.Lock()
	defer e.reg.mu.Unlock()
	e.info.BytesDone, e.info.FilesDone = bytes, files
}

// totals records what a running transfer has to move, once known.
func (e *record) totals(bytes, files uint64) {
	if e == nil {
		return
	}
	e.reg.mu.Lock()
	defer e.reg.mu.Unlock()
	e.info.BytesTotal, e.info.FilesTotal = bytes, files
}

// finish ends a transfer: SUCCEEDED with its report (a file's or a
// tree's, either may be nil) when err is nil, FAILED with err's code and
// message otherwise, and moves it into the history. Only the first call
// counts, so a handler may finish a record when it sends the report and
// again, in a defer, with whatever error it returns.
func (e *record) finish(report *ferryv1.Report, tree *ferryv1.TreeReport, err error) {
	if e == nil {
		return
	}
	r := e.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.done {
		return
	}
	e.done = true
	info := e.info
	if e.live != nil {
		info.BytesDone = uint64(max(e.live(), 0))
		e.live = nil
	}
	info.EndTime = timestamppb.Now()
	info.State = ferryv1.TransferState_TRANSFER_STATE_SUCCEEDED
	if err != nil {
		st := status.Convert(err)
		info.State, info.ErrorCode, info.Error = ferryv1.TransferState_TRANSFER_STATE_FAILED, codeName(st.Code()), st.Message()
	}
	info.Report, info.TreeReport = report, tree
	sender := report.GetSender()
	if report != nil {
		info.BytesDone = max(sender.GetBytes(), report.GetReceiver().GetBytes())
	}
	if tree != nil {
		sender = tree.GetSender()
		info.BytesDone, info.FilesDone = tree.GetBytes(), tree.GetFiles()
		info.BytesTotal, info.FilesTotal = max(info.BytesTotal, info.BytesDone), max(info.FilesTotal, info.FilesDone)
	}
	if info.Strategy == ferryv1.Strategy_STRATEGY_UNSPECIFIED {
		info.Strategy = sender.GetStrategy() // the peer's pick
	}
	delete(r.running, e)
	r.finished = append(r.finished, e)
	if len(r.finished) > r.limit {
		n := copy(r.finished, r.finished[len(r.finished)-r.limit:])
		clear(r.finished[n:])
		r.finished = r.finished[:n]
	}
}

// list returns copies of the running transfers, newest first, then, unless
// runningOnly, of the finished ones, most recently finished first.
func (r *registry) list(runningOnly bool) []*ferryv1.TransferInfo {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	running := make([]*record, 0, len(r.running))
	for e := range r.running {
		running = append(running, e)
	}
	slices.SortFunc(running, func(a, b *record) int { return cmp.Compare(b.seq, a.seq) })
	out := make([]*ferryv1.TransferInfo, 0, len(running)+len(r.finished))
	for _, e := range running {
		info := proto.Clone(e.info).(*ferryv1.TransferInfo)
		if e.live != nil {
			info.BytesDone = uint64(max(e.live(), 0))
		}
		out = append(out, info)
	}
	if !runningOnly {
		for i := len(r.finished) - 1; i >= 0; i-- {
			out = append(out, proto.Clone(r.finished[i].info).(*ferryv1.TransferInfo))
		}
	}
	return out
}

// codeName spells a gRPC code as google.rpc.Code does ("NOT_FOUND").
func codeName(c codes.Code) string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return c.String()
}

var codeNames = [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
	"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}
