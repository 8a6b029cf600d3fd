package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/ferrydev/ferry/client"
)

// The encrypted rows of the large file: each peer with TLS 1.3 on
// loopback, with one throwaway CA and a certificate for 127.0.0.1 that
// every side trusts. Every peer uses TLS_AES_128_GCM_SHA256, the suite
// Go picks on a CPU with AES instructions: nginx is told to, so that
// the rows compare transports, not ciphers.

// benchPKI names the PEM files of the run's CA and server certificate.
type benchPKI struct{ ca, cert, key string }

// makeBenchPKI writes a CA and a certificate for 127.0.0.1 it signed
// under dir, valid for a day.
func makeBenchPKI(dir string) (benchPKI, error) {
	p := benchPKI{ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "server.pem"), key: filepath.Join(dir, "server-key.pem")}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return p, err
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry-bench CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return p, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return p, err
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: ca.NotBefore, NotAfter: ca.NotAfter}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return p, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return p, err
	}
	for file, block := range map[string]*pem.Block{p.ca: {Type: "CERTIFICATE", Bytes: caDER},
		p.cert: {Type: "CERTIFICATE", Bytes: leafDER}, p.key: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			return p, err
		}
	}
	return p, nil
}

// clientTLS verifies the run's certificate.
func (p benchPKI) clientTLS() (*tls.Config, error) {
	b, err := os.ReadFile(p.ca)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no certificate", p.ca)
	}
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}, nil
}

// startFerrydTLS runs a ferryd with TLS on its control plane, and so,
// by default, on its data channel; its client verifies both.
func startFerrydTLS(ctx context.Context, bin, work, root string, pki benchPKI) (*ferryNode, error) {
	sec := client.Security{CAFile: pki.ca}
	opts, err := sec.DialOptions()
	if err != nil {
		return nil, err
	}
	n, err := startFerrydDial(ctx, bin, work, "ferryd-tls", root, opts, "--tls-cert", pki.cert, "--tls-key", pki.key)
	if n != nil {
		n.tls = true
	}
	return n, err
}

// tlsRows are the large file's encrypted rows: nginx ssl + curl over
// https, gRPC streaming over TLS, Ferry over TLS with auto and every
// strategy its TLS data channel offers.
func (p *peers) tlsRows(big string, size int64) []path {
	var paths []path
	if p.nginx.tlsPort > 0 {
		paths = append(paths, p.nginx.curlTLSPath(p.tools["curl"], big, size, p.pki.ca))
	}
	if p.grpcTLS != nil {
		paths = append(paths, p.grpcTLS.path(big, size, 1<<20))
	}
	if p.ferryTLS != nil {
		for _, st := range p.ferryTLS.ferryStrategies() {
			paths = append(paths, p.ferryTLS.largePath(big, size, st, "", false))
		}
	}
	return paths
}

// curlTLSPath fetches the large file over https with curl -o /dev/null,
// verifying the run's CA.
func (n *nginxServer) curlTLSPath(curl, big string, size int64, ca string) path {
	r := row{"nginx-ssl-curl", "nginx ssl (TLS 1.3, AES-128-GCM, user space) + curl https", "P nginx", "W curl"}
	url := fmt.Sprintf("https://127.0.0.1:%d/%s", n.tlsPort, big)
	return path{rows: []row{r}, run: func(ctx context.Context) ([]Sample, error) {
		s, err := metered(n.cpu, nil, func(s *Sample) error {
			return n.curl(ctx, s, curl, url, os.DevNull, size, "--cacert", ca, "--tlsv1.3")
		})
		return []Sample{s}, err
	}}
}

// serveGRPCPeerTLS is serveGRPCPeer over TLS with cert and key.
func serveGRPCPeerTLS(ctx context.Context, addr, dir, cert, key string) error {
	kp, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS13}
	return serveGRPCPeerOpts(ctx, l, dir, grpc.Creds(credentials.NewTLS(cfg)))
}

// tlsStrategyRow is ferryRow for a ferryd whose data channel is TLS.
func tlsStrategyRow(r row) row {
	r.id = "ferry-tls-" + r.id[len("ferry-"):]
	r.label += " over TLS 1.3 (user space)"
	return r
}

// startTLS starts the gRPC peer over TLS and the ferryd with TLS.
func (p *peers) startTLS(ctx context.Context, stops *[]func(), grpcPort int) error {
	fmt.Fprintln(p.cfg.Log, "starting the gRPC peer over TLS and ferryd --tls-cert (data TLS follows)")
	var err error
	p.grpcTLS, err = startGRPCPeerWith(ctx, p.self, p.work, p.fx.root, grpcPort, &p.pki)
	if p.grpcTLS != nil {
		*stops = append(*stops, p.grpcTLS.stop)
	}
	if err != nil {
		return err
	}
	p.ferryTLS, err = startFerrydTLS(ctx, p.tools["ferryd"], p.work, p.fx.root, p.pki)
	if p.ferryTLS != nil {
		*stops = append(*stops, p.ferryTLS.stop)
	}
	return err
}

// tlsTargets are target 5, the large file encrypted, with the CPU that
// encryption costs each side per GiB: Ferry READ_WRITE over TLS against
// READ_WRITE in plaintext for the sender, and the TLS receiver (which
// always reads) against the plaintext receiver that reads.
func tlsTargets(ln *WorkloadResult) []Target {
	auto := ln.path("ferry-tls-auto")
	if auto == nil {
		return nil
	}
	ts := []Target{
		target("5a", "large file → /dev/null, encrypted: Ferry auto over TLS vs nginx ssl (TLS 1.3) + curl over https",
			">=", 1.2, "x", roundRatio(auto, ln.path("nginx-ssl-curl"), tput)),
		target("5b", "large file → /dev/null, encrypted: Ferry auto over TLS vs gRPC streaming over TLS, 1 MiB messages",
			">=", 3.0, "x", roundRatio(auto, ln.path("grpc-tls-1024k"), tput)),
		info("5", "large file → /dev/null: Ferry auto over TLS vs Ferry auto in plaintext", roundRatio(auto, ln.path("ferry-auto"), tput)),
	}
	if s := auto.Summary; s != nil {
		ts = append(ts,
			infoIn("5", "Ferry auto over TLS: ferryd's CPU per GiB (encryption included)", "s/GiB", &s.SenderCPUPerGiB),
			infoIn("5", "Ferry auto over TLS: the receiver's CPU per GiB (decryption included)", "s/GiB", &s.ReceiverCPUPerGiB))
	}
	ts = append(ts,
		infoIn("5", "encryption's CPU per GiB, sender: Ferry READ_WRITE over TLS minus READ_WRITE in plaintext", "s/GiB",
			cpuDelta(ln.path("ferry-tls-read-write"), ln.path("ferry-read-write"), true)),
		infoIn("5", "decryption's CPU per GiB, receiver: Ferry auto over TLS minus auto in plaintext with a reading receiver", "s/GiB",
			cpuDelta(auto, ln.path("ferry-auto-read"), false)))
	return ts
}

// cpuDelta is a's median CPU per GiB less b's, the sender's or the
// receiver's; nil when either has no summary.
func cpuDelta(a, b *PathResult, sender bool) *float64 {
	if a == nil || b == nil || a.Summary == nil || b.Summary == nil {
		return nil
	}
	d := a.Summary.ReceiverCPUPerGiB - b.Summary.ReceiverCPUPerGiB
	if sender {
		d = a.Summary.SenderCPUPerGiB - b.Summary.SenderCPUPerGiB
	}
	return &d
}
