package client

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/internal/apiconv"
	"github.com/ferrydev/ferry/transfer"
)

// TreeOptions shape a directory download. The zero value copies the tree
// into a new directory, four files at a time, with the server's choice
// of strategy for each file.
type TreeOptions struct {
	// Strategy for every file; UNSPECIFIED lets the server choose per
	// file, by its size.
	Strategy ferryv1.Strategy
	// Checksum for every file, verified before the file is kept, as
	// DownloadOptions.Checksum.
	Checksum ferryv1.ChecksumAlgorithm
	// RateLimit paces each file's data channel, as DownloadOptions.
	RateLimit uint64
	// InlineMax accepts files of at most this many bytes inside their
	// offers, as DownloadOptions. 0 means never.
	InlineMax uint64
	// Concurrency is the number of files received at once, each by a
	// worker that takes data connections from a pool shared by all, so a
	// tree needs about Concurrency connections, not one per file. 0
	// means 4; at most 256.
	Concurrency int
	// Window is how many offers the server keeps outstanding. 0 means
	// 16, or 4 × Concurrency when that is more; the server caps it.
	Window uint32
	// Overwrite lets the destination directory exist: the tree is then
	// merged into it. Files and symlinks of the tree replace entries of
	// the same name (each atomically, by rename), existing directories
	// are kept and filled, and entries the tree does not name are left
	// alone (nothing is deleted). A directory where the tree has a file or
	// symlink, or anything but a directory where it has a directory, is
	// an error. Without Overwrite an existing destination is an error
	// (wrapping fsroot.ErrExists) and is left untouched.
	Overwrite bool
	// Progress, if set, is called as each file lands, with the files and
	// bytes done and the totals announced so far (the server walks the
	// tree as it sends it, so the totals grow until the last entry).
	// Calls come from the goroutine that lands the files, one at a time.
	Progress func(*ferryv1.Progress)
	// Receive tunes the receiving copy loop. Its IdleTimeout also bounds
	// how long the download waits for the server's next message while no
	// file is being received, unless Checksum is set: the server then
	// hashes each file before it offers it, which may take longer.
	Receive ReceiveConfig
	// MaxBytes caps the bytes of the tree's files together: the offer that
	// would take them past it fails the download with an error wrapping
	// ErrTooLarge, before any of that file is written (files landed
	// before stay). 0 means no cap. Whatever the cap, the files offered
	// must fit in the free space the destination's file system had when
	// each was offered, less what earlier offers still need
	// (ErrNoSpace).
	MaxBytes uint64
	// Sync makes the download a sync (SyncTree): the destination may exist
	// (Overwrite is implied), and a regular file it holds that matches the
	// server's at this level is skipped without moving a byte; others are
	// replaced whole, each by rename. A non-directory where the tree has a
	// directory is removed first; a directory where the tree has a file or
	// symlink is an error unless Delete. The zero value copies everything.
	// A skipped file whose mode differs from the server's gets the
	// server's; at the SIZE, EXISTS and CHECKSUM levels its time too. A
	// type change moves the old entry aside, removes it once the sync has
	// succeeded, and puts it back if the sync fails.
	Sync ferryv1.SyncLevel
	// Delete (with Sync) removes, once every file has landed, what the
	// destination held before the sync and the tree does not have, and
	// lets a file or symlink replace a directory. Nothing outside the
	// destination is touched and no symlink is followed
	// (fsroot.Root.RemoveAll).
	Delete bool
	// DryRun (with Sync) changes nothing, creates no directory, and moves
	// no byte: the server judges every file, and the report counts what
	// would have been sent, replaced, left unchanged and deleted, with
	// DryRun set.
	DryRun bool
	// Changes, if set, is called in a dry run with each change it would
	// make, in walk order, deletions last; from one goroutine.
	Changes func(*ferryv1.TreeChange)
}

// maxTreeConcurrency caps TreeOptions.Concurrency (and a Pull request's
// concurrency): the server's window is at most 256 anyway.
const maxTreeConcurrency = 256

func (o *TreeOptions) concurrency() int {
	if o.Concurrency <= 0 {
		return 4
	}
	return min(o.Concurrency, maxTreeConcurrency)
}

func (o *TreeOptions) window() uint32 {
	if o.Window != 0 {
		return o.Window
	}
	return uint32(max(16, 4*o.concurrency()))
}

