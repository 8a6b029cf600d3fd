package transfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// recorder keeps the events a Server reports.
type recorder struct {
	mu       sync.Mutex
	issued   int
	started  int
	refused  []Refusal
	finished []Finish
}

func (r *recorder) events() Events {
	return Events{
		Issued:   func() { r.mu.Lock(); r.issued++; r.mu.Unlock() },
		Started:  func() { r.mu.Lock(); r.started++; r.mu.Unlock() },
		Refused:  func(x Refusal) { r.mu.Lock(); r.refused = append(r.refused, x); r.mu.Unlock() },
		Finished: func(f Finish) { r.mu.Lock(); r.finished = append(r.finished, f); r.mu.Unlock() },
	}
}

// summary is what a test compares: the counts and, per finished
// transfer, "id outcome strategy bytes started peer".
func (r *recorder) summary() (issued, started int, refused []Refusal, finished []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.finished {
		finished = append(finished, fmt.Sprintf("%s %s %v %d %v %s", f.ID, f.Outcome, f.Stats.Strategy, f.Stats.Bytes, f.Started, f.Peer))
	}
	return r.issued, r.started, r.refused, finished
}

// TestEvents runs a transfer that succeeds, one cancelled, one expired
// and refused offers and connections, and checks what Events heard and
// the one JSON log line each transfer wrote.
func TestEvents(t *testing.T) {
	dir := t.TempDir()
	path, data := writeFile(t, dir, 70000)
	var rec recorder
	var logs syncBuffer
	ts := startServer(t, Config{Events: rec.events(), MaxTransfers: 2,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})

	ok := ts.offer(t, path, Source{Strategy: ReadWrite})
	if _, got := ts.receiveFile(t, ok, dir, ReceiveConfig{}); !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes that differ from the %d sent", len(got), len(data))
	}
	<-ok.Done()
	canceled := ts.offer(t, path, Source{Strategy: ReadWrite, ClientIP: netip.MustParseAddr("127.0.0.2")})
	busy := ts.offer(t, path, Source{Strategy: ReadWrite})
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ts.Offer(Source{File: f, Path: "busy"}); !errors.Is(err, ErrBusy) {
		t.Fatalf("a third Offer with MaxTransfers 2 = %v, want %v", err, ErrBusy)
	}
	canceled.Cancel()
	busy.Cancel()
	var wrong [TicketSize]byte
	rand.Read(wrong[:])
	if v, _ := verdictOf(t, ts.addr, preambleFor(wrong[:])); v != VerdictRefused {
		t.Fatalf("a wrong ticket got %v, want %v", v, VerdictRefused)
	}
	if v, _ := verdictOf(t, ts.addr, []byte("NOPE\x01"+string(wrong[:]))); v != VerdictBadPreamble {
		t.Fatalf("a bad preamble got %v, want %v", v, VerdictBadPreamble)
	}

	expiring := startServer(t, Config{Events: rec.events(), TicketTTL: 1, Logger: quiet})
	expired := expiring.offer(t, path, Source{Strategy: Sendfile})
	<-expired.Done()

	issued, started, refused, finished := rec.summary()
	if issued != 4 || started != 1 {
		t.Errorf("Events heard %d issued, %d started; want 4, 1", issued, started)
	}
	if want := []Refusal{RefusedBusy, RefusedUnknownTicket, RefusedBadPreamble}; !cmp.Equal(refused, want) {
		t.Errorf("Events heard refusals %v, want %v", refused, want)
	}
	peer := finishedPeer(t, &rec, ok.ID)
	want := []string{
		ok.ID + " ok READ_WRITE 70000 true " + peer,
		canceled.ID + " canceled READ_WRITE 0 false 127.0.0.2",
		busy.ID + " canceled READ_WRITE 0 false ",
		expired.ID + " expired SENDFILE 0 false ",
	}
	if diff := cmp.Diff(want, finished); diff != "" {
		t.Errorf("Events heard finished transfers (-want +got):\n%s", diff)
	}
	checkFinishLogs(t, logs.String(), ok, peer, canceled.ID, busy.ID)
}

