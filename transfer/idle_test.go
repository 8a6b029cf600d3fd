package transfer

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrydev/ferry/fsroot"
)

// silentSender plays a data channel that accepts the ticket, sends the
// chunks it is given, each after pause, and then goes silent with the
// connection open, as a hostile or wedged server can.
func silentSender(t *testing.T, chunks int, pause time.Duration) string {
	t.Helper()
	ln := listenRaw(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				io.ReadFull(c, make([]byte, preambleSize))
				c.Write([]byte{byte(VerdictOK)})
				for range chunks {
					time.Sleep(pause)
					if _, err := c.Write([]byte("0123456789")); err != nil {
						return
					}
				}
				io.Copy(io.Discard, c) // silent until the receiver goes
			}(c)
		}
	}()
	return ln.Addr().String()
}

// TestReceiveIdleTimeout: a sender that goes silent after the verdict,
// or part-way, fails the receive within the idle timeout with ErrIdle,
// on every receiving path (read and splice, into a file or discarded,
// one-shot and pooled); a sender that pauses for less than the timeout
// between rounds, for longer than it in all, is waited for.
func TestReceiveIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	for _, tc := range []struct {
		name      string
		readWrite bool
		toFile    bool
		pooled    bool
	}{
		{"splice-file", false, true, false},
		{"read-file", true, true, false},
		{"splice-discard", false, false, false},
		{"read-discard-pooled", true, false, true},
		{"splice-file-pooled", false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			receive := func(addr string, length int64) (Stats, error, time.Duration) {
				path := os.DevNull
				if tc.toFile {
					path = filepath.Join(t.TempDir(), "dst")
				}
				dst, err := fsroot.CreateDestination(path)
				if err != nil {
					t.Fatal(err)
				}
				defer dst.Abort()
				tk := Ticket{Address: addr, Ticket: make([]byte, TicketSize), Length: length}
				cfg := ReceiveConfig{IdleTimeout: idle, ReadWrite: tc.readWrite}
				start := time.Now()
				var st Stats
				if tc.pooled {
					p := NewPool(PoolConfig{})
					defer p.Close()
					st, err = p.Receive(t.Context(), tk, dst, cfg)
				} else {
					st, err = Receive(t.Context(), tk, dst, cfg)
				}
				return st, err, time.Since(start)
			}
			for _, chunks := range []int{0, 2} {
				st, err, took := receive(silentSender(t, chunks, 0), 1000)
				if !errors.Is(err, ErrIdle) || errors.Is(err, ErrShortTransfer) {
					t.Errorf("silent after %d chunks: Receive() = %v, want %v", chunks, err, ErrIdle)
				}
				if took < idle || took > idle+2*time.Second {
					t.Errorf("silent after %d chunks: Receive() took %v, want about %v", chunks, took, idle)
				}
				if st.Bytes != int64(10*chunks) {
					t.Errorf("silent after %d chunks: %d bytes, want %d", chunks, st.Bytes, 10*chunks)
				}
			}
			// 5 rounds 120 ms apart: 600 ms in all, never 200 ms silent.
			// The sender then stays silent, so the one-shot end check and
			// the pooled trailer wait fail idle too, after every byte.
			st, err, _ := receive(silentSender(t, 5, 120*time.Millisecond), 50)
			if st.Bytes != 50 || !errors.Is(err, ErrIdle) {
				t.Errorf("slow sender: %d bytes, %v; want 50, then %v at the end", st.Bytes, err, ErrIdle)
			}
		})
	}
}
