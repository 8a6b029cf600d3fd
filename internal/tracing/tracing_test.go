package tracing_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ferrydev/ferry/internal/tracing"
	"github.com/ferrydev/ferry/internal/tracing/tracingtest"
)

// clearOTEL unsets every OTEL_* variable for the test (restored after it),
// then sets env, "NAME=value" each.
func clearOTEL(t *testing.T, env ...string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// keepGlobals restores the global tracer provider and propagator, which
// Setup replaces, when the test ends.
func keepGlobals(t *testing.T) {
	tp, prop := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() {
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(prop)
	})
}

func TestEnabled(t *testing.T) {
	for _, c := range []struct {
		env     []string
		want    bool
		wantErr string
	}{
		{nil, false, ""},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317"}, true, ""},
		{[]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:4317"}, true, ""},
		{[]string{"OTEL_TRACES_EXPORTER=otlp"}, true, ""},
		{[]string{"OTEL_TRACES_EXPORTER= OTLP "}, true, ""},
		{[]string{"OTEL_TRACES_EXPORTER=none", "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317"}, false, ""},
		{[]string{"OTEL_TRACES_EXPORTER=otlp,none"}, false, ""},
		{[]string{"OTEL_SDK_DISABLED=true", "OTEL_TRACES_EXPORTER=otlp"}, false, ""},
		{[]string{"OTEL_SDK_DISABLED=false", "OTEL_TRACES_EXPORTER=otlp"}, true, ""},
		{[]string{"OTEL_SERVICE_NAME=x", "OTEL_EXPORTER_OTLP_INSECURE=true"}, false, ""},
		{[]string{"OTEL_TRACES_EXPORTER=zipkin"}, false, `"zipkin"`},
		{[]string{"OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"}, false, "grpc only"},
		{[]string{"OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc"}, true, ""},
	} {
		clearOTEL(t, c.env...)
		got, err := tracing.Enabled()
		if got != c.want || (err == nil) != (c.wantErr == "") || err != nil && !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("Enabled() with %q = %v, %v; want %v, error containing %q", c.env, got, err, c.want, c.wantErr)
		}
	}
}

// TestSetupExports sends a span through Setup's exporter to an in-process
// OTLP receiver, with the resource the environment overrides.
func TestSetupExports(t *testing.T) {
	keepGlobals(t)
	r := tracingtest.Start(t, "127.0.0.1:0")
	clearOTEL(t, "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+r.Addr, "OTEL_EXPORTER_OTLP_INSECURE=true",
		"OTEL_RESOURCE_ATTRIBUTES=service.version=from-env,deployment.environment=test")
	shutdown, enabled, err := tracing.Setup(t.Context(), "ferry-test", "v9")
	if err != nil || !enabled {
		t.Fatalf("Setup = %v, %v; want enabled", enabled, err)
	}
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); !ok {
		t.Errorf("the global tracer provider is %T, want the SDK's", otel.GetTracerProvider())
	}
	if f := otel.GetTextMapPropagator().Fields(); !strings.Contains(strings.Join(f, ","), "traceparent") || !strings.Contains(strings.Join(f, ","), "baggage") {
		t.Errorf("the global propagator's fields are %q, want traceparent and baggage", f)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "hello")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	spans := r.Spans() // shutdown flushed them
	if len(spans) != 1 || spans[0].Name != "hello" {
		t.Fatalf("received %v, want the one span hello", spans)
	}
	if s := spans[0]; s.Service != "ferry-test" || s.Version != "from-env" {
		t.Errorf("resource: service.name %q, service.version %q; want ferry-test (Setup's) and from-env (OTEL_RESOURCE_ATTRIBUTES wins)", s.Service, s.Version)
	}
}

// TestSetupOff: with no OTEL_* variable, Setup starts nothing: the global
// provider stays the API's no-op one and nothing connects to the default
// endpoint. Spans started anyway go nowhere.
func TestSetupOff(t *testing.T) {
	keepGlobals(t)
	clearOTEL(t)
	before := otel.GetTracerProvider()
	shutdown, enabled, err := tracing.Setup(t.Context(), "ferry-test", "v9")
	if err != nil || enabled {
		t.Fatalf("Setup without OTEL_* = %v, %v; want off", enabled, err)
	}
	if got := otel.GetTracerProvider(); got != before {
		t.Errorf("Setup without OTEL_* replaced the global tracer provider with %T", got)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "nowhere")
	if span.IsRecording() {
		t.Errorf("a span started with tracing off records")
	}
	span.End()
	if err := shutdown(t.Context()); err != nil {
		t.Errorf("shutdown of nothing = %v", err)
	}
}
