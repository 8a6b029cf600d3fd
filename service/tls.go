package service

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// ServerTLS loads the control plane's TLS configuration from PEM files:
// the server's certificate chain and key, and, for mutual TLS, the CAs
// whose client certificates it accepts (clientCAFile "" means clients
// need no certificate). It returns nil, nil when all three are "": the
// control plane stays plaintext. A file that cannot be used is an error
// now.
//
// The files are watched: each new handshake first looks whether any of
// them changed (a stat of each: cert-manager renews a Kubernetes Secret
// in place), and if so loads them again, so that a renewed certificate,
// key or client CA takes effect without a restart. Connections already
// made keep what they were made with. A renewal that cannot be used (a
// key that does not match, a half-written file) is not taken: handshakes
// go on with the files loaded last, until the files change again.
//
// TLS 1.2 is the minimum; Go negotiates 1.3 whenever the client has it.
func ServerTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" && clientCAFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs both a certificate and its key")
	}
	w := &tlsFiles{names: [3]string{certFile, keyFile, clientCAFile}}
	cfg, err := w.load()
	if err != nil {
		return nil, err
	}
	w.cur, w.ids = cfg, w.stat()
	// The returned config answers for the first load (its fields are the
	// loaded ones) and hands every handshake the current one.
	out := cfg.Clone()
	out.GetConfigForClient = w.config
	return out, nil
}

// tlsFiles are the control plane's TLS files and what was loaded from
// them last.
type tlsFiles struct {
	names [3]string // certificate, key, client CA ("" for none)

	mu  sync.Mutex
	ids [3]fileID
	cur *tls.Config
}

// fileID tells one version of a file from another.
type fileID struct {
	ino, size uint64
	mtime     time.Time
}

// stat identifies each file as it is now; a file that cannot be
// stat'ed (being replaced) has the zero fileID.
func (w *tlsFiles) stat() (ids [3]fileID) {
	for i, name := range w.names {
		if fi, err := os.Stat(name); name != "" && err == nil {
			ids[i] = fileID{size: uint64(fi.Size()), mtime: fi.ModTime()}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				ids[i].ino = st.Ino
			}
		}
	}
	return ids
}

// config is tls.Config.GetConfigForClient: the configuration loaded
// from the files as they are now.
func (w *tlsFiles) config(*tls.ClientHelloInfo) (*tls.Config, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ids := w.stat(); ids != w.ids {
		if cfg, err := w.load(); err == nil {
			w.cur = cfg
		}
		w.ids = ids // a bad version is not tried again until the files change
	}
	return w.cur, nil
}

// load reads the files into a configuration.
func (w *tlsFiles) load() (*tls.Config, error) {
	cert, err := loadKeyPair(w.names[0], w.names[1])
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if w.names[2] != "" {
		if cfg.ClientCAs, err = loadCAs(w.names[2]); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// loadKeyPair reads a certificate chain and its key, and refuses an
// expired leaf: every client would fail its handshake with a less helpful
// message.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS certificate %s with key %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf != nil && time.Now().After(cert.Leaf.NotAfter) {
		return tls.Certificate{}, fmt.Errorf("TLS certificate %s expired at %s", certFile, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return cert, nil
}

// loadCAs reads a PEM bundle of CA certificates.
func loadCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("TLS client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("TLS client CA %s: no PEM certificate in it", file)
	}
	return pool, nil
}
