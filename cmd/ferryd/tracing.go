package main

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/ferrydev/ferry/internal/tracing"
	"github.com/ferrydev/ferry/service"
)

// flushTimeout bounds the wait for the last spans to reach the collector
// at exit.
const flushTimeout = 5 * time.Second

// setupTracing turns OpenTelemetry tracing on when the OTEL_* environment
// asks for it (see internal/tracing) and, if so, gives the node the
// tracer provider. The function returned flushes the spans at exit.
func setupTracing(ctx context.Context, cfg *service.Config) (flush func(), err error) {
	shutdown, enabled, err := tracing.Setup(ctx, "ferryd", cfg.Version)
	if err != nil || !enabled {
		return func() {}, err
	}
	cfg.TracerProvider = otel.GetTracerProvider()
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log.Info("tracing on: exporting spans over OTLP/gRPC")
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			log.Warn("flushing spans", "err", err)
		}
	}, nil
}
