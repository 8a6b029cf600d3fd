package service_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/service"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func listTransfers(t *testing.T, n *testNode, runningOnly bool) []*ferryv1.TransferInfo {
	t.Helper()
	resp, err := n.api().ListTransfers(testCtx(t), &ferryv1.ListTransfersRequest{RunningOnly: runningOnly})
	if err != nil {
		t.Fatalf("ListTransfers() = %v", err)
	}
	return resp.GetTransfers()
}

// drain reads a Download stream to its end and returns the report.
func drain(t *testing.T, stream interface {
	Recv() (*ferryv1.DownloadResponse, error)
}) *ferryv1.Report {
	t.Helper()
	var report *ferryv1.Report
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return report
		}
		if err != nil {
			t.Fatalf("Download: Recv() = %v", err)
		}
		if r := msg.GetReport(); r != nil {
			report = r
		}
	}
}

// TestListTransfersHistory: a history of 3 keeps the last 3 of 5
// downloads, newest first, each with its report.
func TestListTransfersHistory(t *testing.T) {
	n := startNode(t, service.Config{TransferHistory: 3})
	var ids []string
	for i := range 5 {
		name := fmt.Sprintf("f%d", i)
		writeFile(t, n.root, name, 1000*(i+1))
		report, err := n.client.Download(testCtx(t), name, os.DevNull, client.DownloadOptions{})
		if err != nil {
			t.Fatalf("Download(%s) = %v", name, err)
		}
		ids = append(ids, report.GetTransferId())
	}
	got := listTransfers(t, n, false)
	if len(got) != 3 {
		t.Fatalf("ListTransfers() lists %d transfers, want the last 3 of 5: %v", len(got), got)
	}
	for i, info := range got {
		k := 4 - i
		if info.GetTransferId() != ids[k] || info.GetPath() != fmt.Sprintf("f%d", k) ||
			info.GetState() != ferryv1.TransferState_TRANSFER_STATE_SUCCEEDED || info.GetKind() != ferryv1.TransferKind_TRANSFER_KIND_DOWNLOAD {
			t.Errorf("ListTransfers()[%d] = %v, want transfer %s of f%d, a succeeded download", i, info, ids[k], k)
		}
		size := uint64(1000 * (k + 1))
		if info.GetBytesDone() != size || info.GetBytesTotal() != size || info.GetReport().GetSender().GetBytes() != size {
			t.Errorf("ListTransfers()[%d]: bytes %d of %d, report %v; want %d of %d and the report", i, info.GetBytesDone(), info.GetBytesTotal(), info.GetReport(), size, size)
		}
		if host, _, err := net.SplitHostPort(info.GetPeer()); err != nil || host != "127.0.0.1" {
			t.Errorf("ListTransfers()[%d].peer = %q, want the caller's 127.0.0.1:port", i, info.GetPeer())
		}
		if info.GetStartTime() == nil || info.GetEndTime() == nil || info.GetEndTime().AsTime().Before(info.GetStartTime().AsTime()) {
			t.Errorf("ListTransfers()[%d]: start %v, end %v; want both, in order", i, info.GetStartTime(), info.GetEndTime())
		}
	}
	if running := listTransfers(t, n, true); len(running) != 0 {
		t.Errorf("ListTransfers(running_only) = %v, want none", running)
	}
}

