// Package tracingtest is an in-process OTLP trace receiver for tests: a
// real gRPC server implementing the collector's TraceService, which keeps
// every span exported to it and counts the connections made to it.
package tracingtest

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// Span is one received span, flattened for assertions.
type Span struct {
	Service  string // the resource's service.name
	Version  string // the resource's service.version
	Name     string
	Kind     tracepb.Span_SpanKind
	TraceID  string // 32 hex digits
	SpanID   string // 16 hex digits
	ParentID string // "" for a root span
	// Attrs are the span's attributes, each as its Go value: string,
	// int64, float64, bool, or the AnyValue itself for anything else.
	Attrs   map[string]any
	Status  tracepb.Status_StatusCode
	Message string // the status's message
}

func (s Span) String() string {
	return fmt.Sprintf("%s %q kind=%v trace=%s span=%s parent=%s status=%v attrs=%v", s.Service, s.Name, s.Kind, s.TraceID, s.SpanID, s.ParentID, s.Status, s.Attrs)
}

// Receiver is an OTLP/gRPC trace receiver listening on Addr.
type Receiver struct {
	Addr string // host:port

	collectorpb.UnimplementedTraceServiceServer
	conns atomic.Int64
	mu    sync.Mutex
	spans []Span
	got   chan struct{} // signalled after each export
}

// Start serves a receiver on address ("127.0.0.1:0" for any port) until
// the test ends. It fails the test when address cannot be bound.
func Start(t testing.TB, address string) *Receiver {
	t.Helper()
	ln, err := net.Listen("tcp", address)
	if err != nil {
		t.Fatalf("OTLP receiver: %v", err)
	}
	return Serve(t, ln)
}

// Serve is Start on a listener of the caller's; the receiver closes it.
func Serve(t testing.TB, ln net.Listener) *Receiver {
	r := &Receiver{Addr: ln.Addr().String(), got: make(chan struct{}, 1)}
	srv := grpc.NewServer()
	collectorpb.RegisterTraceServiceServer(srv, r)
	go srv.Serve(&countingListener{ln, &r.conns})
	t.Cleanup(srv.Stop)
	return r
}

// Conns is how many connections the receiver has accepted.
func (r *Receiver) Conns() int64 { return r.conns.Load() }

// Spans returns a copy of the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

// Await waits up to timeout for the spans received to satisfy done and
// returns them; past the timeout it fails the test, listing what came.
func (r *Receiver) Await(t testing.TB, timeout time.Duration, what string, done func([]Span) bool) []Span {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if spans := r.Spans(); done(spans) {
			return spans
		}
		select {
		case <-r.got:
		case <-deadline:
			spans := r.Spans()
			var b strings.Builder
			for _, s := range spans {
				fmt.Fprintf(&b, "\n  %v", s)
			}
			t.Fatalf("OTLP receiver: no %s within %v; %d spans came:%s", what, timeout, len(spans), b.String())
			return nil
		}
	}
}

// Export is the TraceService's one method: keep the spans.
func (r *Receiver) Export(_ context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	var got []Span
	for _, rs := range req.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		service, _ := res["service.name"].(string)
		version, _ := res["service.version"].(string)
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got = append(got, Span{
					Service: service, Version: version, Name: s.GetName(), Kind: s.GetKind(),
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					ParentID: hex.EncodeToString(s.GetParentSpanId()), Attrs: attrs(s.GetAttributes()),
					Status: s.GetStatus().GetCode(), Message: s.GetStatus().GetMessage(),
				})
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

func attrs(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.GetStringValue()
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = v.GetIntValue()
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = v.GetDoubleValue()
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = v.GetBoolValue()
		default:
			m[kv.GetKey()] = v
		}
	}
	return m
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}
