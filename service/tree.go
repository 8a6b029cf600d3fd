package service

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/internal/apiconv"
	"github.com/ferrydev/ferry/transfer"
)

// Directory downloads: DownloadTree walks a directory beneath the root
// and streams its entries with an offer for each regular file, keeping at
// most a window of offers outstanding.
const (
	// defaultTreeWindow is a request's window when it names none.
	defaultTreeWindow = 16
	// maxTreeWindow caps a request's window.
	maxTreeWindow = 256
	// treeBatch bounds the entries and reports of one message, so that
	// a message stays far below gRPC's 4 MiB limit (an entry is about a
	// hundred bytes; a report with an inline file up to 64 KiB more).
	treeBatch = 512
	// treeInlineBatch bounds the inline bytes one message carries.
	treeInlineBatch = 1 << 20
	// treeTicketTTL bounds a tree offer's ticket; a stall (no byte moved
	// for the data plane's TicketTTL while offers wait) ends the call
	// long before.
	treeTicketTTL = 24 * time.Hour
)

// treeWindow is the window a request gets: 0 means the default; at most
// maxTreeWindow and half the data plane's MaxTransfers, so that one tree
// leaves room for other clients.
func (s *transferService) treeWindow(asked uint32) int {
	w := int(asked)
	if w == 0 {
		w = defaultTreeWindow
	}
	return max(1, min(w, maxTreeWindow, s.data.MaxTransfers()/2))
}

// DownloadTree checks the request, opens the tree and streams it: an
// adapter over treeSend. Its TreeReport is the sender's: symlinks counts
// the symlinks sent (the receiver decides which it recreates), skipped
// the sockets, devices and FIFOs left out.
func (s *transferService) DownloadTree(req *ferryv1.DownloadTreeRequest, stream grpc.ServerStreamingServer[ferryv1.DownloadTreeResponse]) error {
	return s.sendTree(req, nil, stream)
}

// treeStream is what treeSend sends on: a DownloadTree stream, or a
// SyncTree stream through syncStream.
type treeStream interface {
	grpc.ServerStream
	Send(*ferryv1.DownloadTreeResponse) error
}

// sendTree runs a DownloadTree or (with sync) SyncTree call.
func (s *transferService) sendTree(req *ferryv1.DownloadTreeRequest, sync *treeSync, stream treeStream) (err error) {
	src, err := s.treeSource(stream.Context(), req)
	if err != nil {
		return err
	}
	tree, err := s.root.OpenTree(req.GetPath())
	if err != nil {
		return s.statusOf(err, req.GetPath())
	}
	defer tree.Close()
	rec := s.transfers.start(stream.Context(), &ferryv1.TransferInfo{
		Kind: ferryv1.TransferKind_TRANSFER_KIND_DOWNLOAD_TREE, Path: tree.Path,
		Peer: callerAddr(stream), Strategy: req.GetStrategy(),
	})
	defer func() { rec.finish(nil, nil, err) }()
	ts := &treeSend{
		s: s, stream: stream, tree: tree, src: src, window: s.treeWindow(req.GetWindow()),
		outstanding: make(map[*transfer.Transfer]struct{}),
		report:      &ferryv1.TreeReport{Path: tree.Path, Directories: 1, DryRun: sync.dryRun()},
		rec:         rec, sync: sync,
	}
	ts.finished = make(chan *transfer.Transfer, ts.window)
	defer ts.cancelAll()
	start := time.Now()
	if err := tree.Walk(ts.add); err != nil {
		return ts.status(err)
	}
	if err := ts.drain(); err != nil {
		return err
	}
	r := ts.report
	r.Duration = durationpb.New(time.Since(start))
	if d := time.Since(start).Seconds(); d > 0 {
		r.ThroughputBytesPerSecond = float64(r.Bytes) / d
	}
	s.log.Info("tree sent", "path", tree.Path, "files", r.Files, "bytes", r.Bytes,
		"unchanged", r.Unchanged, "dry_run", r.DryRun, "took", time.Since(start))
	rec.finish(nil, r, nil) // before the caller can see the report
	return stream.Send(&ferryv1.DownloadTreeResponse{Entries: ts.entries, Reports: ts.reports, Report: r})
}

