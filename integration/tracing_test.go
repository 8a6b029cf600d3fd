package integration

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ferrydev/ferry/internal/tracing/tracingtest"
)

// tracedEnv is the environment that turns a ferryd's tracing on toward
// the receiver r, flushing every 50 ms, as service name.
func tracedEnv(r *tracingtest.Receiver, name string) []string {
	return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + r.Addr, "OTEL_EXPORTER_OTLP_INSECURE=true",
		"OTEL_BSP_SCHEDULE_DELAY=50", "OTEL_SERVICE_NAME=" + name}
}

// traceparent makes a W3C traceparent header value of a fresh trace,
// and returns its trace and span ids too.
func traceparent() (header, traceID, spanID string) {
	var b [24]byte
	rand.Read(b[:])
	traceID, spanID = hex.EncodeToString(b[:16]), hex.EncodeToString(b[16:])
	return "00-" + traceID + "-" + spanID + "-01", traceID, spanID
}

// TestTracingPull runs two real ferryd nodes with tracing turned on by
// the OTEL_* environment alone, exporting to an in-process OTLP receiver,
// and drives a Pull on node A from its peer B with the real grpcurl
// carrying a traceparent header. A's server span, A's client span to the
// peer, B's server span and B's ferry.transfer span all continue that
// trace, and B's transfer span says what was sent: the file's size, the
// strategy asked for, outcome ok. A pull of a missing file ends A's
// transfer span with the outcome NOT_FOUND.
func TestTracingPull(t *testing.T) {
	grpcurl := toolPath(t, grpcurlTool)
	r := tracingtest.Start(t, "127.0.0.1:0")
	rootA, rootB := t.TempDir(), t.TempDir()
	const size = 3<<20 + 11
	writeRandom(t, rootB, "f.bin", size)
	plain := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	b := startFerrydEnv(t, rootB, plain, tracedEnv(r, "ferryd-b"))
	a := startFerrydEnv(t, rootA, plain, tracedEnv(r, "ferryd-a"), "--allow-pull")
	for _, d := range []*ferryd{a, b} {
		if !strings.Contains(d.Log.String(), "tracing on") {
			t.Errorf("ferryd with OTEL_EXPORTER_OTLP_ENDPOINT set did not log that tracing is on:\n%s", d.Log)
		}
	}

	header, traceID, parentID := traceparent()
	body := `{"peer": "` + b.Addr + `", "path": "f.bin", "destination": "got.bin", "strategy": "STRATEGY_SPLICE"}`
	res := run(t, os.Environ(), grpcurl, "-plaintext", "-H", "traceparent: "+header, "-d", body, a.Addr, serviceName+"/Pull")
	if res.code != 0 {
		t.Fatalf("grpcurl Pull: exit %d\n%s", res.code, res.stderr)
	}
	if fi, err := os.Stat(filepath.Join(rootA, "got.bin")); err != nil || fi.Size() != size {
		t.Fatalf("A's got.bin: %v, %v; want %d bytes", fi, err, size)
	}
	failHeader, failTrace, _ := traceparent()
	missing := strings.NewReplacer(`"f.bin"`, `"nope.bin"`, `"got.bin"`, `"nope.bin"`).Replace(body)
	if res := run(t, os.Environ(), grpcurl, "-plaintext", "-H", "traceparent: "+failHeader, "-d", missing, a.Addr, serviceName+"/Pull"); res.code == 0 {
		t.Fatalf("grpcurl Pull of a missing file succeeded")
	}

	const (
		pullRPC     = "ferry.v1.TransferService/Pull"
		downloadRPC = "ferry.v1.TransferService/Download"
	)
	match := func(service, name string, kind tracepb.Span_SpanKind, trace string) func(tracingtest.Span) bool {
		return func(s tracingtest.Span) bool {
			return s.Service == service && s.Name == name && s.Kind == kind && s.TraceID == trace
		}
	}
	want := []struct {
		what string
		is   func(tracingtest.Span) bool
	}{
		{"A's Pull server span", match("ferryd-a", pullRPC, tracepb.Span_SPAN_KIND_SERVER, traceID)},
		{"A's Download client span to the peer", match("ferryd-a", downloadRPC, tracepb.Span_SPAN_KIND_CLIENT, traceID)},
		{"B's Download server span", match("ferryd-b", downloadRPC, tracepb.Span_SPAN_KIND_SERVER, traceID)},
		{"B's transfer span", match("ferryd-b", "ferry.transfer", tracepb.Span_SPAN_KIND_INTERNAL, traceID)},
		{"A's transfer span", match("ferryd-a", "ferry.transfer", tracepb.Span_SPAN_KIND_INTERNAL, traceID)},
		{"A's failed transfer span", match("ferryd-a", "ferry.transfer", tracepb.Span_SPAN_KIND_INTERNAL, failTrace)},
	}
	spans := r.Await(t, 20*time.Second, "spans of both pulls", func(spans []tracingtest.Span) bool {
		for _, w := range want {
			if !slices.ContainsFunc(spans, w.is) {
				return false
			}
		}
		return true
	})
	get := func(i int) tracingtest.Span { return spans[slices.IndexFunc(spans, want[i].is)] }
	if s := get(0); s.ParentID != parentID {
		t.Errorf("A's Pull server span: parent %s, want the traceparent's span %s", s.ParentID, parentID)
	}
	sent := get(3)
	checkSpanAttrs(t, sent, map[string]any{"ferry.kind": "download", "ferry.path": "f.bin", "ferry.strategy": "splice",
		"ferry.bytes": int64(size), "ferry.outcome": "ok"})
	if d, _ := sent.Attrs["ferry.duration_ms"].(float64); d <= 0 {
		t.Errorf("B's transfer span: ferry.duration_ms = %v, want > 0", sent.Attrs["ferry.duration_ms"])
	}
	if id, _ := sent.Attrs["ferry.transfer_id"].(string); id == "" {
		t.Errorf("B's transfer span has no ferry.transfer_id")
	}
	if sent.Status == tracepb.Status_STATUS_CODE_ERROR || sent.Version != "dev" {
		t.Errorf("B's transfer span: status %v, service.version %q; want no error, dev", sent.Status, sent.Version)
	}
	checkSpanAttrs(t, get(4), map[string]any{"ferry.kind": "pull", "ferry.path": "f.bin", "ferry.strategy": "splice",
		"ferry.bytes": int64(size), "ferry.outcome": "ok"})
	failed := get(5)
	checkSpanAttrs(t, failed, map[string]any{"ferry.kind": "pull", "ferry.path": "nope.bin", "ferry.outcome": "NOT_FOUND", "ferry.bytes": int64(0)})
	if failed.Status != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("A's failed transfer span: status %v, want Error", failed.Status)
	}
	for _, s := range spans {
		if strings.HasPrefix(s.Name, "grpc.health") {
			t.Errorf("a health check was traced: %v", s)
		}
	}
	t.Logf("B's transfer span: %v", sent)
	t.Logf("A's failed transfer span: %v", failed)
}

