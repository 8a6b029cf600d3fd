package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// server is a long-lived process the harness started: a peer's server
// or ferryd. It runs in its own process group, so a terminal's SIGINT
// reaches only ferry-bench, which stops it by pid.
type server struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startServer starts argv with its output appended to logPath.
func startServer(name, logPath string, argv ...string) (*server, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own copy
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := startOnSpawnThread(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { s.err = cmd.Wait(); close(s.done) }()
	return s, nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// exited reports whether the process is gone, with its wait error.
func (s *server) exited() (bool, error) {
	select {
	case <-s.done:
		return true, s.err
	default:
		return false, nil
	}
}

// stop sends SIGTERM to the server's process group, waits up to grace,
// then SIGKILLs the group and waits for the leader.
func (s *server) stop(grace time.Duration) {
	pgid := s.pid() // Setpgid: the group id is the leader's pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(grace):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
	syscall.Kill(-pgid, syscall.SIGKILL) // workers that outlived their master
}

// runCommand runs argv to completion in its own process group, killing
// the group if ctx ends first. It returns the wait4 state (for CPU) and
// the error with stderr's tail in it.
func runCommand(ctx context.Context, stdout io.Writer, argv ...string) (*os.ProcessState, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr tail
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := startOnSpawnThread(cmd)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil && ctx.Err() != nil {
		return cmd.ProcessState, ctx.Err()
	}
	if err != nil {
		return cmd.ProcessState, fmt.Errorf("%s: %w: %s", argv[0], err, stderr.String())
	}
	return cmd.ProcessState, nil
}

// spawns carries cmd.Start calls to the spawn thread.
var (
	spawns     = make(chan func())
	spawnsOnce sync.Once
)

// startOnSpawnThread starts cmd from one OS thread that lives as long as
// ferry-bench. PR_SET_PDEATHSIG fires when the thread that forked a child
// exits, not the process, and Go ends a thread whose goroutine exits
// while locked to it (Ferry's client locks around its copy loop): a
// child forked from such a thread would be killed mid-run.
func startOnSpawnThread(cmd *exec.Cmd) error {
	spawnsOnce.Do(func() {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread stays
			for f := range spawns {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawns <- func() { errc <- cmd.Start() }
	return <-errc
}

// tail keeps the last 2 KiB written to it.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2048 {
		t.b = t.b[len(t.b)-2048:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.b) }

// waitListening polls /proc/net/tcp{,6} until port is in LISTEN, the
// server exits, or 15 s pass.
func waitListening(ctx context.Context, s *server, port int) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
			if b, err := os.ReadFile(f); err == nil && listeningPorts(b)[port] {
				return nil
			}
		}
		if gone, err := s.exited(); gone {
			return fmt.Errorf("%s exited before listening on %d: %v", s.name, port, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: nothing listening on port %d after 15 s", s.name, port)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// freePorts asks the kernel for n unused loopback ports. Another process
// could take one before the server binds it; the server then fails to
// start and the run reports that.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close() // all held until every port is picked: no duplicates
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
