package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/internal/testpki"
)

// tlsRelay is a ferryd with TLS on its control plane and extra flags,
// whose offers name a relay in front of its data listener.
type tlsRelay struct {
	d     *ferryd
	proxy *dataProxy
	flags []string // the ferry CLI's, to reach it over TLS
}

func startTLSRelay(t *testing.T, root string, args ...string) tlsRelay {
	t.Helper()
	p := testpki.New(t, "ferry relay CA")
	sec := client.Security{CAFile: p.CA, ServerName: "localhost"}
	dial, err := sec.DialOptions()
	if err != nil {
		t.Fatal(err)
	}
	proxy := listenDataProxy(t)
	d := startFerrydDial(t, root, dial, append([]string{"--tls-cert", p.ServerCert, "--tls-key", p.ServerKey,
		"--advertise-data", proxy.Addr()}, args...)...)
	proxy.serve(d.DataAddr)
	return tlsRelay{d: d, proxy: proxy, flags: []string{"--server", d.Addr, "--tls-ca", p.CA, "--tls-server-name", "localhost"}}
}

// inClear reports whether any 64-byte piece of data, taken every 64 KiB,
// appears in b as it is.
func inClear(b, data []byte) bool {
	for off := 0; off+64 <= len(data); off += 64 << 10 {
		if bytes.Contains(b, data[off:off+64]) {
			return true
		}
	}
	return false
}

// TestDataTLSThroughRelay watches the data channel from a relay between
// ferry and ferryd: with the control plane on TLS, the data channel is
// TLS too, so the file's bytes and the preamble never cross in clear,
// and a byte changed on the way fails the pull with nothing landed.
// With --data-tls off the relay sees the preamble (ticket) and the
// file as they are, and ferry refuses such an offer unless told
// --plaintext-data: what --data-tls off leaves unprotected.
func TestDataTLSThroughRelay(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	data := writeRandom(t, root, "f.bin", 2<<20+3)
	r := startTLSRelay(t, root)

	dest := filepath.Join(out, "clean")
	res := ferryOK(t, ferryArgs("pull", r.flags, "f.bin", dest)...)
	got, _ := os.ReadFile(dest)
	sameBytes(t, "pull through the relay over TLS", got, data)
	if !strings.Contains(res.stdout, "TLS 1.3, TLS_") {
		t.Errorf("report does not name the TLS path:\n%s", res.stdout)
	}
	c := r.proxy.lastConn()
	<-c.done
	if c.down.Len() < len(data) || inClear(c.down.Bytes(), data) {
		t.Errorf("relay saw %d bytes down; the file's bytes in clear: %v; want ciphertext only", c.down.Len(), inClear(c.down.Bytes(), data))
	}
	if bytes.Contains(c.up.Bytes(), []byte("FERY")) || c.up.Len() == 0 || c.up.Bytes()[0] != 0x16 {
		t.Errorf("relay saw %d bytes up, a plaintext preamble among them: %v; want a TLS handshake first and no preamble in clear",
			c.up.Len(), bytes.Contains(c.up.Bytes(), []byte("FERY")))
	}

	r.proxy.corruptAt(1 << 20)
	dest = filepath.Join(out, "flipped")
	res = ferry(t, ferryArgs("pull", r.flags, "f.bin", dest)...)
	if res.code == 0 {
		t.Errorf("pull through a relay that flipped one byte succeeded, want it failed:\n%s", res.stdout)
	}
	for _, p := range []string{dest, dest + ".partial"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("the failed pull left %s (Lstat: %v)", p, err)
		}
	}

	off := startTLSRelay(t, root, "--data-tls", "off")
	if !strings.Contains(off.d.Log.String(), "INSECURE: --data-tls off") {
		t.Errorf("ferryd --data-tls off beside TLS did not warn INSECURE:\n%s", off.d.Log.String())
	}
	dest = filepath.Join(out, "refused")
	res = ferry(t, ferryArgs("pull", off.flags, "f.bin", dest)...)
	if res.code != 1 || !strings.Contains(res.stderr, "plaintext data channel") || off.proxy.lastConn() != nil {
		t.Errorf("pull of a plaintext offer over TLS: exit %d, stderr %q, relay connected %v; want refused before dialling",
			res.code, res.stderr, off.proxy.lastConn() != nil)
	}
	dest = filepath.Join(out, "plaintext")
	ferryOK(t, ferryArgs("pull", append(off.flags, "--plaintext-data"), "f.bin", dest)...)
	c = off.proxy.lastConn()
	<-c.done
	if !inClear(c.down.Bytes(), data) || !bytes.HasPrefix(c.up.Bytes(), []byte("FERY")) {
		t.Errorf("--data-tls off: relay saw the file in clear %v, a plaintext preamble first %v; want both (nothing protects them)",
			inClear(c.down.Bytes(), data), bytes.HasPrefix(c.up.Bytes(), []byte("FERY")))
	}
}
