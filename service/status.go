package service

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/transfer"
)

// caller errors: their messages are built by package transfer from the
// request alone (relative path, offset, strategy names) or the server's
// configured limits, so they are safe to show the client as they are.
var callerErrors = []struct {
	err  error
	code codes.Code
}{
	{fsroot.ErrInvalidPath, codes.InvalidArgument},
	{fsroot.ErrEscapes, codes.PermissionDenied},
	{fsroot.ErrPermission, codes.PermissionDenied},
	{fsroot.ErrNotFound, codes.NotFound},
	{fsroot.ErrExists, codes.AlreadyExists},
	{fsroot.ErrIsDir, codes.FailedPrecondition},
	{fsroot.ErrNotRegular, codes.FailedPrecondition},
	{fsroot.ErrNotDir, codes.FailedPrecondition},
	{fsroot.ErrTooDeep, codes.FailedPrecondition},
	{transfer.ErrOutOfRange, codes.OutOfRange},
	{transfer.ErrUnsupported, codes.FailedPrecondition},
	{transfer.ErrBusy, codes.ResourceExhausted},
}

// runtime errors: what went wrong while moving bytes. Their wrapped text
// may hold errno strings, so the client gets the sentinel's words only.
var runtimeErrors = []struct {
	err  error
	code codes.Code
}{
	{transfer.ErrTicketExpired, codes.DeadlineExceeded},
	{transfer.ErrSourceChanged, codes.Aborted},
	{transfer.ErrChecksumMismatch, codes.DataLoss},
	{transfer.ErrClosed, codes.Unavailable},
	{transfer.ErrSessionClosed, codes.Canceled},
	// A data connection that presented the ticket in clear to a data
	// channel that requires TLS; or a peer whose offer would downgrade.
	{transfer.ErrTLSRequired, codes.FailedPrecondition},
	{client.ErrPlaintextData, codes.FailedPrecondition},
	// A Pull's peer went silent, offered what was not asked for, or more
	// than this node takes.
	{transfer.ErrIdle, codes.Unavailable},
	{client.ErrBadOffer, codes.FailedPrecondition},
	{client.ErrTooLarge, codes.ResourceExhausted},
	{fsroot.ErrNoSpace, codes.ResourceExhausted},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// toStatus maps a data-plane error to a gRPC status. Unknown errors become
// Internal with no host paths or system-call text; ref (a transfer id or
// path) lets an operator find the full error in the server's log.
func toStatus(err error, ref string) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, e := range callerErrors {
		if errors.Is(err, e.err) {
			return status.Error(e.code, err.Error())
		}
	}
	for _, e := range runtimeErrors {
		if errors.Is(err, e.err) {
			return status.Error(e.code, fmt.Sprintf("%s (%s)", e.err, ref))
		}
	}
	return status.Error(codes.Internal, fmt.Sprintf("internal error (%s); see the server log", ref))
}
