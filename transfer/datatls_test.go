package transfer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/internal/testpki"
)

// tlsPair is a server configuration of testpki's server certificate and
// the client configuration that verifies it.
func tlsPair(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	p := testpki.New(t, "ferry data CA")
	cert, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(p.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	server = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	return server, ClientDataTLS(&tls.Config{RootCAs: roots}, "localhost")
}

func TestDataTLSCarriesEveryStrategyItOffers(t *testing.T) {
	srvTLS, cliTLS := tlsPair(t)
	ts := startServer(t, Config{TLS: srvTLS})
	path, want := writeFile(t, t.TempDir(), 3<<20+5)
	for _, st := range []Strategy{ReadWrite, Mmap} {
		tr := ts.offer(t, path, Source{Strategy: st})
		tk := ts.ticket(tr)
		tk.TLS = cliTLS
		got, data := receiveWith(t, tr, t.TempDir(), func(dst *fsroot.Destination) (Stats, error) {
			return Receive(context.Background(), tk, dst, ReceiveConfig{})
		})
		if !bytes.Equal(data, want) {
			t.Fatalf("%v: received bytes differ", st)
		}
		sent, err := tr.Result()
		if err != nil {
			t.Fatal(err)
		}
		for side, s := range map[string]Stats{"sender": sent, "receiver": got} {
			if !strings.HasPrefix(s.Encryption, "TLS 1.3, TLS_") || !strings.HasSuffix(s.Encryption, ", user space") {
				t.Errorf("%v %s: Encryption = %q, want TLS 1.3 in user space", st, side, s.Encryption)
			}
			if s.Syscalls["sendfile"]+s.Syscalls["splice"] != 0 {
				t.Errorf("%v %s: zero-copy calls under TLS: %v", st, side, s.Syscalls)
			}
		}
		if sent.Strategy != st || sent.Syscalls["write"] == 0 || got.Syscalls["read"] == 0 {
			t.Errorf("%v: sender ran %v, counted %v; receiver counted %v", st, sent.Strategy, sent.Syscalls, got.Syscalls)
		}
		// 3 MiB is 193 records of at most 16 KiB: batched, the sender
		// writes them in 256 KiB pieces (a piece may be written in
		// parts, and EAGAIN returns count too).
		if w := sent.Syscalls["write"]; w > 3<<20/writeBatch*4 {
			t.Errorf("%v: %d write(2) calls for 3 MiB over TLS, want the records batched (at most %d)", st, w, 3<<20/writeBatch*4)
		}
		if want := tlsSenderModel(st).CPUCopies; sent.Model.CPUCopies != want || want < 2 {
			t.Errorf("%v: sender model %+v, want %d CPU passes", st, sent.Model, want)
		}
		if got.Model.CPUCopies != 4 {
			t.Errorf("%v: receiver model %+v, want 4 CPU passes (read, decrypt, copy out, write)", st, got.Model)
		}
	}
}

func TestDataTLSRefusesZeroCopyStrategies(t *testing.T) {
	srvTLS, _ := tlsPair(t)
	ts := startServer(t, Config{TLS: srvTLS})
	path, _ := writeFile(t, t.TempDir(), 4096)
	for _, st := range []Strategy{Sendfile, Splice} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ts.Offer(Source{File: f, Strategy: st})
		f.Close()
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "TLS") {
			t.Errorf("Offer(%v) over TLS = %v, want ErrUnsupported naming TLS", st, err)
		}
	}
	for _, st := range ts.Supported() {
		if needsPlainSocket(st) {
			t.Errorf("Supported() = %v lists %v over TLS", ts.Supported(), st)
		}
	}
}

// A plaintext preamble where TLS is required gets one verdict byte and
// nothing else, and the ticket it carried is burnt: it crossed the
// network in clear.
func TestDataTLSRefusesPlaintextPreamble(t *testing.T) {
	srvTLS, _ := tlsPair(t)
	ts := startServer(t, Config{TLS: srvTLS})
	path, _ := writeFile(t, t.TempDir(), 1<<20)
	tr := ts.offer(t, path, Source{Strategy: ReadWrite})
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(appendPreamble(nil, tr.Ticket[:]))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte{byte(VerdictTLSRequired)}) {
		t.Fatalf("server answered %d bytes %x, want the one verdict byte %d", len(got), got[:min(len(got), 16)], VerdictTLSRequired)
	}
	if _, err := tr.Result(); !errors.Is(err, ErrTLSRequired) {
		t.Errorf("transfer ended with %v, want its ticket revoked (%v)", err, ErrTLSRequired)
	}
	_, err = Receive(context.Background(), ts.ticket(tr), discard(t), ReceiveConfig{})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "requires TLS") {
		t.Errorf("plaintext Receive from a TLS data channel = %v, want refused: requires TLS", err)
	}
}

// A kept connection keeps its TLS session: many transfers, one
// handshake.
func TestPoolKeepsTLSSession(t *testing.T) {
	srvTLS, cliTLS := tlsPair(t)
	var handshakes atomic.Int64
	cliTLS.VerifyConnection = func(tls.ConnectionState) error { handshakes.Add(1); return nil }
	ts := startServer(t, Config{TLS: srvTLS})
	path, want := writeFile(t, t.TempDir(), 256<<10)
	p := NewPool(PoolConfig{})
	defer p.Close()
	for i := range 5 {
		tr := ts.offer(t, path, Source{Strategy: ReadWrite})
		tk := ts.ticket(tr)
		tk.TLS = cliTLS
		_, data := receiveWith(t, tr, t.TempDir(), func(dst *fsroot.Destination) (Stats, error) {
			return p.Receive(context.Background(), tk, dst, ReceiveConfig{})
		})
		if !bytes.Equal(data, want) {
			t.Fatalf("transfer %d: bytes differ", i)
		}
	}
	if n := handshakes.Load(); n != 1 || p.Dials() != 1 || p.Reuses() != 4 {
		t.Errorf("5 pooled transfers: %d TLS handshakes, %d dials, %d reuses; want 1, 1, 4", n, p.Dials(), p.Reuses())
	}
}

// A client that expects TLS sends nothing but its ClientHello to a data
// channel that does not answer as TLS: never the ticket.
func TestDataTLSClientNeverSendsTicketInClear(t *testing.T) {
	_, cliTLS := tlsPair(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	heard := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte{byte(VerdictOK)}) // a plaintext server's welcome
		c.SetReadDeadline(time.Now().Add(time.Second))
		b, _ := io.ReadAll(c)
		heard <- b
	}()
	ticket := bytes.Repeat([]byte{0xA5}, TicketSize)
	tk := Ticket{Address: ln.Addr().String(), Ticket: ticket, Length: 10, TLS: cliTLS}
	if _, err := Receive(context.Background(), tk, discard(t), ReceiveConfig{}); err == nil {
		t.Fatal("Receive over TLS from a plaintext server succeeded")
	}
	b := <-heard
	if len(b) == 0 || b[0] != tlsRecordHandshake || bytes.Contains(b, ticket) || bytes.Contains(b, []byte(preambleMagic)) {
		t.Errorf("client sent %d bytes starting %x; want a TLS ClientHello and no preamble or ticket", len(b), b[:min(len(b), 8)])
	}
}

// discard is a /dev/null destination.
func discard(t *testing.T) *fsroot.Destination {
	t.Helper()
	dst, err := fsroot.CreateDestination(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Abort() })
	return dst
}
