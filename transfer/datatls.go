package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// TLS on the data channel. A server with Config.TLS set speaks TLS 1.3
// on every data connection: the client's first byte must open a TLS
// handshake record (0x16), never the preamble's "F"; the preamble, the
// verdict, the payload and the trailer then all travel inside TLS, and a
// kept connection keeps its TLS session for the transfers that follow.
// Go's crypto/tls encrypts in user space: the bytes pass through a
// buffer, so only READ_WRITE and MMAP can run (SENDFILE and SPLICE would
// need kernel TLS), and the report's model counts the encryption pass.
const (
	// tlsRecordHandshake is the first byte of a TLS client: the content
	// type of a handshake record.
	tlsRecordHandshake = 0x16
	// DataALPN is the application protocol both ends of a TLS data
	// connection name, so that neither takes the other for a gRPC (h2)
	// endpoint that happens to hold the same certificate.
	DataALPN = "ferry-data/1"
)

// ErrTLSRequired: a data connection spoke plaintext to a data channel
// that requires TLS. The server answers VerdictTLSRequired and burns the
// ticket the preamble carried, since it crossed the network in clear.
var ErrTLSRequired = errors.New("the data channel requires TLS; the ticket was presented in clear and is revoked")

// ServerDataTLS derives the data channel's TLS configuration from the
// control plane's: the same certificates, client CAs and client
// authentication, and, when base reloads its files per handshake
// (GetConfigForClient), the same reloading, so that a renewed
// certificate reaches both channels. The data channel takes TLS 1.3 only
// and names DataALPN.
func ServerDataTLS(base *tls.Config) *tls.Config {
	cfg := tightenTLS(base)
	if get := base.GetConfigForClient; get != nil {
		cfg.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := get(hi)
			if c == nil || err != nil {
				return c, err
			}
			return tightenTLS(c), nil
		}
	}
	return cfg
}

// ClientDataTLS derives a receiver's data-channel configuration from the
// one it verifies the control plane with: the same roots, client
// certificate and server name (serverName when base names none: the
// control plane's host, not the data address's, which behind a
// Kubernetes Service is a pod IP), TLS 1.3 only, DataALPN.
func ClientDataTLS(base *tls.Config, serverName string) *tls.Config {
	cfg := tightenTLS(base)
	if cfg.ServerName == "" {
		cfg.ServerName = serverName
	}
	return cfg
}

// tightenTLS is a copy of c that takes TLS 1.3 only and names DataALPN.
func tightenTLS(c *tls.Config) *tls.Config {
	cfg := c.Clone()
	cfg.MinVersion = tls.VersionTLS13
	cfg.NextProtos = []string{DataALPN}
	cfg.GetConfigForClient = nil
	return cfg
}

