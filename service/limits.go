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

// defaultMaxOpenStreams is Config.MaxOpenStreams' default: enough for
// probes and a few grpcurl sessions at once.
const defaultMaxOpenStreams = 64

// maxStreamsPerConn is the most streams one HTTP/2 connection may hold
// open at once (grpc.MaxConcurrentStreams: more wait for a place). It
// bounds what one connection can make the server hold: a Download needs
// one stream, a tree pull one per tree.
const maxStreamsPerConn = 128

// limitStreams refuses a stream with ResourceExhausted while others of
// its kind run at the limit, server-wide: TransferService streams past
// max, and streams of the services that answer without credentials
// (health, reflection) past maxOpen. The two are counted apart, so that
// probes and grpcurl still get an answer from a server full of
// transfers, and a flood of health watches by strangers takes no place
// an authenticated pull needs. grpc.MaxConcurrentStreams is no
// substitute: it bounds the streams of one HTTP/2 connection, makes the
// extra ones wait rather than fail, and a client may open as many
// connections as it likes.
func limitStreams(max, maxOpen int) grpc.StreamServerInterceptor {
	prefix := "/" + ferryv1.TransferService_ServiceDesc.ServiceName + "/"
	var transfers, open atomic.Int64
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		running, limit, what := &open, maxOpen, "health and reflection streams"
		if strings.HasPrefix(info.FullMethod, prefix) {
			running, limit, what = &transfers, max, "streams"
		}
		if running.Add(1) > int64(limit) {
			running.Add(-1)
			return status.Errorf(codes.ResourceExhausted,
				"server busy: too many concurrent %s (the limit is %d); retry later", what, limit)
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
