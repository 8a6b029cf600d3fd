package main

import (
	"github.com/ferrydev/ferry/client"
	"github.com/spf13/pflag"
)

// addSecurityFlags adds the flags that reach a ferryd serving TLS, mutual
// TLS or a bearer token: persistent flags of the root, so every
// command has them. Like every flag they fall back to FERRY_*
// variables: --token-file is FERRY_TOKEN_FILE.
func addSecurityFlags(fs *pflag.FlagSet, s *client.Security) {
	fs.StringVar(&s.CAFile, "tls-ca", "", "PEM file of the CAs that sign ferryd's certificate; any --tls-* flag turns TLS on (default roots: the system's)")
	fs.StringVar(&s.CertFile, "tls-cert", "", "PEM client certificate, for a ferryd that requires mutual TLS")
	fs.StringVar(&s.KeyFile, "tls-key", "", "PEM key of --tls-cert")
	fs.StringVar(&s.ServerName, "tls-server-name", "", "name ferryd's certificate must hold (default: the --server host)")
	fs.StringVar(&s.TokenFile, "token-file", "", "file holding the bearer token; without TLS it is sent to loopback addresses only")
	fs.BoolVar(&s.PlaintextData, "plaintext-data", false, "accept a plaintext data channel from a ferryd reached over TLS (one run with --data-tls off): "+
		"the file and its ticket then cross the network in clear")
}

// dial connects to the server as the common flags say.
func (c *common) dial() (*client.Client, error) {
	opts, err := c.sec.DialOptions()
	if err != nil {
		return nil, err
	}
	if traced {
		opts = append(opts, client.WithTracing(nil))
	}
	return client.Dial(c.server, opts...)
}
