package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/service"
	"github.com/ferrydev/ferry/transfer"
)

// treeFixture builds root/tree: nested directories with their own modes
// and times, empty files, an empty directory, symlinks inside the tree
// and out of it, a FIFO, and small files, many small files under many/.
// It returns what the copy must hold: the kept entries by path, and how
// many entries of each kind it must count.
type treeWant struct {
	files, dirs, symlinks, skipped uint64
	bytes                          uint64
}

func treeFixture(t *testing.T, root string, many int) treeWant {
	t.Helper()
	var w treeWant
	dir := func(p string, mode fs.FileMode) {
		if err := os.Mkdir(filepath.Join(root, p), mode); err != nil {
			t.Fatal(err)
		}
		w.dirs++
	}
	file := func(p string, size int, mode fs.FileMode) {
		writeFile(t, root, p, size)
		if err := os.Chmod(filepath.Join(root, p), mode); err != nil {
			t.Fatal(err)
		}
		w.files++
		w.bytes += uint64(size)
	}
	link := func(target, p string, kept bool) {
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
		if kept {
			w.symlinks++
		} else {
			w.skipped++
		}
	}
	dir("tree", 0o755)
	w.dirs-- // the top one is counted once, below
	dir("tree/a", 0o750)
	dir("tree/a/b", 0o700)
	dir("tree/empty", 0o755)
	dir("tree/many", 0o755)
	file("tree/top.bin", 300_000, 0o644)
	file("tree/a/empty-file", 0, 0o600)
	file("tree/a/b/deep.bin", 70_000, 0o640)
	file("tree/a/b/x.partial.txt", 10, 0o644)
	for i := range many {
		file(fmt.Sprintf("tree/many/f%04d", i), 1+i%5000, 0o644)
	}
	link("../top.bin", "tree/a/up", true)
	link("b/deep.bin", "tree/a/down", true)
	link("a/b/..", "tree/dots", true)
	link("../outside", "tree/escape", false)
	link("a/../../outside", "tree/escape2", false)
	link("/etc/passwd", "tree/absolute", false)
	if err := syscall.Mkfifo(filepath.Join(root, "tree/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.skipped++
	// Distinct times, set last (deepest first), so that every copied
	// time can be told from the time of the copy.
	when := time.Date(2020, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	filepath.WalkDir(filepath.Join(root, "tree"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			when = when.Add(time.Minute)
			os.Chtimes(p, when, when)
		}
		return nil
	})
	for _, d := range []string{"tree/a/b", "tree/a", "tree/empty", "tree/many", "tree"} {
		when = when.Add(time.Hour)
		os.Chtimes(filepath.Join(root, d), when, when)
	}
	w.dirs++
	return w
}

// compareTrees checks that got holds exactly the entries of want that a
// copy keeps: regular files (bytes, mode, mtime), directories (mode,
// mtime) and the symlinks listed in links.
func compareTrees(t *testing.T, want, got string, links map[string]string) {
	t.Helper()
	seen := 0
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		wi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		gi, gerr := os.Lstat(filepath.Join(got, rel))
		switch {
		case wi.Mode().IsRegular() || wi.IsDir():
			if gerr != nil {
				t.Errorf("%s: missing in the copy: %v", rel, gerr)
				return nil
			}
			seen++
			if gi.Mode() != wi.Mode() || !gi.ModTime().Equal(wi.ModTime()) {
				t.Errorf("%s: copy has mode %v, mtime %v; want %v, %v", rel, gi.Mode(), gi.ModTime(), wi.Mode(), wi.ModTime())
			}
			if wi.Mode().IsRegular() {
				wb, _ := os.ReadFile(p)
				gb, _ := os.ReadFile(filepath.Join(got, rel))
				if !bytes.Equal(wb, gb) {
					t.Errorf("%s: copy holds %d bytes that differ from the %d of the source", rel, len(gb), len(wb))
				}
			}
		case wi.Mode().Type() == fs.ModeSymlink:
			target, kept := links[rel]
			if !kept {
				if gerr == nil {
					t.Errorf("%s: symlink out of the tree was recreated", rel)
				}
				return nil
			}
			seen++
			if g, err := os.Readlink(filepath.Join(got, rel)); err != nil || g != target {
				t.Errorf("%s: copy's symlink = %q, %v; want %q", rel, g, err, target)
			}
		default:
			if gerr == nil {
				t.Errorf("%s: a %v was copied", rel, wi.Mode().Type())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	filepath.WalkDir(got, func(string, fs.DirEntry, error) error { n++; return nil })
	if n != seen {
		t.Errorf("the copy holds %d entries, want %d (something extra, a partial file?)", n, seen)
	}
}

var keptLinks = map[string]string{"a/up": "../top.bin", "a/down": "b/deep.bin", "dots": "a"}

// TestDownloadTree copies a tree with every kind of entry and 1,000 small
// files, and checks every byte, mode and time, the counts and that the
// files shared a few data connections.
func TestDownloadTree(t *testing.T) {
	n := startNode(t, service.Config{})
	want := treeFixture(t, n.root, 1000)
	for _, c := range []struct {
		name string
		opts client.TreeOptions
	}{
		{"default", client.TreeOptions{}},
		{"concurrency 3, window 5", client.TreeOptions{Concurrency: 3, Window: 5}},
		{"one at a time", client.TreeOptions{Concurrency: 1, Strategy: ferryv1.Strategy_STRATEGY_READ_WRITE}},
		{"inline", client.TreeOptions{InlineMax: 4096}},
		{"checksum", client.TreeOptions{Checksum: ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_SHA256, InlineMax: 100}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "copy")
			var last *ferryv1.Progress
			c.opts.Progress = func(p *ferryv1.Progress) { last = p }
			r, err := n.client.DownloadTree(testCtx(t), "tree", dest, c.opts)
			if err != nil {
				t.Fatalf("DownloadTree() = %v", err)
			}
			compareTrees(t, filepath.Join(n.root, "tree"), dest, keptLinks)
			got := treeWant{r.Files, r.Directories, r.Symlinks, r.Skipped, r.Bytes}
			if got != want {
				t.Errorf("report counts %+v, want %+v", got, want)
			}
			if r.Sender.GetBytes() != want.bytes || r.Receiver.GetBytes() != want.bytes {
				t.Errorf("sender sent %d bytes, receiver got %d; want %d", r.Sender.GetBytes(), r.Receiver.GetBytes(), want.bytes)
			}
			conc := uint64(max(1, c.opts.Concurrency))
			if c.opts.Concurrency == 0 {
				conc = 4
			}
			if r.DataConnections < 1 || r.DataConnections > conc {
				t.Errorf("data_connections = %d, want 1 to %d (the concurrency)", r.DataConnections, conc)
			}
			if c.opts.InlineMax > 0 && r.InlineFiles == 0 {
				t.Errorf("inline_files = 0 with inline_max %d, want the small files inline", c.opts.InlineMax)
			}
			if last.GetFilesDone() != want.files || last.GetFilesTotal() != want.files || last.GetBytesSent() != want.bytes {
				t.Errorf("last progress = %v, want %d files and %d bytes done", last, want.files, want.bytes)
			}
		})
	}
}

// TestDownloadTreeExisting: an existing destination is refused, and
// merged into with Overwrite.
func TestDownloadTreeExisting(t *testing.T) {
	n := startNode(t, service.Config{})
	treeFixture(t, n.root, 3)
	dest := filepath.Join(t.TempDir(), "copy")
	if err := os.MkdirAll(filepath.Join(dest, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dest, "top.bin"), []byte("old"), 0o644)
	os.WriteFile(filepath.Join(dest, "mine"), []byte("kept"), 0o644)
	_, err := n.client.DownloadTree(testCtx(t), "tree", dest, client.TreeOptions{})
	if !errors.Is(err, fsroot.ErrExists) {
		t.Fatalf("DownloadTree(existing destination) = %v, want %v", err, fsroot.ErrExists)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "top.bin")); string(b) != "old" {
		t.Errorf("refused copy changed top.bin to %d bytes", len(b))
	}
	if _, err := n.client.DownloadTree(testCtx(t), "tree", dest, client.TreeOptions{Overwrite: true}); err != nil {
		t.Fatalf("DownloadTree(existing destination, Overwrite) = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "mine")); string(b) != "kept" {
		t.Errorf("Overwrite removed or changed an entry the tree does not name")
	}
	// Removing it changes the directory's time: give it back the copied one.
	os.Remove(filepath.Join(dest, "mine"))
	fi, err := os.Stat(filepath.Join(n.root, "tree"))
	if err != nil {
		t.Fatal(err)
	}
	os.Chtimes(dest, fi.ModTime(), fi.ModTime())
	compareTrees(t, filepath.Join(n.root, "tree"), dest, keptLinks)
}

// TestDownloadTreeErrors checks the codes of bad requests.
func TestDownloadTreeErrors(t *testing.T) {
	n := startNode(t, service.Config{})
	writeFile(t, n.root, "file", 10)
	os.Symlink("/tmp", filepath.Join(n.root, "out"))
	for _, tt := range []struct {
		path string
		want codes.Code
	}{
		{"file", codes.FailedPrecondition},
		{"../x", codes.InvalidArgument},
		{"/etc", codes.InvalidArgument},
		{"out", codes.PermissionDenied},
		{"missing", codes.NotFound},
	} {
		stream, err := n.api().DownloadTree(testCtx(t), &ferryv1.DownloadTreeRequest{Path: tt.path})
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != tt.want {
			t.Errorf("DownloadTree(%q) = %v, want %v", tt.path, err, tt.want)
		}
	}
	stream, err := n.api().DownloadTree(testCtx(t), &ferryv1.DownloadTreeRequest{Path: ".", Strategy: 99})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("DownloadTree(strategy 99) = %v, want %v", err, codes.InvalidArgument)
	}
}

// TestDownloadTreeWindow drives the raw stream with a window of 4 and
// receives one file at a time: the server never has more than 4 offers
// outstanding, sends them in batches, and reports every file.
func TestDownloadTreeWindow(t *testing.T) {
	n := startNode(t, service.Config{})
	const files, window = 30, 4
	for i := range files {
		writeFile(t, n.root, fmt.Sprintf("w/f%02d", i), 1000+i)
	}
	stream, err := n.api().DownloadTree(testCtx(t), &ferryv1.DownloadTreeRequest{Path: "w", Window: window})
	if err != nil {
		t.Fatal(err)
	}
	var queue []*ferryv1.Offer
	offers, reports, messages := 0, 0, 0
	for {
		msg, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv() = %v", err)
		}
		messages++
		for _, e := range msg.GetEntries() {
			if e.GetOffer() != nil {
				queue = append(queue, e.GetOffer())
				offers++
			}
		}
		reports += len(msg.GetReports())
		if offers-reports > window {
			t.Fatalf("after message %d: %d offers and %d reports: more than %d outstanding", messages, offers, reports, window)
		}
		if r := msg.GetReport(); r != nil {
			if r.Files != files || reports != files || offers != files {
				t.Errorf("end: report files %d, %d reports, %d offers; want %d each", r.Files, reports, offers, files)
			}
			break
		}
		// Receive what we hold, one file at a time, until the server
		// says more (it refills at half a window).
		for len(queue) > 0 {
			o := queue[0]
			queue = queue[1:]
			dst, err := fsroot.CreateDestination(os.DevNull)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := transfer.Receive(testCtx(t), transfer.Ticket{Address: o.DataAddress, Ticket: o.Ticket, Length: int64(o.Length)}, dst, transfer.ReceiveConfig{}); err != nil {
				t.Fatalf("Receive(offer %s) = %v", o.TransferId, err)
			}
		}
	}
	// One message per half window, and a few to end with; one per file
	// would be 30 or more.
	if messages > files/(window/2)+window {
		t.Errorf("%d messages for %d files with a window of %d, want the offers batched", messages, files, window)
	}
}

