package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// The tar c | nc peer. Rather than depend on a netcat package, whose
// flags differ between the openbsd, traditional and nmap flavours,
// ferry-bench plays nc itself ("helper nc-send" and "helper nc-recv"):
// a plain read/write loop with a 64 KiB buffer between a pipe and a TCP
// socket, which is what nc does (netcat-openbsd uses 16 KiB). tar and the
// relay are separate processes joined by a pipe, as in the shell
// pipeline users would type.
const relayBuffer = 64 << 10

// NetcatSend copies in to a new TCP connection to addr, then half-closes
// it (nc -N addr port < in).
func NetcatSend(ctx context.Context, addr string, in io.Reader) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := relay(c, in); err != nil {
		return err
	}
	return c.(*net.TCPConn).CloseWrite()
}

// NetcatListen accepts one connection on addr and copies it to out
// (nc -l addr port > out).
func NetcatListen(ctx context.Context, addr string, out io.Writer) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return netcatAccept(ctx, l, out)
}

func netcatAccept(ctx context.Context, l net.Listener, out io.Writer) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	c, err := l.Accept()
	l.Close()
	if err != nil {
		return err
	}
	defer c.Close()
	return relay(out, c)
}

// relay is a read/write loop. The anonymous structs hide ReaderFrom and
// WriterTo, so io.CopyBuffer cannot turn it into splice or sendfile.
func relay(dst io.Writer, src io.Reader) error {
	_, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, relayBuffer))
	return err
}

// tarPath streams the directory with tar c | nc into nc -l > /dev/null,
// or, with extract, into nc -l | tar x under dest.
func tarPath(self, root, dir, work, dest string, files int, extract bool) path {
	r := row{"tar-nc-null", "tar c | nc → nc -l > /dev/null", "W sh: tar c | nc", "W sh: nc -l > /dev/null"}
	if extract {
		r = row{"tar-nc-tarx", "tar c | nc → nc -l | tar x", r.sender, "W sh: nc -l | tar x"}
	}
	return path{rows: []row{r}, run: func(ctx context.Context) ([]Sample, error) {
		out := filepath.Join(dest, "tar-x")
		defer os.RemoveAll(out)
		s, err := runTarNC(ctx, self, filepath.Join(root, dir), work, out, extract)
		s.Bytes, s.Files = int64(files)*4096, files
		return []Sample{s}, err
	}}
}

// runTarNC starts the receiving pipeline, waits until it listens, then
// times the sending pipeline and the receiver's exit. Both CPU figures
// are wait4 rusage of the two shells, which waited for their pipelines.
func runTarNC(ctx context.Context, self, src, work, out string, extract bool) (Sample, error) {
	ports, err := freePorts(1)
	if err != nil {
		return Sample{}, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	recv := `"$0" helper nc-recv "$1" > /dev/null`
	if extract {
		recv = `mkdir -p "$2" && "$0" helper nc-recv "$1" | tar x -C "$2"`
	}
	rs, err := startServer("nc -l", filepath.Join(work, "nc.log"), "sh", "-c", recv, self, addr, out)
	if err != nil {
		return Sample{}, err
	}
	defer rs.stop(0)
	if err := waitListening(ctx, rs, ports[0]); err != nil {
		return Sample{}, err
	}
	return metered(nil, nil, func(s *Sample) error {
		ps, err := runCommand(ctx, nil, "sh", "-c", `tar c -C "$1" . | "$0" helper nc-send "$2"`, self, src, addr)
		s.SenderCPU = waitCPU(ps).Seconds()
		if err != nil {
			return err
		}
		<-rs.done
		s.ReceiverCPU = waitCPU(rs.cmd.ProcessState).Seconds()
		if rs.err != nil {
			return fmt.Errorf("receiving pipeline: %w (see nc.log)", rs.err)
		}
		return nil
	})
}
