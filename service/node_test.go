package service_test

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/service"
	"github.com/ferrydev/ferry/transfer"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name        string
		cfg         service.Config
		wantVersion string
		wantAddr    func(dataPort string) string
	}{
		{"defaults", service.Config{}, "dev", func(p string) string { return net.JoinHostPort("127.0.0.1", p) }},
		{"configured", service.Config{Version: "v1.2.3-test", AdvertiseData: "data.example"}, "v1.2.3-test",
			func(p string) string { return net.JoinHostPort("data.example", p) }},
		{"advertised host:port", service.Config{AdvertiseData: "10.1.2.3:9000"}, "dev",
			func(string) string { return "10.1.2.3:9000" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := startNode(t, tt.cfg)
			caps := n.caps(t)
			if !slices.Contains(caps.Strategies, ferryv1.Strategy_STRATEGY_READ_WRITE) {
				t.Errorf("GetCapabilities().Strategies = %v, want READ_WRITE among them", caps.Strategies)
			}
			if !slices.Contains(caps.Strategies, caps.DefaultStrategy) {
				t.Errorf("GetCapabilities().DefaultStrategy = %v, want one of %v", caps.DefaultStrategy, caps.Strategies)
			}
			_, port, err := net.SplitHostPort(n.DataAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			if tt.cfg.AdvertiseData == "" && caps.DataAddress != n.DataAddr().String() {
				t.Errorf("GetCapabilities().DataAddress = %q, want DataAddr() %q", caps.DataAddress, n.DataAddr())
			}
			if want := tt.wantAddr(port); caps.DataAddress != want {
				t.Errorf("GetCapabilities().DataAddress = %q, want %q", caps.DataAddress, want)
			}
			if caps.ServerVersion != tt.wantVersion {
				t.Errorf("GetCapabilities().ServerVersion = %q, want %q", caps.ServerVersion, tt.wantVersion)
			}
		})
	}
}

func TestStatFile(t *testing.T) {
	n := startNode(t, service.Config{})
	writeFile(t, n.root, "sub/file.bin", 12345)
	file := filepath.Join(n.root, "sub/file.bin")
	if err := os.Chmod(file, 0o640); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2021, 3, 4, 5, 6, 7, 891011121, time.UTC)
	if err := os.Chtimes(file, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, clean string }{
		{"sub/file.bin", "sub/file.bin"},
		{"./sub//file.bin", "sub/file.bin"},
		{"sub", "sub"},
		{"sub/", "sub"},
		{".", "."},
	}
	for _, tt := range tests {
		fi, err := os.Stat(filepath.Join(n.root, tt.clean))
		if err != nil {
			t.Fatal(err)
		}
		want := &ferryv1.StatFileResponse{
			Path:       tt.clean,
			Mode:       uint32(fi.Mode()),
			ModifyTime: timestamppb.New(fi.ModTime()),
			IsDir:      fi.IsDir(),
		}
		if !fi.IsDir() {
			want.Size = uint64(fi.Size())
		}
		got, err := n.client.Stat(testCtx(t), tt.path)
		if err != nil {
			t.Errorf("StatFile(%q) = %v", tt.path, err)
			continue
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("StatFile(%q) mismatch (-want +got):\n%s", tt.path, diff)
		}
	}
	if got, err := n.client.Stat(testCtx(t), "sub/file.bin"); err == nil && !got.ModifyTime.AsTime().Equal(mtime) {
		t.Errorf("StatFile(sub/file.bin).ModifyTime = %v, want %v", got.ModifyTime.AsTime(), mtime)
	}
}

// healthClient dials n's control plane for grpc.health.v1.
func healthClient(t *testing.T, n *testNode) healthpb.HealthClient {
	t.Helper()
	conn, err := grpc.NewClient(n.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

// checkHealth checks the health of the server ("") and of the service.
func checkHealth(t *testing.T, h healthpb.HealthClient, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	for _, svc := range []string{"", ferryv1.TransferService_ServiceDesc.ServiceName} {
		resp, err := h.Check(testCtx(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != want {
			t.Errorf("Check(%q) = (%v, %v), want %v", svc, resp.GetStatus(), err, want)
		}
	}
}

func TestHealth(t *testing.T) {
	n := startNode(t, service.Config{})
	h := healthClient(t, n)
	checkHealth(t, h, healthpb.HealthCheckResponse_SERVING)
	if _, err := h.Check(testCtx(t), &healthpb.HealthCheckRequest{Service: "no.such.Service"}); status.Code(err) != codes.NotFound {
		t.Errorf("Check(no.such.Service) = %v, want %v", err, codes.NotFound)
	}
}

func TestRunReturnsAfterCancel(t *testing.T) {
	n := startNode(t, service.Config{})
	n.caps(t)
	if err := n.stop(); err != nil {
		t.Fatalf("Run() = %v after its context was cancelled, want nil", err)
	}
	if _, err := n.client.Capabilities(testCtx(t)); status.Code(err) != codes.Unavailable {
		t.Errorf("Capabilities() after Run returned = %v, want %v", err, codes.Unavailable)
	}
	if c, err := net.Dial("tcp", n.DataAddr().String()); err == nil {
		c.Close()
		t.Errorf("the data listener still accepts after Run returned")
	}
}

// A transfer running when Run's context ends finishes within the grace
// period; meanwhile health says NOT_SERVING and new Downloads are refused.
func TestGracefulShutdown(t *testing.T) {
	n := startNode(t, service.Config{ShutdownGrace: 5 * time.Second})
	const size = 32 << 20
	src := writeFile(t, n.root, "big", size)
	writeFile(t, n.root, "small", 10)
	h := healthClient(t, n)
	stream, offer := startDownload(t, testCtx(t), n.api(), &ferryv1.DownloadRequest{Path: "big"})
	c, v := dialData(t, offer.DataAddress, offer.Ticket)
	if v != transfer.VerdictOK {
		t.Fatalf("verdict = %v, want %v", v, transfer.VerdictOK)
	}
	got := make([]byte, size)
	if _, err := io.ReadFull(c, got[:1<<20]); err != nil {
		t.Fatalf("reading the first MiB: %v", err)
	}

	stopped := make(chan error, 1)
	go func() { stopped <- n.stop() }()
	// Shutdown closes the data listener, after health turned NOT_SERVING
	// and in the same step that makes the data plane refuse offers.
	waitFor(t, "the data listener closes", func() bool {
		c, err := net.Dial("tcp", n.DataAddr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	checkHealth(t, h, healthpb.HealthCheckResponse_NOT_SERVING)
	_, err := n.client.Download(testCtx(t), "small", os.DevNull, client.DownloadOptions{})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("Download() during shutdown = %v, want %v", err, codes.Unavailable)
	}

	if _, err := io.ReadFull(c, got[1<<20:]); err != nil {
		t.Fatalf("reading the rest during shutdown: %v", err)
	}
	if !bytes.Equal(got, src) {
		t.Errorf("the transfer running at shutdown carried different bytes from the source")
	}
	if r := recvReport(t, stream); r.GetSender().GetBytes() != size {
		t.Errorf("report sender bytes = %d, want %d", r.GetSender().GetBytes(), size)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	case <-testCtx(t).Done():
		t.Fatalf("Run did not return after the last transfer finished")
	}
}
