package service_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/internal/testpki"
	"github.com/ferrydev/ferry/service"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// firstOffer makes a Download call for path and returns its offer,
// leaving the call to end with the test.
func firstOffer(t *testing.T, c *client.Client, path string) *ferryv1.Offer {
	t.Helper()
	stream, err := c.API().Download(testCtx(t), &ferryv1.DownloadRequest{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.Recv()
	if err != nil {
		t.Fatalf("Download(%s): %v", path, err)
	}
	return msg.GetOffer()
}

// TestDataTLSFollowsControlPlane: with TLS on the control plane and no
// --data-tls, offers say the data channel is TLS, a pull's bytes go
// over TLS 1.3 on both sides, and a tree's files share a few TLS
// connections rather than a handshake each.
func TestDataTLSFollowsControlPlane(t *testing.T) {
	p := testpki.New(t, "ferry test CA")
	n := startNode(t, service.Config{TLS: serverTLS(t, p, false)})
	want := writeFile(t, n.root, "big.bin", 3<<20+7)
	c := dialAs(t, n, client.Security{CAFile: p.CA})
	if !firstOffer(t, c, "big.bin").GetDataTls() {
		t.Error("offer from a TLS control plane: data_tls = false, want true")
	}
	dest := filepath.Join(t.TempDir(), "big.bin")
	report, err := c.Download(testCtx(t), "big.bin", dest, client.DownloadOptions{})
	if err != nil {
		t.Fatalf("Download over a TLS data channel: %v", err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, want) {
		t.Fatal("received bytes differ")
	}
	for side, st := range map[string]*ferryv1.TransferStats{"sender": report.GetSender(), "receiver": report.GetReceiver()} {
		if !strings.HasPrefix(st.GetEncryption(), "TLS 1.3, ") || st.GetCpuCopiedBytes() < 2*st.GetBytes() {
			t.Errorf("%s: encryption %q, CPU-copied %d of %d bytes; want TLS 1.3 and at least two CPU passes",
				side, st.GetEncryption(), st.GetCpuCopiedBytes(), st.GetBytes())
		}
	}

	var handshakes atomic.Int64
	data := &tls.Config{RootCAs: certPool(t, p.CA), VerifyConnection: func(tls.ConnectionState) error { handshakes.Add(1); return nil }}
	tc, err := client.Dial(n.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: certPool(t, p.CA)})),
		client.WithDataTLS(data))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	for i := range 24 {
		writeFile(t, n.root, fmt.Sprintf("tree/f%02d", i), 100<<10)
	}
	if _, err := tc.DownloadTree(testCtx(t), "tree", filepath.Join(t.TempDir(), "tree"), client.TreeOptions{Concurrency: 2}); err != nil {
		t.Fatalf("DownloadTree over TLS: %v", err)
	}
	if h := handshakes.Load(); h == 0 || h > 4 {
		t.Errorf("a tree of 24 files over 2 workers made %d data-channel TLS handshakes, want 1 to 4", h)
	}
}

// TestDataTLSMutual: under mutual TLS the data channel asks for the
// client's certificate too; the client presents it there.
func TestDataTLSMutual(t *testing.T) {
	p := testpki.New(t, "ferry test CA")
	n := startNode(t, service.Config{TLS: serverTLS(t, p, true)})
	writeFile(t, n.root, "f.bin", 1<<20)
	c := dialAs(t, n, client.Security{CAFile: p.CA, CertFile: p.ClientCert, KeyFile: p.ClientKey})
	report, err := c.Download(testCtx(t), "f.bin", os.DevNull, client.DownloadOptions{})
	if err != nil || report.GetReceiver().GetEncryption() == "" {
		t.Fatalf("Download under mutual TLS = %v, receiver encryption %q", err, report.GetReceiver().GetEncryption())
	}
	cert, err := tls.LoadX509KeyPair(p.ClientCert, p.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{{"no client certificate", nil, false}, {"the client certificate", []tls.Certificate{cert}, true}} {
		err := dataHandshake(n.DataAddr().String(), &tls.Config{RootCAs: certPool(t, p.CA), ServerName: "localhost",
			Certificates: tc.certs, NextProtos: []string{"ferry-data/1"}})
		if (err == nil) != tc.ok {
			t.Errorf("data-channel TLS with %s: %v, want ok = %v", tc.name, err, tc.ok)
		}
	}
}

// dataHandshake completes a TLS handshake with a data channel and
// waits a moment for the server's verdict on it: TLS 1.3 reports a
// refused client certificate on the first read.
func dataHandshake(addr string, cfg *tls.Config) error {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil // still waiting for a preamble: the handshake held
	}
	return err
}

