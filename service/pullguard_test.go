package service_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/internal/testpki"
	"github.com/ferrydev/ferry/service"
)

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	accepts atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepts.Add(1)
	}
	return c, err
}

// listen opens a counting listener on network and address.
func listen(t *testing.T, network, address string) *countingListener {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &countingListener{Listener: ln}
}

// sink accepts connections on l and keeps what they send, as an internal
// service a hostile peer would point a node at.
func sink(t *testing.T, l *countingListener) func() []byte {
	var mu sync.Mutex
	var got []byte
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				b := make([]byte, 64)
				n, _ := c.Read(b)
				mu.Lock()
				got = append(got, b[:n]...)
				mu.Unlock()
			}()
		}
	}()
	return func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

// hostilePeer is a gRPC server posing as a ferryd: it says every path is
// a 4-byte file (or a directory holding one) and offers it at dataAddr,
// with a ticket of its choosing. It records the authorization headers it
// was sent.
type hostilePeer struct {
	ferryv1.UnimplementedTransferServiceServer
	dataAddr string
	dir      bool

	mu     sync.Mutex
	tokens []string
}

var hostileTicket = []byte("AUTH attacker-chosen 32 bytes...")

func (h *hostilePeer) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	h.mu.Lock()
	h.tokens = append(h.tokens, md.Get("authorization")...)
	h.mu.Unlock()
}

func (h *hostilePeer) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tokens
}

func (h *hostilePeer) offer() *ferryv1.Offer {
	return &ferryv1.Offer{TransferId: "1", DataAddress: h.dataAddr, Ticket: hostileTicket, Length: 4,
		Strategy: ferryv1.Strategy_STRATEGY_READ_WRITE}
}

func (h *hostilePeer) StatFile(ctx context.Context, req *ferryv1.StatFileRequest) (*ferryv1.StatFileResponse, error) {
	h.record(ctx)
	return &ferryv1.StatFileResponse{Path: req.GetPath(), Size: 4, IsDir: h.dir}, nil
}

func (h *hostilePeer) Download(req *ferryv1.DownloadRequest, stream grpc.ServerStreamingServer[ferryv1.DownloadResponse]) error {
	h.record(stream.Context())
	stream.Send(&ferryv1.DownloadResponse{Event: &ferryv1.DownloadResponse_Offer{Offer: h.offer()}})
	<-stream.Context().Done()
	return stream.Context().Err()
}

func (h *hostilePeer) DownloadTree(req *ferryv1.DownloadTreeRequest, stream grpc.ServerStreamingServer[ferryv1.DownloadTreeResponse]) error {
	h.record(stream.Context())
	stream.Send(&ferryv1.DownloadTreeResponse{Entries: []*ferryv1.TreeEntry{{
		File:  &ferryv1.FileEntry{Path: "f", Type: ferryv1.FileType_FILE_TYPE_REGULAR, Size: 4, Mode: 0o644},
		Offer: h.offer(),
	}}})
	<-stream.Context().Done()
	return stream.Context().Err()
}

// serveHostile runs h on a counting listener on 127.0.0.1.
func serveHostile(t *testing.T, h *hostilePeer) *countingListener {
	t.Helper()
	l := listen(t, "tcp", "127.0.0.1:0")
	s := grpc.NewServer()
	ferryv1.RegisterTransferServiceServer(s, h)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return l
}

// peerToken is the credentials a pulling node sends its peers.
func peerToken(t *testing.T) []grpc.DialOption {
	t.Helper()
	opts, err := client.Security{Token: "node-secret"}.DialOptions()
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

// TestPullPeerIsHostPort: a peer is host:port and nothing else. Before
// the check, "unix:/path" passed as host "unix" and port "/path", and
// gRPC dialled the Unix socket /path ("unix-abstract:name" the abstract
// one); ports out of range and names a resolver reads as addresses
// ("127.1") passed too.
func TestPullPeerIsHostPort(t *testing.T) {
	a := startNode(t, service.Config{})
	writeFile(t, a.root, "f.bin", 4096)
	b := startNode(t, service.Config{AllowPull: true})
	sock := filepath.Join(t.TempDir(), "s")
	unix := listen(t, "unix", sock)
	sink(t, unix)
	name := "ferry-test-" + strconv.Itoa(os.Getpid())
	abstract := listen(t, "unix", "@"+name)
	sink(t, abstract)
	for _, peer := range []string{
		"unix:" + sock, // split as host "unix", port "/tmp/.../s"
		"unix-abstract:" + name,
		"unix://" + sock + ":1",
		"dns:///" + a.Addr().String(),
		"passthrough:///" + a.Addr().String(),
		"127.0.0.1:0",
		"127.0.0.1:65536",
		"127.0.0.1:+80",
		"[::1%lo]:7070",
		"::1:7070",
		"127.1:7070",
		"under_score.example:7070",
		"-lead.example:7070",
	} {
		_, err := pull(t, b, &ferryv1.PullRequest{Peer: peer, Path: "f.bin", Destination: "x"})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("Pull(peer %q) = %v, want InvalidArgument", peer, err)
		}
	}
	if n := unix.accepts.Load() + abstract.accepts.Load(); n != 0 {
		t.Errorf("the Unix sockets accepted %d connections, want 0", n)
	}
	if _, err := os.Lstat(filepath.Join(b.root, "x")); err == nil {
		t.Error("a refused peer's file landed")
	}
}

