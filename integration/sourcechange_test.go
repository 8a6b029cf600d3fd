package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
)

// TestSourceChangedMidTransfer changes the file while a pull of it is in
// flight, for each strategy: the data proxy holds the connection after
// 1 MiB (ferryd fills the socket buffers and parks), the test truncates,
// replaces (renames another file over it) or grows the file, and lets the
// bytes flow again. A truncated file must fail the pull with Aborted,
// with no byte sent past the new end and no destination or partial file
// left; a replaced one must arrive whole as it was when offered (ferryd
// holds the old inode); a grown one must arrive as offered, without the
// new bytes. Every byte ferryd sent must be the file's, and ferryd must
// serve the next pull. --resume changes none of this: it keeps a partial
// file when the network fails, not when the source changed.
func TestSourceChangedMidTransfer(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	// Truncate well past what can be in flight when the proxy holds, so
	// that ferryd meets the new end while sending and every byte past it
	// would be one it should not have sent.
	cut := roundUp(1<<20+inFlightMax(t)+1<<20, 1<<20)
	data := make([]byte, cut+4<<20)
	chacha.Read(data)
	small := writeRandom(t, root, "small.bin", 100<<10+1)
	proxy := listenDataProxy(t)
	d := startFerryd(t, root, "--advertise-data", proxy.Addr())
	proxy.serve(d.DataAddr)
	truncate := func(t *testing.T, path string) { check(t, os.Truncate(path, int64(cut))) }
	changes := []struct {
		name   string
		change func(t *testing.T, path string)
		whole  bool     // the pull succeeds with the file as offered
		flags  []string // for ferry pull
	}{
		{"truncated", truncate, false, nil},
		{"truncated-resume", truncate, false, []string{"--resume"}},
		{"replaced", func(t *testing.T, path string) {
			other := make([]byte, len(data))
			chacha.Read(other)
			check(t, os.WriteFile(path+".new", other, 0o644))
			check(t, os.Rename(path+".new", path))
		}, true, nil},
		{"grown", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			check(t, err)
			_, err = f.Write(make([]byte, 1<<20))
			check(t, err)
			check(t, f.Close())
		}, true, []string{"--resume"}},
	}
	for _, s := range strategies[:4] {
		for _, c := range changes {
			t.Run(s.flag+"/"+c.name, func(t *testing.T) {
				name := s.flag + "-" + c.name
				check(t, os.WriteFile(filepath.Join(root, name), data, 0o644))
				dest := filepath.Join(out, name)
				held, release := proxy.holdAfter(1 + 1<<20)
				defer release()
				args := append([]string{"pull", "--json", "--server", d.Addr, "--strategy", s.flag}, c.flags...)
				pull := startFerry(t, nil, append(args, name, dest)...)
				select {
				case <-held:
				case <-pull.exited:
					t.Fatalf("pull ended before the proxy held it:\n%s", &pull.stderr)
				}
				c.change(t, filepath.Join(root, name))
				release()
				res := pull.wait(t)
				sent := proxy.lastConn().downstream(t)
				if c.whole {
					// The CLI keeps its data connection (version 2): after
					// the payload the server writes the trailer, 0 for ok.
					if len(sent) != len(data)+1 || sent[len(data)] != 0 {
						t.Fatalf("ferryd sent %d bytes, want the %d offered and a trailer 0", len(sent), len(data))
					}
					sent = sent[:len(data)]
				}
				sameBytes(t, "bytes ferryd sent", sent, data[:min(len(sent), len(data))])
				if c.whole {
					checkLanded(t, res, dest, name, data, s.api)
				} else {
					checkAborted(t, res, dest, len(sent), cut)
				}
				res = ferryOK(t, "pull", "--server", d.Addr, "--strategy", s.flag, "small.bin", "-")
				sameBytes(t, "the next pull", []byte(res.stdout), small)
			})
		}
	}
}

// checkLanded requires a pull that succeeded with want at dest, and no
// partial file.
func checkLanded(t *testing.T, res result, dest, name string, want []byte, strategy ferryv1.Strategy) {
	t.Helper()
	if res.code != 0 {
		t.Fatalf("pull: exit %d, want 0\nstderr:\n%s", res.code, res.stderr)
	}
	got, err := os.ReadFile(dest)
	check(t, err)
	sameBytes(t, "landed file", got, want)
	checkJSONReport(t, res.stdout, name, 0, len(want), strategy)
	noFile(t, dest+".partial")
}

// checkAborted requires a pull of a truncated file that failed with
// Aborted, left nothing, and was sent no byte past the new end.
func checkAborted(t *testing.T, res result, dest string, sent, end int) {
	t.Helper()
	if res.code != 1 || !strings.Contains(res.stderr, "source file changed") || !strings.Contains(res.stderr, "(Aborted)") {
		t.Errorf("pull of a file truncated under it: exit %d, stderr %q; want exit 1 and Aborted, source file changed", res.code, res.stderr)
	}
	if sent > end {
		t.Errorf("ferryd sent %d bytes of a file truncated to %d", sent, end)
	}
	noFile(t, dest)
	noFile(t, dest+".partial")
}

// inFlightMax bounds the bytes a sender can have handed to the kernel
// beyond what the proxy read: its socket's send buffer, autotuned up to
// tcp_wmem's maximum or set up to twice wmem_max, and the proxy's
// receive buffer, which the proxy pins at proxyReadBuffer.
func inFlightMax(t *testing.T) int {
	t.Helper()
	wmem := strings.Fields(readSysctl(t, "net/ipv4/tcp_wmem"))
	if len(wmem) != 3 {
		t.Fatalf("tcp_wmem = %q, want three numbers", wmem)
	}
	return max(atoi(t, wmem[2]), 2*atoi(t, readSysctl(t, "net/core/wmem_max"))) + 2*proxyReadBuffer
}

func readSysctl(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/" + name)
	check(t, err)
	return strings.TrimSpace(string(b))
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	check(t, err)
	return n
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }
