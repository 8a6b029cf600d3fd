package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io/fs"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/fsroot"
)

const (
	defaultPageSize = 1000
	maxPageSize     = 10000
	// maxListings is how many ListFiles calls read directories at once,
	// server-wide; more wait for a place. Each holds at most about two
	// pages' worth of names per level and a descriptor per level
	// (fsroot.MaxListDepth), so this bounds what listings as a whole hold.
	maxListings = 8
)

// ListFiles lists a directory beneath the root a page at a time. Pages are
// stateless: the token holds the last path returned and a digest of the
// listing it belongs to, and the next page starts after that path, so a
// tree that changes between pages is seen as it is then, never the same
// path twice. Each page re-reads the directories on its way (see
// fsroot.Root.List for the cost).
func (s *transferService) ListFiles(ctx context.Context, req *ferryv1.ListFilesRequest) (*ferryv1.ListFilesResponse, error) {
	select { // wait for a place: a listing takes milliseconds
	case s.listings <- struct{}{}:
		defer func() { <-s.listings }()
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	size := int(req.GetPageSize())
	switch {
	case size == 0:
		size = defaultPageSize
	case size > maxPageSize:
		return nil, status.Errorf(codes.InvalidArgument, "page_size %d: at most %d", size, maxPageSize)
	}
	name := req.GetPath()
	if name == "" {
		name = "."
	}
	clean, err := fsroot.CleanPath(name)
	if err != nil {
		return nil, s.statusOf(err, name)
	}
	after, err := pageStart(req.GetPageToken(), clean, req.GetRecursive())
	if err != nil {
		return nil, err
	}
	entries, err := s.root.List(clean, req.GetRecursive(), after, size+1)
	if err != nil {
		return nil, s.statusOf(err, clean)
	}
	resp := &ferryv1.ListFilesResponse{}
	if len(entries) > size {
		entries = entries[:size]
		resp.NextPageToken = pageToken(entries[size-1].Path, clean, req.GetRecursive())
	}
	resp.Entries = make([]*ferryv1.FileEntry, len(entries))
	for i, e := range entries {
		resp.Entries[i] = fileEntry(e)
	}
	return resp, nil
}

// fileEntry converts a listed entry to its API message.
func fileEntry(e fsroot.DirEntry) *ferryv1.FileEntry {
	fe := &ferryv1.FileEntry{
		Path: e.Path, Mode: uint32(e.Mode), ModifyTime: timestamppb.New(e.ModTime),
		SymlinkTarget: e.Target, Type: ferryv1.FileType_FILE_TYPE_OTHER,
	}
	switch {
	case e.Mode.IsRegular():
		fe.Type, fe.Size = ferryv1.FileType_FILE_TYPE_REGULAR, uint64(e.Size)
	case e.Mode.IsDir():
		fe.Type = ferryv1.FileType_FILE_TYPE_DIRECTORY
	case e.Mode.Type() == fs.ModeSymlink:
		fe.Type = ferryv1.FileType_FILE_TYPE_SYMLINK
	}
	return fe
}

// listingDigest names one listing (a path, recursive or not): a token
// carries it so that it is refused by any other listing.
func listingDigest(clean string, recursive bool) []byte {
	sum := sha256.Sum256([]byte("ferry.v1.ListFiles\x00" + clean + "\x00" + strconv.FormatBool(recursive)))
	return sum[:8]
}

// pageToken is the opaque token of the page that follows last.
func pageToken(last, clean string, recursive bool) string {
	return base64.RawURLEncoding.EncodeToString(append(listingDigest(clean, recursive), last...))
}

// pageStart decodes a page token into the path the page starts after; ""
// for the first page.
func pageStart(token, clean string, recursive bool) (string, error) {
	if token == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) <= 8 {
		return "", status.Error(codes.InvalidArgument, "page_token: not a token ListFiles returned")
	}
	if !bytes.Equal(raw[:8], listingDigest(clean, recursive)) {
		return "", status.Error(codes.InvalidArgument,
			"page_token: it belongs to another listing; path and recursive must stay the same from page to page")
	}
	return string(raw[8:]), nil
}
