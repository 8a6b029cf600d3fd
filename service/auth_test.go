package service_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"slices"
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/internal/testpki"
	"github.com/ferrydev/ferry/service"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
)

const testToken = "correct-horse-battery-staple"

// dialAs dials the node as sec says.
func dialAs(t *testing.T, n *testNode, sec client.Security) *client.Client {
	t.Helper()
	opts, err := sec.DialOptions()
	if err != nil {
		t.Fatalf("%+v.DialOptions() = %v", sec, err)
	}
	c, err := client.Dial(n.Addr().String(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// serverTLS loads the server side of p, with mutual TLS when mutual.
func serverTLS(t *testing.T, p testpki.PKI, mutual bool) *tls.Config {
	t.Helper()
	clientCA := ""
	if mutual {
		clientCA = p.CA
	}
	cfg, err := service.ServerTLS(p.ServerCert, p.ServerKey, clientCA)
	if err != nil {
		t.Fatalf("ServerTLS() = %v", err)
	}
	return cfg
}

// callCodes makes a unary, a second unary and a streaming call and
// returns their codes; the stream's is that of its first message.
func callCodes(t *testing.T, c *client.Client) []codes.Code {
	t.Helper()
	ctx := testCtx(t)
	_, capsErr := c.Capabilities(ctx)
	_, statErr := c.Stat(ctx, "f")
	var dlErr error
	if stream, err := c.API().Download(ctx, &ferryv1.DownloadRequest{Path: "f"}); err != nil {
		dlErr = err
	} else {
		_, dlErr = stream.Recv()
	}
	return []codes.Code{status.Code(capsErr), status.Code(statErr), status.Code(dlErr)}
}

func TestTokenRequired(t *testing.T) {
	n := startNode(t, service.Config{AuthToken: testToken})
	writeFile(t, n.root, "f", 1000)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused := []codes.Code{codes.Unauthenticated, codes.Unauthenticated, codes.Unauthenticated}
	for _, tc := range []struct {
		name string
		sec  client.Security
		want []codes.Code
	}{
		{"no token", client.Security{}, refused},
		{"wrong token", client.Security{Token: "correct-horse-battery-stapler"}, refused},
		{"token prefix", client.Security{Token: testToken[:10]}, refused},
		{"right token", client.Security{Token: testToken}, []codes.Code{codes.OK, codes.OK, codes.OK}},
		{"token file", client.Security{TokenFile: tokenFile}, []codes.Code{codes.OK, codes.OK, codes.OK}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := callCodes(t, dialAs(t, n, tc.sec))
			if !slices.Equal(got, tc.want) {
				t.Errorf("GetCapabilities, StatFile, Download with %s = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}

// TestTokenScheme sends the authorization header by hand: only the Bearer
// scheme (in any case) with the right token passes.
func TestTokenScheme(t *testing.T) {
	n := startNode(t, service.Config{AuthToken: testToken})
	for header, want := range map[string]codes.Code{
		"Bearer " + testToken: codes.OK,
		"bearer " + testToken: codes.OK,
		"Basic " + testToken:  codes.Unauthenticated,
		testToken:             codes.Unauthenticated,
		"Bearer":              codes.Unauthenticated,
		"Bearer ":             codes.Unauthenticated,
	} {
		ctx := metadata.AppendToOutgoingContext(testCtx(t), "authorization", header)
		_, err := n.api().GetCapabilities(ctx, &ferryv1.GetCapabilitiesRequest{})
		if got := status.Code(err); got != want {
			t.Errorf("GetCapabilities with authorization %q = %v, want %v", header, err, want)
		}
	}
}

// TestOpenServices checks that health (unary and streaming) and
// reflection answer without a token on a node that requires one.
func TestOpenServices(t *testing.T) {
	n := startNode(t, service.Config{AuthToken: testToken})
	conn, err := grpc.NewClient(n.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := testCtx(t)
	health := healthpb.NewHealthClient(conn)
	req := &healthpb.HealthCheckRequest{Service: ferryv1.TransferService_ServiceDesc.ServiceName}
	if resp, err := health.Check(ctx, req); resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("Health.Check() without a token = %v, %v; want SERVING", resp, err)
	}
	watch, err := health.Watch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := watch.Recv(); resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("Health.Watch() without a token: first message %v, %v; want SERVING", resp, err)
	}
	if got := listServices(t, conn); !slices.Contains(got, ferryv1.TransferService_ServiceDesc.ServiceName) {
		t.Errorf("reflection ListServices without a token = %q, want it to name the transfer service", got)
	}
}

// listServices asks server reflection for the service names.
func listServices(t *testing.T, conn *grpc.ClientConn) []string {
	t.Helper()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	req := &reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}
	if err := stream.Send(req); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection ListServices: %v", err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names
}

func TestTLS(t *testing.T) {
	pki := testpki.New(t, "ferry test CA")
	n := startNode(t, service.Config{TLS: serverTLS(t, pki, false)})
	for _, tc := range []struct {
		name string
		sec  client.Security
		want codes.Code
	}{
		{"plaintext", client.Security{}, codes.Unavailable},
		{"our CA", client.Security{CAFile: pki.CA}, codes.OK},
		{"our CA, name localhost", client.Security{CAFile: pki.CA, ServerName: "localhost"}, codes.OK},
		{"our CA, another name", client.Security{CAFile: pki.CA, ServerName: "ferry.example"}, codes.Unavailable},
		{"another CA", client.Security{CAFile: testpki.New(t, "other CA").CA}, codes.Unavailable},
		{"system roots", client.Security{ServerName: "localhost"}, codes.Unavailable},
	} {
		_, err := dialAs(t, n, tc.sec).Capabilities(testCtx(t))
		if got := status.Code(err); got != tc.want {
			t.Errorf("Capabilities() over TLS with %s = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestTLSVersions checks the floor (1.2) and that 1.3 is what a modern
// client gets.
func TestTLSVersions(t *testing.T) {
	pki := testpki.New(t, "ferry test CA")
	n := startNode(t, service.Config{TLS: serverTLS(t, pki, false)})
	var p peer.Peer
	if _, err := dialAs(t, n, client.Security{CAFile: pki.CA}).API().GetCapabilities(testCtx(t), &ferryv1.GetCapabilitiesRequest{}, grpc.Peer(&p)); err != nil {
		t.Fatalf("GetCapabilities() over TLS = %v", err)
	}
	if info, ok := p.AuthInfo.(credentials.TLSInfo); !ok || info.State.Version != tls.VersionTLS13 {
		t.Errorf("negotiated %#v, want TLS 1.3", p.AuthInfo)
	}
	for v, want := range map[uint16]codes.Code{tls.VersionTLS11: codes.Unavailable, tls.VersionTLS12: codes.OK} {
		cfg := &tls.Config{ServerName: "localhost", MaxVersion: v, RootCAs: certPool(t, pki.CA)}
		conn, err := grpc.NewClient(n.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = ferryv1.NewTransferServiceClient(conn).GetCapabilities(testCtx(t), &ferryv1.GetCapabilitiesRequest{})
		conn.Close()
		if got := status.Code(err); got != want {
			t.Errorf("GetCapabilities() with a client capped at %s = %v, want %v", tls.VersionName(v), err, want)
		}
	}
}

func TestMutualTLS(t *testing.T) {
	pki, other := testpki.New(t, "ferry test CA"), testpki.New(t, "other CA")
	n := startNode(t, service.Config{TLS: serverTLS(t, pki, true)})
	for _, tc := range []struct {
		name string
		sec  client.Security
		want codes.Code
	}{
		{"no client certificate", client.Security{CAFile: pki.CA}, codes.Unavailable},
		{"a certificate from another CA", client.Security{CAFile: pki.CA, CertFile: other.ClientCert, KeyFile: other.ClientKey}, codes.Unavailable},
		{"our client certificate", client.Security{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}, codes.OK},
	} {
		_, err := dialAs(t, n, tc.sec).Capabilities(testCtx(t))
		if got := status.Code(err); got != tc.want {
			t.Errorf("Capabilities() over mutual TLS with %s = %v, want %v", tc.name, err, tc.want)
		}
	}
	// Go's client offers only a certificate the server's CA list accepts,
	// so the server never saw the foreign one above. Force it on the
	// server, which must verify it rather than merely require one.
	foreign, err := tls.LoadX509KeyPair(other.ClientCert, other.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: certPool(t, pki.CA), GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &foreign, nil
	}}
	conn, err := grpc.NewClient(n.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = ferryv1.NewTransferServiceClient(conn).GetCapabilities(testCtx(t), &ferryv1.GetCapabilitiesRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("GetCapabilities() presenting a certificate from another CA = %v, want Unavailable", err)
	}
}

// TestDownloadOverTLSWithToken pulls a file with every strategy through a
// control plane that demands mutual TLS and a token; the data channel
// stays plaintext, its one-time ticket the key.
func TestDownloadOverTLSWithToken(t *testing.T) {
	pki := testpki.New(t, "ferry test CA")
	n := startNode(t, service.Config{TLS: serverTLS(t, pki, true), AuthToken: testToken})
	want := writeFile(t, n.root, "f", 3<<20+17)
	c := dialAs(t, n, client.Security{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, Token: testToken})
	caps, err := c.Capabilities(testCtx(t))
	if err != nil {
		t.Fatalf("Capabilities() = %v", err)
	}
	for _, st := range caps.GetStrategies() {
		dest := filepath.Join(t.TempDir(), "out")
		report, err := c.Download(testCtx(t), "f", dest, client.DownloadOptions{Strategy: st})
		if err != nil {
			t.Fatalf("Download(%v) over mutual TLS with a token = %v", st, err)
		}
		got, err := os.ReadFile(dest)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) || report.GetSender().GetBytes() != uint64(len(want)) {
			t.Errorf("Download(%v): got %d bytes (report: %d), want %d, byte-exact", st, len(got), report.GetSender().GetBytes(), len(want))
		}
	}
}
