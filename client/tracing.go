package client

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// WithTracing is a Dial option that traces the client's control-plane
// calls with OpenTelemetry: a client span per RPC (otelgrpc's stats
// handler), with the caller's trace context sent along, so that a
// ferryd with tracing on continues the caller's trace. tp nil means the
// global tracer provider and propagator (otel.GetTracerProvider,
// otel.GetTextMapPropagator) as they are when WithTracing is called.
//
// It is opt-in, not on by default with the global provider: the handler
// runs on every message of every call whatever the provider, and a
// session carries thousands of them, so a program that has not set up
// OpenTelemetry should not pay for it. Add it only where tracing is on.
// Like WithDataTLS it goes beside the credentials: a Dial given options
// is plaintext only if they say so.
func WithTracing(tp trace.TracerProvider) grpc.DialOption {
	var opts []otelgrpc.Option
	if tp != nil {
		opts = append(opts, otelgrpc.WithTracerProvider(tp))
	}
	return grpc.WithStatsHandler(otelgrpc.NewClientHandler(opts...))
}
