package transfer

import (
	"net"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// gatherCache remembers, per local IP address, whether the interface that
// owns it does scatter-gather (ethtool's "scatter-gather: on"), which is
// what lets sendfile skip its CPU copy. Looked up once per address.
type gatherCache struct {
	m sync.Map // string -> bool
}

func (g *gatherCache) gathers(local net.Addr) bool {
	ta, ok := local.(*net.TCPAddr)
	if !ok {
		return false
	}
	key := ta.IP.String()
	if v, ok := g.m.Load(key); ok {
		return v.(bool)
	}
	v := interfaceGathers(ta.IP)
	g.m.Store(key, v)
	return v
}

// interfaceGathers finds the interface that holds ip and asks it with
// ETHTOOL_GSG, which needs no privilege.
func interfaceGathers(ip net.IP) bool {
	name := interfaceOf(ip)
	if name == "" {
		return false
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	value := struct{ cmd, data uint32 }{cmd: unix.ETHTOOL_GSG}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}
	copy(ifr.name[:], name)
	ifr.data = unsafe.Pointer(&value)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	return errno == 0 && value.data != 0
}

func interfaceOf(ip net.IP) string {
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				return ifc.Name
			}
		}
	}
	return ""
}
