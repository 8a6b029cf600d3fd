package bench

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestGRPCPeer runs the codec-only blob service on loopback and fetches
// a file in 64 KiB messages.
func TestGRPCPeer(t *testing.T) {
	data := bytes.Repeat([]byte("ferry"), 40000) // 200,000 bytes: 3 whole chunks and a tail
	p := &grpcPeer{conn: peerWithFile(t, data)}
	if n, err := p.fetch(t.Context(), "f", 64<<10); err != nil || n != int64(len(data)) {
		t.Errorf("fetch(f) = %d, %v, want %d bytes", n, err, len(data))
	}
	if n, err := p.fetch(t.Context(), "../escape", 64<<10); err == nil {
		t.Errorf("fetch(../escape) = %d bytes, want an error", n)
	}
}

func TestNetcatRelay(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- netcatAccept(t.Context(), l, &got) }()
	want := bytes.Repeat([]byte{1, 2, 3}, 100000)
	if err := NetcatSend(t.Context(), l.Addr().String(), bytes.NewReader(want)); err != nil {
		t.Fatalf("NetcatSend() = %v", err)
	}
	if err := <-done; err != nil || !bytes.Equal(got.Bytes(), want) {
		t.Errorf("netcatAccept() = %v with %d bytes, want %d bytes intact", err, got.Len(), len(want))
	}
}

// TestNginxConfig checks the generated nginx.conf with nginx -t, where
// nginx is installed.
func TestNginxConfig(t *testing.T) {
	bin, err := lookTool("nginx")
	if err != nil {
		t.Skip("nginx is not installed (ferry-bench installs it when it runs)")
	}
	prefix := t.TempDir()
	pki, err := makeBenchPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	conf := nginxConfig(prefix, t.TempDir(), 18080, 18081, os.Geteuid() == 0, nginxSSL(18082, t.TempDir(), pki))
	for _, want := range []string{"daemon off;", "sendfile on; tcp_nopush on;", "sendfile off;", "listen 127.0.0.1:18081;",
		"listen 127.0.0.1:18082 ssl;", "ssl_protocols TLSv1.3;"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginxConfig() lacks %q:\n%s", want, conf)
		}
	}
	path := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-t", "-c", path, "-p", prefix+"/", "-e", filepath.Join(prefix, "error.log")).CombinedOutput()
	if err != nil {
		t.Errorf("nginx -t: %v\n%s", err, out)
	}
}

// TestFloor fetches a file twice over each floor stream (the second on
// the warm stream), checks the bytes, and, for the floor with a report,
// that a report followed each file.
func TestFloor(t *testing.T) {
	data := bytes.Repeat([]byte("floor"), 900) // 4,500 bytes
	conn := peerWithFile(t, data)
	for _, report := range []bool{false, true} {
		f := &floorClient{report: report}
		for i := range 2 {
			n, err := f.fetch(conn, "f")
			if err != nil || n != int64(len(data)) || !bytes.Equal(f.buf[:n], data) {
				t.Fatalf("report %v, fetch %d: %d bytes, %v; want the file's %d bytes", report, i, n, err, len(data))
			}
		}
		want := int64(0)
		if report {
			want = 2
		}
		deadline := time.Now().Add(5 * time.Second)
		for f.reports.Load() < want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := f.reports.Load(); got != want {
			t.Errorf("report %v: %d reports read, want %d", report, got, want)
		}
		if n, err := f.fetch(conn, "../escape"); err == nil {
			t.Errorf("report %v: fetch(../escape) = %d bytes, want an error", report, n)
		}
		f.close()
	}
}

// peerWithFile serves a directory holding data as "f" with the gRPC
// peer, in process, and returns a client connection to it; both end
// with the test.
func peerWithFile(t *testing.T, data []byte) *grpc.ClientConn {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveGRPCPeer(ctx, l, dir) }()
	t.Cleanup(func() { cancel(); <-done })
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
