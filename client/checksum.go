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
		Checksum: opts.Checksum, InlineMax: opts.InlineMax, RateLimit: opts.RateLimit, Sink: sinkOf(dest),
	}
}

// sinkOf tells the server what a receiver into dest does with the bytes,
// for its choice of strategy: standard output ("-") and anything that is
// not a regular file or a new name (/dev/null, a FIFO) pass them on;
// everything else lands a file.
func sinkOf(dest string) ferryv1.Sink {
	if dest == "-" || dest == os.DevNull {
		return ferryv1.Sink_SINK_STREAM
	}
	if fi, err := os.Stat(dest); err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
		return ferryv1.Sink_SINK_STREAM
	}
	return ferryv1.Sink_SINK_FILE
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
