package service_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/service"
	"github.com/ferrydev/ferry/transfer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errorTree builds, in a fresh directory:
//
//	secret              outside the root
//	root/file.txt       10 bytes
//	root/abs-link       -> <dir>/secret (absolute, outside)
//	root/sub/rel-link   -> ../../secret (relative, outside)
//	root/sub/in-link    -> ../file.txt  (relative, inside)
//
// and returns the directory and the root. Both escaping links name a file
// that exists, so a confinement bug would serve it rather than fail.
func errorTree(t *testing.T) (dir, root string) {
	t.Helper()
	dir = t.TempDir()
	root = filepath.Join(dir, "root")
	writeFile(t, dir, "secret", 16)
	writeFile(t, root, "file.txt", 10)
	if err := os.Mkdir(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"abs-link":     filepath.Join(dir, "secret"),
		"sub/rel-link": "../../secret",
		"sub/in-link":  "../file.txt",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir, root
}

func TestErrorCodes(t *testing.T) {
	dir, root := errorTree(t)
	n := startNode(t, service.Config{Root: root, Data: transfer.Config{Disable: []transfer.Strategy{transfer.Splice}}})
	tests := []struct {
		name     string
		req      *ferryv1.DownloadRequest
		download codes.Code
		stat     codes.Code // StatFile of req.Path, which ignores the rest
	}{
		{"regular file", &ferryv1.DownloadRequest{Path: "file.txt"}, codes.OK, codes.OK},
		{"symlink inside", &ferryv1.DownloadRequest{Path: "sub/in-link"}, codes.OK, codes.OK},
		{"missing", &ferryv1.DownloadRequest{Path: "nope.txt"}, codes.NotFound, codes.NotFound},
		{"missing parent", &ferryv1.DownloadRequest{Path: "nodir/x"}, codes.NotFound, codes.NotFound},
		{"file as a directory", &ferryv1.DownloadRequest{Path: "file.txt/x"}, codes.NotFound, codes.NotFound},
		{"dot-dot", &ferryv1.DownloadRequest{Path: "../x"}, codes.InvalidArgument, codes.InvalidArgument},
		{"absolute", &ferryv1.DownloadRequest{Path: "/etc/passwd"}, codes.InvalidArgument, codes.InvalidArgument},
		{"dot-dot after a name", &ferryv1.DownloadRequest{Path: "a/../../x"}, codes.InvalidArgument, codes.InvalidArgument},
		{"empty", &ferryv1.DownloadRequest{Path: ""}, codes.InvalidArgument, codes.InvalidArgument},
		{"NUL byte", &ferryv1.DownloadRequest{Path: "file.txt\x00"}, codes.InvalidArgument, codes.InvalidArgument},
		{"absolute symlink out", &ferryv1.DownloadRequest{Path: "abs-link"}, codes.PermissionDenied, codes.PermissionDenied},
		{"relative symlink out", &ferryv1.DownloadRequest{Path: "sub/rel-link"}, codes.PermissionDenied, codes.PermissionDenied},
		{"directory", &ferryv1.DownloadRequest{Path: "sub"}, codes.FailedPrecondition, codes.OK},
		{"root", &ferryv1.DownloadRequest{Path: "."}, codes.FailedPrecondition, codes.OK},
		{"offset at the end", &ferryv1.DownloadRequest{Path: "file.txt", Offset: 10}, codes.OK, codes.OK},
		{"offset past the end", &ferryv1.DownloadRequest{Path: "file.txt", Offset: 11}, codes.OutOfRange, codes.OK},
		{"offset past int64", &ferryv1.DownloadRequest{Path: "file.txt", Offset: math.MaxUint64}, codes.OutOfRange, codes.OK},
		{"unsupported strategy", &ferryv1.DownloadRequest{Path: "file.txt", Strategy: ferryv1.Strategy_STRATEGY_SPLICE}, codes.FailedPrecondition, codes.OK},
		{"undefined strategy", &ferryv1.DownloadRequest{Path: "file.txt", Strategy: ferryv1.Strategy(99)}, codes.InvalidArgument, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := downloadErr(t, n.api(), tt.req)
			if got := status.Code(err); got != tt.download {
				t.Errorf("Download(%q, offset %d, %v) = %v, want %v", tt.req.Path, tt.req.Offset, tt.req.Strategy, err, tt.download)
			}
			checkNoLeak(t, "Download", err, dir)
			_, err = n.client.Stat(testCtx(t), tt.req.Path)
			if got := status.Code(err); got != tt.stat {
				t.Errorf("StatFile(%q) = %v, want %v", tt.req.Path, err, tt.stat)
			}
			checkNoLeak(t, "StatFile", err, dir)
		})
	}
}

// downloadErr runs a Download up to its first message and returns the
// error; nil means the server made an offer.
func downloadErr(t *testing.T, api ferryv1.TransferServiceClient, req *ferryv1.DownloadRequest) error {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel() // an offer is abandoned: the server revokes its ticket
	stream, err := api.Download(ctx, req)
	if err != nil {
		return err
	}
	msg, err := stream.Recv()
	if err == nil && msg.GetOffer() == nil {
		t.Errorf("Download(%q): first message = %v, want an offer", req.Path, msg)
	}
	return err
}

// checkNoLeak fails if an error message shows a host path or the C
// library's errno text.
func checkNoLeak(t *testing.T, call string, err error, hostDir string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := status.Convert(err).Message()
	forbidden := []string{
		hostDir,
		"no such file or directory",
		"not a directory",
		"invalid cross-device link",
		"too many levels of symbolic links",
		"errno",
	}
	for _, f := range forbidden {
		if strings.Contains(msg, f) {
			t.Errorf("%s message %q contains %q", call, msg, f)
		}
	}
}

func TestUnsupportedStrategyListsSupported(t *testing.T) {
	n := startNode(t, service.Config{Data: transfer.Config{Disable: []transfer.Strategy{transfer.Splice}}})
	writeFile(t, n.root, "f", 1)
	caps := n.caps(t)
	for _, s := range caps.Strategies {
		if s == ferryv1.Strategy_STRATEGY_SPLICE {
			t.Fatalf("GetCapabilities().Strategies = %v, want SPLICE disabled", caps.Strategies)
		}
	}
	err := downloadErr(t, n.api(), &ferryv1.DownloadRequest{Path: "f", Strategy: ferryv1.Strategy_STRATEGY_SPLICE})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Download(SPLICE) = %v, want %v", err, codes.FailedPrecondition)
	}
	msg := status.Convert(err).Message()
	for _, s := range caps.Strategies {
		name := strings.TrimPrefix(s.String(), "STRATEGY_")
		if !strings.Contains(msg, name) {
			t.Errorf("Download(SPLICE) message %q does not list supported strategy %s", msg, name)
		}
	}
}
