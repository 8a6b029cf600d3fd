package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// nginxServer is one nginx (master + one worker, daemon off) serving the
// fixtures on two ports: one with sendfile on (and tcp_nopush, as
// Debian's default config has it), one with sendfile off (nginx's
// default output_buffers). It is stopped by pid.
type nginxServer struct {
	on, off int
	tlsPort int // 0: no ssl server
	srv     *server
	cpu     cpuClock
	http    *http.Client // the warm client for small files
}

// nginxConfig is the whole nginx.conf; prefix holds its pid, logs and
// temp directories.
func nginxConfig(prefix, root string, on, off int, asRoot bool, ssl string) string {
	user := ""
	if asRoot {
		user = "user root;\n" // the worker reads the fixtures whatever their modes
	}
	temps := ""
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		temps += fmt.Sprintf("    %s_temp_path %s;\n", t, filepath.Join(prefix, t))
	}
	return fmt.Sprintf(`%sdaemon off;
worker_processes 1;
pid %s;
error_log %s warn;
events { worker_connections 1024; }
http {
    access_log off;
    default_type application/octet-stream;
    keepalive_requests 1000000;
%s    server { listen 127.0.0.1:%d; root %s; sendfile on; tcp_nopush on; }
    server { listen 127.0.0.1:%d; root %s; sendfile off; }
%s}
`, user, filepath.Join(prefix, "nginx.pid"), filepath.Join(prefix, "error.log"), temps, on, root, off, root, ssl)
}

// nginxSSL is the server block of the ssl port: TLS 1.3 with
// TLS_AES_128_GCM_SHA256, as Go picks (see tls.go); without kTLS nginx
// does not sendfile under ssl, whatever sendfile says.
func nginxSSL(port int, root string, pki benchPKI) string {
	if port == 0 {
		return ""
	}
	return fmt.Sprintf("    server { listen 127.0.0.1:%d ssl; root %s; sendfile on; ssl_certificate %s; ssl_certificate_key %s;\n"+
		"             ssl_protocols TLSv1.3; ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256; }\n", port, root, pki.cert, pki.key)
}

func startNginx(ctx context.Context, bin, work, root string, on, off, tlsPort int, pki benchPKI) (*nginxServer, error) {
	prefix := filepath.Join(work, "nginx")
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConfig(prefix, root, on, off, os.Geteuid() == 0, nginxSSL(tlsPort, root, pki))), 0o644); err != nil {
		return nil, err
	}
	s, err := startServer("nginx", filepath.Join(prefix, "stderr.log"),
		bin, "-c", conf, "-p", prefix+"/", "-e", filepath.Join(prefix, "error.log"))
	if err != nil {
		return nil, err
	}
	n := &nginxServer{on: on, off: off, tlsPort: tlsPort, srv: s, http: warmHTTPClient()}
	for _, port := range []int{on, off, tlsPort} {
		if port == 0 {
			continue
		}
		if err := waitListening(ctx, s, port); err != nil {
			return n, err
		}
	}
	n.cpu = treeCPU(processTree(s.pid())) // master and worker
	return n, nil
}

func warmHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 8, DisableCompression: true, IdleConnTimeout: 10 * time.Minute,
	}}
}

func (n *nginxServer) url(sendfile bool, name string) string {
	port := n.off
	if sendfile {
		port = n.on
	}
	return "http://127.0.0.1:" + strconv.Itoa(port) + "/" + name
}

// nginxRow names a row by client: "curl" or "go-http" (net/http with
// keep-alive, in-process).
func nginxRow(sendfile bool, client, receiver string) row {
	label := map[string]string{"curl": "curl", "go-http": "Go net/http keep-alive"}[client]
	if sendfile {
		return row{"nginx-sendfile-" + client, "nginx sendfile on + " + label, "P nginx", receiver}
	}
	return row{"nginx-nosendfile-" + client, "nginx sendfile off + " + label, "P nginx", receiver}
}

// curlPath fetches the large file with curl -o /dev/null.
func (n *nginxServer) curlPath(curl, big string, size int64, sendfile bool) path {
	return path{rows: []row{nginxRow(sendfile, "curl", "W curl")}, run: func(ctx context.Context) ([]Sample, error) {
		s, err := metered(n.cpu, nil, func(s *Sample) error {
			return n.curl(ctx, s, curl, n.url(sendfile, big), os.DevNull, size)
		})
		return []Sample{s}, err
	}}
}

// curl runs curl -o dest and checks the byte count it reports.
func (n *nginxServer) curl(ctx context.Context, s *Sample, curl, url, dest string, size int64, flags ...string) error {
	var out strings.Builder
	args := append([]string{"-sS", "--fail", "-o", dest, "-w", "%{size_download}"}, flags...)
	ps, err := runCommand(ctx, &out, append(append([]string{curl}, args...), url)...)
	s.ReceiverCPU = waitCPU(ps).Seconds()
	if err != nil {
		return err
	}
	got, _ := strconv.ParseFloat(strings.TrimSpace(out.String()), 64)
	if s.Bytes = int64(got); s.Bytes != size {
		return fmt.Errorf("curl %s: %d bytes, want %d", url, s.Bytes, size)
	}
	return nil
}

// get fetches one file over the warm keep-alive client, discarding it
// with a 1 MiB buffer.
func (n *nginxServer) get(ctx context.Context, url string, buf []byte) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return drain(resp.Body, buf)
}

// drain reads r to the end into buf, counting bytes: io.Discard would
// read in 8 KiB pieces.
func drain(r io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// curlFilePath fetches the large file into a new file under dest. One
// row times curl alone (curl does not fsync); the other adds an fsync of
// the file, as Ferry's client does before it renames, so the two can be
// compared like for like.
func (n *nginxServer) curlFilePath(curl, big, dest string, size int64) path {
	rows := []row{
		{"nginx-sendfile-curl-file", "nginx sendfile on + curl -o file", "P nginx", "W curl"},
		{"nginx-sendfile-curl-file-fsync", "nginx sendfile on + curl -o file, then fsync", "P nginx", "W curl + S fsync"},
	}
	return path{rows: rows, run: func(ctx context.Context) ([]Sample, error) {
		out := filepath.Join(dest, "curl.out")
		defer os.Remove(out)
		s, err := metered(n.cpu, nil, func(s *Sample) error { return n.curl(ctx, s, curl, n.url(true, big), out, size) })
		if err != nil {
			return []Sample{s, s}, err
		}
		synced, err := metered(nil, selfCPU, func(*Sample) error { return fsyncFile(out) })
		f := s
		f.WallSec += synced.WallSec
		f.ReceiverCPU += synced.ReceiverCPU
		return []Sample{s, f}, err
	}}
}

func fsyncFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
