package transfer

import (
	"os"
	"testing"
)

// BenchmarkSend sends a 64 MiB file, in the page cache after the first
// round, over loopback to a receiver that discards it.
//
//	go test -run '^$' -bench Send -benchmem ./transfer/
func BenchmarkSend(b *testing.B) {
	const size = 64 << 20
	path, _ := writeFile(b, b.TempDir(), size)
	for _, strategy := range Strategies {
		b.Run(strategy.String(), func(b *testing.B) {
			ts := startServer(b, Config{})
			benchTransfers(b, ts, path, strategy, ReceiveConfig{})
		})
	}
}

// BenchmarkSmallTransfer sends 4 KiB files, locking the copy loops to
// their threads for every transfer (ThreadMeasureMin 0) or only from
// 1 MiB up, to show what the measurement costs a small transfer.
func BenchmarkSmallTransfer(b *testing.B) {
	path, _ := writeFile(b, b.TempDir(), 4096)
	for _, bc := range []struct {
		name string
		min  int64
	}{{"lock-every", 0}, {"lock-from-1MiB", 1 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			ts := startServer(b, Config{ThreadMeasureMin: bc.min})
			benchTransfers(b, ts, path, Sendfile, ReceiveConfig{ThreadMeasureMin: bc.min})
		})
	}
}

// benchTransfers offers path and receives it, discarding, b.N times.
func benchTransfers(b *testing.B, ts *testServer, path string, strategy Strategy, rcfg ReceiveConfig) {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	null, err := CreateDestination(os.DevNull)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	for b.Loop() {
		tr := ts.offer(b, path, Source{Strategy: strategy})
		if _, err := Receive(b.Context(), ts.ticket(tr), null, rcfg); err != nil {
			b.Fatalf("Receive() = %v", err)
		}
		if _, err := tr.Result(); err != nil {
			b.Fatalf("Result() = %v", err)
		}
	}
}