// DownloadTree copies the directory path on the server into destDir, a
// new directory (see TreeOptions.Overwrite), recreating regular files,
// directories, modes and modification times, and symlinks whose target is
// relative and stays inside the tree (with the target cleaned lexically:
// "a/../b" becomes "b"); other symlinks, sockets, devices and FIFOs are
// counted as skipped. Every name is created beneath destDir in the kernel
// (fsroot.Root): a server naming "..", an absolute path or a path
// through a symlink gets an error, never a file outside destDir.
//
// Each file lands whole or not at all, as with Download. On failure the
// first error is returned and the call cancelled; files already landed
// stay, and no partial file is left.
func (c *Client) DownloadTree(ctx context.Context, path, destDir string, opts TreeOptions) (*ferryv1.TreeReport, error) {
	top, err := c.statTree(ctx, opts.Receive.IdleLimit(), path)
	if err != nil {
		return nil, err
	}
	if err := opts.checkSync(); err != nil {
		return nil, err
	}
	if opts.DryRun {
		return c.dryRunDir(ctx, path, destDir, opts)
	}
	if err := os.Mkdir(destDir, 0o700); err != nil {
		fi, serr := os.Lstat(destDir)
		switch {
		case !errors.Is(err, fs.ErrExist):
			return nil, err
		case serr == nil && !fi.IsDir():
			return nil, fmt.Errorf("ferry: %s: %w", destDir, fsroot.ErrNotDir)
		case !opts.Overwrite:
			return nil, fmt.Errorf("%s: %w", destDir, fsroot.ErrExists) // see TreeOptions.Overwrite
		}
	}
	root, err := fsroot.OpenRoot(destDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return c.downloadTree(ctx, path, top, root, opts)
}

// statTree describes path on the server, which must be a directory.
func (c *Client) statTree(ctx context.Context, idle time.Duration, path string) (*ferryv1.StatFileResponse, error) {
	top, err := c.stat(ctx, idle, path)
	if err != nil {
		return nil, err
	}
	if !top.GetIsDir() {
		return nil, fmt.Errorf("ferry: %s: %w (use Download)", path, fsroot.ErrNotDir)
	}
	return top, nil
}

// DownloadTreeTo is DownloadTree into a directory the caller opened as a
// Root, such as one beneath a node's own root. It creates everything
// beneath dest, and sets dest's own mode and time last.
func (c *Client) DownloadTreeTo(ctx context.Context, path string, dest *fsroot.Root, opts TreeOptions) (*ferryv1.TreeReport, error) {
	top, err := c.statTree(ctx, opts.Receive.IdleLimit(), path)
	if err != nil {
		return nil, err
	}
	if err := opts.checkSync(); err != nil {
		return nil, err
	}
	if opts.DryRun {
		return c.dryRun(ctx, path, dest, opts)
	}
	return c.downloadTree(ctx, path, top, dest, opts)
}

// downloadTree runs the DownloadTree call for the directory top describes.
func (c *Client) downloadTree(ctx context.Context, path string, top *ferryv1.StatFileResponse, dest *fsroot.Root, opts TreeOptions) (*ferryv1.TreeReport, error) {
	ctx, cancelCause := context.WithCancelCause(ctx)
	cancel := func() { cancelCause(nil) }
	defer cancel()
	start := time.Now()
	var have *destState
	if opts.Sync != ferryv1.SyncLevel_SYNC_LEVEL_UNSPECIFIED {
		var err error
		if have, err = scanDest(ctx, dest, opts.Sync); err != nil {
			return nil, err
		}
		defer have.close()
	}
	stream, err := c.openTree(ctx, treeRequest(path, opts), have, opts)
	if err != nil {
		return nil, err
	}
	if opts.Overwrite { // a sync's or merge's destination may be one an earlier copy left read-only
		if err := dest.MakeWritable(); err != nil {
			return nil, fmt.Errorf("ferry: %w", err)
		}
	}
	tr := newTreeRecv(c, dest, opts, cancel)
	tr.have = have
	tr.control = stream.Context()
	defer tr.pool.Close()
	defer tr.land.Close()
	// With a checksum (or a sync at the checksum level) the server hashes
	// files before it sends their entries, which may take longer.
	if idle := opts.Receive.IdleLimit(); idle > 0 && opts.Checksum == ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_UNSPECIFIED &&
		opts.Sync != ferryv1.SyncLevel_SYNC_LEVEL_CHECKSUM {
		tr.watch(idle, cancelCause)
	}
	sent, serr := tr.run(ctx, stream)
	err = tr.finish(idleCause(ctx, serr))
	if err == nil && ctx.Err() != nil {
		// Cancelled after the server's last message: the workers skipped
		// what they had not started, so this is not the whole tree.
		err = fmt.Errorf("ferry: %w", context.Cause(ctx))
	}
	if err != nil {
		if perr := tr.putBack(); perr != nil {
			err = fmt.Errorf("%w; %w", err, perr)
		}
		tr.land.Sync() // the files that did land stay: make them durable
		return nil, err
	}
	if err := tr.deleteRest(); err != nil { // before the directories' times are set
		tr.land.Sync()
		return nil, err
	}
	tr.dirs = append(tr.dirs, dirMeta{".", fs.FileMode(top.GetMode()), top.GetModifyTime().AsTime()})
	if err := tr.setDirMeta(); err != nil {
		return nil, err
	}
	// One syncfs makes the names and the directories' metadata durable.
	if err := tr.land.Sync(); err != nil {
		return nil, fmt.Errorf("ferry: %w", err)
	}
	return tr.report(path, sent, time.Since(start)), nil
}

// treeRecv is one tree download's receiving side: the goroutine reading
// the stream creates directories and symlinks and hands files to the
// workers, which hand received files to the committer.
type treeRecv struct {
	c         *Client
	dest      *fsroot.Root
	land      *fsroot.TreeLanding
	opts      TreeOptions
	cancel    context.CancelFunc
	control   context.Context // the call's: how its connection is secured
	pool      *transfer.Pool
	jobs      chan *ferryv1.TreeEntry
	wg        sync.WaitGroup
	landq     chan landing  // received files, to the committer
	committed chan struct{} // closed when the committer is done

	dirs []dirMeta  // set last, deepest first
	have *destState // a sync's: what the destination held before it
	room int64      // free space the offers so far leave (admit); -1 before the first

	mu       sync.Mutex // guards what follows, written by the workers
	err      error      // the first worker error
	sum      *ferryv1.TreeReport
	progress treeProgress
	// While no file is queued or being received (inflight), the server
	// must send its next message within idle of heard (watch).
	inflight int
	heard    time.Time
	idle     time.Duration
	silent   *time.Timer
}

// treeProgress is what Progress reports, kept as plain numbers.
type treeProgress struct {
	BytesSent, BytesTotal, FilesDone, FilesTotal uint64
}

type dirMeta struct {
	path  string
	mode  fs.FileMode
	mtime time.Time
}

func newTreeRecv(c *Client, dest *fsroot.Root, opts TreeOptions, cancel context.CancelFunc) *treeRecv {
	tr := &treeRecv{
		c: c, dest: dest, land: dest.TreeLanding(opts.Overwrite), opts: opts, cancel: cancel,
		pool:      transfer.NewPool(transfer.PoolConfig{MaxIdle: opts.concurrency()}),
		jobs:      make(chan *ferryv1.TreeEntry, opts.window()),
		landq:     make(chan landing, maxPending),
		committed: make(chan struct{}),
		sum:       &ferryv1.TreeReport{Directories: 1},
		room:      -1,
	}
	return tr
}

// run reads the stream to its end, starting the workers, and returns the
// server's TreeReport.
func (tr *treeRecv) run(ctx context.Context, stream interface {
	Recv() (*ferryv1.DownloadTreeResponse, error)
}) (*ferryv1.TreeReport, error) {
	go tr.committer(ctx)
	for range tr.opts.concurrency() {
		tr.wg.Add(1)
		go tr.work(ctx)
	}
	defer close(tr.jobs)
	for {
		msg, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		tr.heardNow(0)
		for _, e := range msg.GetEntries() {
			if err := tr.entry(ctx, e); err != nil {
				return nil, err
			}
		}
		if r := msg.GetReport(); r != nil {
			return r, nil
		}
	}
}

// entry creates a directory or symlink at once and queues a file.
func (tr *treeRecv) entry(ctx context.Context, e *ferryv1.TreeEntry) error {
	f := e.GetFile()
	p, err := entryPath(f.GetPath())
	if err != nil {
		return err
	}
	mode := fs.FileMode(f.GetMode())
	if tr.have != nil {
		done, err := tr.syncEntry(p, e) // treesync.go
		if done || err != nil {
			return err
		}
	}
	switch f.GetType() {
	case ferryv1.FileType_FILE_TYPE_DIRECTORY:
		if err := tr.dest.Mkdir(p, mode, tr.opts.Overwrite); err != nil {
			return fmt.Errorf("ferry: %w", err)
		}
		tr.dirs = append(tr.dirs, dirMeta{p, mode, f.GetModifyTime().AsTime()})
		tr.count(func(s *ferryv1.TreeReport) { s.Directories++ })
	case ferryv1.FileType_FILE_TYPE_SYMLINK:
		target, ok := safeTarget(p, f.GetSymlinkTarget())
		if !ok {
			tr.count(func(s *ferryv1.TreeReport) { s.Skipped++ })
			return nil
		}
		if err := tr.dest.Symlink(target, p, tr.opts.Overwrite); err != nil {
			return fmt.Errorf("ferry: %w", err)
		}
		tr.count(func(s *ferryv1.TreeReport) { s.Symlinks++ })
	case ferryv1.FileType_FILE_TYPE_REGULAR:
		if e.GetOffer() == nil {
			return fmt.Errorf("ferry: the server sent file %q without an offer", p)
		}
		if err := tr.admit(p, e.GetOffer().GetLength()); err != nil {
			return err
		}
		select {
		case tr.jobs <- e:
		case <-ctx.Done():
			return ctx.Err()
		}
	default:
		tr.count(func(s *ferryv1.TreeReport) { s.Skipped++ })
	}
	return nil
}

// entryPath checks a path the server named: clean, relative, below the
// tree. Confinement does not rest on this check (every name is resolved
// beneath the destination in the kernel), but a server that sends such a
// name is broken or hostile, and the copy stops.
func entryPath(p string) (string, error) {
	if p == "" || p == "." || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("ferry: the server sent an entry named %q, which is not a path below the tree: %w",
			p, fsroot.ErrInvalidPath)
	}
	return p, nil
}

