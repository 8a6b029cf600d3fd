package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/internal/apiconv"
	"github.com/ferrydev/ferry/transfer"
)

// Parallel streams (DownloadOptions.Streams). One TCP flow is often held
// below what the link carries (its window, a per-flow policer, one core
// per flow); several fill it. The range is split into contiguous parts,
// each fetched by a Download call of its own (its own offer, ticket,
// strategy and data connection), all at once, and written at its offset
// into one destination file (fsroot.Destination.Part), which lands once,
// whole, or not at all, as a single stream's does. The first part to
// fail cancels the others.
//
// A file destination keeps a journal beside its partial file
// (fsroot.Journal, DEST.partial.parts) from before the first byte: the
// parts, and with Resume how much of each is durably held, so that a
// resumed download fetches only what the parts lack.

// minPart is the smallest part a range is split into (but for the page
// alignment of the boundaries): below it a stream's handshake and
// slow start cost more than the parallelism gains, so a small file uses
// fewer streams.
const minPart = 8 << 20

// partAlign aligns the parts' boundaries in the source file, so that no
// page is read by two senders.
const partAlign = 4096

// errStdoutStreams: standard output is written in order, by one stream.
var errStdoutStreams = errors.New("ferry: parallel streams write parts at their offsets in a file; standard output takes one stream (--streams 1)")

// capsCache holds what the server said of parallel streams, asked once
// per Client.
type capsCache struct {
	mu         sync.Mutex
	known      bool
	maxStreams int
}

// maxStreams is the server's cap on the streams of one file
// (GetCapabilitiesResponse.max_streams), asked on first use and kept.
// 0 or 1 means one stream, as from a server that predates them.
func (c *Client) maxStreams(ctx context.Context, idle time.Duration) (int, error) {
	c.caps.mu.Lock()
	defer c.caps.mu.Unlock()
	if !c.caps.known {
		caps, err := answered(ctx, idle, "GetCapabilities", c.Capabilities)
		if err != nil {
			return 0, err
		}
		c.caps.maxStreams, c.caps.known = int(caps.GetMaxStreams()), true
	}
	return c.caps.maxStreams, nil
}

// source is what the server said of the file when a parts download
// began: what the journal records and every part's offer must match.
type source struct {
	size, mtime int64
}

// statSource stats req's file. ok is false for a directory or a range
// that starts past the end: the Download call says why.
func (c *Client) statSource(ctx context.Context, idle time.Duration, req *ferryv1.DownloadRequest) (src source, length int64, ok bool, err error) {
	fi, err := c.stat(ctx, idle, req.GetPath())
	if err != nil {
		return source{}, 0, false, err
	}
	size := int64(fi.GetSize())
	if fi.GetIsDir() || req.GetOffset() > uint64(size) {
		return source{}, 0, false, nil
	}
	length = size - int64(req.GetOffset())
	if req.GetLength() > 0 {
		length = min(length, int64(req.GetLength()))
	}
	return source{size, fi.GetModifyTime().AsTime().UnixNano()}, length, true, nil
}

// streamCap is how many streams to run at once: what was asked, capped
// by the server; at least 1.
func (c *Client) streamCap(ctx context.Context, idle time.Duration, asked int) (int, error) {
	if asked <= 1 {
		return 1, nil
	}
	cap, err := c.maxStreams(ctx, idle)
	if err != nil {
		return 0, err
	}
	return max(1, min(asked, cap)), nil
}

// streams is how many parts to split length bytes into: what was asked,
// capped by the server and by minPart.
func (c *Client) streams(ctx context.Context, idle time.Duration, asked int, length int64) (int, error) {
	if asked <= 1 || length < 2*minPart {
		return 1, nil
	}
	n, err := c.streamCap(ctx, idle, asked)
	return int(min(int64(n), length/minPart)), err
}

// split cuts [off, off+length) into n contiguous parts of about equal
// length, their inner boundaries aligned down to partAlign.
func split(off, length int64, n int) []fsroot.JournalPart {
	parts := make([]fsroot.JournalPart, 0, n)
	start, each, extra := off, length/int64(n), length%int64(n)
	for i := int64(1); i <= int64(n); i++ {
		end := off + length
		if i < int64(n) {
			end = (off + each*i + min(i, extra)) &^ (partAlign - 1)
		}
		if end > start {
			parts = append(parts, fsroot.JournalPart{Offset: start, Length: end - start})
			start = end
		}
	}
	return parts
}

