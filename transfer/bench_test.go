package transfer

import (
	"os"
	"runtime"
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

// BenchmarkSteadyStateAllocs tells the copy loops' allocations apart
// from a transfer's fixed setup (offer, dial, goroutines): it sends an
// 8 MiB and a 72 MiB range of the same cached file and reports the
// difference in heap allocations per MiB between them, sender and
// receiver together. 0 means the loops themselves do not allocate.
//
//	go test -run '^$' -bench SteadyStateAllocs ./transfer/
func BenchmarkSteadyStateAllocs(b *testing.B) {
	const small, large = 8 << 20, 72 << 20
	path, _ := writeFile(b, b.TempDir(), large)
	null, err := CreateDestination(os.DevNull)
	if err != nil {
		b.Fatal(err)
	}
	for _, strategy := range Strategies {
		b.Run(strategy.String(), func(b *testing.B) {
			ts := startServer(b, Config{})
			mallocs := func(n int64) uint64 {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				tr := ts.offer(b, path, Source{Strategy: strategy, Length: n})
				if _, err := Receive(b.Context(), ts.ticket(tr), null, ReceiveConfig{}); err != nil {
					b.Fatalf("Receive() = %v", err)
				}
				if _, err := tr.Result(); err != nil {
					b.Fatalf("Result() = %v", err)
				}
				runtime.ReadMemStats(&after)
				return after.Mallocs - before.Mallocs
			}
			mallocs(large) // warm the pools
			var perMiB float64
			for b.Loop() {
				perMiB = (float64(mallocs(large)) - float64(mallocs(small))) / ((large - small) >> 20)
			}
			b.ReportMetric(perMiB, "allocs/MiB")
		})
	}
}