// safeTarget returns the cleaned target of the symlink at p if it is
// relative and stays inside the tree. Because every recreated link
// passes this test and the directories on a link's path are real ones
// (the sender walks without following links), a chain of such links
// cannot leave the tree either.
func safeTarget(p, target string) (string, bool) {
	if target == "" || path.IsAbs(target) {
		return "", false
	}
	clean := path.Clean(target)
	in := path.Join(path.Dir(p), clean)
	if in == ".." || strings.HasPrefix(in, "../") {
		return "", false
	}
	return clean, true
}

// count updates the receiver's sums under the lock.
func (tr *treeRecv) count(f func(*ferryv1.TreeReport)) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	f(tr.sum)
}

// maxPending bounds the received files waiting for their group commit,
// each holding a descriptor, and maxGroup the files one commit lands.
const maxPending, maxGroup = 512, 1024

// landing is a received file waiting for its group commit.
type landing struct {
	e   *ferryv1.TreeEntry
	dst *fsroot.Destination
	st  transfer.Stats
}

// work receives files until the queue closes, handing each to the
// committer; after an error it only drains the queue.
func (tr *treeRecv) work(ctx context.Context) {
	defer tr.wg.Done()
	for e := range tr.jobs {
		if ctx.Err() != nil {
			continue
		}
		l, err := tr.receive(ctx, e)
		tr.heardNow(-1)
		if err != nil {
			if l.dst != nil {
				l.dst.Abort()
			}
			tr.fail(fmt.Errorf("ferry: %s: %w", e.GetFile().GetPath(), err))
			continue
		}
		tr.landq <- l
	}
}