func checkSpanAttrs(t *testing.T, s tracingtest.Span, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if s.Attrs[k] != v {
			t.Errorf("%s span %q: %s = %#v, want %#v", s.Service, s.Name, k, s.Attrs[k], v)
		}
	}
}

// TestTracingOffByDefault: ferryd nodes run with no OTEL_* variable
// while an OTLP receiver listens on the default endpoint, 127.0.0.1:4317;
// a traced pull between them, and their shutdown (which would flush any
// exporter), make no connection to it. A node then started with
// OTEL_TRACES_EXPORTER=otlp alone does connect there, which shows that
// the check can fail.
func TestTracingOffByDefault(t *testing.T) {
	grpcurl := toolPath(t, grpcurlTool)
	r := tracingtest.Start(t, "127.0.0.1:4317") // fails the test if the port is taken
	rootA, rootB := t.TempDir(), t.TempDir()
	writeRandom(t, rootB, "f.bin", 100_000)
	b := startFerryd(t, rootB)
	a := startFerryd(t, rootA, "--allow-pull")
	header, _, _ := traceparent()
	body := `{"peer": "` + b.Addr + `", "path": "f.bin", "destination": "f.bin"}`
	if res := run(t, os.Environ(), grpcurl, "-plaintext", "-H", "traceparent: "+header, "-d", body, a.Addr, serviceName+"/Pull"); res.code != 0 {
		t.Fatalf("grpcurl Pull: exit %d\n%s", res.code, res.stderr)
	}
	ferryOK(t, "pull", "--server", b.Addr, "f.bin", "/dev/null") // the CLI, no OTEL_* either
	a.Stop(t)
	b.Stop(t)
	if n := r.Conns(); n != 0 {
		t.Errorf("ferryd and ferry without OTEL_* made %d connections to the default OTLP endpoint, want none", n)
	}
	if strings.Contains(a.Log.String(), "tracing on") {
		t.Errorf("ferryd without OTEL_* logged that tracing is on:\n%s", a.Log)
	}

	on := startFerrydEnv(t, t.TempDir(), []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		[]string{"OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_INSECURE=true"}, "--auto=fixed")
	if res := run(t, os.Environ(), grpcurl, "-plaintext", "-d", `{}`, on.Addr, serviceName+"/GetCapabilities"); res.code != 0 {
		t.Fatalf("grpcurl GetCapabilities: exit %d\n%s", res.code, res.stderr)
	}
	on.Stop(t) // flushes the span to the default endpoint
	if r.Conns() == 0 {
		t.Errorf("ferryd with OTEL_TRACES_EXPORTER=otlp made no connection to 127.0.0.1:4317: the check above could not have failed")
	}
}

// TestTracingCLI: the ferry CLI with the OTEL_* environment set exports
// its own client spans, and the ferryd it calls continues its trace: the
// server span of the pull's Download is the child of the CLI's.
func TestTracingCLI(t *testing.T) {
	r := tracingtest.Start(t, "127.0.0.1:0")
	root := t.TempDir()
	writeRandom(t, root, "f.bin", 200_000)
	plain := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	d := startFerrydEnv(t, root, plain, tracedEnv(r, "ferryd"))
	res := run(t, append(cleanEnv(), tracedEnv(r, "ferry-cli")...), bin.ferry, "pull", "--server", d.Addr, "--strategy", "sendfile", "f.bin", "/dev/null")
	if res.code != 0 {
		t.Fatalf("ferry pull with tracing on: exit %d\n%s", res.code, res.stderr)
	}
	const download = "ferry.v1.TransferService/Download"
	var cli, srv tracingtest.Span
	r.Await(t, 20*time.Second, "the CLI's Download span and ferryd's", func(spans []tracingtest.Span) bool {
		for _, s := range spans {
			switch {
			case s.Service == "ferry-cli" && s.Name == download && s.Kind == tracepb.Span_SPAN_KIND_CLIENT:
				cli = s
			case s.Service == "ferryd" && s.Name == download && s.Kind == tracepb.Span_SPAN_KIND_SERVER:
				srv = s
			}
		}
		return cli.SpanID != "" && srv.SpanID != ""
	})
	if srv.TraceID != cli.TraceID || srv.ParentID != cli.SpanID {
		t.Errorf("ferryd's Download span (trace %s, parent %s) does not continue the CLI's (trace %s, span %s)",
			srv.TraceID, srv.ParentID, cli.TraceID, cli.SpanID)
	}
}
