package integration

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestLimitFlags checks that ferryd's limit flags reach the server:
// --max-transfers and --max-streams make the next Download
// ResourceExhausted, --max-handshakes and --handshake-timeout bound the
// connections that have not sent a preamble, and --bind-data-to-client
// refuses a ticket from another address (127.0.0.2, a second loopback
// source on Linux).
func TestLimitFlags(t *testing.T) {
	root := t.TempDir()
	writeRandom(t, root, "f.bin", 100_000)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, tc := range []struct{ flag, mention string }{
		{"--max-transfers", "too many concurrent transfers"},
		{"--max-streams", "too many concurrent streams"},
	} {
		d := startFerryd(t, root, tc.flag, "1")
		api := ferryv1.NewTransferServiceClient(d.Conn())
		held, err := api.Download(ctx, &ferryv1.DownloadRequest{Path: "f.bin"})
		if err == nil {
			_, err = held.Recv()
		}
		if err != nil {
			t.Fatalf("%s 1: first Download() = %v, want an offer", tc.flag, err)
		}
		err = firstErr(ctx, api)
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s 1: second Download() = %v, want %v mentioning %q", tc.flag, err, codes.ResourceExhausted, tc.mention)
		}
	}

	const hsTimeout = time.Second
	d := startFerryd(t, root, "--max-handshakes", "1", "--handshake-timeout", hsTimeout.String(), "--bind-data-to-client")
	start := time.Now()
	silent := dial(t, "127.0.0.1", d.DataAddr)
	if got := readAll(t, dial(t, "127.0.0.1", d.DataAddr)); string(got) != "\x03" {
		t.Errorf("connection past --max-handshakes 1 read %q, want the verdict 3 (unavailable) and EOF", got)
	}
	if got := readAll(t, silent); len(got) != 0 || time.Since(start) < hsTimeout {
		t.Errorf("silent connection: read %q after %v, want EOF after --handshake-timeout %v", got, time.Since(start), hsTimeout)
	}

	stream, err := ferryv1.NewTransferServiceClient(d.Conn()).Download(ctx, &ferryv1.DownloadRequest{Path: "f.bin"})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.Recv()
	if err != nil || msg.GetOffer() == nil {
		t.Fatalf("Download() = %v, %v; want an offer", msg, err)
	}
	preamble := append([]byte("FERY\x01"), msg.GetOffer().GetTicket()...)
	for _, tc := range []struct {
		from    string
		verdict byte
		bytes   int // after the verdict
	}{
		{"127.0.0.2", 1, 0}, // refused, and the ticket stays good
		{"127.0.0.1", 0, 100_000},
	} {
		c := dial(t, tc.from, d.DataAddr)
		if _, err := c.Write(preamble); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, c); len(got) != 1+tc.bytes || got[0] != tc.verdict {
			t.Errorf("--bind-data-to-client, ticket from %s: read %d bytes starting %q, want verdict %d then %d bytes",
				tc.from, len(got), got[:min(len(got), 1)], tc.verdict, tc.bytes)
		}
	}
}

// firstErr starts a Download of f.bin and returns the error before or
// instead of its first message.
func firstErr(ctx context.Context, api ferryv1.TransferServiceClient) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := api.Download(ctx, &ferryv1.DownloadRequest{Path: "f.bin"})
	if err != nil {
		return err
	}
	_, err = s.Recv()
	return err
}

// dial connects to addr from the local address ip.
func dial(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

// readAll reads c to its end; a reset after the bytes counts as the end.
func readAll(t *testing.T, c net.Conn) []byte {
	t.Helper()
	got, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("reading: %v", err)
	}
	return got
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

// TestFerrydRejectsNegativeSettings: a negative limit or duration is a
// mistake (a negative --ticket-ttl used to expire every ticket at once), so
// ferryd refuses to start, exit 2, naming the flag.
func TestFerrydRejectsNegativeSettings(t *testing.T) {
	for _, flag := range []string{"--ticket-ttl=-1s", "--shutdown-grace=-1s", "--handshake-timeout=-1s", "--max-transfers=-1", "--max-streams=-1", "--pipe-size=-1"} {
		r := run(t, cleanEnv(), bin.ferryd, "--root", t.TempDir(), "--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", flag)
		name, _, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
		if r.code != 2 || !strings.Contains(r.stderr, "--"+name) {
			t.Errorf("ferryd %s: exit %d, stderr %q; want exit 2 naming --%s", flag, r.code, r.stderr, name)
		}
	}
}
