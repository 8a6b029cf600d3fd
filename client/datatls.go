package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/transfer"
)

// ErrPlaintextData: an offer of a plaintext data channel from a server
// this client reached over TLS (or was given a data-channel TLS
// configuration for). It is refused before anything is dialled, unless
// the client was dialled WithPlaintextData.
var ErrPlaintextData = errors.New("the server offers a plaintext data channel though this client reached it over TLS " +
	"(its ferryd runs --data-tls off); refusing to send the ticket or take the bytes in clear")

// dataTLSOption and plaintextDataOption are Dial options of this
// package's own; gRPC ignores them.
type dataTLSOption struct {
	grpc.EmptyDialOption
	cfg *tls.Config
}

type plaintextDataOption struct{ grpc.EmptyDialOption }

// WithDataTLS makes the client verify the data channel with cfg, which
// should be the configuration it verifies the control plane with: the
// same roots, the same client certificate under mutual TLS, and the same
// server name (when cfg names none, the host of the control-plane target
// Dial was given, never the offer's data address). Security.DialOptions
// adds it whenever it sets up TLS. A client with it expects TLS on the
// data channel and refuses offers of a plaintext one (ErrPlaintextData).
func WithDataTLS(cfg *tls.Config) grpc.DialOption { return dataTLSOption{cfg: cfg} }

// WithPlaintextData lets a client that reached the control plane over
// TLS accept offers of a plaintext data channel (a ferryd run with
// --data-tls off): the ticket and the file's bytes then cross the
// network in clear, readable and changeable by anyone on the path.
func WithPlaintextData() grpc.DialOption { return plaintextDataOption{} }

// dataOptions reads this package's options among opts.
func (c *Client) dataOptions(opts []grpc.DialOption) {
	for _, o := range opts {
		switch o := o.(type) {
		case dataTLSOption:
			c.dataTLS = transfer.ClientDataTLS(o.cfg, c.serverName())
		case plaintextDataOption:
			c.plaintextData = true
		}
	}
}

// serverName is the host of the control-plane target, which a TLS
// control plane is verified against when no server name is set.
func (c *Client) serverName() string {
	target := c.target
	if i := strings.LastIndex(target, "/"); strings.Contains(target, "://") && i >= 0 {
		target = target[i+1:] // dns:///host:port, passthrough:///host:port
	}
	if host, _, err := net.SplitHostPort(target); err == nil {
		return host
	}
	return target
}

// dataTLSFor decides how to reach an offer's data channel: with the TLS
// configuration returned, in plaintext (nil), or not at all (an error).
// control is the context of the call that brought the offer, which
// knows how the control-plane connection was secured. A client that
// expects TLS never dials a plaintext data channel unless allowed to.
func (c *Client) dataTLSFor(control context.Context, offer *ferryv1.Offer) (*tls.Config, error) {
	if offer.GetInline() {
		return nil, nil // the bytes came with the offer, over the control plane
	}
	info, controlTLS := controlTLSInfo(control)
	switch {
	case offer.GetDataTls() && c.dataTLS != nil:
		return c.dataTLS, nil
	case offer.GetDataTls() && controlTLS:
		return c.derivedDataTLS(info)
	case offer.GetDataTls():
		return nil, errors.New("ferry: the offer's data channel requires TLS, and this client has no TLS configuration for it " +
			"(dial with Security.DialOptions or WithDataTLS)")
	case (c.dataTLS != nil || controlTLS) && !c.plaintextData:
		return nil, fmt.Errorf("ferry: %w", ErrPlaintextData)
	}
	return nil, nil
}

// controlTLSInfo reports whether the connection of the call whose
// context is ctx is TLS, and its state.
func controlTLSInfo(ctx context.Context) (credentials.TLSInfo, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return credentials.TLSInfo{}, false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	return info, ok
}

// derivedDataTLS is the data channel's configuration for a client
// dialled with TLS credentials of its own making (no WithDataTLS): the
// CAs that verified the control plane's certificate and the name it was
// verified against. It has no client certificate: under mutual TLS use
// WithDataTLS.
func (c *Client) derivedDataTLS(info credentials.TLSInfo) (*tls.Config, error) {
	roots := x509.NewCertPool()
	for _, chain := range info.State.VerifiedChains {
		roots.AddCert(chain[len(chain)-1])
	}
	if len(info.State.VerifiedChains) == 0 {
		return nil, errors.New("ferry: the control plane's certificate was not verified, so the data channel's cannot be " +
			"(dial with Security.DialOptions or WithDataTLS)")
	}
	name := info.State.ServerName
	if name == "" {
		name = c.serverName()
	}
	return transfer.ClientDataTLS(&tls.Config{RootCAs: roots}, name), nil
}