// treeSource checks a request's per-file options and returns the Source
// template every file's offer starts from.
func (s *transferService) treeSource(ctx context.Context, req *ferryv1.DownloadTreeRequest) (transfer.Source, error) {
	strategy, err := apiconv.FromStrategy(req.GetStrategy())
	if err != nil {
		return transfer.Source{}, status.Error(codes.InvalidArgument, err.Error())
	}
	sum, err := apiconv.FromChecksumAlgorithm(req.GetChecksum())
	if err != nil {
		return transfer.Source{}, status.Error(codes.InvalidArgument, err.Error())
	}
	if _, err := s.data.Choose(strategy); err != nil {
		return transfer.Source{}, s.statusOf(err, req.GetPath())
	}
	return transfer.Source{
		Strategy: strategy, ClientIP: clientIP(ctx), RateLimit: rateLimit(req.GetRateLimit()),
		Checksum: sum, InlineMax: inlineMax(req.GetInlineMax()), Context: ctx,
		Sink: transfer.SinkFile, // a tree's receiver lands every file
		// Queued offers wait behind the files in flight, which may take
		// longer than a ticket's lifetime; wait watches for a stall
		// instead, and the call's end revokes them all.
		TicketTTL: treeTicketTTL,
	}, nil
}

// treeSend is one DownloadTree call's state. It runs on the call's
// goroutine, except the watchers, which only pass finished transfers
// over the finished channel (its capacity is the window, so they never
// block) and are waited for by cancelAll.
type treeSend struct {
	s      *transferService
	stream treeStream
	tree   *fsroot.Tree
	sync   *treeSync // SyncTree only
	src    transfer.Source
	window int

	outstanding map[*transfer.Transfer]struct{}
	finished    chan *transfer.Transfer
	watchers    sync.WaitGroup

	entries []*ferryv1.TreeEntry // not sent yet
	reports []*ferryv1.Report    // not sent yet
	inline  int                  // inline bytes in entries
	report  *ferryv1.TreeReport  // the sender's sums so far

	rec       *record // in the ListTransfers registry
	seenFiles uint64  // regular files walked so far
	seenBytes uint64  // and their sizes
}

// add takes one walked entry: a regular file gets an offer, once the
// window has room; everything else goes as it is.
func (ts *treeSend) add(e fsroot.DirEntry) error {
	fe := fileEntry(e)
	te := &ferryv1.TreeEntry{File: fe}
	switch fe.Type {
	case ferryv1.FileType_FILE_TYPE_DIRECTORY:
		ts.report.Directories++
	case ferryv1.FileType_FILE_TYPE_SYMLINK:
		ts.report.Symlinks++
	case ferryv1.FileType_FILE_TYPE_REGULAR:
		same, err := ts.sync.unchanged(ts, e)
		if err != nil {
			return err
		}
		if same {
			te.Unchanged = true
			ts.report.Unchanged++
			ts.report.UnchangedBytes += fe.GetSize()
			break
		}
		ts.seenFiles++
		ts.seenBytes += fe.GetSize()
		ts.rec.totals(ts.seenBytes, ts.seenFiles) // they grow as the walk goes
		if ts.sync.dryRun() {
			break
		}
		offer, err := ts.offer(e.Path)
		if err != nil {
			return err
		}
		te.Offer = offer
		ts.inline += len(offer.GetData())
	default:
		ts.report.Skipped++
	}
	ts.entries = append(ts.entries, te)
	if len(ts.entries) >= treeBatch || ts.inline >= treeInlineBatch {
		return ts.flush()
	}
	return nil
}

