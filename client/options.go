package client

import (
	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/internal/apiconv"
	"github.com/ferrydev/ferry/transfer"
)

// ReceiveConfig tunes the receiving copy loop (DownloadOptions.Receive,
// TreeOptions.Receive): the read buffer, the handshake timeout, and
// whether to read and write instead of splicing. The zero value is
// ready to use.
type ReceiveConfig = transfer.ReceiveConfig

// MaxInline is the most bytes a server carries inside an offer, with no
// data connection: the cap on DownloadOptions.InlineMax and
// TreeOptions.InlineMax.
const MaxInline uint64 = transfer.MaxInline

// ErrExists is the error (wrapped) of a destination that exists where
// none may: a DownloadTree into an existing directory without
// TreeOptions.Overwrite, or a file in its way.
var ErrExists = fsroot.ErrExists

// ParseStrategy maps a strategy's name, as the CLI and the docs spell it
// ("auto", "read-write", "mmap", "sendfile", "splice"), to the API's
// value; "auto" is STRATEGY_UNSPECIFIED, the server's choice.
func ParseStrategy(name string) (ferryv1.Strategy, error) {
	st, err := transfer.ParseStrategy(name)
	if err != nil {
		return ferryv1.Strategy_STRATEGY_UNSPECIFIED, err
	}
	return apiconv.Strategy(st), nil
}

// ParseChecksum maps a checksum's name ("crc32c", "sha256", "none" or "")
// to the API's value; "none" is CHECKSUM_ALGORITHM_UNSPECIFIED.
func ParseChecksum(name string) (ferryv1.ChecksumAlgorithm, error) {
	alg, err := transfer.ParseChecksum(name)
	if err != nil {
		return ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_UNSPECIFIED, err
	}
	return apiconv.ChecksumAlgorithm(alg), nil
}
