package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// peerList is Config.AllowPeers (ferryd --allow-peer): the hosts a Pull
// may connect to, for a peer's control plane and for the data addresses
// its offers name. An empty list admits loopback addresses only.
//
// A host is admitted when:
//   - it is an IP address inside one of the listed CIDRs or addresses;
//   - it is a name equal to a listed name, or matching a listed wildcard
//     ("*.ferry.ns.svc.cluster.local", "ferry-*.ferry.ns.svc.cluster.local":
//     the "*" stands for part or all of exactly one label, the first);
//     names are compared without case and without a trailing dot;
//   - it is a name that matches no listed name but resolves, and every
//     address it resolves to is inside a listed CIDR or address. The
//     control-plane connection to such a peer is checked again on the
//     address it actually connects to.
type peerList struct {
	names []string
	wild  []wildcard
	nets  []netip.Prefix
}

// wildcard is a listed name with a "*" in its first label: a host matches
// when its first label starts with before and ends with after, and the
// rest of it equals rest.
type wildcard struct{ before, after, rest string }

// loopback is what an empty list admits.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// errNotListed is a peer, or a data address, that the list does not admit.
var errNotListed = errors.New("not on this node's --allow-peer list")

// parsePeerList reads the patterns; an empty one, or one that is neither
// an address, a CIDR nor a host name, is an error naming it.
func parsePeerList(patterns []string) (*peerList, error) {
	l := &peerList{}
	for _, p := range patterns {
		if err := l.add(strings.TrimSpace(p)); err != nil {
			return nil, fmt.Errorf("allowed peer %q: %w", p, err)
		}
	}
	if len(l.names)+len(l.wild)+len(l.nets) == 0 {
		l.nets = loopback
	}
	return l, nil
}

func (l *peerList) add(p string) error {
	if strings.Contains(p, "/") {
		pfx, err := netip.ParsePrefix(p)
		if err != nil || pfx.Addr().Is4In6() {
			return errors.New("want a CIDR such as 10.0.0.0/8 or fd00::/8")
		}
		l.nets = append(l.nets, pfx.Masked())
		return nil
	}
	if a, err := netip.ParseAddr(p); err == nil {
		if a.Zone() != "" {
			return errors.New("an address with a zone cannot be listed")
		}
		a = a.Unmap()
		l.nets = append(l.nets, netip.PrefixFrom(a, a.BitLen()))
		return nil
	}
	name := canonicalHost(p)
	first, rest, _ := strings.Cut(name, ".")
	before, after, wild := strings.Cut(first, "*")
	if strings.Contains(rest, "*") || strings.Contains(after, "*") {
		return errors.New(`a "*" may stand only in the first label, once`)
	}
	if !wild {
		if !validHost(name) {
			return errors.New("want a host name, an IP address, a CIDR or *.suffix")
		}
		l.names = append(l.names, name)
		return nil
	}
	if rest == "" || !validHost(rest) || !validHost(before+"x"+after+"."+rest) {
		return errors.New("want a wildcard such as *.ferry.ns.svc.cluster.local")
	}
	l.wild = append(l.wild, wildcard{before, after, rest})
	return nil
}

// canonicalHost is a host as names are compared: lower case, without a
// trailing dot.
func canonicalHost(h string) string { return strings.ToLower(strings.TrimSuffix(h, ".")) }

// admitsIP reports whether a is inside a listed CIDR or address.
func (l *peerList) admitsIP(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, n := range l.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// admitsName reports whether a host name is listed, as a name or through
// a wildcard.
func (l *peerList) admitsName(host string) bool {
	host = canonicalHost(host)
	for _, n := range l.names {
		if n == host {
			return true
		}
	}
	first, rest, _ := strings.Cut(host, ".")
	for _, w := range l.wild {
		if rest == w.rest && len(first) >= len(w.before)+len(w.after) &&
			strings.HasPrefix(first, w.before) && strings.HasSuffix(first, w.after) {
			return true
		}
	}
	return false
}

// admit checks a host (an IP address or a name, as a peer or a data
// address gives it) against the list, resolving a name that is not
// listed as one when CIDRs are. byName reports that a listed name
// admitted it, so that the address it connects to needs no check.
func (l *peerList) admit(ctx context.Context, host string) (byName bool, err error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if l.admitsIP(a) {
			return false, nil
		}
		return false, errNotListed
	}
	if l.admitsName(host) {
		return true, nil
	}
	if len(l.nets) == 0 {
		return false, errNotListed
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return false, fmt.Errorf("%w (resolving it: %v)", errNotListed, err)
	}
	for _, a := range addrs {
		if !l.admitsIP(a) {
			return false, fmt.Errorf("%w (it resolves to %s)", errNotListed, a)
		}
	}
	return false, nil
}

// splitPeer checks that a peer is host:port and nothing else: a literal
// IP address (IPv6 in brackets, no zone) or a DNS host name, and a
// decimal port from 1 to 65535. So no gRPC resolver scheme (unix:,
// dns:///, passthrough:///...) can pass through it.
func splitPeer(peer string) (host string, err error) {
	host, port, err := net.SplitHostPort(peer)
	if err != nil {
		return "", err
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 || port[0] < '0' || port[0] > '9' {
		return "", errors.New("want a port from 1 to 65535")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return "", errors.New("an IPv6 zone is not accepted")
		}
		if a.Is6() && !strings.HasPrefix(peer, "[") {
			return "", errors.New("an IPv6 address goes in brackets")
		}
		return host, nil
	}
	if !validHost(canonicalHost(host)) {
		return "", errors.New("want an IP address or a DNS host name")
	}
	return host, nil
}

// validHost reports whether h is a DNS host name: dot-separated labels of
// 1 to 63 letters, digits and hyphens, not starting or ending with a
// hyphen, 253 characters at most, the last label not all digits (so that
// no resolver reads "127.1" or "2130706433" as an address).
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	for _, lb := range labels {
		if lb == "" || len(lb) > 63 || lb[0] == '-' || lb[len(lb)-1] == '-' {
			return false
		}
		for _, c := range []byte(lb) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}
