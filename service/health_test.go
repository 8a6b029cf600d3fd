package service_test

import (
	"testing"
	"time"

	"github.com/ferrydev/ferry/service"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// An open health Watch stream (what gRPC's client-side health checking
// holds) must not keep the node from stopping: shutdown ends it, so Run
// returns long before a grace period of a minute is over.
func TestShutdownEndsHealthWatch(t *testing.T) {
	n := startNode(t, service.Config{ShutdownGrace: time.Minute})
	w, err := healthClient(t, n).Watch(testCtx(t), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := w.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch first message = %v, %v; want SERVING", r, err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- n.stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run() = %v, want nil", err)
		}
	case <-time.After(20 * time.Second): // a bound, far below the grace
		t.Fatal("Run did not return while a health Watch stream was open")
	}
	sawNotServing := false
	for {
		r, err := w.Recv()
		if err != nil {
			break // the stream ended
		}
		sawNotServing = sawNotServing || r.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
	}
	if !sawNotServing {
		t.Error("the Watch stream ended without NOT_SERVING")
	}
}
