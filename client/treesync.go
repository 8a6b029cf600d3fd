package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/internal/treesync"
)

// Syncs (TreeOptions.Sync): the client walks the destination, sends the
// server a digest of each regular file it holds (SyncTree), lands what
// the server sends as a copy does, and then, with Delete, removes what the
// tree did not name.

// checkSync refuses options that need Sync without it, and lets a sync's
// destination exist (Overwrite).
func (o *TreeOptions) checkSync() error {
	if o.Sync != ferryv1.SyncLevel_SYNC_LEVEL_UNSPECIFIED {
		if _, ok := ferryv1.SyncLevel_name[int32(o.Sync)]; !ok {
			return fmt.Errorf("ferry: unknown sync level %v", o.Sync)
		}
		o.Overwrite = true
		return nil
	}
	switch {
	case o.Delete:
		return errors.New("ferry: Delete needs Sync (a copy deletes nothing)")
	case o.DryRun:
		return errors.New("ferry: DryRun needs Sync")
	}
	return nil
}

// treeRequest is the DownloadTreeRequest opts make for path.
func treeRequest(path string, opts TreeOptions) *ferryv1.DownloadTreeRequest {
	return &ferryv1.DownloadTreeRequest{
		Path: path, Strategy: opts.Strategy, Checksum: opts.Checksum, RateLimit: opts.RateLimit,
		Window: opts.window(), InlineMax: opts.InlineMax,
	}
}

// treeStream is a DownloadTree stream, or a SyncTree one read as such.
type treeStream interface {
	Recv() (*ferryv1.DownloadTreeResponse, error)
	Context() context.Context
}

// heldBatch is the digests one SyncHeld message carries: 48 KiB, under
// the server's 64 KiB request limit.
const heldBatch = 3072 * treesync.Size

// openTree starts a DownloadTree call, or with have a SyncTree call that
// first sends have's digests.
func (c *Client) openTree(ctx context.Context, req *ferryv1.DownloadTreeRequest, have *destState, opts TreeOptions) (treeStream, error) {
	if have == nil {
		return c.api.DownloadTree(ctx, req)
	}
	st, err := c.api.SyncTree(ctx)
	if err != nil {
		return nil, err
	}
	send := func(m *ferryv1.SyncTreeRequest) error {
		err := st.Send(m)
		if !errors.Is(err, io.EOF) {
			return err
		}
		// The server ended the call: its status says why. It may not
		// send a message before reading every held one.
		for err == nil || errors.Is(err, io.EOF) {
			if _, err = st.Recv(); errors.Is(err, io.EOF) {
				return errors.New("ferry: the server ended the SyncTree call before the client had sent what it holds")
			} else if err == nil {
				return errors.New("ferry: the server answered a SyncTree call before the client had sent what it holds")
			}
		}
		return err
	}
	start := &ferryv1.SyncTreeStart{Tree: req, Level: opts.Sync, DryRun: opts.DryRun}
	if err := send(&ferryv1.SyncTreeRequest{Request: &ferryv1.SyncTreeRequest_Start{Start: start}}); err != nil {
		return nil, err
	}
	for b := have.digests; len(b) > 0; {
		n := min(len(b), heldBatch)
		held := &ferryv1.SyncHeld{Digests: b[:n]}
		if err := send(&ferryv1.SyncTreeRequest{Request: &ferryv1.SyncTreeRequest_Held{Held: held}}); err != nil {
			return nil, err
		}
		b = b[n:]
	}
	if err := st.CloseSend(); err != nil {
		return nil, err
	}
	return syncRecv{st}, nil
}

// syncRecv reads a SyncTree stream as a DownloadTree one.
type syncRecv struct {
	grpc.BidiStreamingClient[ferryv1.SyncTreeRequest, ferryv1.SyncTreeResponse]
}

func (s syncRecv) Recv() (*ferryv1.DownloadTreeResponse, error) {
	m, err := s.BidiStreamingClient.Recv()
	if err != nil {
		return nil, err
	}
	return &ferryv1.DownloadTreeResponse{Entries: m.GetEntries(), Reports: m.GetReports(), Report: m.GetReport()}, nil
}

