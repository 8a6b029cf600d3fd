// Package tracing turns OpenTelemetry tracing on for a Ferry program, and
// only when the standard OTEL_* environment asks for it.
//
// The decision rule, read by Setup (and Enabled) from the environment:
//
//   - OTEL_SDK_DISABLED=true keeps tracing off, whatever else is set;
//   - OTEL_TRACES_EXPORTER=none keeps it off (it may be a comma-separated
//     list, as the specification allows: "none" anywhere in it wins);
//   - OTEL_TRACES_EXPORTER=otlp turns it on, with the default endpoint
//     (localhost:4317) unless an endpoint variable names another; any
//     other exporter name is an error, since only OTLP is built in;
//   - with OTEL_TRACES_EXPORTER unset or empty, tracing is on when
//     OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
//     set, and off otherwise.
//
// Off means nothing at all: no exporter, no SDK tracer provider, nothing
// set globally, and callers are told (enabled false) so that they install
// no otelgrpc stats handlers either; the hot path pays nothing.
//
// On means an OTLP/gRPC exporter (otlptracegrpc, which reads the rest of
// OTEL_EXPORTER_OTLP_*: INSECURE, HEADERS, CERTIFICATE, TIMEOUT,
// COMPRESSION...), a batch span processor (OTEL_BSP_* tune it), a
// resource with service.name and service.version, overridden by
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, and the W3C
// tracecontext and baggage propagators. The tracer provider and the
// propagator are set globally (otel.SetTracerProvider,
// otel.SetTextMapPropagator), so instrumentation that uses the globals
// (otelgrpc's defaults, client.WithTracing(nil)) finds them. The
// exporter speaks gRPC only: OTEL_EXPORTER_OTLP_PROTOCOL or
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL set to anything but "grpc" is an
// error rather than spans sent where nothing listens for them.
package tracing

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Setup turns tracing on when the environment asks for it (see the
// package doc) and returns the function that flushes the spans still
// buffered and stops the exporter: call it once, at exit, with a context
// that bounds the wait. When tracing stays off, shutdown does nothing and
// enabled is false. serviceName and version become service.name and
// service.version unless the environment overrides them.
//
// An error means the environment asked for something Setup cannot do (an
// exporter other than otlp, an HTTP protocol, a malformed variable);
// tracing is then off and shutdown still safe to call.
func Setup(ctx context.Context, serviceName, version string) (shutdown func(context.Context) error, enabled bool, err error) {
	nothing := func(context.Context) error { return nil }
	on, err := Enabled()
	if err != nil || !on {
		return nothing, false, err
	}
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nothing, false, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			attribute.String("service.name", serviceName),
			attribute.String("service.version", version),
		),
		resource.WithFromEnv(), // last: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		exp.Shutdown(ctx)
		return nothing, false, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return tp.Shutdown, true, nil
}

// Enabled applies the package's decision rule to the environment: whether
// Setup would turn tracing on, or the error it would return.
func Enabled() (bool, error) {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	var otlp bool
	var other []string
	for name := range strings.SplitSeq(os.Getenv("OTEL_TRACES_EXPORTER"), ",") {
		switch name = strings.ToLower(strings.TrimSpace(name)); name {
		case "":
		case "none":
			return false, nil
		case "otlp":
			otlp = true
		default:
			other = append(other, name)
		}
	}
	if len(other) > 0 {
		return false, fmt.Errorf("tracing: OTEL_TRACES_EXPORTER names %q; only otlp (or none) is supported", other)
	}
	if !otlp && os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return false, nil
	}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		switch p := strings.TrimSpace(os.Getenv(v)); p {
		case "":
			continue // the general variable, or the default
		case "grpc":
		default:
			return false, fmt.Errorf("tracing: %s=%s; the exporter speaks grpc only", v, p)
		}
		break // the traces variable wins over the general one
	}
	return true, nil
}
