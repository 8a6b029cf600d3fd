package service_test

import (
	"os"
	"testing"

	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/service"
)

// BenchmarkSession4KiB gets a 4 KiB file into /dev/null over one warm
// Session, one at a time, beside the same file by Download (inline in
// the offer), in one run so the two compare:
//
//	go test ./service -run '^$' -bench Session4KiB -benchtime 3000x
func BenchmarkSession4KiB(b *testing.B) {
	n := startNode(b, service.Config{})
	writeFile(b, n.root, "small", 4<<10)
	b.Run("download-inline", func(b *testing.B) {
		opts := client.DownloadOptions{InlineMax: client.MaxInline}
		b.SetBytes(4 << 10)
		for b.Loop() {
			if _, err := n.client.Download(b.Context(), "small", os.DevNull, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("session", func(b *testing.B) {
		s, err := n.client.OpenSession(b.Context(), client.SessionOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		b.SetBytes(4 << 10)
		for b.Loop() {
			if _, err := s.Get(b.Context(), "small", os.DevNull, client.GetOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