// destState is what a sync's destination held before it, from one walk
// that follows no symlink, and what the sync has done to it since. Only
// the goroutine reading the stream writes names and gone; entries is
// read-only once scanned.
type destState struct {
	tree    *fsroot.Tree // the destination, to hash and touch what it holds; nil if none
	entries map[string]fsroot.DirEntry
	digests []byte
	names   map[string]bool // every path the tree named
	dirs    map[string]bool // the directories it named
	gone    map[string]bool // removed or moved aside by the sync (with what was below)
	// aside are entries a type change moved out of the way: removed once
	// the sync has succeeded, put back if it fails.
	aside []moved
}

// moved is an entry moved aside: from its name to aside.
type moved struct{ name, aside string }

// scanDest walks dest (nil: a destination that does not exist yet) and
// digests its regular files at level. At the CHECKSUM level each is
// hashed (SHA-256); one that cannot be read counts as not held.
func scanDest(ctx context.Context, dest *fsroot.Root, level ferryv1.SyncLevel) (*destState, error) {
	h := &destState{entries: map[string]fsroot.DirEntry{}, names: map[string]bool{}, dirs: map[string]bool{}, gone: map[string]bool{}}
	if dest == nil {
		return h, nil
	}
	tree, err := dest.OpenTree(".")
	if err != nil {
		return nil, fmt.Errorf("ferry: %w", err)
	}
	h.tree = tree
	buf := make([]byte, 256<<10)
	err = tree.Walk(func(e fsroot.DirEntry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		h.entries[e.Path] = e
		if !e.Mode.IsRegular() {
			return nil
		}
		f := treesync.File{Path: e.Path, Size: uint64(e.Size), MTime: e.ModTime}
		if level == ferryv1.SyncLevel_SYNC_LEVEL_CHECKSUM {
			if f.Sum = h.hash(e.Path, buf); f.Sum == nil {
				return nil
			}
		}
		var err error
		h.digests, err = treesync.Held(h.digests, level, f)
		return err
	})
	if err == nil && len(h.digests)/treesync.Size > treesync.MaxDigests {
		err = fmt.Errorf("the destination holds more files than a sync takes (%d digests, one per file, two at the checksum level): sync its directories one by one", treesync.MaxDigests)
	}
	if err != nil {
		tree.Close()
		return nil, fmt.Errorf("ferry: scanning the destination: %w", err)
	}
	return h, nil
}

// hash is the SHA-256 of the held file p, or nil if it cannot be read.
func (h *destState) hash(p string, buf []byte) []byte {
	f, err := h.tree.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	s := sha256.New()
	if _, err := io.CopyBuffer(s, f, buf); err != nil {
		return nil
	}
	return s.Sum(nil)
}

func (h *destState) close() {
	if h != nil && h.tree != nil {
		h.tree.Close()
	}
}

// entry is what the destination held at p before the sync, if anything.
func (h *destState) entry(p string) (fsroot.DirEntry, bool) {
	if h == nil {
		return fsroot.DirEntry{}, false
	}
	e, ok := h.entries[p]
	return e, ok
}

// removedAbove reports whether a directory above p was removed.
func (h *destState) removedAbove(p string) bool {
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if h.gone[d] {
			return true
		}
	}
	return false
}

// verdict is what a sync does with one entry of the tree.
type verdict struct {
	// action is the change, or UNSPECIFIED: nothing changes (a file
	// found unchanged, the same symlink, an existing directory).
	action ferryv1.TreeChange_Action
	// clear: what the destination has there goes first (RemoveAll).
	clear     bool
	unchanged bool // a regular file the server found unchanged
	old       fsroot.DirEntry
}

