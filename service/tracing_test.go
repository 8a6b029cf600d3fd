package service_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/internal/tracing/tracingtest"
	"github.com/ferrydev/ferry/service"
)

// otlpProvider is a real SDK tracer provider exporting over OTLP/gRPC to
// r, as service name, in batches flushed every 20 ms. It is shut down when
// the test ends.
func otlpProvider(t *testing.T, r *tracingtest.Receiver, name string) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracegrpc.New(t.Context(), otlptracegrpc.WithEndpoint(r.Addr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(20*time.Millisecond)),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp
}

// w3c sets the global propagator to W3C tracecontext, as tracing.Setup
// does, for the test.
func w3c(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
}

// TestTracingPull follows one trace from a caller through node B's Pull
// to its peer A and back: every span the three export carries the
// caller's trace id, each hop is the child of the one before, and the
// transfer spans on both nodes say what moved. A pull of a missing file
// ends its transfer span with the outcome NOT_FOUND.
func TestTracingPull(t *testing.T) {
	w3c(t)
	r := tracingtest.Start(t, "127.0.0.1:0")
	a := startNode(t, service.Config{TracerProvider: otlpProvider(t, r, "node-a")})
	b := startNode(t, service.Config{AllowPull: true, TracerProvider: otlpProvider(t, r, "node-b")})
	want := writeFile(t, a.root, "models/m.bin", 1<<20+3)

	callerTP := otlpProvider(t, r, "caller")
	c, err := client.Dial(b.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), client.WithTracing(callerTP))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, root := callerTP.Tracer("test").Start(testCtx(t), "caller")
	traceID := root.SpanContext().TraceID().String()
	pullOK := func(req *ferryv1.PullRequest) error {
		stream, err := c.API().Pull(ctx, req)
		if err != nil {
			return err
		}
		for { // to the end, so that the client span ends
			if _, err := stream.Recv(); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}
	if err := pullOK(&ferryv1.PullRequest{Peer: a.Addr().String(), Path: "models/m.bin", Destination: "m.bin", Strategy: ferryv1.Strategy_STRATEGY_SENDFILE}); err != nil {
		t.Fatalf("Pull = %v", err)
	}
	if err := pullOK(&ferryv1.PullRequest{Peer: a.Addr().String(), Path: "models/nope", Destination: "nope"}); err == nil {
		t.Fatal("Pull of a missing file succeeded")
	}
	root.End()

	find := func(spans []tracingtest.Span, service, name string, kind tracepb.Span_SpanKind, where func(tracingtest.Span) bool) (tracingtest.Span, bool) {
		i := slices.IndexFunc(spans, func(s tracingtest.Span) bool {
			return s.Service == service && s.Name == name && s.Kind == kind && (where == nil || where(s))
		})
		if i < 0 {
			return tracingtest.Span{}, false
		}
		return spans[i], true
	}
	isPath := func(p string) func(tracingtest.Span) bool {
		return func(s tracingtest.Span) bool { return s.Attrs["ferry.path"] == p }
	}
	const (
		pullRPC     = "ferry.v1.TransferService/Pull"
		downloadRPC = "ferry.v1.TransferService/Download"
		internal    = tracepb.Span_SPAN_KIND_INTERNAL
		server      = tracepb.Span_SPAN_KIND_SERVER
		clientKind  = tracepb.Span_SPAN_KIND_CLIENT
	)
	spans := r.Await(t, 10*time.Second, "complete trace", func(spans []tracingtest.Span) bool {
		a0 := len(slices.DeleteFunc(slices.Clone(spans), func(s tracingtest.Span) bool {
			return s.Service != "caller" || s.Name != pullRPC
		})) == 2 && len(slices.DeleteFunc(slices.Clone(spans), func(s tracingtest.Span) bool {
			return s.Service != "node-b" || s.Name != downloadRPC
		})) == 1
		_, a1 := find(spans, "caller", "caller", internal, nil)
		_, a2 := find(spans, "node-a", "ferry.transfer", internal, nil)
		_, a3 := find(spans, "node-a", downloadRPC, server, nil)
		_, b1 := find(spans, "node-b", "ferry.transfer", internal, isPath("models/nope"))
		_, b2 := find(spans, "node-b", pullRPC, server, nil)
		return a0 && a1 && a2 && a3 && b1 && b2
	})

	// The chain: caller → caller's client span → B's server span → B's
	// transfer span → B's client span → A's server span → A's transfer span.
	chain := []struct {
		service, name string
		kind          tracepb.Span_SpanKind
		where         func(tracingtest.Span) bool
	}{
		{"caller", "caller", internal, nil},
		{"caller", pullRPC, clientKind, nil},
		{"node-b", pullRPC, server, nil},
		{"node-b", "ferry.transfer", internal, isPath("models/m.bin")},
		{"node-b", downloadRPC, clientKind, nil},
		{"node-a", downloadRPC, server, nil},
		{"node-a", "ferry.transfer", internal, nil},
	}
	byID := map[string]tracingtest.Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	// Walk up from the leaf, A's transfer span, the only one on A.
	s, _ := find(spans, "node-a", "ferry.transfer", internal, nil)
	for i := len(chain) - 1; i >= 0; i-- {
		c := chain[i]
		if s.Service != c.service || s.Name != c.name || s.Kind != c.kind || c.where != nil && !c.where(s) {
			t.Fatalf("hop %d: got span %v, want %s %q (%v); all spans:\n%v", i, s, c.service, c.name, c.kind, spans)
		}
		if s.TraceID != traceID {
			t.Errorf("%s span %q: trace %s, want the caller's %s", c.service, c.name, s.TraceID, traceID)
		}
		if i > 0 {
			p, ok := byID[s.ParentID]
			if !ok {
				t.Fatalf("the parent %s of %v was not received; all spans:\n%v", s.ParentID, s, spans)
			}
			s = p
		}
	}
	if s.ParentID != "" {
		t.Errorf("the caller's span has a parent: %v", s)
	}
	sent, _ := find(spans, "node-a", "ferry.transfer", internal, nil)
	checkAttrs(t, sent, map[string]any{"ferry.kind": "download", "ferry.path": "models/m.bin", "ferry.strategy": "sendfile",
		"ferry.bytes": int64(len(want)), "ferry.outcome": "ok"})
	if id, _ := sent.Attrs["ferry.transfer_id"].(string); id == "" {
		t.Errorf("A's transfer span has no ferry.transfer_id: %v", sent)
	}
	if d, _ := sent.Attrs["ferry.duration_ms"].(float64); d <= 0 {
		t.Errorf("A's transfer span: ferry.duration_ms = %v, want > 0", sent.Attrs["ferry.duration_ms"])
	}
	if sent.Status == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("A's transfer span has status Error: %v", sent)
	}
	pulled, _ := find(spans, "node-b", "ferry.transfer", internal, isPath("models/m.bin"))
	checkAttrs(t, pulled, map[string]any{"ferry.kind": "pull", "ferry.strategy": "sendfile", "ferry.bytes": int64(len(want)), "ferry.outcome": "ok"})

	failed, _ := find(spans, "node-b", "ferry.transfer", internal, isPath("models/nope"))
	checkAttrs(t, failed, map[string]any{"ferry.kind": "pull", "ferry.outcome": "NOT_FOUND", "ferry.bytes": int64(0), "ferry.strategy": "auto"})
	if failed.Status != tracepb.Status_STATUS_CODE_ERROR || !strings.Contains(failed.Message, "models/nope") {
		t.Errorf("the failed pull's transfer span: status %v %q, want Error naming models/nope", failed.Status, failed.Message)
	}
	for _, s := range spans {
		if strings.HasPrefix(s.Name, "grpc.health") {
			t.Errorf("a health check was traced: %v", s)
		}
	}
}

func checkAttrs(t *testing.T, s tracingtest.Span, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if s.Attrs[k] != v {
			t.Errorf("%s span %q: %s = %#v, want %#v", s.Service, s.Name, k, s.Attrs[k], v)
		}
	}
}
