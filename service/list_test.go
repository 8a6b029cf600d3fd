package service_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/service"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// listTree makes a tree whose lexical order differs from a depth-first
// walk ("a-1.txt" sorts between "a" and "a/x.txt"), with symlinks inside
// and out of the root.
func listTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	writeFile(t, root, "a/x.txt", 3)
	writeFile(t, root, "a/y/z.bin", 1000)
	writeFile(t, root, "a-1.txt", 10)
	writeFile(t, root, "b.txt", 20)
	for link, target := range map[string]string{"link": "a/x.txt", "dirlink": "a", "out": "/etc"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func paths(entries []*ferryv1.FileEntry) []string {
	var ps []string
	for _, e := range entries {
		ps = append(ps, e.GetPath())
	}
	return ps
}

// listAll follows a listing's pages to the end.
func listAll(t *testing.T, n *testNode, req *ferryv1.ListFilesRequest) (pages [][]string) {
	t.Helper()
	for {
		resp, err := n.api().ListFiles(testCtx(t), req)
		if err != nil {
			t.Fatalf("ListFiles(%v) = %v", req, err)
		}
		pages = append(pages, paths(resp.GetEntries()))
		if resp.GetNextPageToken() == "" {
			return pages
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func TestListFiles(t *testing.T) {
	n := startNode(t, service.Config{Root: listTree(t)})
	for _, tc := range []struct {
		path      string
		recursive bool
		want      []string
	}{
		{"", false, []string{"a", "a-1.txt", "b.txt", "dirlink", "link", "out"}},
		{".", true, []string{"a", "a-1.txt", "a/x.txt", "a/y", "a/y/z.bin", "b.txt", "dirlink", "link", "out"}},
		{"a", false, []string{"a/x.txt", "a/y"}},
		{"a/", true, []string{"a/x.txt", "a/y", "a/y/z.bin"}},
		{"dirlink", false, []string{"dirlink/x.txt", "dirlink/y"}}, // the named path may be a symlink beneath the root
	} {
		pages := listAll(t, n, &ferryv1.ListFilesRequest{Path: tc.path, Recursive: tc.recursive})
		if len(pages) != 1 || !cmp.Equal(pages[0], tc.want) {
			t.Errorf("ListFiles(%q, recursive %v) = %q, want one page %q", tc.path, tc.recursive, pages, tc.want)
		}
	}
}

func TestListFilesEntries(t *testing.T) {
	root := listTree(t)
	n := startNode(t, service.Config{Root: root})
	resp, err := n.api().ListFiles(testCtx(t), &ferryv1.ListFilesRequest{Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]*ferryv1.FileEntry{}
	for _, e := range resp.GetEntries() {
		byPath[e.GetPath()] = e
	}
	for _, tc := range []struct {
		path   string
		typ    ferryv1.FileType
		size   uint64
		target string
	}{
		{"a", ferryv1.FileType_FILE_TYPE_DIRECTORY, 0, ""},
		{"a/y/z.bin", ferryv1.FileType_FILE_TYPE_REGULAR, 1000, ""},
		{"link", ferryv1.FileType_FILE_TYPE_SYMLINK, 0, "a/x.txt"},
		{"dirlink", ferryv1.FileType_FILE_TYPE_SYMLINK, 0, "a"},
		{"out", ferryv1.FileType_FILE_TYPE_SYMLINK, 0, "/etc"},
	} {
		e := byPath[tc.path]
		if e.GetType() != tc.typ || e.GetSize() != tc.size || e.GetSymlinkTarget() != tc.target {
			t.Errorf("entry %q = %v, want type %v, size %d, target %q", tc.path, e, tc.typ, tc.size, tc.target)
		}
		fi, err := os.Lstat(filepath.Join(root, tc.path))
		if err != nil {
			t.Fatal(err)
		}
		if e.GetMode() != uint32(fi.Mode()) || !e.GetModifyTime().AsTime().Equal(fi.ModTime()) {
			t.Errorf("entry %q: mode %v, mtime %v; want %v, %v as Lstat says", tc.path, e.GetMode(), e.GetModifyTime().AsTime(), fi.Mode(), fi.ModTime())
		}
	}
}

// TestListFilesPages: every page size gives the same listing, cut into
// pages of that size, the last one without a token.
func TestListFilesPages(t *testing.T) {
	n := startNode(t, service.Config{Root: listTree(t)})
	full := []string{"a", "a-1.txt", "a/x.txt", "a/y", "a/y/z.bin", "b.txt", "dirlink", "link", "out"}
	for size := 1; size <= len(full)+1; size++ {
		pages := listAll(t, n, &ferryv1.ListFilesRequest{Recursive: true, PageSize: uint32(size)})
		var got []string
		for i, p := range pages {
			if i < len(pages)-1 && len(p) != size || len(p) > size {
				t.Errorf("page_size %d: page %d holds %d entries", size, i, len(p))
			}
			got = append(got, p...)
		}
		if !cmp.Equal(got, full) {
			t.Errorf("page_size %d: pages %q, want %q in all", size, pages, full)
		}
		if wantPages := max(1, (len(full)+size-1)/size); len(pages) != wantPages {
			t.Errorf("page_size %d: %d pages, want %d", size, len(pages), wantPages)
		}
	}
}

func TestListFilesLargeDirectory(t *testing.T) {
	root := t.TempDir()
	var want []string
	for i := range 2500 {
		name := fmt.Sprintf("f%05d", i)
		if err := os.WriteFile(filepath.Join(root, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		want = append(want, name)
	}
	n := startNode(t, service.Config{Root: root})
	pages := listAll(t, n, &ferryv1.ListFilesRequest{})
	if len(pages) != 3 || len(pages[0]) != 1000 || len(pages[2]) != 500 {
		t.Errorf("2500 entries with the default page size came in pages of %v, want 1000, 1000, 500", lens(pages))
	}
	if got := slices.Concat(pages...); !cmp.Equal(got, want) {
		t.Errorf("pages hold %d entries, not the 2500 in order", len(got))
	}
}

func lens(pages [][]string) []int {
	var ls []int
	for _, p := range pages {
		ls = append(ls, len(p))
	}
	return ls
}

func TestListFilesErrors(t *testing.T) {
	n := startNode(t, service.Config{Root: listTree(t)})
	first, err := n.api().ListFiles(testCtx(t), &ferryv1.ListFilesRequest{Recursive: true, PageSize: 2})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("ListFiles(page_size 2) = %v, %v; want a next page", first, err)
	}
	token := first.GetNextPageToken()
	for _, tc := range []struct {
		req  *ferryv1.ListFilesRequest
		code codes.Code
	}{
		{&ferryv1.ListFilesRequest{Path: "../x"}, codes.InvalidArgument},
		{&ferryv1.ListFilesRequest{Path: "/etc"}, codes.InvalidArgument},
		{&ferryv1.ListFilesRequest{Path: "out"}, codes.PermissionDenied},
		{&ferryv1.ListFilesRequest{Path: "missing"}, codes.NotFound},
		{&ferryv1.ListFilesRequest{Path: "b.txt"}, codes.FailedPrecondition},
		{&ferryv1.ListFilesRequest{Path: "link"}, codes.FailedPrecondition}, // a symlink to a file
		{&ferryv1.ListFilesRequest{PageSize: 10001}, codes.InvalidArgument},
		{&ferryv1.ListFilesRequest{Recursive: false, PageToken: token}, codes.InvalidArgument},
		{&ferryv1.ListFilesRequest{Path: "a", Recursive: true, PageToken: token}, codes.InvalidArgument},
		{&ferryv1.ListFilesRequest{Recursive: true, PageToken: "not a token!"}, codes.InvalidArgument},
		{&ferryv1.ListFilesRequest{PageSize: 10000}, codes.OK},
	} {
		_, err := n.api().ListFiles(testCtx(t), tc.req)
		if status.Code(err) != tc.code {
			t.Errorf("ListFiles(%v) = %v, want %v", tc.req, err, tc.code)
		}
	}
}

// TestListFilesChangesBetweenPages: a page starts after the last path of
// the one before, even when that path is gone: entries added before it
// are not listed, entries added after it are, and none comes twice.
func TestListFilesChangesBetweenPages(t *testing.T) {
	root := listTree(t)
	n := startNode(t, service.Config{Root: root})
	first, err := n.api().ListFiles(testCtx(t), &ferryv1.ListFilesRequest{Recursive: true, PageSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := paths(first.GetEntries()), []string{"a", "a-1.txt", "a/x.txt"}; !cmp.Equal(got, want) {
		t.Fatalf("first page = %q, want %q", got, want)
	}
	if err := os.Remove(filepath.Join(root, "a/x.txt")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, root, "a/w.txt", 1)
	writeFile(t, root, "a/y/zz.bin", 1)
	rest := listAll(t, n, &ferryv1.ListFilesRequest{Recursive: true, PageSize: 3, PageToken: first.GetNextPageToken()})
	want := []string{"a/y", "a/y/z.bin", "a/y/zz.bin", "b.txt", "dirlink", "link", "out"}
	if got := slices.Concat(rest...); !cmp.Equal(got, want) {
		t.Errorf("pages after a change = %q, want %q", got, want)
	}
}
