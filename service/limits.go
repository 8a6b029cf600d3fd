package service

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// defaultMaxStreams is Config.MaxStreams' default: twice the data plane's
// default transfer limit, so that a Download past that limit hears the
// more precise "too many concurrent transfers", while streams that hold no
// transfer cannot pile up without end either.
const defaultMaxStreams = 512

// defaultMaxFileStreams is Config.MaxFileStreams' default: past about 8
// flows a link that one flow cannot fill is usually full, and each
// stream costs a data connection and a transfer place on the server.
const defaultMaxFileStreams = 8

// limitStreams refuses a TransferService stream with ResourceExhausted
// while max others run, server-wide. Health and reflection streams are
// not counted, so probes and grpcurl still get an answer from a full
// server. grpc.MaxConcurrentStreams is no substitute: it bounds the
// streams of one HTTP/2 connection, makes the extra ones wait rather
// than fail, and a client may open as many connections as it likes.
func limitStreams(max int) grpc.StreamServerInterceptor {
	prefix := "/" + ferryv1.TransferService_ServiceDesc.ServiceName + "/"
	var running atomic.Int64
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !strings.HasPrefix(info.FullMethod, prefix) {
			return handler(srv, ss)
		}
		if running.Add(1) > int64(max) {
			running.Add(-1)
			return status.Errorf(codes.ResourceExhausted,
				"server busy: too many concurrent streams (the limit is %d); retry later", max)
		}
		defer running.Add(-1)
		return handler(srv, ss)
	}
}

// clientIP is the IP address a call came from, or the zero Addr when the
// transport has none. The data plane binds tickets to it when asked to
// (transfer.Config.BindDataToClient).
func clientIP(ctx context.Context) netip.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return netip.Addr{}
	}
	if a, ok := p.Addr.(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
