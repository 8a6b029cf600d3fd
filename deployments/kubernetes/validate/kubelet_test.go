package validate

// What the kubelet does to ferryd's container, done to a local ferryd:
// start it with the pod's args and env, gRPC-probe it, and SIGTERM it.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/emptypb"
	corev1 "k8s.io/api/core/v1"
)

// ferrydProc is a running ferryd and what it logged.
type ferrydProc struct {
	cmd   *exec.Cmd
	lines chan string   // stderr lines, as they come
	done  chan struct{} // closed when ferryd has exited
	err   error         // cmd.Wait's, once done
	mu    sync.Mutex
	log   []string
}

func startFerryd(t *testing.T, bin string, args, env []string) *ferrydProc {
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Dir = env, t.TempDir()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &ferrydProc{cmd: cmd, lines: make(chan string, 64), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.log = append(p.log, sc.Text())
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default: // nobody is waiting for a line: it is in p.log
			}
		}
		p.err = cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("ferryd's log:\n%s", strings.Join(p.log, "\n"))
		}
	})
	return p
}

// listening are the addresses ferryd logged; health is "" without
// --health-listen.
type listening struct{ grpc, data, health string }

// serving waits for ferryd's "ferryd serving" line, which must be JSON
// (the ConfigMap sets FERRY_LOG_FORMAT=json), and returns its addresses,
// with the health listener's from the line before it. A ferryd that
// refuses its configuration and exits is an error the caller reports,
// not a reason to stop the test.
func (p *ferrydProc) serving(t *testing.T) (addrs listening, err error) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line := <-p.lines:
			var rec struct{ Msg, GRPC, Data, Health string }
			if json.Unmarshal([]byte(line), &rec) != nil {
				continue // a start-up failure is printed as plain text
			}
			if rec.Health != "" {
				addrs.health = rec.Health
			}
			if rec.Msg == "ferryd serving" {
				addrs.grpc, addrs.data = rec.GRPC, rec.Data
				return addrs, nil
			}
		case <-p.done:
			var last string
			p.mu.Lock()
			if len(p.log) > 0 {
				last = p.log[len(p.log)-1]
			}
			p.mu.Unlock()
			return addrs, fmt.Errorf("ferryd exited before serving (%v): %s", p.err, last)
		case <-timeout:
			t.Fatal("ferryd did not log \"ferryd serving\" within 30s")
		}
	}
}

// dial connects the way the kubelet's gRPC prober does: plaintext.
func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	return dialWith(t, addr, insecure.NewCredentials())
}

func dialWith(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(creds), grpc.WithUserAgent("kube-probe/1.32"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// probe runs pr's gRPC check once, as the kubelet does: Check with the
// probe's service name within its timeoutSeconds (default 1).
func probe(t *testing.T, addr string, pr *corev1.Probe) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	timeout := time.Duration(max(pr.TimeoutSeconds, 1)) * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(dial(t, addr)).Check(ctx, &healthpb.HealthCheckRequest{Service: healthService(pr)})
	if err != nil {
		t.Logf("probe %s: %v", addr, err)
		return healthpb.HealthCheckResponse_UNKNOWN
	}
	return resp.GetStatus()
}

func healthService(pr *corev1.Probe) string {
	if pr.GRPC.Service == nil {
		return ""
	}
	return *pr.GRPC.Service
}

// offeredAddress calls ferry.v1.TransferService/GetCapabilities without
// Ferry's generated code (this module does not import Ferry) and returns
// field 3, data_address.
func offeredAddress(t *testing.T, conn *grpc.ClientConn) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var resp emptypb.Empty // every field lands in the unknown fields
	if err := conn.Invoke(ctx, "/ferry.v1.TransferService/GetCapabilities", &emptypb.Empty{}, &resp); err != nil {
		return "", fmt.Errorf("GetCapabilities: %w", err)
	}
	b := resp.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatal("GetCapabilities: bad response")
		}
		b = b[n:]
		if num == 3 && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b)
			return string(v), nil
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			t.Fatal("GetCapabilities: bad response")
		}
		b = b[n:]
	}
	return "", nil
}

// terminate sends SIGTERM as the kubelet does after the preStop hook,
// expects readiness to turn NOT_SERVING (seen on a health Watch, then a
// Check that gets NOT_SERVING or no server), and ferryd to exit 0 before
// the kubelet would SIGKILL it.
func terminate(t *testing.T, errs *problems, p *ferrydProc, addr string, c *corev1.Container, tgps *int64, grace time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // the Watch stays open: it must not hold ferryd's shutdown
	watch, err := healthpb.NewHealthClient(dial(t, addr)).Watch(ctx, &healthpb.HealthCheckRequest{Service: healthService(c.ReadinessProbe)})
	if err != nil {
		errs.addf("health Watch on the readiness probe's port: %v", err)
		return
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		errs.addf("health Watch = %v, %v; want SERVING", r, err)
		if err != nil {
			return // nothing to watch the shutdown on
		}
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r, err := watch.Recv()
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		errs.addf("health Watch after SIGTERM = %v, %v; want NOT_SERVING", r, err)
	}
	checkCtx, checkCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer checkCancel()
	resp, err := healthpb.NewHealthClient(dial(t, addr)).Check(checkCtx, &healthpb.HealthCheckRequest{Service: healthService(c.ReadinessProbe)})
	if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING || err != nil && status.Code(err) != codes.Unavailable {
		errs.addf("readiness Check after SIGTERM = %v, %v; want NOT_SERVING or Unavailable", resp, err)
	}
	// Idle, ferryd has no transfer to wait for: it must not spend its
	// grace (an open health Watch once made it), let alone outlive the
	// kubelet's patience.
	kill := 30 * time.Second // the kubelet's default
	if tgps != nil {
		kill = time.Duration(*tgps) * time.Second
	}
	budget := min(kill-preStopSleep(c), grace/2)
	select {
	case <-p.done:
		if p.err != nil {
			errs.addf("ferryd exited with %v after SIGTERM, want status 0", p.err)
		}
		t.Logf("ferryd exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	case <-time.After(budget):
		errs.addf("idle ferryd still running %v after SIGTERM", budget)
	}
}

func preStopSleep(c *corev1.Container) time.Duration {
	if lc := c.Lifecycle; lc != nil && lc.PreStop != nil && lc.PreStop.Sleep != nil {
		return time.Duration(lc.PreStop.Sleep.Seconds) * time.Second
	}
	return 0
}
