package service_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/service"
)

// BenchmarkDownloadTree pulls a tree of 10,000 files of 4 KiB into a new
// directory on disk (each file fsynced and renamed into place), over
// loopback: data connections shared by the workers, and files inline in
// their offers.
//
//	go test -run '^$' -bench DownloadTree -benchtime 3x ./service/
func BenchmarkDownloadTree(b *testing.B) {
	const files, size = 10_000, 4096
	root := b.TempDir()
	for i := range files {
		p := filepath.Join(root, "tree", fmt.Sprintf("d%02d", i/500), fmt.Sprintf("f%05d", i))
		if i%500 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	n, err := service.NewNode(service.Config{Root: root, Listen: "127.0.0.1:0", DataListen: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- n.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	c, err := client.Dial(n.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for _, bc := range []struct {
		name string
		opts client.TreeOptions
	}{
		{"data-connections", client.TreeOptions{}},
		{"concurrency-8", client.TreeOptions{Concurrency: 8}},
		{"inline", client.TreeOptions{InlineMax: size}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(files * size)
			dir := b.TempDir()
			for i := range b.N {
				r, err := c.DownloadTree(ctx, "tree", filepath.Join(dir, fmt.Sprint(i)), bc.opts)
				if err != nil {
					b.Fatal(err)
				}
				if r.Files != files {
					b.Fatalf("copied %d files, want %d", r.Files, files)
				}
				b.ReportMetric(float64(r.DataConnections), "conns")
			}
			b.ReportMetric(float64(files*b.N)/b.Elapsed().Seconds(), "files/s")
		})
	}
}
