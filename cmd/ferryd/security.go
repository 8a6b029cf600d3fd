package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/internal/bearer"
	"github.com/ferrydev/ferry/service"
)

// securityFlags are the files that secure the control plane.
type securityFlags struct {
	allowPull                      bool
	cert, key, clientCA, tokenFile string
	peerCA, peerTokenFile          string // toward peers, for Pull
	allowPeers                     patterns
	dataTLS                        string
	peerPlaintextData              bool
}

// patterns is a repeatable flag of comma-separated values.
type patterns []string

func (p *patterns) String() string { return strings.Join(*p, ",") }

func (p *patterns) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*p = append(*p, s)
		}
	}
	return nil
}

func addSecurityFlags(fs *flag.FlagSet) *securityFlags {
	s := &securityFlags{}
	fs.StringVar(&s.cert, "tls-cert", "", "PEM certificate chain: serve the control plane over TLS (with --tls-key)")
	fs.StringVar(&s.key, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&s.clientCA, "tls-client-ca", "", "PEM CA bundle: require client certificates it signed (mutual TLS)")
	fs.StringVar(&s.dataTLS, "data-tls", "follow", "TLS 1.3 on the data channel: follow (when the control plane has TLS, with its certificate), "+
		"required (as follow; no --tls-cert is a start-up error) or off (plaintext beside a TLS control plane: INSECURE)")
	fs.StringVar(&s.tokenFile, "auth-token-file", "", "file holding the bearer token every TransferService call must carry (health and reflection stay open)")
	fs.BoolVar(&s.allowPull, "allow-pull", false, "let callers make this node pull files from peers into its root (the Pull RPC)")
	fs.Var(&s.allowPeers, "allow-peer", "`peers` Pull may reach and whose data addresses it may dial: host names, *.suffix, IP addresses, CIDRs; "+
		"repeatable or comma-separated (default: loopback only)")
	fs.StringVar(&s.peerCA, "peer-tls-ca", "", "PEM CA bundle: Pull dials peers over TLS, checking their certificates against it")
	fs.BoolVar(&s.peerPlaintextData, "peer-plaintext-data", false, "Pull accepts a plaintext data channel from peers reached over TLS (--data-tls off there): the bytes cross the network in clear")
	fs.StringVar(&s.peerTokenFile, "peer-token-file", "", "file holding the bearer token Pull sends to the peers --allow-peer admits (without --peer-tls-ca, to loopback peers only)")
	return s
}

// apply loads the files into cfg, naming the flag at fault.
func (s *securityFlags) apply(cfg *service.Config) error {
	cfg.AllowPull = s.allowPull
	cfg.AllowPeers = s.allowPeers
	tlsCfg, err := service.ServerTLS(s.cert, s.key, s.clientCA)
	if err != nil {
		return fmt.Errorf("--tls-cert/--tls-key/--tls-client-ca: %w", err)
	}
	cfg.TLS = tlsCfg
	if cfg.DataTLS, err = service.ParseDataTLSMode(s.dataTLS); err != nil {
		return fmt.Errorf("--data-tls: %w", err)
	}
	if cfg.DataTLS == service.DataTLSRequired && tlsCfg == nil {
		return errors.New("--data-tls required: the data channel takes the control plane's certificate; set --tls-cert and --tls-key")
	}
	if s.tokenFile != "" {
		if cfg.AuthToken, err = bearer.ReadFile(s.tokenFile); err != nil {
			return fmt.Errorf("--auth-token-file: %w", err)
		}
	}
	if s.peerCA != "" || s.peerTokenFile != "" || s.peerPlaintextData {
		peer := client.Security{CAFile: s.peerCA, TokenFile: s.peerTokenFile, PlaintextData: s.peerPlaintextData}
		if cfg.PeerDialOptions, err = peer.DialOptions(); err != nil {
			return fmt.Errorf("--peer-tls-ca/--peer-token-file: %w", err)
		}
	}
	return nil
}
