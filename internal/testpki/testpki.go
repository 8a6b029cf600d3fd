// Package testpki makes throwaway certificates for tests: a CA, a server
// certificate for 127.0.0.1, ::1 and localhost, and a client certificate,
// all real X.509 (ECDSA P-256) written as PEM files to the test's
// temporary directory.
//
// It is for tests only: the certificates expire within the hour and
// nothing protects the keys.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI names the PEM files of one CA and the two certificates it signed.
type PKI struct {
	CA                    string // the CA's certificate
	ServerCert, ServerKey string // for 127.0.0.1, ::1 and localhost
	ClientCert, ClientKey string // CN ferry-test-client, for client auth
}

// New makes a CA called name and issues its server and client
// certificates, in a new directory under t.TempDir().
func New(t testing.TB, name string) PKI {
	t.Helper()
	dir := t.TempDir()
	caKey := newKey(t)
	ca := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER := sign(t, ca, ca, &caKey.PublicKey, caKey, time.Now().Add(time.Hour))
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := PKI{CA: filepath.Join(dir, "ca.pem")}
	writePEM(t, p.CA, "CERTIFICATE", caDER)
	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	p.ServerCert, p.ServerKey = issue(t, dir, "server", server, caCert, caKey)
	client := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "ferry-test-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	p.ClientCert, p.ClientKey = issue(t, dir, "client", client, caCert, caKey)
	return p
}

// Expired writes a self-signed localhost certificate that expired an hour
// ago, and its key.
func Expired(t testing.TB) (cert, key string) {
	t.Helper()
	k := newKey(t)
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"}}
	return writePair(t, t.TempDir(), "expired", sign(t, tmpl, tmpl, &k.PublicKey, k, time.Now().Add(-time.Hour)), k)
}

// issue signs tmpl with the CA and writes dir/name.pem and dir/name-key.pem.
func issue(t testing.TB, dir, name string, tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (cert, key string) {
	t.Helper()
	k := newKey(t)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	return writePair(t, dir, name, sign(t, tmpl, ca, &k.PublicKey, caKey, time.Now().Add(time.Hour)), k)
}

// writePair writes a certificate and its key as dir/name.pem and
// dir/name-key.pem.
func writePair(t testing.TB, dir, name string, der []byte, k *ecdsa.PrivateKey) (cert, key string) {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, cert, "CERTIFICATE", der)
	writePEM(t, key, "PRIVATE KEY", keyDER)
	return cert, key
}

// sign fills in the serial number and a validity from a day ago to
// notAfter, and returns the DER certificate.
func sign(t testing.TB, tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, priv *ecdsa.PrivateKey, notAfter time.Time) []byte {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-24*time.Hour), notAfter
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t testing.TB, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
