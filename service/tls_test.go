package service_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/testpki"
	"github.com/ferrydev/ferry/service"
)

func TestServerTLS(t *testing.T) {
	p := testpki.New(t, "ferry test CA")
	cfg, err := service.ServerTLS(p.ServerCert, p.ServerKey, "")
	if err != nil || cfg.MinVersion != tls.VersionTLS12 || cfg.ClientAuth != tls.NoClientCert || len(cfg.Certificates) != 1 {
		t.Errorf("ServerTLS(cert, key, \"\") = %+v, %v; want TLS 1.2+, one certificate, no client certificates", cfg, err)
	}
	cfg, err = service.ServerTLS(p.ServerCert, p.ServerKey, p.CA)
	if err != nil || cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil {
		t.Errorf("ServerTLS(cert, key, ca) = %+v, %v; want client certificates required and verified", cfg, err)
	}
	if cfg, err := service.ServerTLS("", "", ""); cfg != nil || err != nil {
		t.Errorf(`ServerTLS("", "", "") = %v, %v; want nil, nil (plaintext)`, cfg, err)
	}
}

// TestServerTLSErrors checks that each bad file gives an error naming
// what is wrong with it.
func TestServerTLSErrors(t *testing.T) {
	p := testpki.New(t, "ferry test CA")
	expiredCert, expiredKey := testpki.Expired(t)
	dir := t.TempDir()
	garbage, missing := filepath.Join(dir, "garbage.pem"), filepath.Join(dir, "missing.pem")
	if err := os.WriteFile(garbage, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cert, key, ca, want string
	}{
		{p.ServerCert, "", "", "both a certificate and its key"},
		{"", p.ServerKey, "", "both a certificate and its key"},
		{"", "", p.CA, "both a certificate and its key"},
		{missing, p.ServerKey, "", missing},
		{p.ServerCert, missing, "", missing},
		{garbage, p.ServerKey, "", garbage},
		{p.ServerCert, p.ClientKey, "", "private key does not match"},
		{p.ServerCert, p.ServerKey, missing, missing},
		{p.ServerCert, p.ServerKey, garbage, "no PEM certificate"},
		{expiredCert, expiredKey, "", "expired"},
	} {
		cfg, err := service.ServerTLS(tc.cert, tc.key, tc.ca)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ServerTLS(%q, %q, %q) = %v, %v; want an error containing %q", tc.cert, tc.key, tc.ca, cfg, err, tc.want)
		}
	}
}

func certPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no PEM certificate", file)
	}
	return pool
}
