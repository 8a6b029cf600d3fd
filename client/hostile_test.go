package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/transfer"
)

// hostileData is a raw data channel, as a hostile server runs one: it
// reads the preamble ("FERY", version, ticket), answers verdict 0
// (accepted), sends send bytes and then either ends well (closes, after
// the trailer on a kept connection) or stays silent with the connection
// open.
type hostileData struct {
	addr  string
	conns atomic.Int64
}

func serveHostileData(t *testing.T, send int, closeAfter bool) *hostileData {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	h := &hostileData{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.conns.Add(1)
			go func() {
				defer c.Close()
				pre := make([]byte, 4+1+transfer.TicketSize)
				if _, err := io.ReadFull(c, pre); err != nil {
					return
				}
				c.Write([]byte{0})
				c.Write(make([]byte, send))
				if closeAfter && pre[4] == transfer.ProtocolVersionKeepAlive {
					c.Write([]byte{transfer.TrailerOK}) // every byte went well
				}
				if !closeAfter {
					io.Copy(io.Discard, c) // silent until the client goes
				}
			}()
		}
	}()
	return h
}

// hostileFile is a real gRPC server that answers Download with the offer
// offer makes of the request (none: it stays silent), and then nothing
// more until the client goes.
type hostileFile struct {
	ferryv1.UnimplementedTransferServiceServer
	offer func(*ferryv1.DownloadRequest) *ferryv1.Offer
}

func (h *hostileFile) StatFile(context.Context, *ferryv1.StatFileRequest) (*ferryv1.StatFileResponse, error) {
	return &ferryv1.StatFileResponse{Path: "f", Size: 1 << 62, Mode: 0o644}, nil
}

func (h *hostileFile) GetCapabilities(context.Context, *ferryv1.GetCapabilitiesRequest) (*ferryv1.GetCapabilitiesResponse, error) {
	return &ferryv1.GetCapabilitiesResponse{MaxStreams: 4}, nil
}

func (h *hostileFile) Download(req *ferryv1.DownloadRequest, stream grpc.ServerStreamingServer[ferryv1.DownloadResponse]) error {
	if o := h.offer(req); o != nil {
		if err := stream.Send(&ferryv1.DownloadResponse{Event: &ferryv1.DownloadResponse_Offer{Offer: o}}); err != nil {
			return err
		}
	}
	<-stream.Context().Done()
	return stream.Context().Err()
}

func dialServer(t *testing.T, srv ferryv1.TransferServiceServer) *client.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	ferryv1.RegisterTransferServiceServer(s, srv)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	c, err := client.Dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func offerOf(addr string, offset, length uint64) *ferryv1.Offer {
	return &ferryv1.Offer{TransferId: "t1", DataAddress: addr, Ticket: make([]byte, transfer.TicketSize),
		Offset: offset, Length: length, FileSize: offset + length, Strategy: ferryv1.Strategy_STRATEGY_READ_WRITE}
}

// noFiles fails t when dir holds anything: a refused offer writes
// nothing, not even a partial file.
func noFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("%s was left in the destination's directory", e.Name())
	}
}