// TestPullUnreachablePeerIsOneError: whatever answers (or does not) at
// the peer's address, a caller learns only that no ferryd could be
// reached there, and nothing about what is listening.
func TestPullUnreachablePeerIsOneError(t *testing.T) {
	b := startNode(t, service.Config{AllowPull: true})
	closed := listen(t, "tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	hangup := listen(t, "tcp", "127.0.0.1:0")
	go func() {
		for {
			c, err := hangup.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	web := listen(t, "tcp", "127.0.0.1:0")
	go http.Serve(web, http.NotFoundHandler())
	other := listen(t, "tcp", "127.0.0.1:0")
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go gs.Serve(other)
	t.Cleanup(gs.Stop)

	for _, peer := range []string{closedAddr, hangup.Addr().String(), web.Addr().String(), other.Addr().String()} {
		_, err := pull(t, b, &ferryv1.PullRequest{Peer: peer, Path: "f.bin", Destination: "x"})
		want := `peer "` + peer + `" could not be reached as a ferryd`
		if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != want {
			t.Errorf("Pull(peer %s) = %v, want Unavailable %q", peer, err, want)
		}
	}
}

// TestPullPeerAllowList: a peer the list does not admit is refused with
// PermissionDenied before anything is dialled, so it never sees the
// node's peer token; an admitted one is dialled and gets it.
func TestPullPeerAllowList(t *testing.T) {
	h := &hostilePeer{dataAddr: "127.0.0.1:1"}
	l := serveHostile(t, h)
	port := l.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		name  string
		allow []string
		peer  string
	}{
		{"outside a CIDR", []string{"10.0.0.0/8"}, l.Addr().String()},
		{"other address", []string{"127.0.0.2", "::1"}, l.Addr().String()},
		{"name resolving outside the CIDR", []string{"10.0.0.0/8"}, net.JoinHostPort("localhost", strconv.Itoa(port))},
		{"other name", []string{"ferry-0.ferry.ns.svc.cluster.local", "*.ferry.ns.svc.cluster.local"}, l.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startNode(t, service.Config{AllowPull: true, AllowPeers: tc.allow, PeerDialOptions: peerToken(t)})
			before := l.accepts.Load()
			_, err := pull(t, b, &ferryv1.PullRequest{Peer: tc.peer, Path: "f.bin", Destination: "x"})
			if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "--allow-peer") {
				t.Errorf("Pull(peer %s) with --allow-peer %v = %v, want PermissionDenied naming --allow-peer", tc.peer, tc.allow, err)
			}
			if n := l.accepts.Load() - before; n != 0 {
				t.Errorf("the refused peer accepted %d connections, want 0", n)
			}
			if got := h.seen(); len(got) != 0 {
				t.Errorf("the refused peer was sent %q", got)
			}
		})
	}
	// Admitted: dialled, sent the token (and refused its offer's data
	// address, 127.0.0.1:1, which is its own host: so allowed, and closed).
	b := startNode(t, service.Config{AllowPull: true, AllowPeers: []string{"127.0.0.0/8"}, PeerDialOptions: peerToken(t)})
	pull(t, b, &ferryv1.PullRequest{Peer: l.Addr().String(), Path: "f.bin", Destination: "x"})
	if got := h.seen(); len(got) == 0 || got[0] != "Bearer node-secret" {
		t.Errorf("an admitted peer was sent %q, want the node's token", got)
	}
}

