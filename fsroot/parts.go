package fsroot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Parallel streams. A range received over several data connections at
// once lands in one partial file: each stream writes its part at the
// part's own offset (Part), and the file is committed once, whole, as a
// single receive's is. The journal beside the partial file
// ("<path>.partial.parts") says which bytes of which part are held, so
// that a resumed receive fetches only the rest: the partial file has
// holes where parts are missing, and its size says nothing about them.

// span is where a Part's bytes go in the file.
type span struct{ off, length int64 }

// Part returns a view of d for one part of a range received over
// parallel streams: a receive into it writes length bytes at off in d's
// file (pwrite(2), or splice(2) with an offset) and leaves the file
// position alone, so that parts can be received at once, each into its
// own Part. A Part of a discarding destination discards. Commit, Abort,
// Remove and SetMeta do nothing on a Part: d lands the file once every
// part has arrived. d must not be standard output, which has no
// offsets.
func (d *Destination) Part(off, length int64) *Destination {
	return &Destination{Path: d.Path, f: d.f, partial: d.partial, part: &span{off, length}}
}

// PartRange reports where a Part's bytes go in the file: its offset and
// length, and true; false for a destination that is not a Part, whose
// receive writes at the file position.
func (d *Destination) PartRange() (off, length int64, ok bool) {
	if d.part == nil {
		return 0, 0, false
	}
	return d.part.off, d.part.length, true
}

// Journal is the parts journal: the range a receive over parallel
// streams covers, the source it came from, and how much of each part is
// held. Offsets are the source file's; a part's bytes are at
// Offset-Journal.Offset in the partial file.
type Journal struct {
	// Size and ModTime identify the source file (its size and its
	// modification time in nanoseconds since the epoch, as its server
	// reported them): a resume from a source that differs refuses.
	Size, ModTime int64
	// Offset and Length are the whole range.
	Offset, Length int64
	// Parts cover the range, in order, without gaps or overlaps.
	Parts []JournalPart
}

// JournalPart is one part of a Journal: Held bytes from Offset are in
// the partial file, durably.
type JournalPart struct {
	Offset, Length, Held int64
}

// journalHeader is the journal's first line; it names the format.
const journalHeader = "ferry parts journal 1"

// ErrBadJournal: a parts journal that cannot be read, or that does not
// fit the partial file beside it. Both are left as they were.
var ErrBadJournal = errors.New("bad parts journal")

// JournalPath is where the parts journal of a receive into path is kept.
func JournalPath(path string) string { return path + ".partial.parts" }

// KeepsJournal reports whether d can keep a parts journal: it lands a
// file at a path of its own (not a Part, a discard, standard output or a
// destination beneath a Root, which does not resume).
func (d *Destination) KeepsJournal() bool { return d.KeepsFile() && d.part == nil && d.at == nil }

// ReadJournal reads the parts journal of a resumed destination; nil when
// there is none. A journal beside an empty partial file is stale (the
// partial file went, the journal had not yet): it is removed, and nil
// returned. A journal whose range is not the partial file's size, or
// that does not parse, is ErrBadJournal.
func (d *Destination) ReadJournal() (*Journal, error) {
	if !d.journal || !d.KeepsJournal() {
		return nil, nil
	}
	name := JournalPath(d.Path)
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	j, err := parseJournal(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadJournal, name, err)
	}
	fi, err := d.f.Stat()
	if err != nil {
		return nil, err
	}
	switch {
	case fi.Size() == 0:
		return nil, d.removeJournal()
	case fi.Size() > j.Length:
		return nil, fmt.Errorf("%w: %s is for a range of %d bytes; %s holds %d", ErrBadJournal, name, j.Length, d.partial, fi.Size())
	}
	// A file shorter than the range: the journal was written, the file not
	// yet grown (SaveJournal does it in that order). What each part holds
	// must lie within it.
	for _, p := range j.Parts {
		if p.Held > 0 && p.Offset-j.Offset+p.Held > fi.Size() {
			return nil, fmt.Errorf("%w: %s says bytes up to %d are held; %s holds %d", ErrBadJournal, name, p.Offset-j.Offset+p.Held, d.partial, fi.Size())
		}
	}
	return j, nil
}

