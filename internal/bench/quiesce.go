package bench

import (
	"context"
	"time"
)

// quiesce waits, outside any timing, until every server the harness
// started has used no CPU for one 50 ms window (less than a /proc tick
// each), or 2 s have passed: a path must not pay for the previous one's
// aftermath, such as a server collecting its garbage.
func (p *peers) quiesce(ctx context.Context) {
	clocks := p.serverClocks()
	deadline := time.Now().Add(2 * time.Second)
	last := sumCPU(clocks)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
		now := sumCPU(clocks)
		if now == last {
			return
		}
		last = now
	}
}

func (p *peers) serverClocks() []cpuClock {
	var cs []cpuClock
	if p.iperf != nil {
		cs = append(cs, p.iperf.cpu)
	}
	if p.nginx != nil {
		cs = append(cs, p.nginx.cpu)
	}
	if p.grpc != nil {
		cs = append(cs, p.grpc.cpu)
	}
	for _, n := range p.ferryNodes() {
		cs = append(cs, n.cpu)
	}
	return cs
}

func sumCPU(cs []cpuClock) time.Duration {
	var sum time.Duration
	for _, c := range cs {
		sum += c()
	}
	return sum
}
