package validate

// What cert-manager and the kubelet do for a TLS rendering, done in a
// temporary directory: issue a certificate from a test CA as the
// rendering's Certificate asks (dnsNames, usages, key algorithm), write
// the Secret's keys into a directory that stands in for each Secret
// mount, and point ferryd's TLS flags there.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI is a test CA, the server certificate it issued for ferryd, and
// a client certificate for mutual TLS.
type testPKI struct {
	roots             *x509.CertPool
	caPEM             []byte
	certPEM, keyPEM   []byte
	client            tls.Certificate
	mutual            bool   // ferryd has --tls-client-ca
	ctlName, dataName string // names a client verifies the channels against
	// What a client holds, outside the Secret mounts: the CA (ferry
	// --tls-ca) and its own certificate and key (--tls-cert, --tls-key).
	caFile, clientCertFile, clientKeyFile string
}

// stageTLS issues the certificates, writes them where the pod's Secret
// mounts would hold them (a temporary directory per mount) and returns
// args and env with ferryd's TLS flags pointing there.
func stageTLS(t *testing.T, p *pod, args []string, env *Env) (*testPKI, []string) {
	t.Helper()
	names := p.dialledNames() // ClusterIP Services first, then each pod's
	pki := &testPKI{mutual: p.set["tls-client-ca"] != "", dataName: names[0]}
	for _, n := range names {
		if strings.HasPrefix(n, p.sts.Name+"-0.") && strings.HasSuffix(n, ClusterDomain) {
			pki.ctlName = n
		}
	}
	dnsNames, usages, keyOpts := names, []string(nil), (*CertificatePrivKey)(nil)
	secret, _, err := p.secretFile(p.set["tls-cert"])
	if err != nil {
		t.Fatalf("--tls-cert: %v", err)
	}
	if c := p.certificateFor(secret); c != nil {
		dnsNames, usages, keyOpts = c.Spec.DNSNames, c.Spec.Usages, c.Spec.PrivateKey
	}
	pki.issue(t, dnsNames, usages, keyOpts)

	dirs := map[string]string{} // mount path -> its stand-in
	for _, flag := range []string{"tls-cert", "tls-key", "tls-client-ca"} {
		file := p.set[flag]
		if file == "" {
			continue
		}
		_, key, err := p.secretFile(file)
		if err != nil {
			t.Fatalf("--%s: %v", flag, err)
		}
		mount, name := path.Split(path.Clean(file))
		mount = path.Clean(mount)
		if dirs[mount] == "" {
			dirs[mount] = t.TempDir()
		}
		content := map[string][]byte{TLSCertKey: pki.certPEM, TLSPrivateKeyKey: pki.keyPEM, CACertKey: pki.caPEM}[key]
		if content == nil {
			t.Fatalf("--%s=%s: the harness makes tls.crt, tls.key and ca.crt, not %q", flag, file, key)
		}
		local := filepath.Join(dirs[mount], name)
		if err := os.WriteFile(local, content, 0o440); err != nil {
			t.Fatal(err)
		}
		if args, err = SetFlag(args, env, flag, local); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	pki.caFile = filepath.Join(out, "ca.crt")
	pki.clientCertFile, pki.clientKeyFile = filepath.Join(out, "client.crt"), filepath.Join(out, "client.key")
	if err := os.WriteFile(pki.caFile, pki.caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	writeCertificate(t, pki.clientCertFile, pki.clientKeyFile, pki.client)
	return pki, args
}

// issue makes the CA, the server certificate as a cert-manager
// Certificate with these dnsNames, usages and private key would have it,
// and a client certificate.
func (pki *testPKI) issue(t *testing.T, dnsNames, usages []string, keyOpts *CertificatePrivKey) {
	t.Helper()
	caKey := newKey(t, nil)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry-ca (validate)"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pki.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	pki.roots = x509.NewCertPool()
	pki.roots.AddCert(ca)

	if len(usages) == 0 { // cert-manager's default
		usages = []string{UsageDigitalSignature, "key encipherment"}
	}
	key := newKey(t, keyOpts)
	der := pki.sign(t, ca, caKey, key, 2, dnsNames, usages)
	pki.certPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pki.caPEM...)
	pki.keyPEM = marshalKey(t, key)

	clientKey := newKey(t, nil)
	clientDER := pki.sign(t, ca, caKey, clientKey, 3, nil, []string{UsageDigitalSignature, "client auth"})
	pki.client = tls.Certificate{Certificate: [][]byte{clientDER}, PrivateKey: clientKey}
}

func (pki *testPKI) sign(t *testing.T, ca *x509.Certificate, caKey, key crypto.Signer, serial int64, dnsNames, usages []string) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), DNSNames: dnsNames,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	if len(dnsNames) > 0 {
		tmpl.Subject.CommonName = dnsNames[0]
	}
	for _, u := range usages {
		switch u {
		case UsageDigitalSignature:
			tmpl.KeyUsage |= x509.KeyUsageDigitalSignature
		case "key encipherment":
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		case UsageServerAuth:
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		case "client auth":
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
		default:
			t.Fatalf("usage %q: the harness does not issue it", u)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// newKey makes a key as cert-manager would for privateKey (nil, for the
// test's own CA and client: ECDSA P-256; cert-manager's default for a
// Certificate without privateKey is RSA 2048).
func newKey(t *testing.T, opts *CertificatePrivKey) crypto.Signer {
	t.Helper()
	var (
		key crypto.Signer
		err error
	)
	alg, size := "ECDSA", 256
	if opts != nil {
		alg, size = opts.Algorithm, opts.Size
	}
	switch {
	case alg == "ECDSA" && (size == 0 || size == 256):
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case alg == "ECDSA" && size == 384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case alg == "ECDSA" && size == 521:
		key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case alg == "" || alg == "RSA":
		key, err = rsa.GenerateKey(rand.Reader, max(size, 2048))
	case alg == "Ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("privateKey %s %d: cert-manager does not make such a key", alg, size)
	}
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func marshalKey(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func writeCertificate(t *testing.T, certFile, keyFile string, c tls.Certificate) {
	t.Helper()
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, marshalKey(t, c.PrivateKey.(crypto.Signer)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// clientTLS is what a client verifies a channel with: the test CA, the
// name it dialled (never the pod IP of an offer), and its certificate
// when ferryd asks for one.
func (pki *testPKI) clientTLS(serverName string, alpn ...string) *tls.Config {
	cfg := &tls.Config{RootCAs: pki.roots, ServerName: serverName, NextProtos: alpn}
	if pki.mutual {
		cfg.Certificates = []tls.Certificate{pki.client}
	}
	return cfg
}
