package transfer

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// refusalLog warns about connections refused for MaxHandshakes at most
// once a minute, counting those refused in between: a flood of
// connections must not become a flood of log lines.
type refusalLog struct {
	mu      sync.Mutex
	last    time.Time
	refused int
}

func (r *refusalLog) note(log *slog.Logger, limit int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refused++
	if !r.last.IsZero() && time.Since(r.last) < time.Minute {
		return
	}
	log.Warn("data channel: too many connections in their handshake; refusing new ones",
		"limit", limit, "refused", r.refused)
	r.last, r.refused = time.Now(), 0
}

// remoteIP is the IP address a connection comes from, IPv4-mapped IPv6
// addresses unmapped, so that it compares equal to the control plane's
// view of the same host.
func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// sources counts the handshakes in progress per source address
// (Config.MaxHandshakesPerIP). The zero value is ready to use.
type sources struct {
	mu sync.Mutex
	n  map[netip.Addr]int
}

// take counts a handshake from ip, unless max (> 0) are in progress.
func (s *sources) take(ip netip.Addr, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if max > 0 && s.n[ip] >= max {
		return false
	}
	if s.n == nil {
		s.n = make(map[netip.Addr]int)
	}
	s.n[ip]++
	return true
}

// give ends one of ip's handshakes.
func (s *sources) give(ip netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[ip]--; s.n[ip] <= 0 {
		delete(s.n, ip)
	}
}