// TestDownloadHostileOffer: an offer for more than was asked, from
// another offset, past MaxBytes, or longer than the destination's file
// system has room for, is refused before the data channel is dialled
// and before anything is written.
func TestDownloadHostileOffer(t *testing.T) {
	data := serveHostileData(t, 0, false)
	tests := []struct {
		name  string
		opts  client.DownloadOptions
		offer func(*ferryv1.DownloadRequest) *ferryv1.Offer
		want  error
	}{
		{"longer than asked", client.DownloadOptions{Length: 10},
			func(r *ferryv1.DownloadRequest) *ferryv1.Offer { return offerOf(data.addr, 0, 11) }, client.ErrBadOffer},
		{"another offset", client.DownloadOptions{Offset: 4096},
			func(r *ferryv1.DownloadRequest) *ferryv1.Offer { return offerOf(data.addr, 0, 10) }, client.ErrBadOffer},
		{"past MaxBytes", client.DownloadOptions{MaxBytes: 1 << 20},
			func(r *ferryv1.DownloadRequest) *ferryv1.Offer { return offerOf(data.addr, 0, 1<<20+1) }, client.ErrTooLarge},
		{"past the free space", client.DownloadOptions{},
			func(r *ferryv1.DownloadRequest) *ferryv1.Offer { return offerOf(data.addr, 0, 1<<62) }, client.ErrNoSpace},
		{"past the free space in parts", client.DownloadOptions{Streams: 4},
			func(r *ferryv1.DownloadRequest) *ferryv1.Offer { return offerOf(data.addr, 0, 1<<62) }, client.ErrNoSpace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialServer(t, &hostileFile{offer: tt.offer})
			dir := t.TempDir()
			tt.opts.Receive.IdleTimeout = 5 * time.Second // a hang fails the test, not the run
			_, err := c.Download(t.Context(), "f", filepath.Join(dir, "f"), tt.opts)
			if !errors.Is(err, tt.want) {
				t.Errorf("Download() = %v, want %v", err, tt.want)
			}
			noFiles(t, dir)
		})
	}
	if n := data.conns.Load(); n != 0 {
		t.Errorf("the data channel was dialled %d times, want never", n)
	}
}

// TestDownloadSilentServer: a server that goes silent, on the data
// channel or on the control plane, fails the download within the idle
// timeout with an error wrapping transfer.ErrIdle, and leaves no file.
func TestDownloadSilentServer(t *testing.T) {
	const idle = 200 * time.Millisecond
	tests := []struct {
		name        string
		send        int  // bytes the data channel sends
		closeAfter  bool // and then closes
		offer, read bool // the server offers; the data channel is read
	}{
		{"no offer", 0, false, false, false},
		{"silent after the verdict", 0, false, true, true},
		{"silent part-way", 100, false, true, true},
		{"no report after the last byte", 1000, true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := serveHostileData(t, tt.send, tt.closeAfter)
			c := dialServer(t, &hostileFile{offer: func(*ferryv1.DownloadRequest) *ferryv1.Offer {
				if !tt.offer {
					return nil
				}
				return offerOf(data.addr, 0, 1000)
			}})
			dir := t.TempDir()
			failsIdle(t, "Download", idle, func() error {
				_, err := c.Download(t.Context(), "f", filepath.Join(dir, "f"),
					client.DownloadOptions{Receive: client.ReceiveConfig{IdleTimeout: idle}})
				return err
			})
			noFiles(t, dir)
			if got := data.conns.Load(); got != int64(btoi(tt.read)) {
				t.Errorf("data connections: %d, want %d", got, btoi(tt.read))
			}
		})
	}
}

