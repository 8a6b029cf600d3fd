package transfer

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrydev/ferry/fsroot"
)

// PoolConfig tunes a Pool. The zero value is ready to use.
type PoolConfig struct {
	// MaxIdle caps the idle connections kept per data address. 0 means 16.
	MaxIdle int
	// IdleTimeout is how long an idle connection is kept for reuse; it is
	// closed then. 0 means 5 s, under the
	// server's default HandshakeTimeout (10 s), after which the server
	// closes it.
	IdleTimeout time.Duration
}

// Pool keeps data connections open between transfers (preamble version
// 2, see preamble.go), keyed by data address, so that a receiver runs
// many transfers over a few connections. A connection is taken by one
// Receive at a time and given back only when its transfer went well, the
// trailer said so and nothing was cancelled: a connection that saw any
// error is closed, never reused. Its methods are safe for concurrent use.
type Pool struct {
	cfg    PoolConfig
	dials  atomic.Int64
	reuses atomic.Int64

	mu     sync.Mutex
	idle   map[string][]idleConn
	closed bool
	reaper *time.Timer     // closes idle connections once they are stale
	v1     map[string]bool // addresses whose server refused keep-alive
}

type idleConn struct {
	c     net.Conn
	since time.Time
}

// NewPool returns an empty pool.
func NewPool(cfg PoolConfig) *Pool {
	return &Pool{cfg: cfg, idle: make(map[string][]idleConn)}
}

// Dials reports how many data connections the pool has opened.
func (p *Pool) Dials() int64 { return p.dials.Load() }

// Reuses reports how many transfers went over a connection an earlier
// transfer had used.
func (p *Pool) Reuses() int64 { return p.reuses.Load() }

// Close closes the idle connections; connections in use are closed when
// their Receive ends. Receive still works after Close, without reuse.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	if p.reaper != nil {
		p.reaper.Stop()
	}
	p.mu.Unlock()
	p.CloseIdle()
	return nil
}

// CloseIdle closes the connections idle now; the pool goes on keeping
// the ones later transfers give back.
func (p *Pool) CloseIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, conns := range p.idle {
		for _, ic := range conns {
			ic.c.Close()
		}
		delete(p.idle, addr)
	}
}

// get takes the most recently used idle connection to addr that is young
// enough, closing stale ones; nil when there is none.
func (p *Pool) get(addr string) net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	conns := p.idle[addr]
	for len(conns) > 0 {
		ic := conns[len(conns)-1]
		conns = conns[:len(conns)-1]
		if time.Since(ic.since) < p.idleTimeout() {
			p.idle[addr] = conns
			return ic.c
		}
		ic.c.Close()
	}
	delete(p.idle, addr)
	return nil
}

// put gives a connection back, or closes it when the pool is closed or
// full.
func (p *Pool) put(addr string, c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle[addr]) >= orDefault(p.cfg.MaxIdle, defaultPoolMaxIdle) {
		c.Close()
		return
	}
	p.idle[addr] = append(p.idle[addr], idleConn{c, time.Now()})
	if p.reaper == nil {
		p.reaper = time.AfterFunc(p.idleTimeout(), p.reap)
	}
}

func (p *Pool) idleTimeout() time.Duration {
	return orDefault(p.cfg.IdleTimeout, defaultPoolIdleTimeout)
}

// reap closes the idle connections that have gone stale, so that neither
// side holds one open past IdleTimeout (the server counts each against
// its idle places until it closes it), and runs again when the next one
// will be stale.
func (p *Pool) reap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reaper = nil
	if p.closed {
		return
	}
	timeout, next := p.idleTimeout(), time.Duration(-1)
	for addr, conns := range p.idle {
		kept := conns[:0]
		for _, ic := range conns {
			age := time.Since(ic.since)
			if age >= timeout {
				ic.c.Close()
				continue
			}
			kept = append(kept, ic)
			if next < 0 || timeout-age < next {
				next = timeout - age
			}
		}
		if len(kept) == 0 {
			delete(p.idle, addr)
		} else {
			p.idle[addr] = kept
		}
	}
	if next >= 0 {
		p.reaper = time.AfterFunc(next, p.reap)
	}
}

// Receive is the package's Receive over a pooled connection: it presents
// the ticket with a keep-alive preamble on an idle connection to
// tk.Address (or a new one), writes exactly tk.Length bytes to dst,
// checks the server's trailer and gives the connection back. An idle
// connection the server has closed meanwhile (no verdict comes) is
// dropped and the ticket presented once more on a new one. The
// statistics cover this transfer only, as Receive's do.
func (p *Pool) Receive(ctx context.Context, tk Ticket, dst *fsroot.Destination, cfg ReceiveConfig) (Stats, error) {
	if err := tk.check(); err != nil {
		return tk.stats(dst), err
	}
	if p.oneShot(tk.Address) {
		return Receive(ctx, tk, dst, cfg)
	}
	c, err := p.connect(ctx, tk, cfg.handshakeTimeout())
	if errors.Is(err, errNoKeepAlive) {
		// A server from before keep-alive: the ticket is unclaimed (the
		// preamble was refused before it was read), so present it again
		// the old way, and always so for this address.
		return Receive(ctx, tk, dst, cfg)
	}
	if err != nil {
		return tk.stats(dst), ctxErr(ctx, err)
	}
	st, reusable, err := receiveOn(ctx, c, tk, dst, cfg, (*recvJob).trailer)
	if reusable {
		p.put(tk.poolKey(), c)
	} else {
		c.Close()
	}
	return st, err
}

// connect presents tk's ticket on a pooled connection, or on a new one
// when there is none or the pooled one turns out closed before its
// verdict. The connection is returned with no deadline set.
func (p *Pool) connect(ctx context.Context, tk Ticket, hs time.Duration) (net.Conn, error) {
	if c := p.get(tk.poolKey()); c != nil {
		verdict, err := presentTicket(ctx, c, ProtocolVersionKeepAlive, tk.Ticket, hs)
		if err == nil {
			p.reuses.Add(1)
			return c, nil
		}
		c.Close()
		if verdict || ctx.Err() != nil {
			return nil, err
		}
		// No verdict: the server never claimed the ticket on this
		// connection (it closed it idle), so it is still good.
	}
	c, err := dialTicket(ctx, tk, ProtocolVersionKeepAlive, hs, func() { p.dials.Add(1) })
	if err != nil {
		if errors.Is(err, errBadPreamble) {
			p.mu.Lock()
			if p.v1 == nil {
				p.v1 = make(map[string]bool)
			}
			p.v1[tk.Address] = true
			p.mu.Unlock()
			return nil, errNoKeepAlive
		}
		return nil, err
	}
	return c, nil
}

// errNoKeepAlive: the server refused a keep-alive preamble on a new
// connection as a bad one, as a server that predates version 2 does.
var errNoKeepAlive = errors.New("the data channel does not keep connections")

// oneShot reports whether addr refused keep-alive: its transfers use a
// connection each (version 1).
func (p *Pool) oneShot(addr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.v1[addr]
}
