package transfer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferrydev/ferry/fsroot"
)

// TestReceiveErrors checks Receive's refusals and its cancellation.
func TestReceiveErrors(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeFile(t, dir, 4096)
	ts := startServer(t, Config{})
	null, _ := fsroot.CreateDestination(os.DevNull)

	tr := ts.offer(t, path, Source{})
	defer tr.Cancel()
	tk := ts.ticket(tr)
	tk.Ticket = tk.Ticket[:TicketSize-1]
	if _, err := Receive(t.Context(), tk, null, ReceiveConfig{}); !errors.Is(err, ErrRefused) {
		t.Errorf("Receive(31-byte ticket) = %v, want %v", err, ErrRefused)
	}
	if got := ts.Pending(); got != 1 {
		t.Errorf("Pending() = %d, want 1", got)
	}

	// The offer says more bytes than the server will send: the receiver
	// reports a short transfer.
	tr2 := ts.offer(t, path, Source{})
	tk = ts.ticket(tr2)
	tk.Length++
	if st, err := Receive(t.Context(), tk, null, ReceiveConfig{}); !errors.Is(err, ErrShortTransfer) || st.Bytes != 4096 {
		t.Errorf("Receive(Length+1) = %d bytes, %v; want 4096, %v", st.Bytes, err, ErrShortTransfer)
	}
	// And fewer: the receiver reports the extra bytes.
	tr3 := ts.offer(t, path, Source{})
	tk = ts.ticket(tr3)
	tk.Length--
	if st, err := Receive(t.Context(), tk, null, ReceiveConfig{}); !errors.Is(err, ErrShortTransfer) || st.Bytes != 4095 {
		t.Errorf("Receive(Length-1) = %d bytes, %v; want 4095, %v", st.Bytes, err, ErrShortTransfer)
	}
}

// TestReceiveCancel cancels a receive before it dials, and once its
// sender has stalled after the verdict, as a server with a stuck disk
// would: either way Receive returns the context's cause.
func TestReceiveCancel(t *testing.T) {
	for _, early := range []bool{true, false} {
		ln := listenRaw(t)
		stalled := make(chan struct{})
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			io.ReadFull(c, make([]byte, preambleSize))
			c.Write([]byte{byte(VerdictOK), 'x'})
			close(stalled)
			io.Copy(io.Discard, c) // until the receiver goes
		}()
		ctx, cancel := context.WithCancelCause(t.Context())
		defer cancel(nil)
		cause := errors.New("operator cancelled")
		if early {
			cancel(cause)
		}
		null, _ := fsroot.CreateDestination(os.DevNull)
		done := make(chan error, 1)
		go func() {
			tk := Ticket{Address: ln.Addr().String(), Ticket: make([]byte, TicketSize), Length: 100}
			_, err := Receive(ctx, tk, null, ReceiveConfig{})
			done <- err
		}()
		if !early {
			<-stalled
			cancel(cause)
		}
		select {
		case err := <-done:
			if !errors.Is(err, cause) {
				t.Errorf("cancelled early %v: Receive() = %v, want %v", early, err, cause)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("cancelled early %v: Receive() still running 10 s after its context was cancelled", early)
		}
	}
}

// TestReceiveSpliceFallback: a destination that refuses spliced bytes
// (here a descriptor of the partial file opened O_APPEND, which splice(2)
// refuses with EINVAL) gets them by read and write instead, all of them,
// and the figures say the receiver read.
func TestReceiveSpliceFallback(t *testing.T) {
	payload := randomBytes(3 << 20)
	r, dst, path := splicingJob(t, payload, ReceiveConfig{})
	app, err := os.OpenFile(dst.Name(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	r.out = int(app.Fd())
	if err := r.run(int64(len(payload))); err != nil {
		t.Fatalf("run() = %v", err)
	}
	var st Stats
	r.finish(&st)
	if st.Model != receiverModel(false, false) || st.PipeSize != 0 {
		t.Errorf("after falling back: Model %+v, PipeSize %d; want the reading receiver's", st.Model, st.PipeSize)
	}
	if r.n[sysSplice] < 2 || r.n[sysRead] < 2 || r.n[sysWrite] < 2 {
		t.Errorf("counts %v: want the refused splice, then reads and writes", r.n.toMap())
	}
	checkCommitted(t, dst, path, payload)
}

// TestReceiveSocketSpliceRefused: a socket the kernel will not splice
// from (here the "pipe" is a regular file, which splice(2) refuses as a
// destination with EINVAL) makes the whole transfer read instead, and the
// figures say so.
func TestReceiveSocketSpliceRefused(t *testing.T) {
	payload := randomBytes(2<<20 + 5)
	r, dst, path := splicingJob(t, payload, ReceiveConfig{BufferSize: 64 << 10})
	// Swap in a pipe whose write end is a regular file; the real pipe is
	// closed here, the swapped one by the receiver when it gives up.
	notPipe, err := os.CreateTemp(t.TempDir(), "notpipe")
	if err != nil {
		t.Fatal(err)
	}
	real := r.pipe
	fake, err := unix.Dup(int(notPipe.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	r.pipe = &pipe{r: real.r, w: fake, size: real.size}
	unix.Close(real.w)
	if err := r.run(int64(len(payload))); err != nil {
		t.Fatalf("run() = %v", err)
	}
	var st Stats
	r.finish(&st)
	if st.Model != receiverModel(false, false) || st.PipeSize != 0 || len(r.buf) != 64<<10 {
		t.Errorf("after the refusal: Model %+v, PipeSize %d, buffer %d bytes; want the reading receiver's, 64 KiB", st.Model, st.PipeSize, len(r.buf))
	}
	if r.n[sysSplice] != 1 || r.n[sysRead] < 2 {
		t.Errorf("counts %v: want the one refused splice, then reads", r.n.toMap())
	}
	checkCommitted(t, dst, path, payload)
}

// splicingJob is a receive job into a new file destination, set to
// splice, over a loopback connection whose other end writes payload and
// closes. The job and the destination are cleaned up with the test.
func splicingJob(t *testing.T, payload []byte, cfg ReceiveConfig) (*recvJob, *fsroot.Destination, string) {
	t.Helper()
	near, far := tcpPair(t)
	go func() {
		far.Write(payload)
		far.Close()
	}()
	path := filepath.Join(t.TempDir(), "dst")
	dst, err := fsroot.CreateDestination(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dst.Abort)
	r := newRecvJob(rawConn(t, near), dst, cfg)
	t.Cleanup(r.release)
	if !r.splicing() {
		t.Fatal("a file destination is not spliced")
	}
	return r, dst, path
}

// checkCommitted commits dst and requires path to hold exactly want.
func checkCommitted(t *testing.T, dst *fsroot.Destination, path string, want []byte) {
	t.Helper()
	if err := dst.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("landed %d bytes (err %v), want the %d sent", len(got), err, len(want))
	}
}
