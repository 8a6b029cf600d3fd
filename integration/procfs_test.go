package integration

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// holdings is what a process holds, read from /proc/PID: its open
// descriptors, counted by kind ("socket", "pipe", "anon_inode:[eventpoll]"
// or a file's path), and its memory mappings.
type holdings struct {
	fds  map[string]int
	maps string
}

// holdingsOf reads /proc/PID/fd and /proc/PID/maps.
func holdingsOf(t *testing.T, pid int) holdings {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := holdings{fds: map[string]int{}}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed since ReadDir
		}
		kind, _, _ := strings.Cut(target, ":[") // socket:[123] -> socket
		h.fds[kind]++
	}
	m, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	h.maps = string(m)
	return h
}

// opens reports whether a descriptor is open on path.
func (h holdings) opens(path string) bool { return h.fds[path] > 0 }

// mapsFile reports whether a mapping of path exists.
func (h holdings) mapsFile(path string) bool {
	for _, line := range strings.Split(h.maps, "\n") {
		if strings.HasSuffix(line, " "+path) || strings.HasSuffix(line, " "+path+" (deleted)") {
			return true
		}
	}
	return false
}

// beyond lists what h holds that base did not: more descriptors of a
// kind, and any descriptor or mapping of path.
func (h holdings) beyond(base holdings, path string) []string {
	var extra []string
	for _, kind := range slices.Sorted(maps.Keys(h.fds)) {
		if h.fds[kind] > base.fds[kind] {
			extra = append(extra, fmt.Sprintf("%d fds of %s (baseline %d)", h.fds[kind], kind, base.fds[kind]))
		}
	}
	if h.mapsFile(path) {
		extra = append(extra, "a mapping of "+path)
	}
	return extra
}

// holdings reads what ferryd holds now.
func (d *ferryd) holdings(t *testing.T) holdings {
	t.Helper()
	return holdingsOf(t, d.cmd.Process.Pid)
}

// awaitHoldings polls ferryd's /proc entries until problems returns
// nothing, and fails the test with the last problems after timeout. It
// polls because the kernel gives no event for "a descriptor closed".
func (d *ferryd) awaitHoldings(t *testing.T, what string, timeout time.Duration, problems func(holdings) []string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p := problems(d.holdings(t))
		if len(p) == 0 {
			return
		}
		if time.Now().After(deadline) {
			d.dumpGoroutines()
			t.Fatalf("ferryd %s: still %s after %v\nferryd log, ending in its goroutines:\n%s", what, strings.Join(p, ", "), timeout, d.Log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dumpGoroutines ends ferryd with SIGQUIT, whose stack dump of every
// goroutine (GOTRACEBACK=all, see cleanEnv) lands in d.Log: what a test
// that found ferryd holding too much needs to say what it held.
func (d *ferryd) dumpGoroutines() {
	if d.cmd.Process.Signal(syscall.SIGQUIT) != nil {
		return
	}
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
	}
}

// ferryProc is a process (the ferry CLI, or grpcurl) running in the
// background.
type ferryProc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer // unless the caller gave another writer
	stderr bytes.Buffer
	exited chan struct{}
}

// startFerry starts the ferry CLI with args; its standard output goes to
// stdout, or to a buffer when stdout is nil.
func startFerry(t *testing.T, stdout io.Writer, args ...string) *ferryProc {
	t.Helper()
	return startProc(t, stdout, bin.ferry, args...)
}

// startProc starts name with args as startFerry does. A process still
// running when the test ends is killed.
func startProc(t *testing.T, stdout io.Writer, name string, args ...string) *ferryProc {
	t.Helper()
	p := &ferryProc{cmd: exec.Command(name, args...), exited: make(chan struct{})}
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = cleanEnv(), stdout, &p.stderr
	if stdout == nil {
		p.cmd.Stdout = &p.stdout
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// wait waits up to a minute for the process to exit and returns what it
// left.
func (p *ferryProc) wait(t *testing.T) result {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		p.cmd.Process.Kill()
		<-p.exited
		t.Fatalf("ferry %q: still running after a minute; killed\nstderr:\n%s", p.cmd.Args[1:], &p.stderr)
	}
	return result{p.stdout.String(), p.stderr.String(), p.cmd.ProcessState.ExitCode()}
}