// TestDownloadTreeCancel cancels a tree download whose offers are
// outstanding and some of whose files are being sent: the server revokes
// the tickets and releases every file.
func TestDownloadTreeCancel(t *testing.T) {
	n := startNode(t, service.Config{})
	for i := range 40 {
		writeFile(t, n.root, fmt.Sprintf("c/f%02d", i), 100)
	}
	// Warm up what the node keeps (pooled buffers, the HTTP/2 stream).
	if _, err := n.client.DownloadTree(testCtx(t), "c", filepath.Join(t.TempDir(), "warm"), client.TreeOptions{}); err != nil {
		t.Fatal(err)
	}
	big := sparseFile(t, n.root, "c/big", 1<<30)
	before := fdCount(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	stream, err := n.api().DownloadTree(ctx, &ferryv1.DownloadTreeRequest{Path: "c", Window: 8})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var bigOffer *ferryv1.Offer
	for _, e := range msg.GetEntries() {
		if e.GetFile().GetPath() == "big" {
			bigOffer = e.GetOffer()
		}
	}
	if bigOffer == nil || len(msg.GetEntries()) != 8 {
		t.Fatalf("first message has %d entries (big among them: %v), want 8 offers with big first", len(msg.GetEntries()), bigOffer != nil)
	}
	c, v := dialData(t, bigOffer.DataAddress, bigOffer.Ticket)
	if v != transfer.VerdictOK {
		t.Fatalf("verdict = %v", v)
	}
	if fdsTo(t, big) != 1 {
		t.Fatalf("%d descriptors on big mid-transfer, want 1", fdsTo(t, big))
	}
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("Recv() after cancel = %v, want %v", err, codes.Canceled)
	}
	c.Close()
	// Both, in one condition: the count can reach the baseline while some
	// other descriptor closes before big's does.
	waitFor(t, "descriptors return to the baseline and none is left on big", func() bool {
		return fdCount(t) <= before && fdsTo(t, big) == 0
	})
}