// DescribeTLS names the path a TLS connection's bytes take, for reports:
// "TLS 1.3, TLS_AES_128_GCM_SHA256, user space".
func DescribeTLS(st tls.ConnectionState) string {
	return fmt.Sprintf("%s, %s, user space", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
}

// secureConn is a data connection under TLS: the TLS connection and the
// counted socket beneath it.
type secureConn struct {
	tls  *tls.Conn
	raw  *countedConn
	desc string // DescribeTLS
}

// secured returns c's TLS layer when c is a TLS data connection made by
// this package, nil otherwise.
func secured(c net.Conn) *secureConn {
	if tc, ok := c.(*tls.Conn); ok {
		if cc, ok := tc.NetConn().(*countedConn); ok {
			return &secureConn{tls: tc, raw: cc, desc: DescribeTLS(tc.ConnectionState())}
		}
	}
	return nil
}

// countedConn is a TCP connection whose reads and writes are system
// calls made here, through RawConn, so that each read(2) and write(2)
// the TLS layer causes is counted into n (when set), EAGAIN returns
// included, as the plaintext loops count theirs. Deadlines hold as for
// the TCPConn.
type countedConn struct {
	*net.TCPConn
	rc      syscall.RawConn
	n       *counts // the running transfer's counts; nil between transfers
	pending []byte  // bytes already read from the socket, returned first
	first   int     // the first byte the peer sent, -1 until one came
	batch   *[]byte // while holding: records not yet written (writeBatch)
}

// writeBatch is how countedConn spares system calls: crypto/tls writes
// one record (at most 16 KiB) at a time, and on 2 cores a 16 KiB
// write(2) cost about as much as encrypting it, so a sender's copy loop
// holds its records and writes them in pieces of this size. Reads are
// not batched: reading ahead into a buffer of our own saved reads but
// cost a copy of every byte, and measured slower (BenchmarkSendTLS).
const writeBatch = 256 << 10

func newCountedConn(c net.Conn, pending []byte) (*countedConn, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil, errors.New("data connection is not TCP")
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &countedConn{TCPConn: tc, rc: rc, pending: pending, first: -1}, nil
}

func (c *countedConn) count(s sysno) {
	if c.n != nil {
		c.n[s]++
	}
}

func (c *countedConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.readSocket(p)
}

// readSocket is one counted read(2) into p, waiting for the socket to be
// readable; EOF is io.EOF.
func (c *countedConn) readSocket(p []byte) (int, error) {
	var n int
	var err error
	werr := c.rc.Read(func(fd uintptr) bool {
		for {
			n, err = unix.Read(int(fd), p)
			c.count(sysRead)
			if err != unix.EINTR {
				return err != unix.EAGAIN
			}
		}
	})
	switch {
	case werr != nil:
		return 0, werr
	case err != nil:
		return 0, sockErr(err)
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	if c.first < 0 {
		c.first = int(p[0])
	}
	return n, nil
}

// Write writes p, or, while holding, adds it to the batch, writing the
// batch first when p would not fit.
func (c *countedConn) Write(p []byte) (int, error) {
	if c.batch == nil {
		return c.writeSocket(p)
	}
	b := *c.batch
	if len(b)+len(p) > cap(b) {
		if _, err := c.writeSocket(b); err != nil {
			return 0, err
		}
		b = b[:0]
	}
	*c.batch = append(b, p...)
	return len(p), nil
}

// hold makes Write batch what it is given, until release.
func (c *countedConn) hold() {
	bp := getBuffer(writeBatch)
	*bp = (*bp)[:0]
	c.batch = bp
}

// release writes what the batch holds and stops batching.
func (c *countedConn) release() error {
	bp := c.batch
	c.batch = nil
	var err error
	if len(*bp) > 0 {
		_, err = c.writeSocket(*bp)
	}
	*bp = (*bp)[:cap(*bp)]
	putBuffer(bp)
	return err
}

// writeSocket is counted write(2) calls until p is written, waiting for
// the socket to take more.
func (c *countedConn) writeSocket(p []byte) (int, error) {
	var done int
	var err error
	werr := c.rc.Write(func(fd uintptr) bool {
		for done < len(p) {
			n, e := unix.Write(int(fd), p[done:])
			c.count(sysWrite)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			case nil:
				done += n
				continue
			}
			err = sockErr(e)
			return true
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return done, err
}

// acceptTLS runs the server's half of a TLS handshake on a connection
// whose first byte, already read, opened it, within the deadline already
// set; ctx ends it early.
func acceptTLS(ctx context.Context, c net.Conn, first byte, cfg *tls.Config) (*tls.Conn, error) {
	cc, err := newCountedConn(c, []byte{first})
	if err != nil {
		return nil, err
	}
	tc := tls.Server(cc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	if v := tc.ConnectionState().Version; v != tls.VersionTLS13 {
		return nil, fmt.Errorf("data channel negotiated %s, not TLS 1.3", tls.VersionName(v))
	}
	return tc, nil
}

// dialTLS runs the client's half of the handshake on a new data
// connection, within timeout. A server too busy to take the connection
// answers VerdictUnavailable in clear before it reads anything: that
// byte where a TLS record should start is errBusy, which the caller
// retries. Nothing but the ClientHello is sent before the server is
// verified.
func dialTLS(ctx context.Context, c net.Conn, cfg *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	cc, err := newCountedConn(c, nil)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(timeout))
	tc := tls.Client(cc, cfg)
	err = tc.HandshakeContext(ctx)
	if err != nil {
		if cc.first == int(VerdictUnavailable) {
			return nil, errBusy
		}
		return nil, ctxErr(ctx, fmt.Errorf("%w: TLS handshake: %w", ErrRefused, err))
	}
	c.SetDeadline(time.Time{})
	return tc, nil
}

// handshakeTLS serves a connection on a data channel where TLS is on
// or asked for, once its first byte came: a TLS handshake, then the
// preamble inside it; or, for a plaintext preamble where TLS is
// required, refusePlaintext. A TLS client at a plaintext data channel is
// dropped.
func (d *dataConn) handshakeTLS(first byte) claimed {
	switch {
	case d.tlsCfg == nil:
		d.cfg.Events.refused(RefusedBadPreamble)
		return claimed{}
	case first != tlsRecordHandshake:
		d.refusePlaintext(first)
		return claimed{}
	}
	tc, err := acceptTLS(d.ctx, d.c, first, d.tlsCfg)
	if err != nil {
		d.cfg.logger().Debug("data connection: TLS handshake failed", "peer", d.c.RemoteAddr().String(), "err", err)
		return claimed{}
	}
	d.c = tc
	d.sec = secured(tc)
	return d.claim()
}

// refusePlaintext answers a plaintext preamble on a data channel that
// requires TLS: it reads the rest of it, revokes the ticket it carried
// (which crossed the network in clear), and answers VerdictTLSRequired,
// sending nothing else.
func (d *dataConn) refusePlaintext(first byte) {
	var buf [preambleSize]byte
	buf[0] = first
	d.cfg.Events.refused(RefusedPlaintext)
	if _, err := io.ReadFull(d.c, buf[1:]); err == nil {
		if ticket, _, ok, _ := parsePreamble(buf[:]); ok {
			if t, _ := d.tickets.claim(ticket, remoteIP(d.c)); t != nil {
				t.peer = d.c.RemoteAddr().String()
				t.finish(Stats{Strategy: t.Strategy}, ErrTLSRequired)
			}
		}
	}
	d.c.Write([]byte{byte(VerdictTLSRequired)})
}

// tcp is the data connection's TCP socket, beneath TLS when there is
// TLS.
func (d *dataConn) tcp() (*net.TCPConn, bool) {
	if d.sec != nil {
		return d.sec.raw.TCPConn, true
	}
	tc, ok := d.c.(*net.TCPConn)
	return tc, ok
}

// secureJob makes j write through TLS when the connection has it,
// counting the socket calls TLS makes as j's, and returns what undoes
// that once the loop is over.
func (d *dataConn) secureJob(j *sendJob) func() {
	if d.sec == nil {
		return func() {}
	}
	j.tls, d.sec.raw.n = d.sec.tls, &j.n
	return func() { d.sec.raw.n = nil }
}

// writeTLS is writeSocket through TLS: encrypted in user space a record
// at a time, the records written in writeBatch pieces, each a counted
// write(2).
func (j *sendJob) writeTLS(p []byte) (int64, error) {
	raw, _ := j.tls.NetConn().(*countedConn)
	if raw == nil {
		n, err := j.tls.Write(p)
		j.advance(int64(n))
		return int64(n), err
	}
	raw.hold() // the records of p, written in writeBatch pieces
	n, err := j.tls.Write(p)
	if ferr := raw.release(); err == nil && ferr != nil {
		n, err = 0, ferr
	}
	j.advance(int64(n))
	return int64(n), err
}

// readTLS is read through TLS: decrypted in user space, each read(2)
// beneath counted. io.EOF reads as 0 bytes, as read(2) does; the idle
// timeout holds as in wait. A record that fails its check (a byte
// changed on the way) fails the receive.
func (r *recvJob) readTLS(p []byte) (int, error) {
	for {
		n, err := r.sec.tls.Read(p)
		switch {
		case n > 0:
			return n, nil
		case err == io.EOF:
			return 0, nil
		case r.conn == nil || !errors.Is(err, os.ErrDeadlineExceeded):
			return 0, fmt.Errorf("data channel (TLS): got %d bytes, then %w", r.got, err)
		}
		if err := r.idleMore(); err != nil {
			return 0, err
		}
	}
}

// useTLS makes the job read through sec, counting the reads beneath it
// as the job's. A TLS receiver never splices: the socket holds
// ciphertext.
func (r *recvJob) useTLS(sec *secureConn) {
	r.sec = sec
	sec.raw.n = &r.n
}

// dataSocket is the RawConn of c's TCP socket, beneath TLS when c is a TLS
// data connection (then returned too).
func dataSocket(c net.Conn) (syscall.RawConn, *secureConn, error) {
	if sec := secured(c); sec != nil {
		rc, err := sec.raw.TCPConn.SyscallConn()
		return rc, sec, err
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, nil, errors.New("data connection has no file descriptor")
	}
	rc, err := sc.SyscallConn()
	return rc, nil, err
}

// needsPlainSocket reports the strategies that hand the kernel page
// references for a socket to send as they are: nothing in user space can
// encrypt them on the way, so they cannot run over user-space TLS.
func needsPlainSocket(st Strategy) bool { return st == Sendfile || st == Splice }

// DataTLS reports whether this server's data channel requires TLS.
func (s *Server) DataTLS() bool { return s.tlsCfg != nil }

// secure runs the TLS handshake on c when tk asks for TLS, and returns
// the connection to present the ticket on; on failure c is closed.
func (tk Ticket) secure(ctx context.Context, c net.Conn, timeout time.Duration) (net.Conn, error) {
	if tk.TLS == nil {
		return c, nil
	}
	tc, err := dialTLS(ctx, c, tk.TLS, timeout)
	if err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// poolKey keys a Pool's idle connections: the address, and whether they
// are TLS, so that a connection of one kind never carries a transfer
// meant for the other.
func (tk Ticket) poolKey() string {
	if tk.TLS != nil {
		return "tls " + tk.Address
	}
	return tk.Address
}
