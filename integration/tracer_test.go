package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tracer is a running `strace -f -c` attached to a process.
type tracer struct {
	cmd    *exec.Cmd
	out    string // strace's -o file: the summary table
	stderr *lines
	exited chan struct{}
	err    error
}

var (
	attachedThreads = regexp.MustCompile(`Process (\d+) attached with (\d+) threads`)
	attachedOne     = regexp.MustCompile(`Process (\d+) attached$`)
)

// attachStrace starts strace on pid and returns once strace has attached
// to every thread the process has.
func attachStrace(t *testing.T, straceBin string, pid int) *tracer {
	t.Helper()
	tr := &tracer{out: filepath.Join(t.TempDir(), "strace.out"), exited: make(chan struct{})}
	ready := make(chan struct{})
	seen := map[string]bool{}
	tr.stderr = newLines(func(line string) {
		if m := attachedOne.FindStringSubmatch(line); m != nil {
			seen[m[1]] = true
		}
		if attachedThreads.MatchString(line) || coversTasks(pid, seen) {
			select {
			case <-ready:
			default:
				close(ready)
			}
		}
	})
	tr.cmd = exec.Command(straceBin, "-f", "-c", "-e", "trace="+strings.Join(tracedCalls, ","), "-o", tr.out, "-p", strconv.Itoa(pid))
	tr.cmd.Stderr = tr.stderr
	if err := tr.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		tr.err = tr.cmd.Wait()
		close(tr.exited)
	}()
	t.Cleanup(func() { tr.cmd.Process.Kill(); <-tr.exited })
	select {
	case <-ready:
		return tr
	case <-tr.exited:
		t.Fatalf("strace exited before attaching: %v\n%s", tr.err, tr.stderr)
	case <-time.After(startTimeout):
		t.Fatalf("strace did not attach to every thread of %d within %v:\n%s", pid, startTimeout, tr.stderr)
	}
	return nil
}

// coversTasks reports whether every thread of pid is in seen.
func coversTasks(pid int, seen map[string]bool) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		if !seen[task.Name()] {
			return false
		}
	}
	return true
}

// stop interrupts strace, which detaches and writes its summary, and
// returns the rows of that summary.
func (tr *tracer) stop(t *testing.T) map[string]straceRow {
	t.Helper()
	tr.cmd.Process.Signal(os.Interrupt)
	select {
	case <-tr.exited:
	case <-time.After(stopTimeout):
		t.Fatalf("strace did not exit within %v of SIGINT:\n%s", stopTimeout, tr.stderr)
	}
	if !exitedCleanly(tr.cmd) {
		t.Fatalf("strace: %v\n%s", tr.err, tr.stderr)
	}
	summary, err := os.ReadFile(tr.out)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := parseStraceSummary(string(summary))
	if err != nil {
		t.Fatalf("strace summary: %v\n%s", err, summary)
	}
	return counts
}

// exitedCleanly accepts status 0 and death by the SIGINT strace re-raises
// after detaching.
func exitedCleanly(cmd *exec.Cmd) bool {
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return cmd.ProcessState.Success() || ok && ws.Signaled() && ws.Signal() == syscall.SIGINT
}

// straceRow is one line of `strace -c`'s table.
type straceRow struct{ calls, errors uint64 }

// parseStraceSummary reads the calls and errors columns of `strace -c`'s
// table (errors is blank when there were none):
//
//	% time     seconds  usecs/call     calls    errors syscall
//	------ ----------- ----------- --------- --------- ----------------
//	 62.43    0.001286        1286         1           sendfile
//	 37.57    0.000774          39        20         2 splice
func parseStraceSummary(text string) (map[string]straceRow, error) {
	rows := map[string]straceRow{}
	header := false
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "%":
			header = true
		case !header || len(f) < 5 || strings.HasPrefix(f[0], "---") || f[len(f)-1] == "total":
		default:
			var row straceRow
			var err error
			if row.calls, err = strconv.ParseUint(f[3], 10, 64); err == nil && len(f) > 5 {
				row.errors, err = strconv.ParseUint(f[4], 10, 64)
			}
			if err != nil {
				return nil, fmt.Errorf("line %q: %w", line, err)
			}
			rows[f[len(f)-1]] = row
		}
	}
	if !header {
		return nil, fmt.Errorf("no table")
	}
	return rows, nil
}
