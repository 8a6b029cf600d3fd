package integration

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

// TestGrpcurl drives ferryd with the real grpcurl and no .proto files, as
// an operator would: everything it learns comes from server reflection.
func TestGrpcurl(t *testing.T) {
	grpcurl := toolPath(t, grpcurlTool)
	root := t.TempDir()
	writeRandom(t, root, "f.bin", 12345)
	d := startFerryd(t, root)
	call := func(t *testing.T, args ...string) result {
		t.Helper()
		return run(t, os.Environ(), grpcurl, append([]string{"-plaintext"}, args...)...)
	}
	ok := func(t *testing.T, args ...string) string {
		t.Helper()
		r := call(t, args...)
		if r.code != 0 {
			t.Fatalf("grpcurl %q: exit %d\n%s", args, r.code, r.stderr)
		}
		return r.stdout
	}

	t.Run("list", func(t *testing.T) {
		got := strings.Fields(ok(t, d.Addr, "list"))
		for _, want := range []string{serviceName, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
			if !slices.Contains(got, want) {
				t.Errorf("grpcurl list = %q, want it to include %s", got, want)
			}
		}
	})
	t.Run("describe", func(t *testing.T) {
		out := ok(t, d.Addr, "describe", serviceName)
		for _, want := range []string{"service TransferService", "rpc Download", "returns ( stream .ferry.v1.DownloadResponse )", "rpc GetCapabilities", "rpc StatFile"} {
			if !strings.Contains(out, want) {
				t.Errorf("grpcurl describe %s lacks %q:\n%s", serviceName, want, out)
			}
		}
	})
	t.Run("describe prints the comments", func(t *testing.T) {
		out := ok(t, d.Addr, "describe", "ferry.v1.PullRequest")
		for _, want := range []string{
			"// PullRequest asks this node to fetch a file",
			"// The peer ferryd's control-plane address (host:port).",
			"string peer = 1;",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("grpcurl describe ferry.v1.PullRequest lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("GetCapabilities", func(t *testing.T) {
		out := ok(t, "-d", "{}", d.Addr, serviceName+"/GetCapabilities")
		for _, want := range []string{`"STRATEGY_READ_WRITE"`, `"dataAddress": "` + d.DataAddr + `"`} {
			if !strings.Contains(out, want) {
				t.Errorf("grpcurl GetCapabilities lacks %s:\n%s", want, out)
			}
		}
		want, err := ferryv1.NewTransferServiceClient(d.Conn()).GetCapabilities(context.Background(), &ferryv1.GetCapabilitiesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		sameProto(t, "grpcurl GetCapabilities", out, &ferryv1.GetCapabilitiesResponse{}, want)
	})
	t.Run("StatFile", func(t *testing.T) {
		out := ok(t, "-d", `{"path": "f.bin"}`, d.Addr, serviceName+"/StatFile")
		want, err := ferryv1.NewTransferServiceClient(d.Conn()).StatFile(context.Background(), &ferryv1.StatFileRequest{Path: "f.bin"})
		if err != nil {
			t.Fatal(err)
		}
		if want.GetSize() != 12345 {
			t.Errorf("StatFile(f.bin).Size = %d, want 12345", want.GetSize())
		}
		sameProto(t, "grpcurl StatFile", out, &ferryv1.StatFileResponse{}, want)
	})
	t.Run("StatFile-errors", func(t *testing.T) {
		for path, code := range map[string]string{"../etc/passwd": "InvalidArgument", "missing": "NotFound"} {
			r := call(t, "-d", `{"path": "`+path+`"}`, d.Addr, serviceName+"/StatFile")
			if r.code == 0 || !strings.Contains(r.stderr, "Code: "+code) || strings.Contains(r.stderr, root) {
				t.Errorf("grpcurl StatFile(%q): exit %d, stderr %q; want non-zero, Code: %s, no host path", path, r.code, r.stderr, code)
			}
		}
	})
	t.Run("health", func(t *testing.T) {
		for _, body := range []string{"{}", `{"service": "` + serviceName + `"}`} {
			out := ok(t, "-d", body, d.Addr, "grpc.health.v1.Health/Check")
			if !strings.Contains(out, `"status": "SERVING"`) {
				t.Errorf("grpcurl Health/Check %s = %s, want SERVING", body, out)
			}
		}
	})
}

// sameProto parses grpcurl's JSON into got and compares it with want.
func sameProto(t *testing.T, what, out string, got, want proto.Message) {
	t.Helper()
	if err := protojson.Unmarshal([]byte(out), got); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, out)
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("%s differs from the Go client's answer (-go +grpcurl):\n%s", what, diff)
	}
}
