package service_test

import (
	"net"
	"testing"
	"time"

	"github.com/ferrydev/ferry/service"
	"golang.org/x/net/http2"
)

// The server enforces a keepalive policy: a client that pings faster than
// it allows (here ten pings at once, no stream open) is sent GOAWAY
// ENHANCE_YOUR_CALM ("too_many_pings") and cut off instead of being
// answered forever. A policy loosened to a MinTime near zero fails this.
func TestKeepaliveEnforced(t *testing.T) {
	n := startNode(t, service.Config{})
	c, err := net.Dial("tcp", n.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second)) // a bound, not a wait
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			break // the server may already have closed the connection
		}
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended without GOAWAY: %v", err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeEnhanceYourCalm || string(ga.DebugData()) != "too_many_pings" {
				t.Fatalf("GOAWAY %v %q, want ENHANCE_YOUR_CALM \"too_many_pings\"", ga.ErrCode, ga.DebugData())
			}
			return
		}
	}
}