// TestDataTLSRefusesDowngrade: a server reached over TLS whose offers
// name a plaintext data channel (--data-tls off) is refused before
// anything is dialled, so the ticket never crosses in clear, unless the
// client accepts plaintext data. The offer's data address is a
// listener of the test's, which records what reaches it.
func TestDataTLSRefusesDowngrade(t *testing.T) {
	p := testpki.New(t, "ferry test CA")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var heard []byte
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.SetReadDeadline(time.Now().Add(time.Second))
			b, _ := io.ReadAll(io.LimitReader(c, 37))
			c.Close()
			mu.Lock()
			heard = append(heard, b...)
			mu.Unlock()
		}
	}()
	n := startNode(t, service.Config{TLS: serverTLS(t, p, false), DataTLS: service.DataTLSOff, AdvertiseData: ln.Addr().String()})
	writeFile(t, n.root, "f.bin", 1<<20)
	c := dialAs(t, n, client.Security{CAFile: p.CA})
	if firstOffer(t, c, "f.bin").GetDataTls() {
		t.Fatal("--data-tls off: offer says data_tls")
	}
	_, err = c.Download(testCtx(t), "f.bin", os.DevNull, client.DownloadOptions{})
	if !errors.Is(err, client.ErrPlaintextData) {
		t.Errorf("Download of a plaintext offer over a TLS control plane = %v, want %v", err, client.ErrPlaintextData)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the refused offer's data address got %d connections, want none", n)
	}
	allowed := dialAs(t, n, client.Security{CAFile: p.CA, PlaintextData: true})
	allowed.Download(testCtx(t), "f.bin", os.DevNull, client.DownloadOptions{}) // reaches the recorder, which is no ferryd
	mu.Lock()
	defer mu.Unlock()
	if conns.Load() != 1 || !bytes.HasPrefix(heard, []byte("FERY")) {
		t.Errorf("with plaintext data allowed the recorder heard %d connections, %q; want the plaintext preamble", conns.Load(), heard)
	}
}

func TestDataTLSRequiredNeedsControlPlaneTLS(t *testing.T) {
	_, err := service.NewNode(service.Config{Root: t.TempDir(), Listen: "127.0.0.1:0", DataListen: "127.0.0.1:0",
		DataTLS: service.DataTLSRequired, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "--tls-cert") {
		t.Errorf("NewNode(DataTLSRequired, no TLS) = %v, want an error naming --tls-cert", err)
	}
}

// TestDataTLSRejectsPlaintextPreamble: a plaintext Download client (one
// that never reached the control plane over TLS, a test's raw one) of a
// TLS data channel gets the refusal verdict and its ticket is burnt:
// the call fails with FailedPrecondition.
func TestDataTLSRejectsPlaintextPreamble(t *testing.T) {
	p := testpki.New(t, "ferry test CA")
	n := startNode(t, service.Config{TLS: serverTLS(t, p, false)})
	writeFile(t, n.root, "f.bin", 1<<20)
	c := dialAs(t, n, client.Security{CAFile: p.CA})
	stream, err := c.API().Download(testCtx(t), &ferryv1.DownloadRequest{Path: "f.bin"})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", n.DataAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write(append([]byte("FERY\x01"), msg.GetOffer().GetTicket()...))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(conn)
	if !bytes.Equal(got, []byte{4}) {
		t.Errorf("plaintext preamble to a TLS data channel: answered %x, want the one verdict byte 04", got)
	}
	for {
		if _, err = stream.Recv(); err != nil {
			break
		}
	}
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Download whose ticket went in clear ended %v, want FailedPrecondition", err)
	}
}

