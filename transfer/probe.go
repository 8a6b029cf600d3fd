package transfer

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// probe reports the strategies this kernel accepts, by making each
// strategy's system calls once on a small memory file: a strategy whose
// call is missing (ENOSYS) or refused (by seccomp, say) is left out.
// READ_WRITE is always there.
func probe() []Strategy {
	f, err := probeFile()
	if err != nil {
		return []Strategy{ReadWrite}
	}
	defer f.Close()
	fd := int(f.Fd())
	sock, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return []Strategy{ReadWrite}
	}
	defer unix.Close(sock[0])
	defer unix.Close(sock[1])

	got := []Strategy{ReadWrite}
	if m, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE); err == nil {
		if _, err := unix.Write(sock[0], m[:1]); err == nil {
			got = append(got, Mmap)
		}
		unix.Munmap(m)
	}
	var off int64
	if n, err := unix.Sendfile(sock[0], fd, &off, 1); err == nil && n == 1 {
		got = append(got, Sendfile)
	}
	var p [2]int
	if unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK) == nil {
		off = 0
		if n, err := unix.Splice(fd, &off, p[1], nil, 1, unix.SPLICE_F_NONBLOCK); err == nil && n == 1 {
			if n, err := unix.Splice(p[0], nil, sock[0], nil, 1, unix.SPLICE_F_NONBLOCK); err == nil && n == 1 {
				got = append(got, Splice)
			}
		}
		unix.Close(p[0])
		unix.Close(p[1])
	}
	return got
}

// probeFile returns a one-page file: a memfd, or a removed temporary file
// where memfd_create is refused.
func probeFile() (*os.File, error) {
	fd, err := unix.MemfdCreate("ferry-probe", unix.MFD_CLOEXEC)
	f := os.NewFile(uintptr(fd), "ferry-probe")
	if err != nil {
		f, err = removedTemp()
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(make([]byte, 4096)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// removedTemp returns a new file in the system's temporary directory,
// already removed: nobody sees it, and closing it frees it.
func removedTemp() (*os.File, error) {
	f, err := os.CreateTemp("", "ferry-probe-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return f, nil
}

// probeKernelTLS reports whether the kernel takes the "tls" TCP
// upper-layer protocol (kTLS): it sets TCP_ULP "tls" on a connected
// loopback socket. A kernel without the tls module answers ENOENT. The
// socket is closed at once: nothing is encrypted.
func probeKernelTLS() bool {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return false
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return false
	}
	defer c.Close()
	if s, err := ln.Accept(); err == nil {
		s.Close()
	}
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	rc.Control(func(fd uintptr) {
		ok = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_ULP, "tls") == nil
	})
	return ok
}