// SaveJournal makes what the partial file holds durable (fsync), then
// replaces the journal with j, durably: written aside, fsynced, renamed
// over the journal, the directory fsynced. A journal never says a byte
// is held before that byte is on disk. Only then does the first
// SaveJournal size the partial file to the range: a file of the range's
// size, holes and all, never lies without a journal that says what it
// holds (were it grown first and the journal then failed, a resume would
// take the holes for held bytes).
func (d *Destination) SaveJournal(j *Journal) error {
	if !d.KeepsJournal() {
		return fmt.Errorf("%s: only a file destination keeps a parts journal", d.Path)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	name := JournalPath(d.Path)
	d.journal = true
	if err := writeDurably(name, j.marshal()); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	fi, err := d.f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() < j.Length {
		if err := d.f.Truncate(j.Length); err != nil {
			return err
		}
		if err := d.f.Sync(); err != nil {
			return fmt.Errorf("fsync: %w", err)
		}
	}
	return nil
}

// removeJournal removes the parts journal, when there may be one, and
// makes its removal durable before anything that follows (a rename
// over the final path) can be.
func (d *Destination) removeJournal() error {
	if !d.journal {
		return nil
	}
	os.Remove(JournalPath(d.Path) + ".tmp") // a crash while writeDurably wrote it
	err := os.Remove(JournalPath(d.Path))
	if errors.Is(err, fs.ErrNotExist) {
		d.journal = false
		return nil
	}
	if err != nil {
		return err
	}
	d.journal = false
	return syncDir(filepath.Dir(d.Path))
}

// removeJournal is Destination.removeJournal for a destination about to
// be created at path, which any journal there predates.
func removeJournal(path string) error {
	d := Destination{Path: path, journal: true}
	return d.removeJournal()
}

// writeDurably writes b to name through a temporary file beside it:
// write, fsync, rename, fsync the directory. The temporary name is only
// ever written under the partial file's lock.
func writeDurably(name string, b []byte) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(name))
}

// syncDir fsyncs a directory, so that the names made or removed in it
// are durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// marshal writes the journal's text form (see docs/design.md):
//
//	ferry parts journal 1
//	source size=SIZE mtime=NANOSECONDS
//	range offset=OFFSET length=LENGTH
//	part offset=OFFSET length=LENGTH held=HELD
//	...
func (j *Journal) marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\nsource size=%d mtime=%d\nrange offset=%d length=%d\n", journalHeader, j.Size, j.ModTime, j.Offset, j.Length)
	for _, p := range j.Parts {
		fmt.Fprintf(&b, "part offset=%d length=%d held=%d\n", p.Offset, p.Length, p.Held)
	}
	return b.Bytes()
}

// parseJournal reads marshal's form and checks that the parts cover the
// range in order and hold no more than their length.
func parseJournal(b []byte) (*Journal, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := func() string {
		if !sc.Scan() {
			return ""
		}
		return sc.Text()
	}
	if h := line(); h != journalHeader {
		return nil, fmt.Errorf("first line %q, want %q", h, journalHeader)
	}
	j := &Journal{}
	if _, err := fmt.Sscanf(line(), "source size=%d mtime=%d", &j.Size, &j.ModTime); err != nil {
		return nil, fmt.Errorf("source line: %w", err)
	}
	if _, err := fmt.Sscanf(line(), "range offset=%d length=%d", &j.Offset, &j.Length); err != nil {
		return nil, fmt.Errorf("range line: %w", err)
	}
	next := j.Offset
	for sc.Scan() {
		var p JournalPart
		if _, err := fmt.Sscanf(sc.Text(), "part offset=%d length=%d held=%d", &p.Offset, &p.Length, &p.Held); err != nil {
			return nil, fmt.Errorf("part line %q: %w", sc.Text(), err)
		}
		if p.Offset != next || p.Length <= 0 || p.Held < 0 || p.Held > p.Length {
			return nil, fmt.Errorf("part %+v does not follow the one before (at %d) or holds more than its length", p, next)
		}
		next += p.Length
		j.Parts = append(j.Parts, p)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if j.Offset < 0 || j.Length <= 0 || len(j.Parts) == 0 || next != j.Offset+j.Length {
		return nil, fmt.Errorf("the parts end at %d, the range [%d, +%d) does not", next, j.Offset, j.Length)
	}
	return j, nil
}