// committer lands received files in groups (a group commit): it takes
// every file that arrived while the previous group was being committed,
// so one syncfs(2) covers many files (see fsroot.TreeLanding.CommitAll)
// and the workers never wait for it. After an error or a cancellation it
// aborts what arrives.
func (tr *treeRecv) committer(ctx context.Context) {
	defer close(tr.committed)
	var group []landing
	for l := range tr.landq {
		group = append(group[:0], l)
	more:
		for len(group) < maxGroup {
			select {
			case l, ok := <-tr.landq:
				if !ok {
					break more
				}
				group = append(group, l)
			default:
				break more
			}
		}
		tr.commit(ctx, group)
	}
}

// commit lands a group of received files and counts them; after an error
// it aborts them.
func (tr *treeRecv) commit(ctx context.Context, group []landing) {
	dsts := make([]*fsroot.Destination, len(group))
	for i, l := range group {
		dsts[i] = l.dst
	}
	tr.mu.Lock()
	failed := tr.err != nil || ctx.Err() != nil
	tr.mu.Unlock()
	if failed {
		for _, d := range dsts {
			d.Abort()
		}
		return
	}
	if err := tr.land.CommitAll(dsts); err != nil {
		for _, d := range dsts {
			d.Abort()
		}
		tr.fail(fmt.Errorf("ferry: landing files: %w", err))
		return
	}
	for _, l := range group {
		tr.landed(l.e, l.st)
	}
}