// TestListTransfersRunning: a download whose receiver reads slowly is
// listed as running with its progress, first, and running_only lists
// only it; once read it is listed as succeeded.
func TestListTransfersRunning(t *testing.T) {
	n := startNode(t, service.Config{})
	writeFile(t, n.root, "small", 10)
	if _, err := n.client.Download(testCtx(t), "small", os.DevNull, client.DownloadOptions{}); err != nil {
		t.Fatal(err)
	}
	const size = 64 << 20
	sparseFile(t, n.root, "big", size)
	stream, offer := startDownload(t, testCtx(t), n.api(), &ferryv1.DownloadRequest{Path: "big", Strategy: ferryv1.Strategy_STRATEGY_SENDFILE})
	conn, verdict := dialData(t, offer.GetDataAddress(), offer.GetTicket())
	if verdict != 0 {
		t.Fatalf("verdict %d, want 0", verdict)
	}
	if _, err := io.ReadFull(conn, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	// The sender counts what the kernel took after each call returns:
	// wait for the count, which the read above guarantees will come.
	var running []*ferryv1.TransferInfo
	for {
		running = listTransfers(t, n, true)
		if len(running) != 1 || running[0].GetBytesDone() > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if len(running) != 1 {
		t.Fatalf("ListTransfers(running_only) = %v, want the one running download", running)
	}
	r := running[0]
	if r.GetTransferId() != offer.GetTransferId() || r.GetState() != ferryv1.TransferState_TRANSFER_STATE_RUNNING ||
		r.GetStrategy() != ferryv1.Strategy_STRATEGY_SENDFILE || r.GetBytesTotal() != size ||
		r.GetBytesDone() == 0 || r.GetBytesDone() >= size || r.GetEndTime() != nil || r.GetReport() != nil {
		t.Errorf("running transfer = %v, want %s RUNNING with SENDFILE, 0 < bytes_done < %d, no end time, no report", r, offer.GetTransferId(), size)
	}
	all := listTransfers(t, n, false)
	if len(all) != 2 || all[0].GetTransferId() != offer.GetTransferId() || all[1].GetPath() != "small" {
		t.Errorf("ListTransfers() = %v, want the running download, then the finished one", all)
	}
	if _, err := io.Copy(io.Discard, conn); err != nil {
		t.Fatal(err)
	}
	drain(t, stream)
	all = listTransfers(t, n, false)
	if len(all) != 2 || all[0].GetTransferId() != offer.GetTransferId() ||
		all[0].GetState() != ferryv1.TransferState_TRANSFER_STATE_SUCCEEDED || all[0].GetBytesDone() != size {
		t.Errorf("after the download: ListTransfers() = %v, want it first, succeeded, %d bytes", all, size)
	}
}

// TestListTransfersFailed: a ticket nobody used fails the download with
// DEADLINE_EXCEEDED, and the listing says so.
func TestListTransfersFailed(t *testing.T) {
	cfg := service.Config{}
	cfg.Data.TicketTTL = 100 * time.Millisecond
	n := startNode(t, cfg)
	writeFile(t, n.root, "f", 100)
	stream, offer := startDownload(t, testCtx(t), n.api(), &ferryv1.DownloadRequest{Path: "f"})
	for {
		_, err := stream.Recv()
		if err != nil {
			if status.Code(err) != codes.DeadlineExceeded {
				t.Fatalf("Download with an unused ticket = %v, want DeadlineExceeded", err)
			}
			break
		}
	}
	got := listTransfers(t, n, false)
	if len(got) != 1 {
		t.Fatalf("ListTransfers() = %v, want one transfer", got)
	}
	if g := got[0]; g.GetTransferId() != offer.GetTransferId() || g.GetState() != ferryv1.TransferState_TRANSFER_STATE_FAILED ||
		g.GetErrorCode() != "DEADLINE_EXCEEDED" || g.GetError() == "" || g.GetEndTime() == nil || g.GetReport() != nil {
		t.Errorf("ListTransfers()[0] = %v, want %s FAILED with DEADLINE_EXCEEDED and its message", g, offer.GetTransferId())
	}
}

// TestListTransfersPull: pulls are listed with their peer and
// destination, failed ones with the peer's code.
func TestListTransfersPull(t *testing.T) {
	a := startNode(t, service.Config{})
	b := startNode(t, service.Config{AllowPull: true})
	writeFile(t, a.root, "m.bin", 300000)
	pull := func(path, dest string) error {
		stream, err := b.api().Pull(testCtx(t), &ferryv1.PullRequest{Peer: a.Addr().String(), Path: path, Destination: dest})
		if err != nil {
			return err
		}
		for {
			if _, err := stream.Recv(); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
		}
	}
	if err := pull("m.bin", "copy.bin"); err != nil {
		t.Fatalf("Pull(m.bin) = %v", err)
	}
	if err := pull("nope", "nope"); status.Code(err) != codes.NotFound {
		t.Fatalf("Pull(nope) = %v, want NotFound", err)
	}
	got := listTransfers(t, b, false)
	if len(got) != 2 {
		t.Fatalf("B's ListTransfers() = %v, want two pulls", got)
	}
	failed, ok := got[0], got[1]
	for _, g := range got {
		if g.GetKind() != ferryv1.TransferKind_TRANSFER_KIND_PULL || g.GetPeer() != a.Addr().String() || g.GetTransferId() == "" {
			t.Errorf("pull = %v, want kind PULL, peer %s, an id", g, a.Addr())
		}
	}
	if failed.GetPath() != "nope" || failed.GetState() != ferryv1.TransferState_TRANSFER_STATE_FAILED || failed.GetErrorCode() != "NOT_FOUND" {
		t.Errorf("failed pull = %v, want nope FAILED with NOT_FOUND", failed)
	}
	if ok.GetPath() != "m.bin" || ok.GetDestination() != "copy.bin" || ok.GetState() != ferryv1.TransferState_TRANSFER_STATE_SUCCEEDED ||
		ok.GetBytesDone() != 300000 || ok.GetReport().GetReceiver().GetBytes() != 300000 || ok.GetStrategy() == ferryv1.Strategy_STRATEGY_UNSPECIFIED {
		t.Errorf("pull = %v, want m.bin -> copy.bin SUCCEEDED, 300000 bytes, the report and the peer's strategy", ok)
	}
	if ids := listTransfers(t, a, false); len(ids) != 1 || ids[0].GetKind() != ferryv1.TransferKind_TRANSFER_KIND_DOWNLOAD {
		t.Errorf("A's ListTransfers() = %v, want the download B made", ids)
	}

	writeFile(t, a.root, "tree/x", 100)
	writeFile(t, a.root, "tree/sub/y", 23)
	if err := pull("tree", "treecopy"); err != nil {
		t.Fatalf("Pull(tree) = %v", err)
	}
	tree := listTransfers(t, b, false)[0]
	if tree.GetPath() != "tree" || tree.GetState() != ferryv1.TransferState_TRANSFER_STATE_SUCCEEDED || tree.GetTreeReport().GetFiles() != 2 ||
		tree.GetFilesDone() != 2 || tree.GetFilesTotal() != 2 || tree.GetBytesDone() != 123 || tree.GetReport() != nil {
		t.Errorf("directory pull = %v, want tree SUCCEEDED, 2 of 2 files, 123 bytes and its tree report", tree)
	}
}

// TestListTransfersTree: a DownloadTree is listed as DOWNLOAD_TREE and,
// once the caller has the tree report, as SUCCEEDED with that report's
// file and byte counts; a tree that fails is FAILED with its code.
func TestListTransfersTree(t *testing.T) {
	n := startNode(t, service.Config{})
	for i := range 5 {
		writeFile(t, n.root, fmt.Sprintf("tree/d/f%d", i), 3000*(i+1))
	}
	report, err := n.client.DownloadTree(testCtx(t), "tree", t.TempDir()+"/out", client.TreeOptions{})
	if err != nil {
		t.Fatalf("DownloadTree() = %v", err)
	}
	got := listTransfers(t, n, false)
	if len(got) != 1 {
		t.Fatalf("ListTransfers() = %v, want the one tree", got)
	}
	info := got[0]
	if info.GetKind() != ferryv1.TransferKind_TRANSFER_KIND_DOWNLOAD_TREE ||
		info.GetState() != ferryv1.TransferState_TRANSFER_STATE_SUCCEEDED || info.GetPath() != "tree" {
		t.Errorf("ListTransfers()[0] = %v, want a succeeded DOWNLOAD_TREE of tree", info)
	}
	const files, bytes = 5, 3000 * (1 + 2 + 3 + 4 + 5)
	if info.GetFilesDone() != files || info.GetFilesTotal() != files || info.GetBytesDone() != bytes || info.GetBytesTotal() != bytes {
		t.Errorf("ListTransfers()[0]: files %d of %d, bytes %d of %d; want %d of %d, %d of %d",
			info.GetFilesDone(), info.GetFilesTotal(), info.GetBytesDone(), info.GetBytesTotal(), files, files, bytes, bytes)
	}
	if tr := info.GetTreeReport(); tr.GetFiles() != report.GetFiles() || tr.GetBytes() != report.GetBytes() {
		t.Errorf("ListTransfers()[0].tree_report = %v, want the caller's counts %d files, %d bytes", tr, report.GetFiles(), report.GetBytes())
	}

	stream, err := n.api().DownloadTree(testCtx(t), &ferryv1.DownloadTreeRequest{Path: "tree/d/f0"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("DownloadTree(a file) = %v, want %v", err, codes.FailedPrecondition)
	}
	if got := listTransfers(t, n, false); len(got) != 1 {
		t.Errorf("ListTransfers() after a refused tree = %d transfers, want still 1 (refused before it started)", len(got))
	}
}

// TestListTransfersWhileDownloading lists transfers while downloads start
// and finish, for the race detector: a record must be whole before a
// listing can see it.
func TestListTransfersWhileDownloading(t *testing.T) {
	n := startNode(t, service.Config{TransferHistory: 10})
	writeFile(t, n.root, "f", 100<<10)
	stop := make(chan struct{})
	listed := make(chan int)
	go func() {
		count := 0
		for {
			select {
			case <-stop:
				listed <- count
				return
			default:
			}
			if _, err := n.api().ListTransfers(testCtx(t), &ferryv1.ListTransfersRequest{}); err == nil {
				count++
			}
		}
	}()
	for range 50 {
		if _, err := n.client.Download(testCtx(t), "f", os.DevNull, client.DownloadOptions{}); err != nil {
			t.Fatalf("Download() = %v", err)
		}
	}
	close(stop)
	if count := <-listed; count == 0 {
		t.Fatal("no ListTransfers call succeeded while downloading")
	}
	if got := listTransfers(t, n, false); len(got) != 10 {
		t.Errorf("ListTransfers() = %d transfers, want the history of 10", len(got))
	}
}
