package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestPullRPC drives a node-to-node pull as docs/grpcurl.md shows it: the real
// grpcurl asks ferryd B to pull a file from ferryd A, and the file lands
// in B's root byte for byte.
func TestPullRPC(t *testing.T) {
	grpcurl := toolPath(t, grpcurlTool)
	rootA, rootB := t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(rootA, "models"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(rootB, "cache"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := writeRandom(t, filepath.Join(rootA, "models"), "m.bin", 8<<20+5)
	a, b := startFerryd(t, rootA), startFerryd(t, rootB, "--allow-pull")

	body := `{"peer": "` + a.Addr + `", "path": "models/m.bin", "destination": "cache/m.bin", "strategy": "STRATEGY_SPLICE"}`
	r := run(t, os.Environ(), grpcurl, "-plaintext", "-d", body, b.Addr, serviceName+"/Pull")
	if r.code != 0 {
		t.Fatalf("grpcurl Pull: exit %d\n%s", r.code, r.stderr)
	}
	msgs := pullMessages(t, r.stdout)
	report := msgs[len(msgs)-1].GetReport()
	if report == nil {
		t.Fatalf("grpcurl Pull: last message is not a report:\n%s", r.stdout)
	}
	if s := report.GetSender().GetStrategy(); s != ferryv1.Strategy_STRATEGY_SPLICE {
		t.Errorf("grpcurl Pull: report.sender.strategy = %v, want STRATEGY_SPLICE", s)
	}
	if n := report.GetReceiver().GetBytes(); n != uint64(len(want)) {
		t.Errorf("grpcurl Pull: report.receiver.bytes = %d, want %d", n, len(want))
	}
	got, err := os.ReadFile(filepath.Join(rootB, "cache", "m.bin"))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("B's cache/m.bin holds %d bytes (err %v), want the %d bytes of A's models/m.bin", len(got), err, len(want))
	}

	again := run(t, os.Environ(), grpcurl, "-plaintext", "-d", body, b.Addr, serviceName+"/Pull")
	if again.code == 0 || !strings.Contains(again.stderr, "Code: AlreadyExists") {
		t.Errorf("grpcurl Pull onto an existing file: exit %d, stderr %q; want Code: AlreadyExists", again.code, again.stderr)
	}
	missing := strings.NewReplacer("models/m.bin", "models/nope", "cache/m.bin", "cache/nope").Replace(body)
	r = run(t, os.Environ(), grpcurl, "-plaintext", "-d", missing, b.Addr, serviceName+"/Pull")
	if r.code == 0 || !strings.Contains(r.stderr, "Code: NotFound") || !strings.Contains(r.stderr, "Message: peer: ") {
		t.Errorf("grpcurl Pull of a missing file: exit %d, stderr %q; want Code: NotFound, Message: peer: ...", r.code, r.stderr)
	}
	if _, err := os.Lstat(filepath.Join(rootB, "cache", "nope.partial")); err == nil {
		t.Errorf("a failed Pull left cache/nope.partial behind")
	}
}

// TestPullPeerToken: a node pulls from a peer that requires a bearer
// token with the token its own --peer-token-file names; the caller's call
// carries none toward the peer.
func TestPullPeerToken(t *testing.T) {
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte(rand.Text()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rootA, rootB := t.TempDir(), t.TempDir()
	want := writeRandom(t, rootA, "f.bin", 123457)
	a := startFerryd(t, rootA, "--auth-token-file", token)
	req := &ferryv1.PullRequest{Peer: a.Addr, Path: "f.bin", Destination: "f.bin"}
	bare := startFerryd(t, t.TempDir(), "--allow-pull")
	if _, err := pullOnce(t, bare, req); err == nil || !strings.Contains(err.Error(), "Unauthenticated") {
		t.Errorf("Pull from a token-protected peer without --peer-token-file = %v, want Unauthenticated", err)
	}
	b := startFerryd(t, rootB, "--allow-pull", "--peer-token-file", token)
	if _, err := pullOnce(t, b, req); err != nil {
		t.Fatalf("Pull with --peer-token-file = %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(rootB, "f.bin")); !bytes.Equal(got, want) {
		t.Errorf("pulled file differs from the source")
	}
}

// pullOnce calls Pull on d through the test's connection and drains it.
func pullOnce(t *testing.T, d *ferryd, req *ferryv1.PullRequest) (*ferryv1.Report, error) {
	t.Helper()
	stream, err := ferryv1.NewTransferServiceClient(d.Conn()).Pull(t.Context(), req)
	if err != nil {
		return nil, err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		if r := msg.GetReport(); r != nil {
			return r, nil
		}
	}
}

// pullMessages parses grpcurl's stream output: one JSON object per message.
func pullMessages(t *testing.T, out string) []*ferryv1.PullResponse {
	t.Helper()
	var msgs []*ferryv1.PullResponse
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("grpcurl Pull output is not a JSON stream: %v\n%s", err, out)
		}
		m := &ferryv1.PullResponse{}
		if err := protojson.Unmarshal(raw, m); err != nil {
			t.Fatalf("grpcurl Pull message %s: %v", raw, err)
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		t.Fatalf("grpcurl Pull printed no messages")
	}
	return msgs
}

// TestPullAllowPeer drives ferryd's --allow-peer with the real grpcurl: a
// node started with --allow-pull alone says at start-up that it pulls
// from loopback only; one whose FERRY_ALLOW_PEER admits no loopback
// address refuses a loopback peer with PermissionDenied, and one given a
// closed port answers the same generic Unavailable as for any peer it
// cannot reach as a ferryd.
func TestPullAllowPeer(t *testing.T) {
	grpcurl := toolPath(t, grpcurlTool)
	rootA := t.TempDir()
	writeRandom(t, rootA, "f.bin", 4096)
	a := startFerryd(t, rootA, "--auto=fixed")
	open := startFerryd(t, t.TempDir(), "--allow-pull", "--auto=fixed")
	if !strings.Contains(open.Log.String(), "INSECURE: --allow-pull without --allow-peer") {
		t.Errorf("ferryd --allow-pull without --allow-peer did not warn:\n%s", open.Log)
	}
	plain := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	listed := startFerrydEnv(t, t.TempDir(), plain, []string{"FERRY_ALLOW_PEER=10.0.0.0/8,*.ferry-headless.ns.svc.cluster.local"},
		"--allow-pull", "--auto=fixed")

	body := `{"peer": "` + a.Addr + `", "path": "f.bin", "destination": "f.bin"}`
	r := run(t, os.Environ(), grpcurl, "-plaintext", "-d", body, listed.Addr, serviceName+"/Pull")
	if r.code == 0 || !strings.Contains(r.stderr, "Code: PermissionDenied") || !strings.Contains(r.stderr, "--allow-peer") {
		t.Errorf("grpcurl Pull from an unlisted peer: exit %d, stderr %q; want PermissionDenied naming --allow-peer", r.code, r.stderr)
	}
	for _, peer := range []string{"unix:/tmp/ferry.sock", "unix-abstract:ferry"} {
		body := `{"peer": "` + peer + `", "path": "f.bin", "destination": "f.bin"}`
		if r := run(t, os.Environ(), grpcurl, "-plaintext", "-d", body, open.Addr, serviceName+"/Pull"); !strings.Contains(r.stderr, "Code: InvalidArgument") {
			t.Errorf("grpcurl Pull from peer %q: exit %d, stderr %q; want InvalidArgument", peer, r.code, r.stderr)
		}
	}
	closed := a.Addr
	a.Stop(t)
	body = `{"peer": "` + closed + `", "path": "f.bin", "destination": "f.bin"}`
	r = run(t, os.Environ(), grpcurl, "-plaintext", "-d", body, open.Addr, serviceName+"/Pull")
	if want := `Message: peer "` + closed + `" could not be reached as a ferryd`; !strings.Contains(r.stderr, "Code: Unavailable") || !strings.Contains(r.stderr, want) {
		t.Errorf("grpcurl Pull from a closed port: exit %d, stderr %q; want Unavailable, %s", r.code, r.stderr, want)
	}
}