// downloadParts is Download (and DownloadTo, with dst set) with
// opts.Streams above 1: the range in parts at once, or in one stream
// when it is too short to split or the server takes one.
func (c *Client) downloadParts(ctx context.Context, req *ferryv1.DownloadRequest, dest string, dst *fsroot.Destination, opts DownloadOptions) (*ferryv1.Report, error) {
	src, length, ok, err := c.statSource(ctx, opts.Receive.IdleLimit(), req)
	if err != nil {
		return nil, err
	}
	n := 1
	if ok {
		if n, err = c.streams(ctx, opts.Receive.IdleLimit(), opts.Streams, length); err != nil {
			return nil, err
		}
	}
	if n <= 1 {
		return c.download(ctx, req, dest, dst, opts)
	}
	if dst == nil {
		if dst, err = fsroot.CreateDestination(dest); err != nil {
			return nil, err
		}
		defer dst.Abort()
	}
	j := &fsroot.Journal{Size: src.size, ModTime: src.mtime, Offset: int64(req.GetOffset()), Length: length,
		Parts: split(int64(req.GetOffset()), length, n)}
	return c.runParts(ctx, req, dst, j, n, opts)
}

// resumeParts is a resumed Download in parts: when the partial file has
// a journal, what its parts lack, whatever opts.Streams; when it has
// none and opts.Streams is above 1, the rest of the range past what the
// partial file holds, split. ok is false when neither applies and the
// download resumes in one stream.
func (c *Client) resumeParts(ctx context.Context, req *ferryv1.DownloadRequest, dst *fsroot.Destination, opts DownloadOptions) (report *ferryv1.Report, ok bool, err error) {
	j, err := dst.ReadJournal()
	if err != nil {
		return nil, true, fmt.Errorf("%w: %w (remove it, or pull without resuming)", ErrNotResumable, err)
	}
	if j == nil && opts.Streams <= 1 {
		return nil, false, nil
	}
	src, length, found, err := c.statSource(ctx, opts.Receive.IdleLimit(), req)
	if err != nil || !found {
		return nil, err != nil, err // not found: the one-stream Download says why
	}
	if j != nil {
		if j.Size != src.size || j.ModTime != src.mtime || j.Offset != int64(req.GetOffset()) || j.Length != length {
			return nil, true, fmt.Errorf("%w: %s holds parts of [%d, +%d) of a file of %d bytes modified at %d; "+
				"this pull is [%d, +%d) of one of %d bytes modified at %d (remove it, or pull without resuming)",
				ErrNotResumable, fsroot.JournalPath(dst.Path), j.Offset, j.Length, j.Size, j.ModTime,
				req.GetOffset(), length, src.size, src.mtime)
		}
		n, err := c.streamCap(ctx, opts.Receive.IdleLimit(), opts.Streams)
		if err != nil {
			return nil, true, err
		}
		report, err := c.runParts(ctx, req, dst, j, n, opts)
		return report, true, err
	}
	held := dst.Resumed()
	if held > length {
		return nil, false, nil // skipHeld refuses it, with the reason
	}
	n, err := c.streams(ctx, opts.Receive.IdleLimit(), opts.Streams, length-held)
	if err != nil || n <= 1 {
		return nil, err != nil, err
	}
	j = &fsroot.Journal{Size: src.size, ModTime: src.mtime, Offset: int64(req.GetOffset()), Length: length}
	if held > 0 { // the prefix the partial file holds is a part, whole
		j.Parts = []fsroot.JournalPart{{Offset: j.Offset, Length: held, Held: held}}
	}
	j.Parts = append(j.Parts, split(j.Offset+held, length-held, n)...)
	report, err = c.runParts(ctx, req, dst, j, n, opts)
	return report, true, err
}

// piece is what one part lacks: the Download call that fetches it.
type piece struct {
	part      int // index in the journal
	off, size int64
}

// partRun is the state the parts of one download share.
type partRun struct {
	c       *Client
	req     *ferryv1.DownloadRequest
	dst     *fsroot.Destination
	j       *fsroot.Journal
	opts    DownloadOptions
	journal bool // dst keeps a journal
	offers  int  // offers still to come: the last one restats the source
	cancel  context.CancelFunc

	mu      sync.Mutex
	err     error             // the first part's failure
	reports []*ferryv1.Report // by piece
	sent    []uint64          // progress, by piece
	changed chan struct{}     // progress moved
	got     map[int]int64     // bytes each failed piece wrote
	tainted bool              // a part failed in a way that leaves nothing to keep (untrusted)
	// The copy loops' span: the first one's start, the last one's end.
	first, last time.Time
}

