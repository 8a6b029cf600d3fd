package client_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/internal/testpki"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestSecurityDialOptions(t *testing.T) {
	p := testpki.New(t, "ferry test CA")
	dir := t.TempDir()
	garbage, missing, token := filepath.Join(dir, "garbage"), filepath.Join(dir, "missing"), filepath.Join(dir, "token")
	if err := os.WriteFile(garbage, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sec     client.Security
		wantErr string // "" means no error
	}{
		{client.Security{}, ""},
		{client.Security{Token: "s3cret"}, ""},
		{client.Security{TokenFile: token}, ""},
		{client.Security{ServerName: "localhost"}, ""},
		{client.Security{CAFile: p.CA, CertFile: p.ClientCert, KeyFile: p.ClientKey, TokenFile: token}, ""},
		{client.Security{Token: "s3cret", TokenFile: token}, "not both"},
		{client.Security{TokenFile: missing}, missing},
		{client.Security{TokenFile: garbage}, "without spaces"},
		{client.Security{CAFile: missing}, missing},
		{client.Security{CAFile: garbage}, "no PEM certificate"},
		{client.Security{CAFile: p.CA, CertFile: p.ClientCert}, "needs its key"},
		{client.Security{CAFile: p.CA, KeyFile: p.ClientKey}, "needs its key"},
		{client.Security{CAFile: p.CA, CertFile: p.ClientCert, KeyFile: p.ServerKey}, "private key does not match"},
	} {
		_, err := tc.sec.DialOptions()
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%+v.DialOptions() = %v, want error %q", tc.sec, err, tc.wantErr)
		}
	}
}

// farConn is a loopback connection that claims to reach a remote host.
type farConn struct{ net.Conn }

func (farConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 7070} }

// TestTokenNotSentInClear dials a plaintext "server" with a token, through
// a dialer whose connections report a non-loopback peer: the handshake
// must fail and the server must receive not one byte, so neither the
// token nor the call crossed.
func TestTokenNotSentInClear(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	received := make(chan int64, 1)
	go func() { received <- drain(l) }()
	opts, err := client.Security{Token: "s3cret"}.DialOptions()
	if err != nil {
		t.Fatal(err)
	}
	dialer := grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return farConn{c}, nil
	})
	c, err := client.Dial(l.Addr().String(), append(opts, dialer)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.Capabilities(ctx)
	c.Close()
	l.Close()
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("Capabilities() with a token over plaintext to 192.0.2.7 = %v, want Unavailable saying the token goes to loopback only", err)
	}
	if n := <-received; n != 0 {
		t.Errorf("the server received %d bytes, want 0", n)
	}
}

// drain accepts connections until l is closed, reads each to its end, and
// returns the bytes received in all.
func drain(l net.Listener) int64 {
	var total int64
	for {
		c, err := l.Accept()
		if err != nil {
			return total
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		total += n
	}
}
