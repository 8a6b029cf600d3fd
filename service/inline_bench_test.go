package service_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/service"
)

// BenchmarkDownload4KiB pulls a 4 KiB file with a warm client
// (connection made, first call done), with the bytes inline in the offer
// and by the data channel, in one run so the two compare; into /dev/null
// (the transfer alone) and into a file (which adds the fsyncs of landing
// it whole):
//
//	go test ./service -run '^$' -bench Download4KiB -benchtime 2000x
func BenchmarkDownload4KiB(b *testing.B) {
	for _, bc := range []struct {
		name      string
		inlineMax uint64
		file      bool
	}{
		{"inline/devnull", 64 << 10, false}, {"data-channel/devnull", 0, false},
		{"inline/file", 64 << 10, true}, {"data-channel/file", 0, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			n := startNode(b, service.Config{})
			writeFile(b, n.root, "small", 4<<10)
			dest := os.DevNull
			if bc.file {
				dest = filepath.Join(b.TempDir(), "small")
			}
			opts := client.DownloadOptions{InlineMax: bc.inlineMax}
			if _, err := n.client.Download(b.Context(), "small", dest, opts); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(4 << 10)
			b.ResetTimer()
			for range b.N {
				if _, err := n.client.Download(b.Context(), "small", dest, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
