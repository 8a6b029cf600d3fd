package service

import (
	"net"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// healthListener is the plaintext listener of Config.HealthListen: it
// serves grpc.health.v1 and nothing else, for probes that cannot speak
// TLS (kubelet's gRPC probes), beside a control plane that requires it.
// It reveals what the health service reveals anywhere: the serving
// status, no file names and no data.
type healthListener struct {
	ln  net.Listener
	srv *grpc.Server
}

func listenHealth(addr string, hs healthpb.HealthServer, maxOpen int) (*healthListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer(
		grpc.ChainStreamInterceptor(limitStreams(0, maxOpen)),
		grpc.MaxRecvMsgSize(maxRequestSize),
		grpc.MaxConcurrentStreams(maxStreamsPerConn),
	)
	healthpb.RegisterHealthServer(srv, hs)
	return &healthListener{ln: ln, srv: srv}, nil
}
