package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/internal/benchfmt"
)

// fetchFunc fetches one named file to wherever the path discards it.
type fetchFunc func(ctx context.Context, name string) (fetched, error)

// fetched is what one fetch moved.
type fetched struct {
	bytes int64
	note  string
	// report is the transfer's report when the server chose the
	// strategy (Ferry's auto rows), nil otherwise: the round's AutoUse
	// tallies it.
	report *ferryv1.Report
}

// tally adds a fetch's report, if it has one, to the sample's AutoUse.
func (s *Sample) tally(f fetched) {
	if f.report == nil {
		return
	}
	if s.Auto == nil {
		s.Auto = &AutoUse{}
	}
	s.Auto.add(f.report)
}

// batchPath fetches count files one after another over a warm client,
// cycling through names, and times each one for the latency columns.
func batchPath(r row, sender, receiver cpuClock, names []string, count int, size int64, fetch fetchFunc) path {
	return path{rows: []row{r}, run: func(ctx context.Context) ([]Sample, error) {
		s, err := metered(sender, receiver, func(s *Sample) error {
			lat := make([]time.Duration, 0, count)
			for i := range count {
				t0 := time.Now()
				f, err := fetch(ctx, names[i%len(names)])
				lat = append(lat, time.Since(t0))
				if err == nil && f.bytes != size {
					err = fmt.Errorf("%s: %d bytes, want %d", names[i%len(names)], f.bytes, size)
				}
				if err != nil {
					return err
				}
				s.Bytes, s.Files, s.Note = s.Bytes+f.bytes, s.Files+1, f.note
				s.tally(f)
			}
			s.P50us = float64(benchfmt.Percentile(lat, 50)) / 1e3
			s.P99us = float64(benchfmt.Percentile(lat, 99)) / 1e3
			return nil
		})
		return []Sample{s}, err
	}}
}

// concurrentPath fetches every name once with at most workers fetches in
// flight: Ferry's stand-in for a directory pull until it has one.
func concurrentPath(r row, sender, receiver cpuClock, names []string, workers int, size int64, fetch fetchFunc) path {
	return path{rows: []row{r}, run: func(ctx context.Context) ([]Sample, error) {
		s, err := metered(sender, receiver, func(s *Sample) (err error) {
			s.Bytes, err = fetchAll(ctx, names, workers, size, fetch, s)
			s.Files = len(names)
			return err
		})
		return []Sample{s}, err
	}}
}

// fetchAll fetches names with workers goroutines, tallying reports into
// s (under a lock).
func fetchAll(ctx context.Context, names []string, workers int, size int64, fetch fetchFunc, s *Sample) (int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan string)
	var mu sync.Mutex
	var total int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for name := range next {
				f, err := fetch(ctx, name)
				if err == nil && f.bytes != size {
					err = fmt.Errorf("%s: %d bytes, want %d", name, f.bytes, size)
				}
				if err != nil {
					cancel(err)
					continue // drain: the feeder stops at ctx.Done
				}
				mu.Lock()
				total += f.bytes
				s.tally(f)
				mu.Unlock()
			}
		})
	}
	feed(ctx, next, names)
	wg.Wait()
	return total, context.Cause(ctx)
}

func feed(ctx context.Context, next chan<- string, names []string) {
	defer close(next)
	for _, name := range names {
		select {
		case next <- name:
		case <-ctx.Done():
			return
		}
	}
}
