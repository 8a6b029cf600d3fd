package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/transfer"
)

// What a client does not take on trust from the server it pulls from
// (docs/security.md, "What a client trusts"): an offer must stay within
// the request and MaxBytes and fit in the destination's free space,
// before a byte is written; modes lose fsroot.LandMask; and a server
// that goes silent fails the call after the receive's idle timeout.

// ErrTooLarge is the error (wrapped) of a download whose offer, or a
// tree whose offers together, come to more than MaxBytes. Nothing of
// the refused file is written.
var ErrTooLarge = errors.New("larger than the download may write")

// ErrBadOffer is the error (wrapped) of an offer that does not answer
// the request: another offset, or more bytes than asked for.
var ErrBadOffer = errors.New("the server's offer does not match the request")

// ErrNoSpace is the error (wrapped) of a download refused because the
// destination's file system has too little free space for the offer
// (less fsroot.SpaceReserve).
var ErrNoSpace = fsroot.ErrNoSpace

// checkOffer refuses an offer for another range than req asked for: a
// server may send fewer bytes than asked (the file ends first), never
// more or from elsewhere.
func checkOffer(req *ferryv1.DownloadRequest, o *ferryv1.Offer) error {
	if o.GetOffset() != req.GetOffset() || req.GetLength() > 0 && o.GetLength() > req.GetLength() {
		return fmt.Errorf("ferry: %w: asked for %d bytes from %d, offered %d from %d",
			ErrBadOffer, req.GetLength(), req.GetOffset(), o.GetLength(), o.GetOffset())
	}
	return nil
}

// checkSize refuses a file that would hold more than maxBytes (0: no
// cap) bytes once length more arrive after the held ones.
func checkSize(name string, held int64, length, maxBytes uint64) error {
	if maxBytes > 0 && (length > maxBytes || uint64(held) > maxBytes-length) {
		return fmt.Errorf("ferry: %s: %w: %d bytes offered (%d held), the cap is %d",
			name, ErrTooLarge, length, held, maxBytes)
	}
	return nil
}

// checkRoom refuses length more bytes for dst when its file system has
// too little free space for them.
func checkRoom(dst *fsroot.Destination, length int64) error {
	free, err := dst.FreeSpace()
	if err != nil {
		return fmt.Errorf("ferry: %s: %w", dst.Path, err)
	}
	if err := fsroot.CheckSpace(dst.Path, length, free); err != nil {
		return fmt.Errorf("ferry: %w", err)
	}
	return nil
}

// silence cancels a call with a cause wrapping transfer.ErrIdle once
// idle passes (0: never) with the client waiting on the server for what,
// unless stopped first. It returns the stop function.
func silence(idle time.Duration, cancel context.CancelCauseFunc, what string) func() {
	if idle <= 0 {
		return func() {}
	}
	t := time.AfterFunc(idle, func() { cancel(silentErr(idle, what)) })
	return func() { t.Stop() }
}

func silentErr(idle time.Duration, what string) error {
	return fmt.Errorf("ferry: %w: no message from the server for %v while %s", transfer.ErrIdle, idle, what)
}

// idleCause is the call's error when silence cancelled it, else err.
func idleCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, transfer.ErrIdle) {
		return cause
	}
	return err
}
