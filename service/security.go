package service

import (
	"crypto/tls"
	"net"
	"net/netip"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// security is what the control plane demands of its clients: TLS (nil
// means plaintext) and a bearer token.
type security struct {
	tls  *tls.Config
	auth bearerAuth
}

// creds is the server option for the transport: TLS, or nothing.
func (s security) creds() grpc.ServerOption {
	if s.tls == nil {
		return grpc.EmptyServerOption{}
	}
	return grpc.Creds(credentials.NewTLS(s.tls))
}

// logSecurity logs how the control plane is secured and says loudly, at
// start-up, when it is reachable from other hosts with nothing to keep
// strangers out, or when a bearer token would cross the network in clear.
// It refuses nothing: today's Kubernetes deployments are plaintext.
// Loopback, the default, gets no warning.
func (n *Node) logSecurity() {
	addr := n.ctl.Addr().String()
	n.log.Info("control plane security", "grpc", addr, "tls", tlsMode(n.cfg.TLS), "token", n.cfg.AuthToken != "")
	if n.ctl.Addr().(*net.TCPAddr).IP.IsLoopback() || n.cfg.TLS != nil {
		return
	}
	if n.cfg.AuthToken == "" {
		n.log.Warn("INSECURE: the control plane listens on a non-loopback address with neither TLS nor a token: "+
			"anyone who can reach it can read every file under the root; set --tls-cert/--tls-key and --auth-token-file",
			"grpc", addr)
		return
	}
	n.log.Warn("INSECURE: the bearer token crosses the network in clear (no TLS on a non-loopback address); "+
		"ferry clients send it over plaintext to loopback only; set --tls-cert/--tls-key",
		"grpc", addr)
}

// tlsMode names a TLS configuration for the log.
func tlsMode(c *tls.Config) string {
	switch {
	case c == nil:
		return "off"
	case c.ClientAuth == tls.RequireAndVerifyClientCert:
		return "mutual"
	}
	return "on"
}

// logPull says at start-up which peers a Pull may reach, loudly when
// that is every loopback port (no --allow-peer) or every address.
func (n *Node) logPull(peers *peerList) {
	switch {
	case !n.cfg.AllowPull:
		if len(n.cfg.AllowPeers) > 0 {
			n.log.Warn("--allow-peer has no effect without --allow-pull")
		}
	case len(n.cfg.AllowPeers) == 0:
		n.log.Warn("INSECURE: --allow-pull without --allow-peer: callers may make this node connect to any port on " +
			"loopback, and pulls from other hosts are refused; list the peers this node may pull from with --allow-peer")
	case slices.ContainsFunc(peers.nets, func(p netip.Prefix) bool { return p.Bits() == 0 }):
		n.log.Warn("INSECURE: --allow-peer admits every address: callers may make this node connect to any host and port it can reach",
			"allow_peer", n.cfg.AllowPeers)
	default:
		n.log.Info("pulls allowed", "allow_peer", n.cfg.AllowPeers)
	}
}
