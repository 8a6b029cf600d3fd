package treesync

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
)

// TestOfFollowsTheProto builds each level's digest byte by byte as
// SyncHeld in sync.proto spells it, and compares.
func TestOfFollowsTheProto(t *testing.T) {
	sum := sha256.Sum256([]byte("content"))
	f := File{Path: "dir/f", Size: 0x0102030405060708, MTime: time.Unix(0x11223344, 0x05667788), Sum: sum[:]}
	size := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	facts := map[ferryv1.SyncLevel][]byte{
		ferryv1.SyncLevel_SYNC_LEVEL_EXISTS:   nil,
		ferryv1.SyncLevel_SYNC_LEVEL_SIZE:     size,
		ferryv1.SyncLevel_SYNC_LEVEL_MTIME:    append(append([]byte{}, size...), 0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44, 0x05, 0x66, 0x77, 0x88),
		ferryv1.SyncLevel_SYNC_LEVEL_CHECKSUM: append(append([]byte{}, size...), sum[:]...),
	}
	seen := map[Digest]bool{}
	for level, fact := range facts {
		msg := append(append([]byte{byte(level)}, "dir/f\x00"...), fact...)
		want := sha256.Sum256(msg)
		got, err := Of(level, f)
		if err != nil || !bytes.Equal(got[:], want[:Size]) {
			t.Errorf("Of(%v) = %x, %v; want %x", level, got, err, want[:Size])
		}
		seen[got] = true
	}
	if len(seen) != len(facts) {
		t.Errorf("the levels' digests of one file are not all different")
	}
	if _, err := Of(ferryv1.SyncLevel_SYNC_LEVEL_CHECKSUM, File{Path: "f"}); err == nil {
		t.Errorf("Of(CHECKSUM) without a sum: no error")
	}
	if _, err := Of(ferryv1.SyncLevel_SYNC_LEVEL_UNSPECIFIED, f); err == nil {
		t.Errorf("Of(UNSPECIFIED): no error")
	}
}

func TestHeldAndSet(t *testing.T) {
	sum := sha256.Sum256(nil)
	f := File{Path: "f", Size: 3, Sum: sum[:]}
	b, err := Held(nil, ferryv1.SyncLevel_SYNC_LEVEL_CHECKSUM, f)
	if err != nil || len(b) != 2*Size {
		t.Fatalf("Held(CHECKSUM) = %d bytes, %v; want the SIZE and the CHECKSUM digests", len(b), err)
	}
	s := Set{}
	if err := s.Add(b); err != nil {
		t.Fatal(err)
	}
	for _, level := range []ferryv1.SyncLevel{ferryv1.SyncLevel_SYNC_LEVEL_SIZE, ferryv1.SyncLevel_SYNC_LEVEL_CHECKSUM} {
		if d, _ := Of(level, f); !s.Has(d) {
			t.Errorf("the set lacks the %v digest Held sent", level)
		}
	}
	if d, _ := Of(ferryv1.SyncLevel_SYNC_LEVEL_SIZE, File{Path: "f", Size: 4}); s.Has(d) {
		t.Errorf("the set has a digest of another size")
	}
	if err := s.Add(make([]byte, Size+1)); err == nil {
		t.Errorf("Add(17 bytes): no error")
	}
	if err := s.Add(make([]byte, MaxDigests*Size)); !errors.Is(err, ErrTooMany) {
		t.Errorf("Add past MaxDigests = %v, want ErrTooMany", err)
	}
}