// TestPullTree makes node b pull a directory from node a: the tree lands
// beneath b's root, progress counts files, the last message is the
// TreeReport; an existing destination is refused without overwrite.
func TestPullTree(t *testing.T) {
	fast := service.Config{ProgressInterval: time.Millisecond, AllowPull: true}
	a, b := startNode(t, fast), startNode(t, fast)
	want := treeFixture(t, a.root, 200)
	req := &ferryv1.PullRequest{Peer: a.Addr().String(), Path: "tree", Destination: "copy", Concurrency: 2}
	msgs, err := pull(t, b, req)
	if err != nil {
		t.Fatalf("Pull(directory) = %v", err)
	}
	r := msgs[len(msgs)-1].GetTreeReport()
	if r == nil {
		t.Fatalf("Pull(directory) ended with %v, want a tree_report", msgs[len(msgs)-1])
	}
	compareTrees(t, filepath.Join(a.root, "tree"), filepath.Join(b.root, "copy"), keptLinks)
	if got := (treeWant{r.Files, r.Directories, r.Symlinks, r.Skipped, r.Bytes}); got != want {
		t.Errorf("tree_report counts %+v, want %+v", got, want)
	}
	if r.DataConnections < 1 || r.DataConnections > 2 {
		t.Errorf("data_connections = %d with concurrency 2, want 1 or 2", r.DataConnections)
	}
	var progress int
	for _, m := range msgs[:len(msgs)-1] {
		if p := m.GetProgress(); p != nil && p.FilesDone > 0 && p.FilesTotal >= p.FilesDone {
			progress++
		}
	}
	if progress == 0 {
		t.Errorf("no progress message counted files among %d messages", len(msgs))
	}
	noPartial(t, b.root)

	if _, err := pull(t, b, req); status.Code(err) != codes.AlreadyExists {
		t.Errorf("Pull(directory) onto an existing one = %v, want %v", err, codes.AlreadyExists)
	}
	req.Overwrite = true
	if _, err := pull(t, b, req); err != nil {
		t.Errorf("Pull(directory, overwrite) onto an existing one = %v", err)
	}
	req.Destination = "missing/copy"
	if _, err := pull(t, b, req); status.Code(err) != codes.NotFound {
		t.Errorf("Pull(directory) into a missing parent = %v, want %v", err, codes.NotFound)
	}
}

// TestDownloadTreeStall: a client that holds a tree's offers and never
// connects gets DEADLINE_EXCEEDED after the ticket lifetime, and the
// files are released.
func TestDownloadTreeStall(t *testing.T) {
	n := startNode(t, service.Config{Data: transfer.Config{TicketTTL: 100 * time.Millisecond}})
	for i := range 6 {
		writeFile(t, n.root, fmt.Sprintf("s/f%d", i), 10)
	}
	n.caps(t) // the control connection, in the baseline
	before := fdCount(t)
	stream, err := n.api().DownloadTree(testCtx(t), &ferryv1.DownloadTreeRequest{Path: "s", Window: 2})
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := stream.Recv(); err != nil || len(msg.GetEntries()) != 2 {
		t.Fatalf("first Recv() = %d entries, %v; want 2 offers", len(msg.GetEntries()), err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("Recv() with the offers never taken up = %v, want %v", err, codes.DeadlineExceeded)
	}
	waitFor(t, "descriptors return to the baseline", func() bool { return fdCount(t) <= before })
}
