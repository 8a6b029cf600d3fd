package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// nobody is the unprivileged user ferryd runs as to meet the pipe limits.
const nobody = 65534

// TestPipeSizeRefused runs ferryd as an unprivileged user with
// --pipe-size 4 MiB, above /proc/sys/fs/pipe-max-size, which only a
// process with CAP_SYS_RESOURCE may exceed (root without it, as in some
// containers, is refused too). F_SETPIPE_SZ is refused (EPERM), and
// SPLICE must still move every byte, with the default 64 KiB pipe, say so
// in the report's pipe_size and warn once in the log. The control asks
// for pipe-max-size itself, which the same user gets.
func TestPipeSizeRefused(t *testing.T) {
	const asked = 4 << 20
	max := readInt(t, "/proc/sys/fs/pipe-max-size")
	if max >= asked {
		t.Skipf("fs.pipe-max-size is %d: an unprivileged process may ask for %d", max, asked)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to start ferryd as another user")
	}
	dir := sharedDir(t)
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	want := writeRandom(t, root, "f.bin", 5<<20+3)
	ferrydBin := filepath.Join(dir, "ferryd")
	copyFile(t, bin.ferryd, ferrydBin)
	if err := os.Chmod(ferrydBin, 0o755); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name         string
		ask, want    int
		wantWarnings int
	}{
		{"granted", max, max, 0},
		{"refused", asked, 1 << 16, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, log := startFerrydAs(t, ferrydBin, dir, nobody, "--root", root, "--pipe-size", strconv.Itoa(tc.ask))
			for range 2 {
				if got := pullSplice(t, addr, dir, want); got != uint64(tc.want) {
					t.Errorf("uid %d, --pipe-size %d: pipe_size = %d, want %d", nobody, tc.ask, got, tc.want)
				}
			}
			if n := strings.Count(log.String(), "refused the pipe size"); n != tc.wantWarnings {
				t.Errorf("ferryd warned %d times about a refused pipe size, want %d. Log:\n%s", n, tc.wantWarnings, log)
			}
		})
	}
}

// pullSplice pulls f.bin with SPLICE into dir, checks the bytes and
// returns the sender's pipe_size.
func pullSplice(t *testing.T, addr, dir string, want []byte) uint64 {
	t.Helper()
	dest := filepath.Join(dir, "out.bin")
	res := ferryOK(t, "pull", "--json", "--server", addr, "--strategy", "splice", "f.bin", dest)
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(dest)
	sameBytes(t, "pulled with SPLICE", got, want)
	var rep ferryv1.Report
	if err := protojson.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("ferry pull --json printed no report: %v\n%s", err, res.stdout)
	}
	if s := rep.GetSender().GetStrategy(); s != ferryv1.Strategy_STRATEGY_SPLICE {
		t.Errorf("sender strategy %v, want SPLICE", s)
	}
	return rep.GetSender().GetPipeSize()
}

// startFerrydAs runs ferry binary bin as uid (and gid) with args and a
// loopback listener for each plane, and returns its gRPC address and log.
// Go's exec sets the ids before it runs bin, so the process starts with
// no capabilities, which the test checks. Cleanup stops it with SIGTERM
// and requires exit status 0.
func startFerrydAs(t *testing.T, bin, dir string, uid uint32, args ...string) (string, *lines) {
	t.Helper()
	addrs := make(chan string, 1)
	log := newLines(func(line string) {
		if m := servingLine.FindStringSubmatch(line); m != nil {
			select {
			case addrs <- m[1]:
			default:
			}
		}
	})
	cmd := exec.Command(bin, append([]string{"--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0"}, args...)...)
	cmd.Dir, cmd.Env, cmd.Stderr = dir, cleanEnv(), log
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("ferryd as uid %d exited with %v, want status 0. Log:\n%s", uid, err, log)
			}
		case <-time.After(stopTimeout):
			cmd.Process.Kill()
			<-exited
			t.Errorf("ferryd as uid %d did not exit within %v of SIGTERM", uid, stopTimeout)
		}
	})
	select {
	case addr := <-addrs:
		if caps := procStatus(t, cmd.Process.Pid, "CapEff"); strings.Trim(caps, "0") != "" {
			t.Fatalf("ferryd as uid %d has capabilities %s, want none", uid, caps)
		}
		return addr, log
	case err := <-exited:
		t.Fatalf("ferryd as uid %d exited before serving: %v\n%s", uid, err, log)
	case <-time.After(startTimeout):
		t.Fatalf("ferryd as uid %d did not log its serving line within %v:\n%s", uid, startTimeout, log)
	}
	return "", nil
}

// sharedDir is a new directory that other users may read and search
// (t.TempDir is private to root).
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ferry-unprivileged-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// procStatus is a field of /proc/pid/status.
func procStatus(t *testing.T, pid int, field string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return ""
}

func readInt(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("%s: %v", path, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}
