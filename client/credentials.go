package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/ferrydev/ferry/internal/bearer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/credentials/local"
)

// Security says how a Client checks the server and proves itself to it.
// The zero value is plaintext with no token, which is what a ferryd on
// loopback (its default) expects. TLS is on when any of CAFile, CertFile,
// KeyFile or ServerName is set.
//
// Without TLS a token is sent to loopback addresses only: a connection to
// any other address fails its handshake before a call, and so the token,
// can be sent in clear.
type Security struct {
	// CAFile is a PEM bundle of the CAs that sign the server's
	// certificate. "" means the system's roots.
	CAFile string
	// CertFile and KeyFile are this client's PEM certificate and key, for
	// a server that requires mutual TLS. "" means none; set both or
	// neither.
	CertFile, KeyFile string
	// ServerName is the name the server's certificate must hold. "" means
	// the host of the dialled target.
	ServerName string
	// TokenFile holds the bearer token sent with every call, one line
	// (ferryd's --auth-token-file format). "" means none.
	TokenFile string
	// Token is the bearer token itself, for callers that hold it in
	// memory. Set Token or TokenFile, not both. "" means none.
	Token string
	// PlaintextData accepts offers of a plaintext data channel from a
	// server reached over TLS (WithPlaintextData): the file's bytes and
	// the ticket then cross the network in clear. false refuses them
	// (ErrPlaintextData).
	PlaintextData bool
}

// TLS reports whether s asks for TLS.
func (s Security) TLS() bool {
	return s.CAFile != "" || s.CertFile != "" || s.KeyFile != "" || s.ServerName != ""
}

// DialOptions returns the options that make Dial connect as s says:
// transport credentials (TLS, plaintext, or plaintext to loopback only
// when a token goes with it) and the token's per-RPC credentials.
func (s Security) DialOptions() ([]grpc.DialOption, error) {
	token, err := s.token()
	if err != nil {
		return nil, err
	}
	var creds credentials.TransportCredentials
	var extra []grpc.DialOption
	if s.PlaintextData {
		extra = append(extra, WithPlaintextData())
	}
	switch {
	case s.TLS():
		cfg, err := s.tlsConfig()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(cfg)
		extra = append(extra, WithDataTLS(cfg))
	case token != "":
		creds = loopbackOnly{local.NewCredentials()}
	default:
		creds = insecure.NewCredentials()
	}
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, extra...)
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken{"Bearer " + token, s.TLS()}))
	}
	return opts, nil
}

func (s Security) token() (string, error) {
	switch {
	case s.TokenFile != "" && s.Token != "":
		return "", errors.New("ferry: set a token or a token file, not both")
	case s.TokenFile != "":
		return bearer.ReadFile(s.TokenFile)
	}
	return s.Token, nil
}

// tlsConfig builds the client's TLS configuration: TLS 1.2 at least (1.3
// whenever the server has it), the given roots and server name, and the
// client certificate when there is one.
func (s Security) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName}
	if s.CAFile != "" {
		b, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("TLS CA %s: no PEM certificate in it", s.CAFile)
		}
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		return nil, errors.New("ferry: a TLS client certificate needs its key, and a key its certificate")
	}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate %s with key %s: %w", s.CertFile, s.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// bearerToken sends "authorization: Bearer <token>" with every call.
//
// Over TLS it requires transport security, as grpc's own token
// credentials do. Over plaintext it cannot: grpc counts loopback TCP as
// NoSecurity and would refuse to send it even there. It is then paired
// with loopbackOnly, which refuses, during the handshake and so before any
// call, every connection whose peer is not a loopback address or a Unix
// socket. The token never leaves the host in clear.
type bearerToken struct {
	header string
	secure bool
}

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": b.header}, nil
}

func (b bearerToken) RequireTransportSecurity() bool { return b.secure }

// loopbackOnly is grpc's local credentials (plaintext that accepts only
// loopback and Unix-socket peers, checked on the connected address, after
// name resolution) with an error that says why.
type loopbackOnly struct {
	credentials.TransportCredentials
}

func (l loopbackOnly) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c, info, err := l.TransportCredentials.ClientHandshake(ctx, authority, conn)
	if err != nil {
		return nil, nil, fmt.Errorf("ferry: without TLS the bearer token goes to loopback addresses only, and %s is not one; use TLS: %w", conn.RemoteAddr(), err)
	}
	return c, info, nil
}

func (l loopbackOnly) Clone() credentials.TransportCredentials {
	return loopbackOnly{l.TransportCredentials.Clone()}
}