// finishedPeer returns the peer of finished transfer id, which must be a
// loopback address with a port: the data connection's.
func finishedPeer(t *testing.T, rec *recorder, id string) string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, f := range rec.finished {
		if f.ID != id {
			continue
		}
		ap, err := netip.ParseAddrPort(f.Peer)
		if err != nil || !ap.Addr().IsLoopback() {
			t.Errorf("transfer %s: Finish.Peer = %q, want the data connection's loopback address and port", id, f.Peer)
		}
		return f.Peer
	}
	t.Fatalf("no Finish for transfer %s", id)
	return ""
}

// checkFinishLogs checks that the log is JSON lines, with one "transfer
// finished" line per transfer (Info for ok's, Warn for the others), and
// the fields of ok's.
func checkFinishLogs(t *testing.T, logs string, ok *Transfer, peer string, failed ...string) {
	t.Helper()
	levels := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if rec["msg"] != "transfer finished" {
			continue
		}
		id, _ := rec["id"].(string)
		if _, dup := levels[id]; dup {
			t.Errorf("transfer %s logged \"transfer finished\" twice", id)
		}
		levels[id], _ = rec["level"].(string)
		if id != ok.ID {
			if rec["outcome"] == "ok" || rec["err"] == nil {
				t.Errorf("failed transfer %s logged %v, want an outcome other than ok and an err", id, rec)
			}
			continue
		}
		delete(rec, "time")
		took, _ := rec["took"].(float64)
		if took <= 0 {
			t.Errorf("transfer %s logged took=%v, want a positive duration", id, rec["took"])
		}
		delete(rec, "took")
		want := map[string]any{"level": "INFO", "msg": "transfer finished", "id": ok.ID, "peer": peer,
			"path": ok.Path, "strategy": "READ_WRITE", "bytes": float64(70000), "outcome": "ok"}
		if diff := cmp.Diff(want, rec); diff != "" {
			t.Errorf("transfer %s's log line (-want +got):\n%s", id, diff)
		}
	}
	want := map[string]string{ok.ID: "INFO"}
	for _, id := range failed {
		want[id] = "WARN"
	}
	if !cmp.Equal(levels, want) {
		t.Errorf("\"transfer finished\" lines by id and level: %v, want %v", levels, want)
	}
}

// TestOutcomeOf checks how errors classify.
func TestOutcomeOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Outcome
	}{
		{nil, OutcomeOK},
		{context.Canceled, OutcomeCanceled},
		{fmt.Errorf("send: %w", ErrClosed), OutcomeCanceled},
		{ErrTicketExpired, OutcomeExpired},
		{fmt.Errorf("%w: 10 of 20 bytes", ErrSourceChanged), OutcomeError},
		{&net.OpError{Op: "write", Err: errors.New("connection reset by peer")}, OutcomeError},
	} {
		if got := outcomeOf(tc.err); got != tc.want {
			t.Errorf("outcomeOf(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestEventsWrongClient: a ticket bound to another client is refused as
// wrong_client.
func TestEventsWrongClient(t *testing.T) {
	path, _ := writeFile(t, t.TempDir(), 100)
	var rec recorder
	ts := startServer(t, Config{Events: rec.events(), BindDataToClient: true})
	tr := ts.offer(t, path, Source{ClientIP: netip.MustParseAddr("127.0.0.2")})
	defer tr.Cancel()
	if v, _ := verdictOf(t, ts.addr, preambleFor(tr.Ticket[:])); v != VerdictRefused {
		t.Fatalf("a ticket bound to 127.0.0.2, presented from 127.0.0.1, got %v, want %v", v, VerdictRefused)
	}
	if _, _, refused, _ := rec.summary(); !cmp.Equal(refused, []Refusal{RefusedWrongClient}) {
		t.Errorf("Events heard refusals %v, want [wrong_client]", refused)
	}
}
