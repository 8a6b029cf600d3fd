package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/transfer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestDataAddress(t *testing.T) {
	tests := []struct {
		offered, target, want string
	}{
		{"0.0.0.0:7071", "files.example:7070", "files.example:7071"},
		{"0.0.0.0:7071", "10.0.0.5:7070", "10.0.0.5:7071"},
		{"[::]:7071", "10.0.0.5:7070", "10.0.0.5:7071"},
		{":7071", "files.example:7070", "files.example:7071"},
		{"0.0.0.0:7071", "[2001:db8::1]:7070", "[2001:db8::1]:7071"},
		{"127.0.0.1:7071", "files.example:7070", "127.0.0.1:7071"},
		{"192.168.1.2:9000", "10.0.0.5:7070", "192.168.1.2:9000"},
		{"data.example:7071", "files.example:7070", "data.example:7071"},
		{"[2001:db8::2]:7071", "10.0.0.5:7070", "[2001:db8::2]:7071"},
		// Nothing to substitute with, or nothing to substitute in.
		{"0.0.0.0:7071", "files.example", "0.0.0.0:7071"},
		{"not-an-address", "files.example:7070", "not-an-address"},
	}
	for _, tt := range tests {
		if got := dataAddress(tt.offered, tt.target); got != tt.want {
			t.Errorf("dataAddress(%q, %q) = %q, want %q", tt.offered, tt.target, got, tt.want)
		}
	}
}

func TestPick(t *testing.T) {
	var (
		diskFull  = errors.New("write destination: no space left on device")
		short     = fmt.Errorf("%w: got 10 of 20 bytes", transfer.ErrShortTransfer)
		cancelled = fmt.Errorf("read: %w", context.Canceled)
		aborted   = status.Error(codes.Aborted, "source file changed during the transfer")
		canceled  = status.Error(codes.Canceled, "context canceled")
		notFound  = status.Error(codes.NotFound, "no such file")
		internal  = status.Error(codes.Internal, "internal error (transfer 7); see the server log")
	)
	tests := []struct {
		name         string
		recv, stream error
		want         error
	}{
		{"both fine", nil, nil, nil},
		{"only the stream failed", nil, notFound, notFound},
		{"only the receiver failed", diskFull, nil, diskFull},
		{"receiver cancelled because the call failed", cancelled, aborted, aborted},
		{"short transfer explained by the server", short, aborted, aborted},
		{"short transfer, call cancelled", short, canceled, short},
		{"short transfer, the server saw the connection go", short, internal, short},
		{"local failure explains the server's view", diskFull, canceled, diskFull},
		{"local failure wins over a server error", diskFull, aborted, diskFull},
	}
	for _, tt := range tests {
		if got := pick(tt.recv, tt.stream); got != tt.want {
			t.Errorf("%s: pick(%v, %v) = %v, want %v", tt.name, tt.recv, tt.stream, got, tt.want)
		}
	}
}

func TestOutcome(t *testing.T) {
	var (
		internal  = status.Error(codes.Internal, "internal error (transfer 7); see the server log")
		aborted   = status.Error(codes.Aborted, "source file changed during the transfer")
		canceled  = status.Error(codes.Canceled, "context canceled")
		cancelled = fmt.Errorf("read: %w", context.Canceled)
		short     = fmt.Errorf("%w: got 10 of 20 bytes", transfer.ErrShortTransfer)
		cutShort  = "data channel did not carry exactly the offered bytes: got 10 of 20 bytes (server: internal error (transfer 7); see the server log)"
	)
	tests := []struct {
		name string
		recv error
		got  int64
		serr error
		want string
	}{
		{"both fine", nil, 20, nil, ""},
		{"cut, the receiver saw it first", short, 10, internal, cutShort},
		{"cut, the server's status came first", cancelled, 10, internal, cutShort},
		{"server failed after every byte arrived", cancelled, 20, internal, internal.Error()},
		{"source changed", short, 10, aborted, aborted.Error()},
		{"we cancelled", cancelled, 10, canceled, canceled.Error()},
	}
	for _, tt := range tests {
		err := outcome(received{stats: transfer.Stats{Bytes: tt.got}, err: tt.recv}, tt.serr, 20)
		if got := fmt.Sprint(err); err == nil && tt.want != "" || err != nil && got != tt.want {
			t.Errorf("%s: outcome(%v after %d bytes, %v) = %v, want %q", tt.name, tt.recv, tt.got, tt.serr, err, tt.want)
		}
	}
}

// TestPartsFailedAfterUntrustedPart: when one part fails for an ordinary
// reason first and another then fails its checksum (or finds the source
// changed), nothing of the file is kept for a resume, even though the
// first error recorded is the ordinary one.
func TestPartsFailedAfterUntrustedPart(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "out")
	dst, err := fsroot.CreateDestination(dest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.File().Write(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	j := &fsroot.Journal{Size: 128, Length: 128, Parts: []fsroot.JournalPart{{Offset: 0, Length: 64}, {Offset: 64, Length: 64}}}
	_, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &partRun{dst: dst, j: j, journal: true, opts: DownloadOptions{Resume: true}, cancel: cancel, got: map[int]int64{}}
	r.fail(errors.New("part 1: connection reset"))
	r.mu.Lock()
	r.got[0] = 64
	r.tainted = untrusted(fmt.Errorf("part 2: %w", transfer.ErrChecksumMismatch))
	r.mu.Unlock()
	r.failed()
	for _, p := range []string{dest + ".partial", fsroot.JournalPath(dest)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after a part failed its checksum: %s is still there (%v), want nothing kept", p, err)
		}
	}
}