// offer waits for room in the window, then opens and offers the file.
// An offer the data plane refuses as busy waits for one of this call's
// own transfers to finish and tries again.
func (ts *treeSend) offer(rel string) (*ferryv1.Offer, error) {
	for {
		if err := ts.room(); err != nil {
			return nil, err
		}
		f, err := ts.tree.Open(rel)
		if err != nil {
			return nil, err
		}
		src := ts.src
		src.File, src.Path = f, f.Name()
		t, err := ts.s.data.Offer(src)
		if errors.Is(err, transfer.ErrBusy) && len(ts.outstanding) > 0 {
			f.Close()
			if err := ts.wait(len(ts.outstanding) - 1); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		ts.watch(t)
		return &ferryv1.Offer{
			TransferId: t.ID, DataAddress: ts.s.dataAddress(t), Ticket: ticketOf(t),
			Offset: uint64(t.Offset), Length: uint64(t.Length), Strategy: apiconv.Strategy(t.Strategy),
			FileSize: uint64(t.FileSize), Checksum: apiconv.Checksum(t.Checksum), Inline: t.Inline, Data: t.Data,
			DataTls: !t.Inline && ts.s.data.DataTLS(),
		}, nil
	}
}

// room collects finished transfers without waiting and, when the window
// is full, sends what is pending and waits until it is half empty: the
// client still holds half a window of offers meanwhile, and a tree of
// small files costs one message per half window, not one per file.
func (ts *treeSend) room() error {
	if err := ts.collect(); err != nil {
		return err
	}
	if len(ts.outstanding) < ts.window {
		return nil
	}
	if err := ts.flush(); err != nil {
		return err
	}
	return ts.wait(ts.window / 2)
}

// watch registers t and starts the goroutine that reports its end.
func (ts *treeSend) watch(t *transfer.Transfer) {
	ts.outstanding[t] = struct{}{}
	ts.watchers.Add(1)
	go func() {
		defer ts.watchers.Done()
		<-t.Done()
		ts.finished <- t
	}()
}

// collect takes the transfers that have finished, without waiting.
func (ts *treeSend) collect() error {
	for {
		select {
		case t := <-ts.finished:
			if err := ts.done(t); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// wait takes finished transfers until at most n are outstanding. A tree
// whose outstanding transfers move no byte for the data plane's
// TicketTTL has stalled (the client holds offers it does not take up):
// the call ends with DEADLINE_EXCEEDED, as a single offer's ticket would
// expire.
func (ts *treeSend) wait(n int) error {
	ctx := ts.stream.Context()
	ttl := ts.s.data.TicketTTL()
	stall := time.NewTimer(ttl)
	defer stall.Stop()
	last := ts.moved()
	for len(ts.outstanding) > n {
		select {
		case t := <-ts.finished:
			if err := ts.done(t); err != nil {
				return err
			}
		case <-stall.C:
			now := ts.moved()
			if now == last {
				return status.Errorf(codes.DeadlineExceeded,
					"no byte of the tree moved for %v while %d offers waited for their data connections", ttl, len(ts.outstanding))
			}
			last = now
			stall.Reset(ttl)
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	return nil
}

// moved is how many bytes the tree's transfers have moved so far.
func (ts *treeSend) moved() uint64 {
	n := ts.report.Bytes
	for t := range ts.outstanding {
		n += uint64(t.Sent())
	}
	return n
}

// done records a finished transfer: its report joins the next message and
// the sums, or its error ends the call.
func (ts *treeSend) done(t *transfer.Transfer) error {
	delete(ts.outstanding, t)
	st, err := t.Result()
	if err != nil {
		return ts.s.statusOf(err, "transfer "+t.ID+" of "+t.Path)
	}
	sender := apiconv.Stats(st)
	ts.report.Files++
	ts.report.Bytes += uint64(st.Bytes)
	if st.Inline {
		ts.report.InlineFiles++
	}
	ts.report.Sender = apiconv.SumStats(ts.report.Sender, sender)
	ts.rec.progress(ts.report.Bytes, ts.report.Files)
	ts.reports = append(ts.reports, &ferryv1.Report{
		TransferId: t.ID, Path: t.Path, Offset: uint64(t.Offset), Length: uint64(t.Length),
		Sender: sender, Checksum: apiconv.Checksum(t.Checksum), Auto: apiconv.AutoChoice(t.Auto),
	})
	if len(ts.reports) >= treeBatch {
		return ts.flush()
	}
	return nil
}

// drain sends what is pending and waits for every outstanding transfer,
// sending reports as they come, a batch per wake-up.
func (ts *treeSend) drain() error {
	for len(ts.outstanding) > 0 {
		if err := ts.flush(); err != nil {
			return err
		}
		if err := ts.wait(len(ts.outstanding) - 1); err != nil {
			return err
		}
		if err := ts.collect(); err != nil {
			return err
		}
	}
	return nil
}

// flush sends the pending entries and reports, if any.
func (ts *treeSend) flush() error {
	if len(ts.entries) == 0 && len(ts.reports) == 0 {
		return nil
	}
	err := ts.stream.Send(&ferryv1.DownloadTreeResponse{Entries: ts.entries, Reports: ts.reports})
	ts.entries, ts.reports, ts.inline = nil, nil, 0
	return err
}

// status maps a walk's error: statuses pass, data-plane errors are
// mapped.
func (ts *treeSend) status(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if ctx := ts.stream.Context(); ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	return ts.s.statusOf(err, ts.tree.Path)
}

// cancelAll revokes every outstanding ticket, aborts running copies,
// waits until their files are released and the watchers have ended.
func (ts *treeSend) cancelAll() {
	for t := range ts.outstanding {
		t.Cancel()
	}
	ts.watchers.Wait()
}
