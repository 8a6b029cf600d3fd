package service

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// healthServer is grpc-go's health server with one change: Watch streams
// end when the node starts shutting down. health.Server.Shutdown only
// sends NOT_SERVING on them, and a client's health-checking stream would
// otherwise hold GracefulStop for the whole grace period.
type healthServer struct {
	*health.Server
	stopping context.Context
}

func (h *healthServer) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(h.stopping, cancel)
	defer stop()
	err := h.Server.Watch(req, watchStream{stream, ctx})
	if h.stopping.Err() != nil && stream.Context().Err() == nil {
		// Our cancel may have beaten the queued NOT_SERVING update: say it
		// ourselves, then end the stream as a server going away does.
		stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING})
		return status.Error(codes.Unavailable, "server shutting down")
	}
	return err
}

// watchStream is a Watch stream whose context also ends at shutdown.
type watchStream struct {
	healthpb.Health_WatchServer
	ctx context.Context
}

func (s watchStream) Context() context.Context { return s.ctx }
