package integration

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// releaseTimeout bounds how long ferryd may take to let go of what a
// transfer held once its client has gone.
const releaseTimeout = 15 * time.Second

// TestClientKilledMidTransfer SIGKILLs a ferry pull while ferryd is
// sending, for each strategy: the pull writes to a pipe the test stops
// reading after 1 MiB, so the transfer is certainly in flight (and, with
// MMAP, holds a mapping). ferryd must then close the file, unmap it,
// close the splice pipe and both connections, so that its descriptors
// return to what it held before the pull, log the transfer as finished
// with an error, and serve the next pull byte-exact.
func TestClientKilledMidTransfer(t *testing.T) {
	root := t.TempDir()
	big := sparseFile(t, root, "big.bin", 256<<20) // far more than the socket buffers hold
	small := writeRandom(t, root, "small.bin", 1<<20+5)
	for _, s := range strategies[:4] {
		t.Run(s.flag, func(t *testing.T) {
			d := startFerryd(t, root)
			// A pull first, with no pipe or mapping, so that whatever
			// ferryd opens once and keeps is in the baseline.
			ferryOK(t, "pull", "--server", d.Addr, "--strategy", "read-write", "small.bin", os.DevNull)
			base := d.holdings(t)

			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			pull := startFerry(t, w, "pull", "--server", d.Addr, "--strategy", s.flag, "big.bin", "-")
			w.Close()
			if _, err := io.ReadFull(r, make([]byte, 1<<20)); err != nil {
				t.Fatalf("reading the pull's first MiB: %v\nstderr:\n%s", err, &pull.stderr)
			}
			killWhileSending(t, d, pull, big, s.flag)
			d.awaitHoldings(t, "after its client was killed", releaseTimeout, func(h holdings) []string {
				p := h.beyond(base, big)
				if !finishedWithError.MatchString(d.Log.String()) {
					p = append(p, "no log line of a transfer finished with an error")
				}
				return p
			})
			res := ferryOK(t, "pull", "--server", d.Addr, "--strategy", s.flag, "small.bin", "-")
			sameBytes(t, "the next pull", []byte(res.stdout), small)
		})
	}
}

// killWhileSending waits until ferryd is sending big (open, and mapped
// under mmap), then SIGKILLs the client pull and waits for it to exit.
func killWhileSending(t *testing.T, d *ferryd, pull *ferryProc, big, strategy string) {
	t.Helper()
	d.awaitHoldings(t, "sending "+filepath.Base(big), releaseTimeout, func(h holdings) []string {
		switch {
		case !h.opens(big):
			return []string{"without " + filepath.Base(big) + " open"}
		case strategy == "mmap" && !h.mapsFile(big):
			return []string{"without a mapping of " + filepath.Base(big)}
		}
		return nil
	})
	if err := pull.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-pull.exited
}

// finishedWithError matches ferryd's log line for a transfer that ended
// with an error.
var finishedWithError = regexp.MustCompile(`msg="transfer finished".* err=[^<]`)

// TestClientKilledBeforeDataConnection kills a Download caller that has
// its offer but never connects to the data channel (grpcurl, which
// cannot): ferryd must revoke the ticket and close the file at once, not
// when the ticket would have expired (the test sets --ticket-ttl far
// beyond its own deadline), and refuse the ticket if it is presented.
func TestClientKilledBeforeDataConnection(t *testing.T) {
	grpcurl := toolPath(t, grpcurlTool)
	root := t.TempDir()
	big := sparseFile(t, root, "big.bin", 64<<20)
	d := startFerryd(t, root, "--ticket-ttl", "10m")
	base := d.holdings(t)

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	call := startProc(t, w, grpcurl, "-plaintext", "-d", `{"path": "big.bin"}`, d.Addr, serviceName+"/Download")
	w.Close()
	offer := readOffer(t, r)
	if !d.holdings(t).opens(big) {
		t.Fatalf("ferryd does not hold big.bin open for the offer it made")
	}
	if err := call.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-call.exited
	d.awaitHoldings(t, "after the caller was killed", releaseTimeout, func(h holdings) []string {
		return h.beyond(base, big)
	})
	if v := presentTicket(t, offer); v != 1 {
		t.Errorf("ticket of a killed caller: data channel verdict %d, want 1 (refused)", v)
	}
}

// readOffer reads grpcurl's first response, which must be an offer.
func readOffer(t *testing.T, r io.Reader) *ferryv1.Offer {
	t.Helper()
	var msg strings.Builder
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		msg.WriteString(sc.Text() + "\n")
		if sc.Text() == "}" { // grpcurl prints each message as indented JSON
			break
		}
	}
	var resp ferryv1.DownloadResponse
	if err := protojson.Unmarshal([]byte(msg.String()), &resp); err != nil || resp.GetOffer() == nil {
		t.Fatalf("grpcurl's first Download response %q: %v; want an offer", msg.String(), err)
	}
	return resp.GetOffer()
}

// presentTicket connects to the offer's data address, presents its
// ticket and returns the verdict byte.
func presentTicket(t *testing.T, offer *ferryv1.Offer) byte {
	t.Helper()
	c, err := net.Dial("tcp", offer.GetDataAddress())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := c.Write(append([]byte("FERY\x01"), offer.GetTicket()...)); err != nil {
		t.Fatal(err)
	}
	var v [1]byte
	if _, err := io.ReadFull(c, v[:]); err != nil {
		t.Fatalf("data channel verdict: %v", err)
	}
	return v[0]
}

// sparseFile makes dir/name a file of size bytes that takes no disk
// space (it reads as zeros) and returns its path.
func sparseFile(t *testing.T, dir, name string, size int64) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return path
}

// noFile fails the test if path exists.
func noFile(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("%s exists (Lstat: %v), want no such file", path, err)
	}
}

// check fails the test on a setup error.
func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
