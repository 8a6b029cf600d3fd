// Package treesync holds what both ends of a tree sync compute the same
// way: the digest of a file the destination holds (see SyncHeld in
// proto/ferry/v1/sync.proto) and the set the sender looks them up in.
package treesync

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
)

// Size is a digest's length in bytes.
const Size = 16

// MaxDigests caps the digests one call may send (16 MiB of them).
const MaxDigests = 1 << 20

// Digest is one held file's digest at one level.
type Digest [Size]byte

// File is what a level may compare of one regular file.
type File struct {
	Path  string // slash-separated, relative to the tree
	Size  uint64
	MTime time.Time
	Sum   []byte // SHA-256 of the bytes; CHECKSUM only
}

// Of is f's digest at level: the first 16 bytes of SHA-256(level ||
// path || 0x00 || facts), the facts as SyncHeld documents them. An
// unknown level, or the CHECKSUM level without a 32-byte Sum, is an
// error.
func Of(level ferryv1.SyncLevel, f File) (Digest, error) {
	h := sha256.New()
	h.Write([]byte{byte(level)})
	h.Write([]byte(f.Path))
	h.Write([]byte{0})
	var b [8]byte
	size := binary.BigEndian.AppendUint64(b[:0], f.Size)
	switch level {
	case ferryv1.SyncLevel_SYNC_LEVEL_EXISTS:
	case ferryv1.SyncLevel_SYNC_LEVEL_SIZE:
		h.Write(size)
	case ferryv1.SyncLevel_SYNC_LEVEL_MTIME:
		h.Write(size)
		var t [12]byte
		binary.BigEndian.PutUint64(t[:8], uint64(f.MTime.Unix()))
		binary.BigEndian.PutUint32(t[8:], uint32(f.MTime.Nanosecond()))
		h.Write(t[:])
	case ferryv1.SyncLevel_SYNC_LEVEL_CHECKSUM:
		if len(f.Sum) != sha256.Size {
			return Digest{}, fmt.Errorf("sync level %v needs a %d-byte SHA-256, got %d bytes", level, sha256.Size, len(f.Sum))
		}
		h.Write(size)
		h.Write(f.Sum)
	default:
		return Digest{}, fmt.Errorf("unknown sync level %v", level)
	}
	var d Digest
	copy(d[:], h.Sum(nil))
	return d, nil
}

// Held appends f's digests at level to b: at the CHECKSUM level its SIZE
// digest as well, so that the sender hashes only files whose size
// matches.
func Held(b []byte, level ferryv1.SyncLevel, f File) ([]byte, error) {
	if level == ferryv1.SyncLevel_SYNC_LEVEL_CHECKSUM {
		d, err := Of(ferryv1.SyncLevel_SYNC_LEVEL_SIZE, f)
		if err != nil {
			return b, err
		}
		b = append(b, d[:]...)
	}
	d, err := Of(level, f)
	if err != nil {
		return b, err
	}
	return append(b, d[:]...), nil
}

// Set is the digests a sender received.
type Set map[Digest]struct{}

// ErrTooMany is Add's error past MaxDigests.
var ErrTooMany = fmt.Errorf("more than %d digests", MaxDigests)

// Add adds the concatenated digests in b: a length that is not a
// multiple of Size is an error, and so is a set that would pass
// MaxDigests (ErrTooMany).
func (s Set) Add(b []byte) error {
	if len(b)%Size != 0 {
		return fmt.Errorf("%d bytes of digests: not a multiple of %d", len(b), Size)
	}
	if len(s)+len(b)/Size > MaxDigests {
		return ErrTooMany
	}
	for ; len(b) > 0; b = b[Size:] {
		s[Digest(b[:Size])] = struct{}{}
	}
	return nil
}

// Has reports whether d is in the set.
func (s Set) Has(d Digest) bool {
	_, ok := s[d]
	return ok
}
