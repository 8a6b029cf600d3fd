package transfer

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/ferrydev/ferry/fsroot"
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
	null, err := fsroot.CreateDestination(os.DevNull)
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

// BenchmarkSteadyStateAllocs reports the heap allocations the copy loops
// make per round, which should be 0 (TestSteadyStateLoopsDoNotAllocate
// holds them to it): for each strategy's sending loop and for the
// receiving loop into each kind of destination, measured around the loop
// alone over 8 and 64 MiB in 64 KiB rounds (see steadystate_test.go);
// and, for whole transfers with the default chunk sizes, sender and
// receiver in one process, the allocations per MiB of the extra 56 MiB
// (the offer, dial and goroutines cost the same at either length).
//
//	go test -run '^$' -bench SteadyStateAllocs -benchmem -benchtime 20x ./transfer/
func BenchmarkSteadyStateAllocs(b *testing.B) {
	path, _ := writeFile(b, b.TempDir(), steadyLarge)
	for _, strategy := range Strategies {
		b.Run("send/"+strategy.String(), func(b *testing.B) {
			var pr float64
			for b.Loop() {
				pr = perRound(sendLoop(b, path, steadySmall, strategy, false), sendLoop(b, path, steadyLarge, strategy, false))
			}
			b.ReportMetric(pr, "allocs/round")
		})
	}
	for _, kind := range receiverKinds {
		b.Run("receive/"+kind, func(b *testing.B) {
			var pr float64
			for b.Loop() {
				pr = perRound(recvLoop(b, steadySmall, kind), recvLoop(b, steadyLarge, kind))
			}
			b.ReportMetric(pr, "allocs/round")
		})
	}
	null, err := fsroot.CreateDestination(os.DevNull)
	if err != nil {
		b.Fatal(err)
	}
	for _, strategy := range Strategies {
		b.Run("transfer/"+strategy.String(), func(b *testing.B) {
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
			mallocs(steadyLarge) // warm the pools
			var perMiB float64
			for b.Loop() {
				perMiB = (float64(mallocs(steadyLarge)) - float64(mallocs(steadySmall))) / ((steadyLarge - steadySmall) >> 20)
			}
			b.ReportMetric(perMiB, "allocs/MiB")
		})
	}
}

// BenchmarkTransferMmapWindow moves a 256 MiB file with MMAP to /dev/null
// through windows of each size, for the default Config.MmapWindow: run
// with -count and compare sizes within one run (go test -run '^$' -bench
// TransferMmapWindow -benchtime 10x -count 3 ./transfer/).
func BenchmarkTransferMmapWindow(b *testing.B) {
	const size = 256 << 20
	path, _ := writeFile(b, b.TempDir(), size)
	null, err := fsroot.CreateDestination(os.DevNull)
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range []int{1 << 20, 2 << 20, 4 << 20, 8 << 20} {
		b.Run(fmt.Sprintf("%dMiB", w>>20), func(b *testing.B) {
			ts := startServer(b, Config{MmapWindow: w})
			b.SetBytes(size)
			for b.Loop() {
				tr := ts.offer(b, path, Source{Strategy: Mmap})
				if _, err := Receive(b.Context(), ts.ticket(tr), null, ReceiveConfig{}); err != nil {
					b.Fatalf("Receive() = %v", err)
				}
				if _, err := tr.Result(); err != nil {
					b.Fatalf("Result() = %v", err)
				}
			}
		})
	}
}

// BenchmarkSendTLS sends a 64 MiB file over a TLS 1.3 data channel to a
// receiver that discards it, with each strategy TLS allows.
//
//	go test -run '^$' -bench SendTLS ./transfer/
func BenchmarkSendTLS(b *testing.B) {
	const size = 64 << 20
	path, _ := writeFile(b, b.TempDir(), size)
	srvTLS, cliTLS := tlsPair(b)
	for _, strategy := range []Strategy{ReadWrite, Mmap} {
		b.Run(strategy.String(), func(b *testing.B) {
			ts := startServer(b, Config{TLS: srvTLS})
			null, err := fsroot.CreateDestination(os.DevNull)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			for b.Loop() {
				tr := ts.offer(b, path, Source{Strategy: strategy})
				tk := ts.ticket(tr)
				tk.TLS = cliTLS
				if _, err := Receive(b.Context(), tk, null, ReceiveConfig{}); err != nil {
					b.Fatalf("Receive() = %v", err)
				}
				if _, err := tr.Result(); err != nil {
					b.Fatalf("Result() = %v", err)
				}
			}
		})
	}
}
