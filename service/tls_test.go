package service_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/internal/testpki"
	"github.com/ferrydev/ferry/service"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
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

// TestServerTLSRotation: the certificate, key and client CA files are
// replaced in place (as cert-manager renews a Secret): the next
// handshake presents the new certificate and takes client certificates
// of the new CA, while a connection made before goes on with the old.
// A replacement that cannot be used (a key that does not match) is not
// taken: handshakes go on with the last good files.
func TestServerTLSRotation(t *testing.T) {
	a, b := testpki.New(t, "old CA"), testpki.New(t, "new CA")
	dir := t.TempDir()
	cert, key, ca := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	install := func(certFrom, keyFrom, caFrom string) {
		t.Helper()
		for from, to := range map[string]string{certFrom: cert, keyFrom: key, caFrom: ca} {
			b, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to+".new", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(to+".new", to); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(a.ServerCert, a.ServerKey, a.CA)
	cfg, err := service.ServerTLS(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // echo, one goroutine per connection
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	dial := func(p testpki.PKI) (*tls.Conn, error) {
		roots := x509.NewCertPool()
		pem, _ := os.ReadFile(p.CA)
		roots.AppendCertsFromPEM(pem)
		client, err := tls.LoadX509KeyPair(p.ClientCert, p.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{client}})
		if err == nil {
			// TLS 1.3 reports a refused client certificate on the first read.
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err = c.Write([]byte("x")); err == nil {
				_, err = io.ReadFull(c, make([]byte, 1))
			}
		}
		return c, err
	}
	old, err := dial(a)
	if err != nil {
		t.Fatalf("handshake with the first files: %v", err)
	}
	defer old.Close()

	install(b.ServerCert, b.ServerKey, b.CA)
	c, err := dial(b)
	if err != nil {
		t.Fatalf("handshake after the files were renewed: %v (want the new certificate, and the new CA's client certificate taken)", err)
	}
	c.Close()
	if c, err := dial(a); err == nil {
		c.Close()
		t.Error("after the renewal a client of the old CA still got through, want its handshake refused")
	}
	if _, err := old.Write([]byte("y")); err != nil {
		t.Errorf("the connection made before the renewal: write = %v, want it to go on", err)
	} else if _, err := io.ReadFull(old, make([]byte, 1)); err != nil {
		t.Errorf("the connection made before the renewal: read = %v, want it to go on", err)
	}

	install(a.ServerCert, b.ServerKey, b.CA) // a certificate with another's key: unusable
	if c, err := dial(b); err != nil {
		t.Errorf("after an unusable renewal: %v; want the last good files still served", err)
	} else {
		c.Close()
	}
}

// TestHealthListen: beside a control plane that requires mutual TLS, the
// plaintext health listener answers grpc.health.v1 (what a kubelet gRPC
// probe calls) and nothing else: no TransferService, no reflection.
func TestHealthListen(t *testing.T) {
	p := testpki.New(t, "ferry test CA")
	n := startNode(t, service.Config{TLS: serverTLS(t, p, true), HealthListen: "127.0.0.1:0"})
	addr := n.HealthAddr()
	if addr == nil {
		t.Fatal("HealthAddr() = nil with HealthListen set")
	}
	conn, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := testCtx(t)
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("plaintext health Check = %v, %v; want SERVING", resp, err)
	}
	if _, err := ferryv1.NewTransferServiceClient(conn).GetCapabilities(ctx, &ferryv1.GetCapabilitiesRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("TransferService on the health listener = %v, want %v", err, codes.Unimplemented)
	}
	refl, err := grpc_reflection_v1.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err == nil { // the stream opens lazily: its first exchange says
		refl.Send(&grpc_reflection_v1.ServerReflectionRequest{MessageRequest: &grpc_reflection_v1.ServerReflectionRequest_ListServices{}})
		_, err = refl.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("reflection on the health listener = %v, want %v", err, codes.Unimplemented)
	}
	// The control plane itself still requires TLS.
	plain, err := grpc.NewClient(n.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := healthpb.NewHealthClient(plain).Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext health Check on the TLS control plane = %v, want %v", err, codes.Unavailable)
	}
}