// fail records the first error and cancels the call.
func (tr *treeRecv) fail(err error) {
	tr.mu.Lock()
	if tr.err == nil {
		tr.err = err
	}
	tr.mu.Unlock()
	tr.cancel()
}

// receive receives one file, up to its commit: its bytes over a pooled
// connection (or from the offer), the checksum check, mode and time. The
// caller commits or aborts the destination, when there is one.
func (tr *treeRecv) receive(ctx context.Context, e *ferryv1.TreeEntry) (landing, error) {
	f, offer := e.GetFile(), e.GetOffer()
	l := landing{e: e}
	if err := tr.checkOfferSum(f.GetPath(), offer); err != nil {
		return l, err
	}
	dst, err := tr.land.Destination(f.GetPath())
	if err != nil {
		return l, err
	}
	l.dst = dst
	strategy, _ := apiconv.FromStrategy(offer.GetStrategy())
	if offer.GetInline() {
		l.st, err = transfer.ReceiveInline(offer.GetData(), int64(offer.GetLength()), dst, strategy)
	} else if addr, aerr := tr.c.dataAddress(offer); aerr != nil {
		err = aerr
	} else if sec, serr := tr.c.dataTLSFor(tr.control, offer); serr != nil {
		err = serr
	} else {
		l.st, err = tr.pool.Receive(ctx, transfer.Ticket{
			Address: addr, Ticket: offer.GetTicket(),
			Length: int64(offer.GetLength()), Strategy: strategy, TLS: sec,
		}, dst, tr.opts.Receive)
	}
	if err != nil {
		return l, err
	}
	if offer.GetChecksum() != nil {
		want, err := apiconv.FromChecksum(offer.GetChecksum())
		if err != nil {
			return l, err
		}
		got, err := transfer.VerifyChecksum(ctx, dst, want)
		l.st.ChecksumCPU += got.CPU
		if err != nil {
			return l, err
		}
	}
	return l, dst.SetMeta(fs.FileMode(f.GetMode()), f.GetModifyTime().AsTime())
}

// checkOfferSum refuses, before a byte lands, an offer that does not
// carry the checksum the tree was asked with: a tree asked to be verified
// is verified file by file, or it fails.
func (tr *treeRecv) checkOfferSum(path string, offer *ferryv1.Offer) error {
	asked := tr.opts.Checksum
	if asked == ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_UNSPECIFIED {
		return nil
	}
	if got := offer.GetChecksum().GetAlgorithm(); got != asked {
		return fmt.Errorf("ferry: %s: asked for a %v checksum, the server's offer has %v", path, asked, got)
	}
	return nil
}

// landed adds a landed file to the sums and reports progress.
func (tr *treeRecv) landed(e *ferryv1.TreeEntry, st transfer.Stats) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.sum.Files++
	tr.sum.Bytes += uint64(st.Bytes)
	if _, ok := tr.have.entry(e.GetFile().GetPath()); ok {
		tr.sum.Replaced++
	}
	if e.GetOffer().GetInline() {
		tr.sum.InlineFiles++
	}
	tr.sum.Receiver = apiconv.SumStats(tr.sum.Receiver, apiconv.Stats(st))
	tr.progress.FilesDone++
	tr.progress.BytesSent += uint64(st.Bytes)
	if tr.opts.Progress != nil {
		tr.opts.Progress(&ferryv1.Progress{
			BytesSent: tr.progress.BytesSent, BytesTotal: tr.progress.BytesTotal,
			FilesDone: tr.progress.FilesDone, FilesTotal: tr.progress.FilesTotal,
		})
	}
}

