package service

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/ferrydev/ferry/client"
)

// dialPeer admits a Pull's peer (host:port, checked by checkPull) against
// the allow-list, and dials it with this node's peer credentials. The
// target is built as passthrough:///host:port, so that no gRPC resolver
// scheme applies whatever the caller wrote, over a dialer that checks the
// addresses it connects to (peerDialer). The client refuses offers whose
// data address the list does not admit, unless it is the peer's own host
// or an address its control-plane connection went to: behind a headless
// Service a pod advertises its own IP, which its name resolves to.
func (s *transferService) dialPeer(ctx context.Context, peer, host string) (*client.Client, error) {
	byName, err := s.peers.admit(ctx, host)
	if err != nil {
		s.log.Warn("pull refused: peer not allowed", "peer", peer, "err", err)
		return nil, status.Errorf(codes.PermissionDenied, "peer %q is %v", peer, errNotListed)
	}
	d := &peerDialer{list: s.peers, byName: byName, connected: map[netip.Addr]bool{}}
	opts := append(slices.Clip(s.peerDial), grpc.WithContextDialer(d.dial))
	if len(s.peerDial) == 0 {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if s.peerTrace != nil {
		opts = append(opts, s.peerTrace)
	}
	c, err := client.Dial("passthrough:///"+peer, opts...)
	if err != nil {
		s.log.Error("pull: dialling the peer", "peer", peer, "err", err)
		return nil, unreachable(peer)
	}
	c.CheckDataAddresses(func(address string) error {
		h, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("data address %q: %w", address, errNotListed)
		}
		if canonicalHost(h) == canonicalHost(host) {
			return nil
		}
		if a, err := netip.ParseAddr(h); err == nil && d.connectedTo(a) {
			return nil
		}
		if _, err := s.peers.admit(ctx, h); err != nil {
			return fmt.Errorf("data address %q: %w", address, err)
		}
		return nil
	})
	return c, nil
}

// unreachable is the one error of a peer that could not be reached or
// did not answer as a ferryd, whatever the cause.
func unreachable(peer string) error {
	return status.Errorf(codes.Unavailable, "peer %q could not be reached as a ferryd", peer)
}

// firstPeerStatus maps the error of the first call to a peer. A peer that
// could not be reached or answered as no ferryd would (a closed port, a
// timeout, a TLS failure, another protocol, a gRPC server without
// Ferry's service) gets one error whatever the cause, so that Pull does
// not tell its caller which ports are open where this node can reach; the
// cause goes to this node's log. An answer from a ferryd is mapped by
// pullStatus.
func (s *transferService) firstPeerStatus(err error, peer, dest string) error {
	switch status.Code(err) {
	case codes.Unavailable, codes.Unimplemented, codes.Unknown, codes.Internal, codes.DeadlineExceeded:
		s.log.Warn("pull: peer could not be reached as a ferryd", "peer", peer, "err", err)
		return unreachable(peer)
	}
	return s.pullStatus(err, dest)
}

// peerDialer dials one Pull's peer: TCP to the host:port the target
// names, with no proxy, checking each address it connects to against the
// list unless a listed name admitted the peer, and remembering the
// addresses connected to, which the peer's offers may then name as their
// data address.
type peerDialer struct {
	list   *peerList
	byName bool

	mu        sync.Mutex
	connected map[netip.Addr]bool
}

func (d *peerDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	nd := net.Dialer{Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return err
		}
		if !d.byName && !d.list.admitsIP(ap.Addr()) {
			return fmt.Errorf("%s: %w", ap.Addr(), errNotListed)
		}
		return nil
	}}
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		d.mu.Lock()
		d.connected[ap.Addr().Unmap().WithZone("")] = true
		d.mu.Unlock()
	}
	return c, nil
}

// connectedTo reports whether the peer's control-plane connection went to
// address a.
func (d *peerDialer) connectedTo(a netip.Addr) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.connected[a.Unmap().WithZone("")]
}
