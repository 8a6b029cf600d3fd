package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/transfer"
)

func TestToStatus(t *testing.T) {
	hostErr := func(sentinel error) error {
		return fmt.Errorf("send /srv/secret/host/path: %w: %w", sentinel, syscall.EIO)
	}
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"not found", fmt.Errorf("open %q: %w", "a/b", fsroot.ErrNotFound), codes.NotFound},
		{"escapes", fmt.Errorf("open %q: %w", "link", fsroot.ErrEscapes), codes.PermissionDenied},
		{"invalid", fmt.Errorf("%w: empty path", fsroot.ErrInvalidPath), codes.InvalidArgument},
		{"directory", fmt.Errorf("%w: %q", fsroot.ErrIsDir, "d"), codes.FailedPrecondition},
		{"out of range", fmt.Errorf("%w: offset 3, size 2", transfer.ErrOutOfRange), codes.OutOfRange},
		{"unsupported", fmt.Errorf("%w: SPLICE", transfer.ErrUnsupported), codes.FailedPrecondition},
		{"expired", hostErr(transfer.ErrTicketExpired), codes.DeadlineExceeded},
		{"source changed", hostErr(transfer.ErrSourceChanged), codes.Aborted},
		{"closed", hostErr(transfer.ErrClosed), codes.Unavailable},
		{"canceled", hostErr(context.Canceled), codes.Canceled},
		{"unknown", hostErr(errors.New("boom")), codes.Internal},
		{"status passes through", status.Error(codes.ResourceExhausted, "slow down"), codes.ResourceExhausted},
	}
	for _, tt := range tests {
		err := toStatus(tt.err, "ref-7")
		if got := status.Code(err); got != tt.want {
			t.Errorf("toStatus(%q) = %v, want %v", tt.err, err, tt.want)
		}
		msg := status.Convert(err).Message()
		if strings.Contains(msg, "/srv/secret") || strings.Contains(msg, syscall.EIO.Error()) {
			t.Errorf("toStatus(%q) message %q shows a host path or errno text", tt.err, msg)
		}
		if tt.want == codes.Internal && !strings.Contains(msg, "ref-7") {
			t.Errorf("toStatus(%q) message %q, want the reference ref-7 for the server log", tt.err, msg)
		}
	}
	if err := toStatus(nil, "ref"); err != nil {
		t.Errorf("toStatus(nil) = %v, want nil", err)
	}
}

func TestAdvertiseAddr(t *testing.T) {
	data := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7071}
	tests := []struct {
		advertise string
		want      string
		wantErr   bool
	}{
		{"", "127.0.0.1:7071", false},
		{"data.example", "data.example:7071", false},
		{"data.example:9000", "data.example:9000", false},
		{"10.0.0.1", "10.0.0.1:7071", false},
		{"2001:db8::1", "[2001:db8::1]:7071", false},
		{"[2001:db8::1]", "[2001:db8::1]:7071", false},
		{"[2001:db8::1]:9000", "[2001:db8::1]:9000", false},
		{":9000", "", true},
		{"host:", "", true},
		{"$(POD_IP)", "", true},
		{"0.0.0.0", "", true},
		{"[::]:9000", "", true},
		{"data.example:99999", "", true},
		{"bad_name.example", "", true},
		{"ferry-0.ferry-headless.ns.svc.cluster.local", "ferry-0.ferry-headless.ns.svc.cluster.local:7071", false},
	}
	for _, tt := range tests {
		got, err := advertiseAddr(tt.advertise, data)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("advertiseAddr(%q, %v) = (%q, %v), want (%q, error %v)", tt.advertise, data, got, err, tt.want, tt.wantErr)
		}
	}
}

// An Internal error tells the client to look in the server's log, so the
// cause must be there; caller errors are not logged.
func TestStatusOfLogsInternalCauses(t *testing.T) {
	var buf bytes.Buffer
	s := &transferService{log: slog.New(slog.NewTextHandler(&buf, nil))}
	err := s.statusOf(fmt.Errorf("open %q: %w", "f", syscall.EMFILE), "f")
	if status.Code(err) != codes.Internal || !strings.Contains(buf.String(), "too many open files") || !strings.Contains(buf.String(), "ref=f") {
		t.Errorf("statusOf(EMFILE) = %v, logged %q; want Internal and the cause logged with its ref", err, buf.String())
	}
	buf.Reset()
	if err := s.statusOf(fsroot.ErrNotFound, "g"); status.Code(err) != codes.NotFound || buf.Len() != 0 {
		t.Errorf("statusOf(ErrNotFound) = %v, logged %q; want NotFound and nothing logged", err, buf.String())
	}
}
