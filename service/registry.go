package service

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// tracerName is the instrumentation scope of the node's transfer spans.
const tracerName = "github.com/ferrydev/ferry/service"

// defaultTransferHistory is Config.TransferHistory's zero value.
const defaultTransferHistory = 100

// registry is what ListTransfers reads: the transfers running now and the
// last finished ones, at most limit of them. Memory is bounded by the
// running transfers (themselves bounded by the stream limit) and the
// history; a finished transfer keeps its report.
//
// Use: r := s.transfers.start(ctx, info) when a transfer starts,
// r.progress as it moves, r.finish(report, treeReport, err) once it ends.
// A nil *registry records nothing, and its records are nil, whose methods
// do nothing.
//
// It is also where transfers are traced: with a tracer, every record is
// a "ferry.transfer" span, a child of the span in start's context (the
// RPC's server span), ended by finish with the transfer's attributes
// (see traceAttrs). Without one no span is made.
type registry struct {
	mu       sync.Mutex
	limit    int
	tracer   trace.Tracer         // nil: no spans
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
	span trace.Span // nil unless the registry traces
}

// start records a transfer as RUNNING from now. An info without a
// transfer_id gets one made of its kind and a sequence number
// ("pull-3"). The registry owns info from here on. ctx is the call's: a
// traced transfer's span is its child.
func (r *registry) start(ctx context.Context, info *ferryv1.TransferInfo) *record {
	return r.startLive(ctx, info, nil)
}

// startLive is start for a transfer whose bytes done live reads at
// listing time. It is set before the record is published, so listings
// never race with it.
func (r *registry) startLive(ctx context.Context, info *ferryv1.TransferInfo, live func() int64) *record {
	if r == nil {
		return nil
	}
	var span trace.Span
	if r.tracer != nil {
		_, span = r.tracer.Start(ctx, "ferry.transfer", trace.WithSpanKind(trace.SpanKindInternal))
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
	rec := &record{reg: r, seq: r.started, info: info, live: live, span: span}
	r.running[rec] = struct{}{}
	return rec
}

// context is ctx carrying e's span, when there is one, so that what the
// transfer calls (a Pull's calls to its peer) becomes its child.
func (e *record) context(ctx context.Context) context.Context {
	if e == nil || e.span == nil {
		return ctx
	}
	return trace.ContextWithSpan(ctx, e.span)
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
	var attrs []attribute.KeyValue
	r.mu.Lock()
	defer func() {
		r.mu.Unlock()
		if attrs != nil { // ended outside the lock: the exporter's queue is not the registry's
			e.span.SetAttributes(attrs...)
			if err != nil {
				e.span.SetStatus(otelcodes.Error, status.Convert(err).Message())
			}
			e.span.End()
		}
	}()
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
	if e.span != nil {
		attrs = traceAttrs(info)
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

// traceAttrs are a finished transfer's span attributes: its id, kind,
// path and strategy as the CLI spells them ("download", "splice";
// "auto" when the strategy was left to the peer and no report named
// it), the bytes moved, the duration in milliseconds, and the outcome,
// "ok" or the gRPC code's name ("NOT_FOUND").
func traceAttrs(info *ferryv1.TransferInfo) []attribute.KeyValue {
	outcome := "ok"
	if info.State == ferryv1.TransferState_TRANSFER_STATE_FAILED {
		outcome = info.ErrorCode
	}
	strategy := "auto"
	if info.Strategy != ferryv1.Strategy_STRATEGY_UNSPECIFIED {
		strategy = cliName(strings.TrimPrefix(info.Strategy.String(), "STRATEGY_"))
	}
	return []attribute.KeyValue{
		attribute.String("ferry.transfer_id", info.TransferId),
		attribute.String("ferry.kind", cliName(strings.TrimPrefix(info.Kind.String(), "TRANSFER_KIND_"))),
		attribute.String("ferry.path", info.Path),
		attribute.String("ferry.strategy", strategy),
		attribute.Int64("ferry.bytes", int64(info.BytesDone)),
		attribute.Float64("ferry.duration_ms", float64(info.EndTime.AsTime().Sub(info.StartTime.AsTime()))/1e6),
		attribute.String("ferry.outcome", outcome),
	}
}

// cliName spells an enum value's name as the CLI does: "READ_WRITE" is
// "read-write".
func cliName(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "-") }

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