// judge decides what the sync does with entry e at p, and notes that the
// tree names p. A directory where the tree has a file or symlink is an
// error unless del.
func (h *destState) judge(p string, e *ferryv1.TreeEntry, del bool) (verdict, error) {
	f := e.GetFile()
	// A tree names each path once, after its directory: a server that
	// does otherwise could make the sync undo its own work (a directory
	// named again as a file) or delete what it just sent.
	if h.names[p] {
		return verdict{}, fmt.Errorf("ferry: the server named %q twice", p)
	}
	if d := path.Dir(p); d != "." && !h.dirs[d] {
		return verdict{}, fmt.Errorf("ferry: the server named %q before its directory", p)
	}
	h.names[p] = true
	if f.GetType() == ferryv1.FileType_FILE_TYPE_DIRECTORY {
		h.dirs[p] = true
	}
	old, had := h.entries[p]
	had = had && !h.removedAbove(p)
	v := verdict{old: old}
	switch f.GetType() {
	case ferryv1.FileType_FILE_TYPE_DIRECTORY:
		if had && !old.Mode.IsDir() {
			v.action, v.clear = ferryv1.TreeChange_ACTION_REPLACE, true
		}
		return v, nil
	case ferryv1.FileType_FILE_TYPE_REGULAR:
		if e.GetUnchanged() {
			if !had || !old.Mode.IsRegular() {
				return v, fmt.Errorf("ferry: the server found %q unchanged, but the destination held no file there", p)
			}
			v.unchanged = true
			return v, nil
		}
	case ferryv1.FileType_FILE_TYPE_SYMLINK:
		target, ok := safeTarget(p, f.GetSymlinkTarget())
		if !ok || had && old.Mode&fs.ModeSymlink != 0 && old.Target == target {
			return v, nil // left out (and what the destination has there is kept), or the same
		}
	default:
		return v, nil // left out; the destination keeps what it has there
	}
	switch {
	case !had:
		v.action = ferryv1.TreeChange_ACTION_SEND
	case old.Mode.IsDir() && !del:
		return v, fmt.Errorf("ferry: %s: the destination has a directory where the tree has a %s (delete, --delete, replaces it): %w",
			p, typeName(f.GetType()), fsroot.ErrExists)
	default:
		v.action, v.clear = ferryv1.TreeChange_ACTION_REPLACE, old.Mode.IsDir()
	}
	return v, nil
}

func typeName(t ferryv1.FileType) string {
	if t == ferryv1.FileType_FILE_TYPE_SYMLINK {
		return "symlink"
	}
	return "file"
}

// syncEntry applies a sync's verdict on e before the copy's own handling;
// done means there is nothing more to do with e.
func (tr *treeRecv) syncEntry(p string, e *ferryv1.TreeEntry) (done bool, err error) {
	h := tr.have
	v, err := h.judge(p, e, tr.opts.Delete)
	if err != nil {
		return true, err
	}
	f := e.GetFile()
	if v.unchanged {
		tr.count(func(s *ferryv1.TreeReport) { s.Unchanged++; s.UnchangedBytes += f.GetSize() })
		return true, tr.fixMeta(p, v.old, f)
	}
	if v.clear {
		// Moved aside, not removed: if the sync fails, it goes back.
		aside, err := tr.dest.MoveAside(p)
		if err != nil {
			return true, fmt.Errorf("ferry: %w", err)
		}
		h.gone[p] = true
		h.aside = append(h.aside, moved{p, aside})
	}
	if f.GetType() == ferryv1.FileType_FILE_TYPE_SYMLINK && v.action == ferryv1.TreeChange_ACTION_UNSPECIFIED {
		_, ok := safeTarget(p, f.GetSymlinkTarget())
		return ok, nil // the same link stays; one left out goes on to be counted skipped
	}
	if v.action == ferryv1.TreeChange_ACTION_REPLACE && f.GetType() != ferryv1.FileType_FILE_TYPE_REGULAR {
		tr.count(func(s *ferryv1.TreeReport) { s.Replaced++ }) // a file counts once it lands
	}
	return false, nil
}

// fixMeta gives an unchanged file the server's mode and time where they
// differ (the MTIME level matched the time already).
func (tr *treeRecv) fixMeta(p string, old fsroot.DirEntry, f *ferryv1.FileEntry) error {
	mode, mtime := fs.FileMode(f.GetMode()), f.GetModifyTime().AsTime()
	if old.Mode.Perm() == mode.Perm()&^fsroot.LandMask && old.ModTime.Equal(mtime) {
		return nil
	}
	file, err := tr.have.tree.Open(p)
	if errors.Is(err, fsroot.ErrNotFound) || errors.Is(err, fsroot.ErrPermission) {
		return nil // gone, or not ours to open: its bytes matched, which is what the sync is for
	}
	if err != nil {
		return fmt.Errorf("ferry: %w", err)
	}
	defer file.Close()
	if err := fsroot.SetFileMeta(file, mode, mtime); err != nil {
		return fmt.Errorf("ferry: %w", err)
	}
	return nil
}

// deletions lists, in lexical order, what the destination held that the
// tree did not name, leaving out what lies below a removed directory.
// It marks them gone.
func (h *destState) deletions() []string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(h.entries)) {
		if h.names[p] || h.gone[p] || h.removedAbove(p) {
			continue
		}
		h.gone[p] = true
		out = append(out, p)
	}
	return out
}