// TestPullOfferOutsideAllowList: a hostile peer that is admitted cannot
// make the node connect elsewhere: an offer whose data address is not
// the peer's own host, not an address its connection went to and not
// admitted by the list is refused, for a file and for a tree, and the
// attacker's listener sees no connection and no ticket bytes.
func TestPullOfferOutsideAllowList(t *testing.T) {
	victim := listen(t, "tcp", "127.0.0.2:0") // "an internal service"
	got := sink(t, victim)
	for _, dir := range []bool{false, true} {
		h := &hostilePeer{dataAddr: victim.Addr().String(), dir: dir}
		l := serveHostile(t, h)
		b := startNode(t, service.Config{AllowPull: true, AllowPeers: []string{"127.0.0.1"}})
		_, err := pull(t, b, &ferryv1.PullRequest{Peer: l.Addr().String(), Path: "f", Destination: "x"})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("Pull (tree: %v) of an offer at %s = %v, want PermissionDenied", dir, victim.Addr(), err)
		}
	}
	time.Sleep(50 * time.Millisecond) // let a connection that did get through be counted
	if n := victim.accepts.Load(); n != 0 {
		t.Errorf("the address the offers named accepted %d connections (read %q), want 0", n, got())
	}
}

// TestPullPeerByListedName: a peer admitted by name (a headless
// Service's pod names) may offer its data channel at the address its
// name resolved to, as a pod advertising its own IP does.
func TestPullPeerByListedName(t *testing.T) {
	a := startNode(t, service.Config{})
	want := writeFile(t, a.root, "f.bin", 4096)
	b := startNode(t, service.Config{AllowPull: true, AllowPeers: []string{"localhost"}})
	peer := net.JoinHostPort("localhost", strconv.Itoa(a.Addr().(*net.TCPAddr).Port))
	if _, err := pull(t, b, &ferryv1.PullRequest{Peer: peer, Path: "f.bin", Destination: "f.bin"}); err != nil {
		t.Fatalf("Pull(peer %s) = %v", peer, err)
	}
	if got, _ := os.ReadFile(filepath.Join(b.root, "f.bin")); string(got) != string(want) {
		t.Error("the pulled file differs")
	}
}

// TestAllowPeersRejected: NewNode refuses a pattern it cannot read.
func TestAllowPeersRejected(t *testing.T) {
	for _, p := range []string{"", "10.0.0.0/33", "a.*.example", "**.example", "*", "unix:/x", "host:7070", "::ffff:10.0.0.0/104"} {
		if _, err := service.NewNode(service.Config{Root: t.TempDir(), Listen: "127.0.0.1:0", DataListen: "127.0.0.1:0",
			Logger: quiet, AllowPeers: []string{p}}); err == nil {
			t.Errorf("NewNode(AllowPeers %q) = nil error, want one", p)
		}
	}
}

// TestPullPeerTLS: the peer target the node builds (passthrough:///host:port,
// dialled by its own dialer) still checks the peer's certificate against
// the host, by IP and by name, and carries the token over TLS.
func TestPullPeerTLS(t *testing.T) {
	p := testpki.New(t, "ferry test CA")
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("peer-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := service.ServerTLS(p.ServerCert, p.ServerKey, "")
	if err != nil {
		t.Fatal(err)
	}
	a := startNode(t, service.Config{TLS: tlsCfg, AuthToken: "peer-secret"})
	writeFile(t, a.root, "f.bin", 4096)
	dial, err := client.Security{CAFile: p.CA, TokenFile: token}.DialOptions()
	if err != nil {
		t.Fatal(err)
	}
	b := startNode(t, service.Config{AllowPull: true, AllowPeers: []string{"127.0.0.1", "localhost"}, PeerDialOptions: dial})
	port := strconv.Itoa(a.Addr().(*net.TCPAddr).Port)
	for i, host := range []string{"127.0.0.1", "localhost"} {
		dest := "f" + strconv.Itoa(i)
		if _, err := pull(t, b, &ferryv1.PullRequest{Peer: net.JoinHostPort(host, port), Path: "f.bin", Destination: dest}); err != nil {
			t.Errorf("Pull over TLS from %s = %v", host, err)
		}
	}
	other := testpki.New(t, "another CA")
	wrong, err := client.Security{CAFile: other.CA, TokenFile: token}.DialOptions()
	if err != nil {
		t.Fatal(err)
	}
	c := startNode(t, service.Config{AllowPull: true, PeerDialOptions: wrong})
	peer := a.Addr().String()
	_, err = pull(t, c, &ferryv1.PullRequest{Peer: peer, Path: "f.bin", Destination: "x"})
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != `peer "`+peer+`" could not be reached as a ferryd` {
		t.Errorf("Pull from a peer whose certificate the node does not trust = %v, want the generic Unavailable", err)
	}
}