// runParts fetches what j's parts lack into dst, at most streams at
// once, and lands dst when all arrived.
func (c *Client) runParts(ctx context.Context, req *ferryv1.DownloadRequest, dst *fsroot.Destination, j *fsroot.Journal, streams int, opts DownloadOptions) (*ferryv1.Report, error) {
	r := &partRun{c: c, req: req, dst: dst, j: j, opts: opts, journal: dst.KeepsJournal(),
		changed: make(chan struct{}, 1), got: make(map[int]int64)}
	var missing int64
	for _, p := range j.Parts {
		missing += p.Length - p.Held
	}
	if err := checkSize(dst.Path, j.Length-missing, uint64(missing), opts.MaxBytes); err != nil {
		return nil, err
	}
	if err := checkRoom(dst, missing); err != nil {
		return nil, err
	}
	if r.journal {
		if err := dst.SaveJournal(j); err != nil {
			return nil, fmt.Errorf("ferry: %w", err)
		}
	}
	var pieces []piece
	var total uint64
	for i, p := range j.Parts {
		if p.Held < p.Length {
			pieces = append(pieces, piece{i, p.Offset + p.Held, p.Length - p.Held})
			total += uint64(p.Length - p.Held)
		}
	}
	if len(pieces) == 0 {
		return alreadyHeld(req, dst.Path, dst)
	}
	r.reports, r.sent, r.offers = make([]*ferryv1.Report, len(pieces)), make([]uint64, len(pieces)), len(pieces)
	ctx, r.cancel = context.WithCancel(ctx)
	defer r.cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		slots := make(chan struct{}, streams)
		for i, pc := range pieces {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				r.fail(fmt.Errorf("part %d of %d: %w", pc.part+1, len(j.Parts), context.Cause(ctx)))
				continue
			}
			wg.Go(func() {
				defer func() { <-slots }()
				r.fetch(ctx, i, pc)
			})
		}
		wg.Wait()
	}()
	r.progress(done, total)
	if r.err != nil {
		return nil, r.failed()
	}
	if err := dst.Commit(); err != nil {
		return nil, fmt.Errorf("ferry: landing %s: %w", dst.Path, err)
	}
	return sumParts(req, j, r.reports, r.last.Sub(r.first)), nil
}

// fetch runs piece i: a Download of its range into its Part of the
// destination, its checksum verified there.
func (r *partRun) fetch(ctx context.Context, i int, pc piece) {
	req := proto.Clone(r.req).(*ferryv1.DownloadRequest)
	req.Offset, req.Length, req.InlineMax = uint64(pc.off), uint64(pc.size), 0
	opts := r.opts
	opts.Progress = func(p *ferryv1.Progress) { r.moved(i, p.GetBytesSent()) }
	part := r.dst.Part(pc.off-r.j.Offset, pc.size)
	report, rcv, err := r.c.fetch(ctx, req, r.dst.Path, part, opts, func(o *ferryv1.Offer) error {
		return r.checkOffer(ctx, o, pc)
	})
	if err != nil {
		first, last := pc.off, pc.off+pc.size-1
		r.mu.Lock()
		switch {
		case untrusted(err):
			r.tainted = true // whatever else failed first, nothing is kept
		case r.req.GetChecksum() == ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_UNSPECIFIED:
			r.got[pc.part] = rcv.stats.Bytes
		}
		// With a checksum asked for, a part that failed keeps nothing: a
		// resume would fetch and verify only the rest, and its bytes
		// (even all of them, their check cut short) would never be.
		r.mu.Unlock()
		r.fail(fmt.Errorf("part %d of %d (bytes %d-%d): %w", pc.part+1, len(r.j.Parts), first, last, err))
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports[i] = report
	if start := rcv.end.Add(-rcv.stats.Duration); r.first.IsZero() || start.Before(r.first) {
		r.first = start
	}
	if rcv.end.After(r.last) {
		r.last = rcv.end
	}
	if !r.journal || !r.opts.Resume {
		return
	}
	r.j.Parts[pc.part].Held = r.j.Parts[pc.part].Length
	if r.err != nil {
		return // failed() saves it with the rest
	}
	if err := r.dst.SaveJournal(r.j); err != nil {
		r.failLocked(fmt.Errorf("ferry: %w", err))
	}
}

// checkOffer refuses an offer that is not for the file the download
// began with: another size, or another length than the part's. The last
// offer to come also has the file stated again, so that a file replaced
// by one of the same size between the parts' offers (each part opens
// the path anew) is caught unless its modification time is the same too.
func (r *partRun) checkOffer(ctx context.Context, o *ferryv1.Offer, pc piece) error {
	if int64(o.GetFileSize()) != r.j.Size || int64(o.GetLength()) != pc.size {
		return fmt.Errorf("%w: the file is %d bytes, was %d when the parts were planned (offered %d of %d bytes)",
			transfer.ErrSourceChanged, o.GetFileSize(), r.j.Size, o.GetLength(), pc.size)
	}
	r.mu.Lock()
	r.offers--
	last := r.offers == 0
	r.mu.Unlock()
	if !last {
		return nil
	}
	src, _, ok, err := r.c.statSource(ctx, r.opts.Receive.IdleLimit(), r.req)
	if err != nil {
		return err
	}
	if !ok || src.size != r.j.Size || src.mtime != r.j.ModTime {
		return fmt.Errorf("%w: it changed while the parts were offered", transfer.ErrSourceChanged)
	}
	return nil
}

// fail records the first part's failure and cancels the others.
func (r *partRun) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failLocked(err)
}

