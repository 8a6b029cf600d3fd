package integration

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

const (
	startTimeout = 15 * time.Second // to the serving line and SERVING
	stopTimeout  = 15 * time.Second // SIGTERM to exit with nothing running
	serviceName  = "ferry.v1.TransferService"
)

// servingLine is ferryd's start-up log line (slog text format), which
// names the ports it bound when given port 0.
var servingLine = regexp.MustCompile(`msg="ferryd serving" grpc=(\S+) data=(\S+)`)

// ferryd is one ferryd process serving Root on loopback.
type ferryd struct {
	Root     string
	Addr     string // gRPC host:port
	DataAddr string // data channel host:port
	Log      *lines // its standard error

	cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has been waited for
	waitErr error
	conn    *grpc.ClientConn
}

// startFerryd runs ferryd on root with ports chosen by the kernel, waits
// for its serving line and for grpc.health.v1 to say SERVING, and stops it
// (SIGTERM, exit status 0 required) when the test ends. args come after
// the defaults, so they override them.
func startFerryd(t *testing.T, root string, args ...string) *ferryd {
	t.Helper()
	return startFerrydDial(t, root, []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, args...)
}

// startFerrydDial is startFerryd for a ferryd that plaintext will not
// reach: dial are the options of the test's own connection (TLS
// credentials, a token), used for the health wait and by Conn.
func startFerrydDial(t *testing.T, root string, dial []grpc.DialOption, args ...string) *ferryd {
	t.Helper()
	return startFerrydEnv(t, root, dial, nil, args...)
}

// startFerrydEnv is startFerrydDial with env added to ferryd's
// environment (a later entry wins over an earlier one of the same name).
func startFerrydEnv(t *testing.T, root string, dial []grpc.DialOption, env []string, args ...string) *ferryd {
	t.Helper()
	d := &ferryd{Root: root, exited: make(chan struct{})}
	addrs := make(chan []string, 1)
	probed := make(chan struct{}, 1)
	d.Log = newLines(func(line string) {
		if m := servingLine.FindStringSubmatch(line); m != nil {
			select {
			case addrs <- m[1:]:
			default:
			}
		}
		if probeLine.MatchString(line) {
			select {
			case probed <- struct{}{}:
			default:
			}
		}
	})
	defaults := []string{"--root", root, "--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", "--shutdown-grace", "10s"}
	d.cmd = exec.Command(bin.ferryd, append(defaults, args...)...)
	d.cmd.Env, d.cmd.Stderr = append(cleanEnv(), env...), d.Log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() { d.cleanup(t) })
	select {
	case a := <-addrs:
		d.Addr, d.DataAddr = a[0], a[1]
	case <-d.exited:
		t.Fatalf("ferryd exited before serving: %v\n%s", d.waitErr, d.Log)
	case <-time.After(startTimeout):
		t.Fatalf("ferryd did not log its serving line within %v:\n%s", startTimeout, d.Log)
	}
	conn, err := grpc.NewClient(d.Addr, dial...)
	if err != nil {
		t.Fatal(err)
	}
	d.conn = conn
	t.Cleanup(func() { conn.Close() }) // before d.cleanup stops ferryd
	d.awaitHealth(t, healthpb.HealthCheckResponse_SERVING)
	if probes(args, env) {
		// The start-up probe runs in the background: wait for it, so that
		// its transfers neither compete with the test's nor change the
		// server's choice, descriptors or counts under it.
		select {
		case <-probed:
		case <-d.exited:
			t.Fatalf("ferryd exited during its start-up probe: %v\n%s", d.waitErr, d.Log)
		case <-time.After(startTimeout):
			t.Fatalf("ferryd's start-up probe did not end within %v:\n%s", startTimeout, d.Log)
		}
	}
	return d
}

// probeLine is the log line that ends the start-up probe, well or not.
var probeLine = regexp.MustCompile(`auto strategy seeded by the start-up probe|start-up probe failed`)

