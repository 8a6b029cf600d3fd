package transfer

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// tickets holds the tickets of offers whose data connection has not come
// yet. A ticket is 32 random bytes. Its first 8 bytes index the map (a
// map lookup is not constant-time, so they are treated as public); the
// whole ticket is then compared with subtle.ConstantTimeCompare, so the
// other 24 bytes stay secret to timing. A ticket is removed when it is
// claimed, expires or is revoked: single use by construction.
type tickets struct {
	mu      sync.Mutex
	pending map[uint64]*Transfer
}

func newTickets() *tickets {
	return &tickets{pending: make(map[uint64]*Transfer)}
}

// issue mints a ticket for t, registers it and arms t.expiry to call
// expire after ttl. The timer is set under the lock, so whoever later
// claims or revokes t (and then finishes it, stopping the timer) sees it.
func (ts *tickets) issue(t *Transfer, ttl time.Duration, expire func()) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for {
		rand.Read(t.Ticket[:]) // never fails (crypto/rand panics instead)
		k := binary.LittleEndian.Uint64(t.Ticket[:8])
		if _, taken := ts.pending[k]; !taken {
			ts.pending[k] = t
			t.expiry = time.AfterFunc(ttl, expire)
			return
		}
	}
}

// claim removes and returns the transfer a presented ticket belongs to,
// or nil for a wrong, used, expired or revoked ticket. A ticket bound to
// a client address and presented from another is refused too, with an
// error that says so, and stays pending: whoever else holds it cannot
// spend it for the client.
func (ts *tickets) claim(ticket [TicketSize]byte, from netip.Addr) (*Transfer, error) {
	k := binary.LittleEndian.Uint64(ticket[:8])
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t := ts.pending[k]
	if t == nil || subtle.ConstantTimeCompare(t.Ticket[:], ticket[:]) != 1 {
		return nil, nil
	}
	if t.client.IsValid() && t.client != from {
		return nil, fmt.Errorf("transfer %s is bound to client %v; its ticket came from %v", t.ID, t.client, from)
	}
	delete(ts.pending, k)
	return t, nil
}

// revoke removes t's ticket; it reports whether the ticket was still
// pending (nobody claimed it).
func (ts *tickets) revoke(t *Transfer) bool {
	k := binary.LittleEndian.Uint64(t.Ticket[:8])
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.pending[k] != t {
		return false
	}
	delete(ts.pending, k)
	return true
}

// revokeAll removes every pending ticket and returns their transfers.
func (ts *tickets) revokeAll() []*Transfer {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	all := make([]*Transfer, 0, len(ts.pending))
	for k, t := range ts.pending {
		all = append(all, t)
		delete(ts.pending, k)
	}
	return all
}

// len reports how many tickets are pending.
func (ts *tickets) len() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.pending)
}
