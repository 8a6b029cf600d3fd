package bench

import (
	"context"
	"os"
	"strconv"
	"sync"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
)

// Session rows: the same files fetched over one warm Session call, whose
// bytes come framed on data connections bound once (see "Sessions" in
// docs/design.md), one at a time and with several in flight.

// sessionState is a ferryNode's Session, opened on first use and kept
// for the node's life.
type sessionState struct {
	once sync.Once
	s    *client.Session
	err  error
}

// session opens n's Session once, with window requests in flight and
// conns bound data connections.
func (n *ferryNode) session() (*client.Session, error) {
	n.sess.once.Do(func() {
		n.sess.s, n.sess.err = n.client.OpenSession(context.Background(), client.SessionOptions{Window: 64, Connections: 4})
	})
	return n.sess.s, n.sess.err
}

// closeSession closes n's Session, if it was opened.
func (n *ferryNode) closeSession() {
	if n.sess.s != nil {
		n.sess.s.Close()
	}
}

// sessionFetch is a fetchFunc over n's Session, to /dev/null, with
// strategy st. It returns when the bytes have arrived; the report
// follows on the stream (its CPU is in the round's).
func (n *ferryNode) sessionFetch(st ferryv1.Strategy) fetchFunc {
	return func(ctx context.Context, name string) (fetched, error) {
		s, err := n.session()
		if err != nil {
			return fetched{}, err
		}
		res, err := s.Get(ctx, name, os.DevNull, client.GetOptions{Strategy: st})
		if err != nil {
			return fetched{}, err
		}
		return fetched{bytes: res.Bytes, note: "one Session call, frames on 4 bound data connections"}, nil
	}
}

// sessionRow is the row of Ferry's Session fetches, in flight at once.
func sessionRow(inFlight int) row {
	if inFlight <= 1 {
		return row{"ferry-session", "Ferry session (auto, one at a time)", "P ferryd", "S ferry-bench"}
	}
	n := strconv.Itoa(inFlight)
	return row{"ferry-session-" + n, "Ferry session (auto, " + n + " in flight)", "P ferryd", "S ferry-bench"}
}

// repeatNames is count names cycling through names.
func repeatNames(names []string, count int) []string {
	out := make([]string, count)
	for i := range out {
		out[i] = names[i%len(names)]
	}
	return out
}

// inFlightPaths are the rows with several fetches in flight: Ferry's
// Session and nginx (sendfile on and off) over as many keep-alive
// connections.
func (p *peers) inFlightPaths(names []string, count, inFlight int, size int64) []path {
	all := repeatNames(names, count)
	buf := make([][]byte, inFlight)
	for i := range buf {
		buf[i] = make([]byte, 1<<20)
	}
	var paths []path
	for _, sf := range []bool{true, false} {
		r := nginxRow(sf, "go-http", "S ferry-bench")
		r.id += "-" + strconv.Itoa(inFlight)
		r.label += " (" + strconv.Itoa(inFlight) + " connections at once)"
		var mu sync.Mutex
		free := buf
		paths = append(paths, concurrentPath(r, p.nginx.cpu, selfCPU, all, inFlight, size,
			func(ctx context.Context, name string) (fetched, error) {
				mu.Lock()
				b := free[len(free)-1]
				free = free[:len(free)-1]
				mu.Unlock()
				defer func() { mu.Lock(); free = append(free, b); mu.Unlock() }()
				n, err := p.nginx.get(ctx, p.nginx.url(sf, name), b)
				return fetched{bytes: n}, err
			}))
	}
	auto := ferryv1.Strategy_STRATEGY_UNSPECIFIED
	paths = append(paths, concurrentPath(sessionRow(inFlight), p.ferry.cpu, selfCPU, all, inFlight, size, p.ferry.sessionFetch(auto)))
	return paths
}
