package integration

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// rrProxy is a round-robin TCP proxy in front of several gRPC ports, as a
// Kubernetes Service is in front of its pods: each new connection goes to
// the next backend. It never carries data-channel traffic.
type rrProxy struct {
	ln       net.Listener
	backends []string
	next     atomic.Uint64
	served   []atomic.Int64 // connections per backend
	wg       sync.WaitGroup
}

func startProxy(t *testing.T, backends ...string) *rrProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &rrProxy{ln: ln, backends: backends, served: make([]atomic.Int64, len(backends))}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *rrProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		i := int(p.next.Add(1)-1) % len(p.backends)
		p.served[i].Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pipe(c, p.backends[i])
		}()
	}
}

// pipe copies both ways until either side closes.
func (p *rrProxy) pipe(c net.Conn, backend string) {
	defer c.Close()
	b, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer b.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(b, c); b.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(c, b); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}

// Two ferryd replicas behind a round-robin proxy on the gRPC port only:
// every pull succeeds because each offer names the data address of the
// server that minted its ticket, whichever replica the call reached.
func TestReplicasBehindProxy(t *testing.T) {
	root := t.TempDir()
	// The fixed order: two measuring replicas could each pick otherwise.
	a, b := startFerryd(t, root, "--auto=fixed"), startFerryd(t, root, "--auto=fixed")
	proxy := startProxy(t, a.Addr, b.Addr)
	const pulls = 50
	want := make([][]byte, pulls)
	for i := range pulls {
		want[i] = writeRandom(t, root, fmt.Sprintf("f%02d", i), 64<<10+i)
	}
	out := t.TempDir()
	strategy := serverDefault(t, a)
	for i := range pulls {
		dest := filepath.Join(out, fmt.Sprintf("f%02d", i))
		// A new process per pull: a new connection, so the proxy alternates.
		r := ferryOK(t, "pull", "--server", proxy.ln.Addr().String(), "--json", fmt.Sprintf("f%02d", i), dest)
		checkJSONReport(t, r.stdout, fmt.Sprintf("f%02d", i), 0, len(want[i]), strategy(len(want[i])))
		got, err := os.ReadFile(dest)
		if err != nil {
			t.Fatal(err)
		}
		sameBytes(t, dest, got, want[i])
	}
	dataAddrs := map[string]bool{} // what each replica tells callers through the proxy
	for range proxy.backends {
		caps := ferryOK(t, "caps", "--server", proxy.ln.Addr().String())
		for _, line := range strings.Split(caps.stdout, "\n") {
			if addr, ok := strings.CutPrefix(line, "data address:"); ok {
				dataAddrs[strings.TrimSpace(addr)] = true
			}
		}
	}
	for i, addr := range proxy.backends {
		if n := proxy.served[i].Load(); n < pulls/2 {
			t.Errorf("backend %s took %d connections, want at least %d: the proxy did not spread the calls", addr, n, pulls/2)
		}
	}
	if !dataAddrs[a.DataAddr] || !dataAddrs[b.DataAddr] {
		t.Errorf("data addresses seen through the proxy = %v, want both %s and %s", dataAddrs, a.DataAddr, b.DataAddr)
	}
}

// The control for the test above: a replica that advertises the other
// replica's data address hands out tickets that the other refuses.
func TestReplicaAdvertisingAnotherDataAddressFails(t *testing.T) {
	root := t.TempDir()
	a := startFerryd(t, root)
	b := startFerryd(t, root, "--advertise-data", a.DataAddr)
	writeRandom(t, root, "f", 4096)
	// --inline-max 0: 4 KiB would otherwise come inside the offer, with no
	// data connection to refuse.
	r := ferry(t, "pull", "--server", b.Addr, "--inline-max", "0", "f", filepath.Join(t.TempDir(), "f"))
	if r.code == 0 || !strings.Contains(r.stderr, "refused") {
		t.Fatalf("pull from a replica advertising another's data address: exit %d, stderr %q; want a refused ticket", r.code, r.stderr)
	}
}