// probes reports whether a ferryd started with args and env runs the
// start-up probe: it does unless told --auto=fixed or --auto-probe=false.
func probes(args, env []string) bool {
	for _, a := range append(slices.Clone(args), env...) {
		switch a {
		case "--auto=fixed", "--auto-probe=false", "FERRY_AUTO=fixed", "FERRY_AUTO_PROBE=false":
			return false
		}
	}
	return true
}

// Conn is the test's gRPC connection to ferryd.
func (d *ferryd) Conn() *grpc.ClientConn { return d.conn }

// awaitHealth watches the service's health until it reports want.
func (d *ferryd) awaitHealth(t *testing.T, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	w := watchHealth(ctx, t, d)
	defer w.cancel() // an open Watch would hold up ferryd's GracefulStop
	w.await(t, want)
}

// Signal sends sig to the process.
func (d *ferryd) Signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// Stop sends SIGTERM and requires exit status 0 within stopTimeout.
func (d *ferryd) Stop(t *testing.T) {
	t.Helper()
	d.Signal(t, syscall.SIGTERM)
	d.AwaitExit(t, stopTimeout)
}

// AwaitExit waits up to timeout for the process to exit, which it must do
// with status 0; past timeout it is killed and the test fails.
func (d *ferryd) AwaitExit(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-d.exited:
	case <-time.After(timeout):
		d.cmd.Process.Kill()
		<-d.exited
		t.Fatalf("ferryd did not exit within %v; killed it. Log:\n%s", timeout, d.Log)
	}
	if d.waitErr != nil {
		t.Fatalf("ferryd exited with %v, want status 0. Log:\n%s", d.waitErr, d.Log)
	}
}

// cleanup stops a ferryd the test left running.
func (d *ferryd) cleanup(t *testing.T) {
	select {
	case <-d.exited:
	default:
		d.Stop(t)
	}
}

// lines collects a process's output and calls onLine with each complete
// line as it arrives. It is an io.Writer safe for exec's copying
// goroutine and the test to share.
type lines struct {
	mu      sync.Mutex
	text    strings.Builder
	partial string
	onLine  func(string)
}

func newLines(onLine func(string)) *lines { return &lines{onLine: onLine} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.text.Write(p)
	buf := l.partial + string(p)
	for {
		i := strings.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		if l.onLine != nil {
			l.onLine(buf[:i])
		}
		buf = buf[i+1:]
	}
	l.partial = buf
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.text.String()
}

// healthWatch is an open grpc.health.v1 Watch of the transfer service.
type healthWatch struct {
	stream grpc.ServerStreamingClient[healthpb.HealthCheckResponse]
	cancel context.CancelFunc
	d      *ferryd
}

// watchHealth opens a Watch, waiting for the connection to be ready.
func watchHealth(ctx context.Context, t *testing.T, d *ferryd) *healthWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	s, err := healthpb.NewHealthClient(d.Conn()).Watch(ctx, &healthpb.HealthCheckRequest{Service: serviceName}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	return &healthWatch{s, cancel, d}
}

// await reads status updates until want.
func (w *healthWatch) await(t *testing.T, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	for {
		resp, err := w.stream.Recv()
		if err != nil {
			t.Fatalf("Health.Watch(%q) before %v: %v\nferryd log:\n%s", serviceName, want, err, w.d.Log)
		}
		if resp.GetStatus() == want {
			return
		}
	}
}

// awaitNotServing waits for the Watch to report shutdown, as NOT_SERVING
// or by ending (ferryd may end Watch streams when it starts shutting
// down, so they do not hold up GracefulStop), then requires a Check to
// say NOT_SERVING.
func (w *healthWatch) awaitNotServing(ctx context.Context, t *testing.T) {
	t.Helper()
	for {
		resp, err := w.stream.Recv()
		if err != nil || resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
	}
	resp, err := healthpb.NewHealthClient(w.d.Conn()).Check(ctx, &healthpb.HealthCheckRequest{Service: serviceName})
	if resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Health.Check(%q) after the Watch saw shutdown = %v, %v; want NOT_SERVING\nferryd log:\n%s", serviceName, resp, err, w.d.Log)
	}
}