// failsIdle runs call, which meets a silent server, and checks that it
// fails with transfer.ErrIdle once idle has passed, and not long after.
func failsIdle(t *testing.T, name string, idle time.Duration, call func() error) {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- call() }()
	select {
	case err := <-done:
		if !errors.Is(err, transfer.ErrIdle) {
			t.Errorf("%s() = %v, want %v", name, err, transfer.ErrIdle)
		}
		if took := time.Since(start); took < idle {
			t.Errorf("%s() failed after %v, before the idle timeout", name, took)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s() still waiting 10 s into a silence, with an idle timeout of %v", name, idle)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// silentTree is a real gRPC server whose DownloadTree sends the entries
// it is given and then stays silent, never sending its report.
type silentTree struct{ hostileTree }

func (h *silentTree) DownloadTree(_ *ferryv1.DownloadTreeRequest, stream grpc.ServerStreamingServer[ferryv1.DownloadTreeResponse]) error {
	if err := stream.Send(&ferryv1.DownloadTreeResponse{Entries: h.entries}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return stream.Context().Err()
}

// TestDownloadTreeSilentServer: a tree whose server goes silent between
// messages, with no file in flight, or whose file's data channel goes
// silent, fails within the idle timeout with transfer.ErrIdle.
func TestDownloadTreeSilentServer(t *testing.T) {
	const idle = 200 * time.Millisecond
	data := serveHostileData(t, 10, false)
	file := &ferryv1.TreeEntry{
		File:  &ferryv1.FileEntry{Path: "f", Type: ferryv1.FileType_FILE_TYPE_REGULAR, Size: 1000, Mode: 0o644},
		Offer: offerOf(data.addr, 0, 1000),
	}
	for name, entries := range map[string][]*ferryv1.TreeEntry{
		"silent after a directory": {entry("d", ferryv1.FileType_FILE_TYPE_DIRECTORY, "")},
		"silent after a file":      {inlineFile("small")},
		"silent data channel":      {file},
	} {
		t.Run(name, func(t *testing.T) {
			c := dialServer(t, &silentTree{hostileTree{entries: entries}})
			failsIdle(t, "DownloadTree", idle, func() error {
				_, err := c.DownloadTree(t.Context(), "t", filepath.Join(t.TempDir(), "dest"),
					client.TreeOptions{Receive: client.ReceiveConfig{IdleTimeout: idle}})
				return err
			})
		})
	}
}

// TestDownloadTreeHostileSizes: a tree whose offers together pass
// MaxBytes, or a file longer than the destination's free space, fails
// at that offer, and the refused file is not written.
func TestDownloadTreeHostileSizes(t *testing.T) {
	huge := inlineFile("huge")
	huge.Offer.Length = 1 << 62
	for _, tt := range []struct {
		name    string
		entries []*ferryv1.TreeEntry
		max     uint64
		want    error
	}{
		{"past MaxBytes", []*ferryv1.TreeEntry{inlineFile("a"), inlineFile("b"), inlineFile("huge")}, 6, client.ErrTooLarge},
		{"past the free space", []*ferryv1.TreeEntry{inlineFile("a"), huge}, 0, client.ErrNoSpace},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := serveHostile(t, tt.entries)
			dest := filepath.Join(t.TempDir(), "dest")
			_, err := c.DownloadTree(t.Context(), "t", dest, client.TreeOptions{MaxBytes: tt.max})
			if !errors.Is(err, tt.want) {
				t.Errorf("DownloadTree() = %v, want %v", err, tt.want)
			}
			for _, p := range []string{"b", "huge"} {
				if _, err := os.Lstat(filepath.Join(dest, p)); err == nil {
					t.Errorf("%s was written", p)
				}
			}
		})
	}
}

// mute answers no StatFile and no GetCapabilities: it holds each call
// until the caller gives up.
type mute struct {
	ferryv1.UnimplementedTransferServiceServer
}

func (mute) StatFile(ctx context.Context, _ *ferryv1.StatFileRequest) (*ferryv1.StatFileResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (mute) GetCapabilities(ctx context.Context, _ *ferryv1.GetCapabilitiesRequest) (*ferryv1.GetCapabilitiesResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestPullMuteServer: the calls a pull makes before its data (StatFile
// for a tree, a resume or parallel streams; GetCapabilities for the
// streams cap) are bounded by the idle timeout too: a server that never
// answers them fails the pull with ErrIdle instead of hanging it.
func TestPullMuteServer(t *testing.T) {
	const idle = 200 * time.Millisecond
	c := dialServer(t, mute{})
	rc := client.ReceiveConfig{IdleTimeout: idle}
	failsIdle(t, "DownloadTree", idle, func() error {
		_, err := c.DownloadTree(t.Context(), "t", filepath.Join(t.TempDir(), "dest"), client.TreeOptions{Receive: rc})
		return err
	})
	failsIdle(t, "Download with streams", idle, func() error {
		_, err := c.Download(t.Context(), "f", filepath.Join(t.TempDir(), "f"), client.DownloadOptions{Streams: 4, Receive: rc})
		return err
	})
	dest := filepath.Join(t.TempDir(), "g")
	if err := os.WriteFile(dest+".partial", []byte("held"), 0o644); err != nil {
		t.Fatal(err)
	}
	failsIdle(t, "Download with resume", idle, func() error {
		_, err := c.Download(t.Context(), "g", dest, client.DownloadOptions{Resume: true, Receive: rc})
		return err
	})
}