func (r *partRun) failLocked(err error) {
	if r.err == nil {
		r.err = err
		r.cancel()
	}
}

// untrusted reports whether a part's error makes every byte of the file
// suspect: the source changed, or a checksum did not match.
func untrusted(err error) bool {
	return status.Code(err) == codes.Aborted || errors.Is(err, transfer.ErrSourceChanged) || errors.Is(err, transfer.ErrChecksumMismatch)
}

// failed decides what a failed parts download leaves, once every part
// has stopped, and returns its error. A changed source or a checksum
// mismatch leaves nothing, even when resuming; otherwise a resumed
// download records in the journal what each part holds (the parts that
// finished, and the bytes the failed ones wrote) and keeps the partial
// file for the next attempt, unless it holds nothing.
func (r *partRun) failed() error {
	err := r.err
	if r.tainted || untrusted(err) {
		r.dst.Remove()
		return err
	}
	if !r.journal || !r.opts.Resume {
		return err
	}
	var held int64
	for i := range r.j.Parts {
		p := &r.j.Parts[i]
		p.Held = min(p.Length, p.Held+r.got[i])
		held += p.Held
	}
	if held == 0 {
		r.dst.Remove()
		return err
	}
	if serr := r.dst.SaveJournal(r.j); serr != nil {
		r.dst.Remove()
		return fmt.Errorf("%w (and the parts journal could not be kept: %w)", err, serr)
	}
	return err
}

// moved notes a piece's progress.
func (r *partRun) moved(i int, sent uint64) {
	r.mu.Lock()
	r.sent[i] = sent
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// progress calls opts.Progress with the pieces' sums as they move, from
// the calling goroutine, until done.
func (r *partRun) progress(done <-chan struct{}, total uint64) {
	for {
		select {
		case <-done:
			return
		case <-r.changed:
			if r.opts.Progress == nil {
				continue
			}
			var sent uint64
			r.mu.Lock()
			for _, s := range r.sent {
				sent += s
			}
			r.mu.Unlock()
			r.opts.Progress(&ferryv1.Progress{BytesSent: sent, BytesTotal: total})
		}
	}
}

// sumParts is the report of a parts download: the parts' own reports,
// in range order, and their sums (apiconv.SumStats) on each side, but
// for the duration, the longest part's, and the throughput, the bytes
// over the wall time of the parts' copy loops together (from the first
// one's start to the last one's end, on this side, as a single stream's
// receiver duration is its copy loop's). The range is the whole one
// asked for; with Resume, the bytes moved may be fewer.
func sumParts(req *ferryv1.DownloadRequest, j *fsroot.Journal, parts []*ferryv1.Report, wall time.Duration) *ferryv1.Report {
	r := &ferryv1.Report{Path: req.GetPath(), Offset: uint64(j.Offset), Length: uint64(j.Length), Parts: parts,
		ChecksumVerified: len(parts) > 0}
	var sender, receiver time.Duration
	for _, p := range parts {
		r.Path = p.GetPath()
		r.Sender = apiconv.SumStats(r.Sender, p.GetSender())
		r.Receiver = apiconv.SumStats(r.Receiver, p.GetReceiver())
		sender = max(sender, p.GetSender().GetDuration().AsDuration())
		receiver = max(receiver, p.GetReceiver().GetDuration().AsDuration())
		r.ChecksumVerified = r.ChecksumVerified && p.GetChecksumVerified()
	}
	overParts(r.Sender, sender, wall)
	overParts(r.Receiver, receiver, wall)
	return r
}

// overParts sets a side's summed duration to the longest part's and its
// throughput to its bytes over the wall time.
func overParts(st *ferryv1.TransferStats, longest, wall time.Duration) {
	st.Duration = durationpb.New(longest)
	st.ThroughputBytesPerSecond = 0
	if wall > 0 {
		st.ThroughputBytesPerSecond = float64(st.GetBytes()) / wall.Seconds()
	}
}
