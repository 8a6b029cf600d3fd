package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	sparseSize      = 100 << 30
	concurrentPulls = 200
)

// memoryProbe measures target 6's RSS half on a fresh ferryd: the peak
// VmRSS (sampled every 10 ms from /proc/<pid>/status) while it serves a
// 100 GiB sparse file with MMAP, first to one pull, then to 200
// concurrent ones, each phase cut off after cfg.MemProbe. The sparse file
// costs no disk, but the holes it reads fill the page cache with zeros
// until the file is removed.
func memoryProbe(ctx context.Context, p *peers) (*Memory, error) {
	name := "sparse.bin"
	sparse := filepath.Join(p.fx.root, name)
	if err := makeSparse(sparse, sparseSize); err != nil {
		return nil, err
	}
	defer os.Remove(sparse)
	n, err := startFerryd(ctx, p.tools["ferryd"], p.work, "ferryd-mem", p.fx.root)
	if n != nil {
		defer n.stop()
	}
	if err != nil {
		return nil, err
	}
	m := &Memory{SparseSize: sparseSize, Concurrent: concurrentPulls, DurationSec: p.cfg.MemProbe.Seconds()}
	if !slices.Contains(n.strategies, ferryv1.Strategy_STRATEGY_MMAP) {
		m.Note = "this ferryd does not offer MMAP"
		return m, nil
	}
	if m.SingleMmapMiB, m.BytesSingle, err = probeRSS(ctx, n, name, 1, p.cfg.MemProbe); err != nil {
		return m, err
	}
	m.ConcurrentMiB, m.BytesConcurrent, err = probeRSS(ctx, n, name, concurrentPulls, p.cfg.MemProbe)
	return m, err
}

func makeSparse(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// probeRSS runs pulls concurrent MMAP pulls of name for d, sampling
// ferryd's VmRSS, and returns the peak in MiB and the bytes the server
// reported sending (from progress messages).
func probeRSS(ctx context.Context, n *ferryNode, name string, pulls int, d time.Duration) (float64, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	sent := make([]atomic.Int64, pulls)
	errs := make([]error, pulls)
	var wg sync.WaitGroup
	for i := range pulls {
		wg.Go(func() { errs[i] = probePull(ctx, n, name, &sent[i]) })
	}
	peak := peakRSS(ctx, n.srv.pid())
	wg.Wait()
	var total int64
	for i := range sent {
		total += sent[i].Load()
	}
	return float64(peak) / (1 << 20), total, errors.Join(errs...)
}

// probePull pulls until ctx ends; being cut off is the expected end.
func probePull(ctx context.Context, n *ferryNode, name string, sent *atomic.Int64) error {
	_, err := n.client.Download(ctx, name, os.DevNull, client.DownloadOptions{
		Strategy: ferryv1.Strategy_STRATEGY_MMAP,
		Progress: func(p *ferryv1.Progress) { sent.Store(int64(p.GetBytesSent())) },
	})
	switch {
	case err == nil:
		return fmt.Errorf("a %s pull finished within the probe", FormatSize(sparseSize))
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		status.Code(err) == codes.DeadlineExceeded, status.Code(err) == codes.Canceled:
		return nil
	}
	return err
}

// peakRSS samples VmRSS of pid every 10 ms until ctx ends.
func peakRSS(ctx context.Context, pid int) int64 {
	var peak int64
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			if rss, err := parseStatusKiB(b, "VmRSS"); err == nil {
				peak = max(peak, rss)
			}
		}
		select {
		case <-ctx.Done():
			return peak
		case <-t.C:
		}
	}
}