// TestDataTLSRotation: the certificate files are renewed in place while
// a paced pull runs; the next data-channel handshake presents the new
// certificate, and the running pull finishes, whole, on the old one.
func TestDataTLSRotation(t *testing.T) {
	a, b := testpki.New(t, "old CA"), testpki.New(t, "new CA")
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	install(t, map[string]string{a.ServerCert: cert, a.ServerKey: key})
	cfg, err := service.ServerTLS(cert, key, "")
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, service.Config{TLS: cfg})
	want := writeFile(t, n.root, "slow.bin", 6<<20)
	writeFile(t, n.root, "next.bin", 1<<20)
	roots := certPool(t, a.CA)
	roots.AppendCertsFromPEM(mustRead(t, b.CA))

	first, firstIssuers := issuerRecordingClient(t, n, roots)
	started := make(chan struct{})
	var once sync.Once
	dest := filepath.Join(t.TempDir(), "slow.bin")
	done := make(chan error, 1)
	go func() {
		_, err := first.Download(testCtx(t), "slow.bin", dest, client.DownloadOptions{RateLimit: 4 << 20,
			Progress: func(p *ferryv1.Progress) {
				if p.GetBytesSent() > 0 {
					once.Do(func() { close(started) })
				}
			}})
		done <- err
	}()
	<-started
	install(t, map[string]string{b.ServerCert: cert, b.ServerKey: key})
	second, secondIssuers := issuerRecordingClient(t, n, roots)
	if _, err := second.Download(testCtx(t), "next.bin", os.DevNull, client.DownloadOptions{}); err != nil {
		t.Fatalf("Download after the renewal: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the pull running during the renewal: %v", err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, want) {
		t.Error("the pull running during the renewal: bytes differ")
	}
	if got := firstIssuers(); len(got) != 1 || got[0] != "old CA" {
		t.Errorf("the running pull's data handshakes saw issuers %q, want [old CA]", got)
	}
	if got := secondIssuers(); len(got) != 1 || got[0] != "new CA" {
		t.Errorf("the next pull's data handshakes saw issuers %q, want [new CA]", got)
	}
}

// issuerRecordingClient dials n over TLS with roots, and records the
// issuer of each certificate its data channel is shown.
func issuerRecordingClient(t *testing.T, n *testNode, roots *x509.CertPool) (*client.Client, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var issuers []string
	data := &tls.Config{RootCAs: roots, VerifyConnection: func(cs tls.ConnectionState) error {
		mu.Lock()
		defer mu.Unlock()
		issuers = append(issuers, cs.PeerCertificates[0].Issuer.CommonName)
		return nil
	}}
	c, err := client.Dial(n.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots})),
		client.WithDataTLS(data))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), issuers...)
	}
}

// install copies each file over its destination, atomically, as a
// renewed Secret's files appear.
func install(t *testing.T, files map[string]string) {
	t.Helper()
	for from, to := range files {
		if err := os.WriteFile(to+".new", mustRead(t, from), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(to+".new", to); err != nil {
			t.Fatal(err)
		}
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDataTLSSession: a Session on a TLS control plane binds its data
// connections inside TLS and frames its files there, small and large,
// each report saying so; a session whose data channel would be
// plaintext is refused by a client that expects TLS, before it binds.
func TestDataTLSSession(t *testing.T) {
	p := testpki.New(t, "ferry test CA")
	n := startNode(t, service.Config{TLS: serverTLS(t, p, true)})
	small := writeFile(t, n.root, "small.bin", 3000)
	big := writeFile(t, n.root, "big.bin", 2<<20+9)
	c := dialAs(t, n, client.Security{CAFile: p.CA, CertFile: p.ClientCert, KeyFile: p.ClientKey})
	s, err := c.OpenSession(testCtx(t), client.SessionOptions{})
	if err != nil {
		t.Fatalf("OpenSession over TLS: %v", err)
	}
	defer s.Close()
	dir := t.TempDir()
	for name, want := range map[string][]byte{"small.bin": small, "big.bin": big} {
		dest := filepath.Join(dir, name)
		rep, err := s.Download(testCtx(t), name, dest, client.GetOptions{})
		if err != nil {
			t.Fatalf("session Download(%s) over TLS: %v", name, err)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, want) {
			t.Errorf("%s: received bytes differ", name)
		}
		if enc := rep.GetSender().GetEncryption(); !strings.HasPrefix(enc, "TLS 1.3, ") {
			t.Errorf("%s: sender encryption %q, want TLS 1.3", name, enc)
		}
	}
	if dials, _ := c.DataConnections(); dials != 0 {
		t.Errorf("%d ticket connections, want none: the files came framed", dials)
	}

	off := startNode(t, service.Config{TLS: serverTLS(t, p, false), DataTLS: service.DataTLSOff})
	_, err = dialAs(t, off, client.Security{CAFile: p.CA}).OpenSession(testCtx(t), client.SessionOptions{})
	if !errors.Is(err, client.ErrPlaintextData) {
		t.Errorf("OpenSession with a plaintext data channel beside TLS = %v, want %v", err, client.ErrPlaintextData)
	}
}
