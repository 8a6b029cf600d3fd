package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ferrydev/ferry/client"
)

// pullMany fetches several files into the directory dest over one
// Session call (see "Sessions" in docs/design.md): --concurrency of
// them in flight at once, their bytes on data connections bound once.
// Each file lands as dest/<its base name>, whole or not at all; a failed
// one does not stop the others. Each report is printed as its file
// lands; the error names every file that failed.
func (p *pullArgs) pullMany(ctx context.Context, cl *client.Client, srcs []string, dest string, out io.Writer) error {
	if fi, err := os.Stat(dest); err != nil || !fi.IsDir() {
		return fmt.Errorf("pull: with several REMOTE_PATHs, DEST must be an existing directory: %s", dest)
	}
	s, err := cl.OpenSession(ctx, client.SessionOptions{Window: p.concurrency, Connections: min(p.concurrency, 4),
		Receive: p.opts.Receive, MaxBytes: p.opts.MaxBytes})
	if err != nil {
		return err
	}
	defer s.Close()
	get := client.GetOptions{Strategy: p.opts.Strategy, Checksum: p.opts.Checksum,
		InlineMax: p.opts.InlineMax, RateLimit: p.opts.RateLimit}
	var mu sync.Mutex // one report printed at a time
	var failed []string
	next := make(chan string)
	var wg sync.WaitGroup
	for range p.concurrency {
		wg.Go(func() {
			for src := range next {
				to := filepath.Join(dest, path.Base(src))
				start := time.Now()
				rep, err := s.Download(ctx, src, to, get)
				mu.Lock()
				if err != nil {
					failed = append(failed, src+": "+errorText(err)) // escape.go
				} else if p.json {
					printJSON(out, rep)
				} else {
					printReport(out, src, to, rep, time.Since(start))
					fmt.Fprintln(out)
				}
				mu.Unlock()
			}
		})
	}
	for _, src := range srcs {
		next <- src
	}
	close(next)
	wg.Wait()
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d files failed: %s", len(failed), len(srcs), strings.Join(failed, "; "))
	}
	return nil
}

// manyAllowed refuses the flags that make sense for one file only (a
// usage error: pullArgs.run checks before dialling).
func (p *pullArgs) manyAllowed() error {
	switch {
	case p.recursive:
		return errors.New("pull: -r takes one REMOTE_PATH")
	case p.opts.Resume, p.opts.Streams > 1, p.opts.Offset > 0, p.opts.Length > 0:
		return errors.New("pull: --resume, --streams, --offset and --length take one REMOTE_PATH")
	case p.concurrency < 1:
		return fmt.Errorf("pull: --concurrency %d: want 1 or more", p.concurrency)
	}
	return nil
}
