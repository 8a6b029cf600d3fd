package client

import (
	"context"
	"fmt"
	"os"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/internal/apiconv"
	"github.com/ferrydev/ferry/transfer"
)

// downloadRequest is the Download call into dest that opts ask for.
func downloadRequest(path, dest string, opts DownloadOptions) *ferryv1.DownloadRequest {
	return &ferryv1.DownloadRequest{
		Path: path, Offset: opts.Offset, Length: opts.Length, Strategy: opts.Strategy,
		Checksum: opts.Checksum, InlineMax: opts.InlineMax, RateLimit: opts.RateLimit, Sink: sinkOf(dest, readsAll(opts.Checksum, opts.Receive)),
	}
}

// sinkOf tells the server what a receiver into dest does with the bytes,
// for its choice of strategy, as the receive loop will do it
// (transfer.ReceiveConfig): /dev/null takes them unread, spliced, unless
// the receiver reads them anyway (reads: it verifies a checksum, or its
// configuration says ReadWrite); standard output ("-") is always read and
// written on; any other name lands a file.
func sinkOf(dest string, reads bool) ferryv1.Sink {
	switch {
	case dest == os.DevNull && !reads:
		return ferryv1.Sink_SINK_STREAM
	case dest == os.DevNull || dest == "-":
		return ferryv1.Sink_SINK_READER
	}
	return ferryv1.Sink_SINK_FILE
}

// readsAll reports whether a receive with checksum and cfg reads every
// byte into memory: to hash it, or because cfg says so.
func readsAll(checksum ferryv1.ChecksumAlgorithm, cfg ReceiveConfig) bool {
	return checksum != ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_UNSPECIFIED || cfg.ReadWrite
}

// expectChecksum returns the checksum the offer promises, when req asked
// for one, and prepares dst to verify it. A server that sends none (one
// that predates checksums ignores the field) is an error: the caller
// asked for a verified file.
func expectChecksum(req *ferryv1.DownloadRequest, offer *ferryv1.Offer, dst *fsroot.Destination) (transfer.Checksum, error) {
	want, err := offerChecksum(req, offer)
	if err != nil || want.Algorithm == transfer.NoChecksum {
		return want, err
	}
	return want, transfer.ExpectChecksum(dst, want.Algorithm)
}

// offerChecksum is the checksum the offer promises, when req asked for
// one: it must be of the algorithm asked for.
func offerChecksum(req *ferryv1.DownloadRequest, offer *ferryv1.Offer) (transfer.Checksum, error) {
	if req.GetChecksum() == ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_UNSPECIFIED {
		return transfer.Checksum{}, nil
	}
	want, err := apiconv.FromChecksum(offer.GetChecksum())
	if err != nil {
		return want, fmt.Errorf("ferry: the offer's checksum: %w", err)
	}
	if asked, _ := apiconv.FromChecksumAlgorithm(req.GetChecksum()); want.Algorithm != asked {
		return want, fmt.Errorf("ferry: asked for a %v checksum, the server's offer has %v", asked, want.Algorithm)
	}
	return want, nil
}

// verify checks what dst holds against want, when there is one, and
// notes the outcome in the report and the receiver's statistics.
func verify(ctx context.Context, want transfer.Checksum, dst *fsroot.Destination, report *ferryv1.Report, st *transfer.Stats) error {
	if want.Algorithm == transfer.NoChecksum {
		return nil
	}
	got, err := transfer.VerifyChecksum(ctx, dst, want)
	st.ChecksumCPU += got.CPU
	if err != nil {
		return err
	}
	report.ChecksumVerified = true
	return nil
}
