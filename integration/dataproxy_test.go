package integration

import (
	"bytes"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// dataProxy stands between ferry and ferryd's data listener as a network
// would (ferryd advertises the proxy's address). It forwards each
// connection both ways and records what went downstream, server to
// client; it can cut a connection, or hold it still, once a number of
// bytes went down. Unlike rrProxy it carries data-channel traffic only.
type dataProxy struct {
	ln      net.Listener
	backend string // ferryd's real data address; set before the first pull

	closed chan struct{} // closed when the test ends: holds let go

	mu    sync.Mutex
	plan  proxyPlan // for connections accepted from now on
	conns map[*proxyConn]struct{}
	last  *proxyConn
	wg    sync.WaitGroup
}

// proxyPlan says what happens to a connection. Counts include the
// verdict byte: the file's bytes come after it. 0 means never.
type proxyPlan struct {
	cutAt   int64         // forward this many bytes down, then close both sides
	holdAt  int64         // forward this many bytes down, then stop reading until release
	held    chan struct{} // closed when a connection holds
	release chan struct{} // closed to let it go on
	flipAt  int64         // invert the flipAt-th byte that goes down (1 is the verdict), as a faulty network would
}

// proxyConn is one proxied connection.
type proxyConn struct {
	client, server net.Conn
	plan           proxyPlan
	closed         <-chan struct{} // the proxy's
	down           bytes.Buffer    // what went downstream; read once done is closed
	up             bytes.Buffer    // what went upstream, client to server; read once done is closed
	done           chan struct{}   // closed when both directions ended
}

// listenDataProxy opens the proxy's listener: its address goes into
// ferryd's --advertise-data before ferryd runs, so serve comes later.
func listenDataProxy(t *testing.T) *dataProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dataProxy{ln: ln, closed: make(chan struct{}), conns: map[*proxyConn]struct{}{}}
	t.Cleanup(func() {
		close(p.closed)
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.client.Close()
			c.server.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// Addr is the address to advertise.
func (p *dataProxy) Addr() string { return p.ln.Addr().String() }

// serve forwards connections to backend until the test ends.
func (p *dataProxy) serve(backend string) {
	p.backend = backend
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := p.ln.Accept()
			if err != nil {
				return
			}
			p.start(c)
		}
	}()
}

// cutAfter makes later connections drop after n bytes went down (0:
// never), with no hold.
func (p *dataProxy) cutAfter(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plan = proxyPlan{cutAt: n}
}

// corruptAt makes later connections invert their n-th byte down (0:
// never), with no cut or hold.
func (p *dataProxy) corruptAt(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plan = proxyPlan{flipAt: n}
}

// holdAfter makes the next connection stop reading from the server after
// n bytes went down. held is closed then; release lets it go on.
func (p *dataProxy) holdAfter(n int64) (held <-chan struct{}, release func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plan = proxyPlan{holdAt: n, held: make(chan struct{}), release: make(chan struct{})}
	var once sync.Once
	rel := p.plan.release
	return p.plan.held, func() { once.Do(func() { close(rel) }) }
}

// lastConn is the most recently accepted connection.
func (p *dataProxy) lastConn() *proxyConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// proxyReadBuffer is the receive buffer of the proxy's connections to
// ferryd, pinned so that a held connection bounds what ferryd has in
// flight (an autotuned one grows to tcp_rmem's maximum, tens of MiB).
const proxyReadBuffer = 256 << 10

func (p *dataProxy) start(client net.Conn) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, proxyReadBuffer) })
		return err
	}}
	server, err := d.Dial("tcp", p.backend)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	c := &proxyConn{client: client, server: server, plan: p.plan, closed: p.closed, done: make(chan struct{})}
	if c.plan.holdAt > 0 {
		p.plan = proxyPlan{cutAt: p.plan.cutAt} // a hold is for one connection
	}
	p.conns[c], p.last = struct{}{}, c
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		c.run()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		close(c.done)
	}()
}

// run copies both ways until the downstream direction ends, then closes
// both sides.
func (c *proxyConn) run() {
	up := make(chan struct{})
	go func() {
		io.Copy(io.MultiWriter(c.server, &c.up), c.client)
		c.server.(*net.TCPConn).CloseWrite()
		close(up)
	}()
	if err := c.forward(); err != nil {
		// The server reset the connection (a failed send does): pass the
		// reset on, as a network would.
		c.client.(*net.TCPConn).SetLinger(0)
	}
	c.client.Close()
	c.server.Close()
	<-up
}

// forward forwards server to client, honouring the plan. It returns the
// error that ended the server side, nil for an end of stream or a cut.
func (c *proxyConn) forward() error {
	buf := make([]byte, 64<<10)
	var sent int64
	for {
		limit := int64(len(buf))
		if stop := c.nextStop(sent); stop > 0 {
			limit = min(limit, stop-sent)
		}
		n, err := c.server.Read(buf[:limit])
		if at := c.plan.flipAt; at > sent && at <= sent+int64(n) {
			buf[at-1-sent] ^= 0xff
		}
		if n > 0 {
			if _, werr := c.client.Write(buf[:n]); werr != nil {
				return nil
			}
			c.down.Write(buf[:n])
			sent += int64(n)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if sent == c.plan.cutAt {
			return nil
		}
		if sent == c.plan.holdAt {
			close(c.plan.held)
			select {
			case <-c.plan.release:
			case <-c.closed:
				return nil
			}
		}
	}
}

// nextStop is the next count at which the plan acts, 0 if none is ahead.
func (c *proxyConn) nextStop(sent int64) int64 {
	var stop int64
	for _, at := range []int64{c.plan.cutAt, c.plan.holdAt} {
		if at > sent && (stop == 0 || at < stop) {
			stop = at
		}
	}
	return stop
}

// downstream waits for the connection to end and returns the bytes that
// went from server to client, without the verdict byte.
func (c *proxyConn) downstream(t *testing.T) []byte {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		t.Fatal("proxied data connection still open a minute on")
	}
	b := c.down.Bytes()
	if len(b) == 0 || b[0] != 0 {
		t.Fatalf("proxied data connection began %q, want verdict 0 (ok)", b[:min(len(b), 1)])
	}
	return b[1:]
}