// deleteRest removes what type changes moved aside and, with Delete,
// what the destination held and the tree did not name (a sync that failed
// deletes nothing: it never gets here, and putBack undoes the moves).
func (tr *treeRecv) deleteRest() error {
	if tr.have == nil {
		return nil
	}
	for _, m := range tr.have.aside {
		if err := tr.dest.RemoveAll(m.aside); err != nil {
			return fmt.Errorf("ferry: %w", err)
		}
	}
	tr.have.aside = nil
	if !tr.opts.Delete {
		return nil
	}
	for _, p := range tr.have.deletions() {
		if err := tr.dest.RemoveAll(p); err != nil {
			return fmt.Errorf("ferry: %w", err)
		}
		tr.count(func(s *ferryv1.TreeReport) { s.Deleted++ })
	}
	return nil
}

// dryRunDir is a dry run into destDir, which need not exist.
func (c *Client) dryRunDir(ctx context.Context, path, destDir string, opts TreeOptions) (*ferryv1.TreeReport, error) {
	root, err := fsroot.OpenRoot(destDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		root = nil
	case err != nil:
		return nil, err
	default:
		defer root.Close()
	}
	return c.dryRun(ctx, path, root, opts)
}

// dryRun judges every entry as a sync would, changing nothing: the
// server offers no file, and the report counts what would change.
func (c *Client) dryRun(ctx context.Context, path string, dest *fsroot.Root, opts TreeOptions) (*ferryv1.TreeReport, error) {
	start := time.Now()
	h, err := scanDest(ctx, dest, opts.Sync)
	if err != nil {
		return nil, err
	}
	defer h.close()
	stream, err := c.openTree(ctx, treeRequest(path, opts), h, opts)
	if err != nil {
		return nil, err
	}
	r := &ferryv1.TreeReport{Path: path, Directories: 1, DryRun: true}
	change := func(a ferryv1.TreeChange_Action, p string, size uint64) {
		if opts.Changes != nil {
			opts.Changes(&ferryv1.TreeChange{Action: a, Path: p, Size: size})
		}
	}
	var sent *ferryv1.TreeReport
	for sent == nil {
		msg, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		for _, e := range msg.GetEntries() {
			f := e.GetFile()
			p, err := entryPath(f.GetPath())
			if err != nil {
				return nil, err
			}
			if e.GetOffer() != nil {
				return nil, fmt.Errorf("ferry: the server sent an offer for %q in a dry run", p)
			}
			v, err := h.judge(p, e, opts.Delete)
			if err != nil {
				return nil, err
			}
			if v.clear {
				h.gone[p] = true
			}
			switch t := f.GetType(); {
			case v.unchanged:
				r.Unchanged++
				r.UnchangedBytes += f.GetSize()
			case t == ferryv1.FileType_FILE_TYPE_DIRECTORY:
				r.Directories++
			case t == ferryv1.FileType_FILE_TYPE_REGULAR:
				r.Files++
				r.Bytes += f.GetSize()
			case t == ferryv1.FileType_FILE_TYPE_SYMLINK:
				if _, ok := safeTarget(p, f.GetSymlinkTarget()); !ok {
					r.Skipped++
				} else if v.action != ferryv1.TreeChange_ACTION_UNSPECIFIED {
					r.Symlinks++
				}
			default:
				r.Skipped++
			}
			if v.action != ferryv1.TreeChange_ACTION_UNSPECIFIED {
				if v.action == ferryv1.TreeChange_ACTION_REPLACE {
					r.Replaced++
				}
				change(v.action, p, f.GetSize())
			}
		}
		sent = msg.GetReport()
	}
	if opts.Delete {
		for _, p := range h.deletions() {
			r.Deleted++
			change(ferryv1.TreeChange_ACTION_DELETE, p, 0)
		}
	}
	r.Sender = sent.GetSender()
	r.Duration = durationpb.New(time.Since(start))
	return r, nil
}

// putBack undoes a failed sync's type changes: each entry moved aside
// returns to its name, in place of what the sync made there. It returns
// the first error, after trying them all.
func (tr *treeRecv) putBack() error {
	if tr.have == nil {
		return nil
	}
	var first error
	for i := len(tr.have.aside) - 1; i >= 0; i-- {
		m := tr.have.aside[i]
		if err := tr.dest.PutBack(m.aside, m.name); err != nil && first == nil {
			first = fmt.Errorf("ferry: the sync failed, and %s could not be put back from %s: %w", m.name, m.aside, err)
		}
	}
	tr.have.aside = nil
	return first
}