// admit counts a file of length bytes offered as p, or refuses it: past
// MaxBytes for the tree, or more than the destination's free space left
// by the files offered before it. The free space is read once and
// counted down; only an offer that does not fit reads it again, less
// what the files offered but not landed yet still need.
func (tr *treeRecv) admit(p string, length uint64) error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	total, pending := tr.progress.BytesTotal, tr.progress.BytesTotal-tr.sum.Bytes
	if m := tr.opts.MaxBytes; m > 0 && (length > m || total > m-length) {
		return fmt.Errorf("ferry: %s: %w: the tree's files come to more than the cap of %d bytes", p, ErrTooLarge, m)
	}
	if tr.room < 0 || length > uint64(tr.room) {
		free, err := tr.dest.FreeSpace()
		if err != nil {
			return fmt.Errorf("ferry: %w", err)
		}
		if err := fsroot.CheckSpace(p, int64(min(length+pending, 1<<62)), free); err != nil {
			return fmt.Errorf("ferry: %w", err)
		}
		tr.room = free - fsroot.SpaceReserve - int64(pending)
	}
	tr.room -= int64(length)
	tr.progress.FilesTotal++
	tr.progress.BytesTotal += length
	tr.inflight++
	return nil
}

// watch makes the download fail with transfer.ErrIdle when the server
// sends nothing for idle while no file is in flight.
func (tr *treeRecv) watch(idle time.Duration, cancel context.CancelCauseFunc) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.idle, tr.heard = idle, time.Now()
	var check func()
	check = func() {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		switch left := tr.idle - time.Since(tr.heard); {
		case tr.silent == nil: // finish stopped the watch
		case tr.inflight > 0: // the data channel's own idle timeout applies
			tr.silent.Reset(tr.idle)
		case left > 0:
			tr.silent.Reset(left)
		default:
			cancel(silentErr(tr.idle, "no file was in flight"))
		}
	}
	tr.silent = time.AfterFunc(idle, check)
}

// heardNow notes a message from the server, or (delta -1) a file no
// longer in flight: either restarts the wait watch bounds.
func (tr *treeRecv) heardNow(delta int) {
	tr.mu.Lock()
	tr.inflight += delta
	tr.heard = time.Now()
	tr.mu.Unlock()
}

// finish waits for the workers and the committer, and picks the error
// to report: a worker's own failure explains the stream's cancellation,
// so it wins.
func (tr *treeRecv) finish(serr error) error {
	if serr != nil {
		tr.cancel()
	}
	tr.mu.Lock()
	if tr.silent != nil {
		tr.silent.Stop()
		tr.silent = nil
	}
	tr.mu.Unlock()
	tr.wg.Wait()
	close(tr.landq)
	<-tr.committed
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.err != nil {
		return tr.err
	}
	return serr
}

// setDirMeta sets the directories' modes and times, deepest first, so
// that filling a directory no longer changes its time and a read-only
// one is made so only once it is full.
func (tr *treeRecv) setDirMeta() error {
	slices.SortStableFunc(tr.dirs, func(a, b dirMeta) int {
		return strings.Count(b.path, "/") - strings.Count(a.path, "/") +
			boolInt(a.path == ".") - boolInt(b.path == ".")
	})
	for _, d := range tr.dirs {
		if err := tr.dest.SetDirMeta(d.path, d.mode, d.mtime); err != nil {
			return fmt.Errorf("ferry: %w", err)
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// report is the receiver's TreeReport, with the sender's sums from the
// server's.
func (tr *treeRecv) report(path string, sent *ferryv1.TreeReport, took time.Duration) *ferryv1.TreeReport {
	r := tr.sum
	r.Path = path
	r.Duration = durationpb.New(took)
	if took > 0 {
		r.ThroughputBytesPerSecond = float64(r.Bytes) / took.Seconds()
	}
	r.Sender = sent.GetSender()
	r.DataConnections = uint64(tr.pool.Dials())
	return r
}
