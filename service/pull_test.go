package service_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/service"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// pull calls Pull on n and collects the stream up to its end.
func pull(t *testing.T, n *testNode, req *ferryv1.PullRequest) ([]*ferryv1.PullResponse, error) {
	t.Helper()
	stream, err := n.api().Pull(testCtx(t), req)
	if err != nil {
		return nil, err
	}
	var msgs []*ferryv1.PullResponse
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return msgs, nil
		}
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, msg)
	}
}

// noPartial fails the test if any .partial file is left under dir.
func noPartial(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".partial") {
			t.Errorf("%s left behind", p)
		}
		return nil
	})
}

func TestPullStrategies(t *testing.T) {
	// Progress as often as possible, so that forwarding it is exercised.
	fast := service.Config{ProgressInterval: time.Millisecond, AllowPull: true}
	a, b := startNode(t, fast), startNode(t, fast)
	want := writeFile(t, a.root, "models/m.bin", 3<<20+17)
	if err := os.Mkdir(filepath.Join(b.root, "cache"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range a.caps(t).GetStrategies() {
		t.Run(s.String(), func(t *testing.T) {
			dest := "cache/" + s.String()
			msgs, err := pull(t, b, &ferryv1.PullRequest{Peer: a.Addr().String(), Path: "models/m.bin", Destination: dest, Strategy: s})
			if err != nil {
				t.Fatalf("Pull(%s) = %v", s, err)
			}
			report := msgs[len(msgs)-1].GetReport()
			if report == nil {
				t.Fatalf("Pull(%s): last message = %v, want a report", s, msgs[len(msgs)-1])
			}
			for _, m := range msgs[:len(msgs)-1] {
				if m.GetProgress() == nil {
					t.Errorf("Pull(%s): message before the report = %v, want progress", s, m)
				}
			}
			if got := report.GetSender().GetStrategy(); got != s {
				t.Errorf("Pull(%s): report.sender.strategy = %v", s, got)
			}
			if got := report.GetReceiver().GetBytes(); got != uint64(len(want)) {
				t.Errorf("Pull(%s): report.receiver.bytes = %d, want %d", s, got, len(want))
			}
			got, err := os.ReadFile(filepath.Join(b.root, dest))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("Pull(%s): destination holds %d bytes (err %v), want the %d source bytes", s, len(got), err, len(want))
			}
			noPartial(t, b.root)
		})
	}
}

func TestPullOverwrite(t *testing.T) {
	a, b := startNode(t, service.Config{}), startNode(t, service.Config{AllowPull: true})
	want := writeFile(t, a.root, "f.bin", 4096)
	old := writeFile(t, b.root, "f.bin", 100)
	req := &ferryv1.PullRequest{Peer: a.Addr().String(), Path: "f.bin", Destination: "f.bin"}
	if _, err := pull(t, b, req); status.Code(err) != codes.AlreadyExists {
		t.Errorf("Pull onto an existing file = %v, want AlreadyExists", err)
	}
	if got, _ := os.ReadFile(filepath.Join(b.root, "f.bin")); !bytes.Equal(got, old) {
		t.Errorf("Pull without overwrite changed the existing file")
	}
	noPartial(t, b.root)
	req.Overwrite = true
	if _, err := pull(t, b, req); err != nil {
		t.Fatalf("Pull with overwrite = %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(b.root, "f.bin")); !bytes.Equal(got, want) {
		t.Errorf("Pull with overwrite did not replace the file")
	}
	noPartial(t, b.root)
}

func TestPullErrors(t *testing.T) {
	a := startNode(t, service.Config{})
	writeFile(t, a.root, "f.bin", 4096)
	outside := t.TempDir()
	b := startNode(t, service.Config{AllowPull: true})
	if err := os.Symlink(outside, filepath.Join(b.root, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(b.root, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := gone.Addr().String()
	gone.Close()
	peer := a.Addr().String()
	for _, tc := range []struct {
		name, peer, path, dest string
		code                   codes.Code
		fromPeer               bool
	}{
		{"dotdot", peer, "f.bin", "../x", codes.InvalidArgument, false},
		{"absolute", peer, "f.bin", filepath.Join(outside, "x"), codes.InvalidArgument, false},
		{"symlink-out", peer, "f.bin", "out/x", codes.PermissionDenied, false},
		{"root", peer, "f.bin", ".", codes.InvalidArgument, false},
		{"empty", peer, "f.bin", "", codes.InvalidArgument, false},
		{"no-parent", peer, "f.bin", "missing/x", codes.NotFound, false},
		{"onto-dir", peer, "f.bin", "dir", codes.FailedPrecondition, false},
		{"missing-source", peer, "nope.bin", "x", codes.NotFound, true},
		{"source-escapes", peer, "../etc/passwd", "x", codes.InvalidArgument, true},
		{"unreachable", unreachable, "f.bin", "x", codes.Unavailable, false},
		{"no-port", "127.0.0.1", "f.bin", "x", codes.InvalidArgument, false},
		{"no-peer", "", "f.bin", "x", codes.InvalidArgument, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pull(t, b, &ferryv1.PullRequest{Peer: tc.peer, Path: tc.path, Destination: tc.dest})
			st := status.Convert(err)
			if st.Code() != tc.code {
				t.Errorf("Pull(peer %q, %q → %q) = %v, want %v", tc.peer, tc.path, tc.dest, err, tc.code)
			}
			if got := strings.HasPrefix(st.Message(), "peer: "); got != tc.fromPeer {
				t.Errorf("Pull(%q → %q) message = %q, want a \"peer: \" prefix: %v", tc.path, tc.dest, st.Message(), tc.fromPeer)
			}
			if _, err := os.Lstat(filepath.Join(b.root, "x")); err == nil {
				t.Errorf("Pull(%q → %q) failed but left %s", tc.path, tc.dest, "x")
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Errorf("Pull(%q → %q) wrote %v outside the root", tc.path, tc.dest, ents)
			}
			noPartial(t, b.root)
		})
	}
}

// TestPullReplacesSymlink: a destination that is a symlink to a file
// outside the root is replaced, with overwrite, by the pulled file; the
// file it pointed to is not touched.
func TestPullReplacesSymlink(t *testing.T) {
	a, b := startNode(t, service.Config{}), startNode(t, service.Config{AllowPull: true})
	want := writeFile(t, a.root, "f.bin", 4096)
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(b.root, "link")); err != nil {
		t.Fatal(err)
	}
	req := &ferryv1.PullRequest{Peer: a.Addr().String(), Path: "f.bin", Destination: "link", Overwrite: true}
	if _, err := pull(t, b, req); err != nil {
		t.Fatalf("Pull onto a symlink with overwrite = %v", err)
	}
	if got, _ := os.ReadFile(outside); string(got) != "keep" {
		t.Errorf("Pull wrote through the symlink: outside file holds %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(b.root, "link")); !bytes.Equal(got, want) {
		t.Errorf("Pull did not replace the symlink with the pulled file")
	}
}

// Pull writes into the root and dials out, so a node refuses it unless
// started with AllowPull (ferryd --allow-pull).
func TestPullDisabledByDefault(t *testing.T) {
	a, b := startNode(t, service.Config{}), startNode(t, service.Config{})
	writeFile(t, a.root, "f.bin", 4096)
	stream, err := b.api().Pull(testCtx(t), &ferryv1.PullRequest{Peer: a.Addr().String(), Path: "f.bin", Destination: "f.bin"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "--allow-pull") {
		t.Fatalf("Pull on a node without AllowPull = %v, want PermissionDenied naming --allow-pull", err)
	}
	if _, err := os.Stat(filepath.Join(b.root, "f.bin")); !os.IsNotExist(err) {
		t.Errorf("the destination exists after a refused Pull: %v", err)
	}
}

// TestPullStreams: a Pull of a file with streams splits it over that
// many parts, capped by the peer's max_streams and by the pulling
// node's own --max-file-streams, and lands it byte-exact with no
// partial file; 0 streams is one.
func TestPullStreams(t *testing.T) {
	a := startNode(t, service.Config{MaxFileStreams: 3})
	b := startNode(t, service.Config{AllowPull: true})
	b2 := startNode(t, service.Config{AllowPull: true, MaxFileStreams: 2})
	want := writeFile(t, a.root, "big.bin", 40<<20+1)
	if got := b.caps(t).GetMaxStreams(); got != 8 {
		t.Errorf("GetCapabilities: max_streams %d, want the default 8", got)
	}
	for _, tt := range []struct {
		node    *testNode
		streams uint32
		parts   int
	}{
		{b, 0, 0},
		{b, 8, 3},  // the peer's cap
		{b2, 8, 2}, // this node's own
	} {
		dest := fmt.Sprintf("big-%d-%d.bin", tt.streams, tt.parts)
		msgs, err := pull(t, tt.node, &ferryv1.PullRequest{Peer: a.Addr().String(), Path: "big.bin", Destination: dest, Streams: tt.streams})
		if err != nil {
			t.Fatalf("Pull(streams %d) = %v", tt.streams, err)
		}
		report := msgs[len(msgs)-1].GetReport()
		if len(report.GetParts()) != tt.parts || report.GetReceiver().GetBytes() != uint64(len(want)) {
			t.Errorf("Pull(streams %d): %d parts, %d bytes; want %d parts, %d bytes", tt.streams, len(report.GetParts()), report.GetReceiver().GetBytes(), tt.parts, len(want))
		}
		if got, err := os.ReadFile(filepath.Join(tt.node.root, dest)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("Pull(streams %d) landed %d bytes, %v; want the %d of the peer's", tt.streams, len(got), err, len(want))
		}
		noPartial(t, tt.node.root)
	}
}

// TestPullMaxBytes: a node started with PullMaxBytes (ferryd
// --pull-max-bytes) refuses a file, or a tree whose files together
// come to more, with ResourceExhausted, and keeps nothing of the file
// it refused.
func TestPullMaxBytes(t *testing.T) {
	a := startNode(t, service.Config{})
	b := startNode(t, service.Config{AllowPull: true, PullMaxBytes: 6000})
	writeFile(t, a.root, "big.bin", 8192)
	writeFile(t, a.root, "small.bin", 4096)
	writeFile(t, a.root, "tree/one.bin", 4096)
	writeFile(t, a.root, "tree/two.bin", 4096)
	for _, path := range []string{"big.bin", "tree"} {
		_, err := pull(t, b, &ferryv1.PullRequest{Peer: a.Addr().String(), Path: path, Destination: path})
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), "larger than") {
			t.Errorf("Pull(%s) past PullMaxBytes = %v, want ResourceExhausted saying it is too large", path, err)
		}
	}
	if _, err := os.Stat(filepath.Join(b.root, "big.bin")); err == nil {
		t.Errorf("the refused file landed")
	}
	noPartial(t, b.root)
	if _, err := pull(t, b, &ferryv1.PullRequest{Peer: a.Addr().String(), Path: "small.bin", Destination: "small.bin"}); err != nil {
		t.Errorf("Pull(small.bin) within PullMaxBytes = %v", err)
	}
}
