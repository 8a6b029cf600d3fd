package service

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/transfer"
)

// Config is a node's configuration. The zero value serves the current
// directory on loopback.
type Config struct {
	// Root is the directory served. "" means ".".
	Root string
	// Listen is the gRPC address. "" means 127.0.0.1:7070.
	Listen string
	// DataListen is the data channel's address. "" means 127.0.0.1:7071.
	DataListen string
	// AdvertiseData is the data address put in offers, as host:port or a
	// bare host (the data listener's port is added). "" means the data
	// listener's own address.
	AdvertiseData string
	// Version is reported by GetCapabilities. "" means "dev".
	Version string
	// ShutdownGrace is how long running transfers may take to finish
	// after Run's context ends. 0 means 20 s.
	ShutdownGrace time.Duration
	// ProgressInterval spaces a Download's progress messages. 0 means
	// 250 ms.
	ProgressInterval time.Duration
	// MaxStreams caps the TransferService streams (Download) running at
	// once, server-wide; past it a call is ResourceExhausted. 0 means 512,
	// twice the data plane's default MaxTransfers.
	MaxStreams int
	// MaxOpenStreams caps, server-wide, the streams of the services that
	// answer without credentials (grpc.health.v1 Watch, reflection); past
	// it they are ResourceExhausted. 0 means 64.
	MaxOpenStreams int
	// MaxFileStreams is the most data connections this node lets one
	// client split a file's range over (parallel streams), reported as
	// GetCapabilitiesResponse.max_streams for clients to respect; a Pull
	// on this node also takes no more. Each part is a Download of its
	// own, so MaxStreams and the data plane's MaxTransfers still bound
	// them all. 0 means 8; 1 means one stream.
	MaxFileStreams int
	// Data tunes the data plane (ticket lifetime, chunk sizes...). Its
	// Events are the node's own (they feed the metrics): a value set here
	// is replaced.
	Data transfer.Config
	// TLS, when set, serves the control plane over TLS; with ClientCAs
	// and ClientAuth set, mutual TLS (ServerTLS builds it from files).
	// nil means plaintext. The data channel follows it unless DataTLS
	// says otherwise.
	TLS *tls.Config
	// DataTLS says whether the data channel uses TLS: DataTLSFollow (the
	// zero value) when TLS is set, with its certificates; DataTLSRequired
	// insists on it (NewNode fails without TLS); DataTLSOff keeps the
	// data channel plaintext beside a TLS control plane, logged as
	// INSECURE.
	DataTLS DataTLSMode
	// AuthToken, when set, is the bearer token every TransferService call
	// must carry; health and reflection stay open. "" means none.
	AuthToken string
	// AllowPull lets callers make this node fetch files from peers into
	// its root (the Pull RPC), which turns a read-only file server into
	// one that writes and dials out. false means Pull is refused with
	// PermissionDenied.
	AllowPull bool
	// AllowPeers are the peers a Pull may reach, and the hosts their
	// offers may name as data address: host names, "*.suffix" wildcards
	// (the "*" in the first label only), IP addresses and CIDRs (see
	// peerList for exactly what is matched). A peer not admitted is
	// PermissionDenied before anything is dialled, so this node's peer
	// credentials go to admitted peers only. nil means loopback peers
	// only. NewNode rejects a pattern it cannot read.
	AllowPeers []string
	// PullMaxBytes caps what one Pull may write: a file, or a tree's
	// files together (client.DownloadOptions.MaxBytes). An offer past it
	// fails the Pull with ResourceExhausted before a byte is written. 0
	// means no cap: an offer must still fit in the free space of the
	// destination's file system, less a 16 MiB reserve, which is what
	// keeps a lying peer from filling the disk.
	PullMaxBytes uint64
	// PullIdleTimeout fails a Pull whose peer sends nothing for this
	// long, on the data channel or, with nothing in flight, on the
	// control plane (transfer.ReceiveConfig.IdleTimeout): Unavailable.
	// 0 means 60 s; -1 means no limit.
	PullIdleTimeout time.Duration
	// PeerDialOptions are the options Pull dials a peer's control plane
	// with: this node's own credentials toward its peers (TLS, a token),
	// never the caller's. nil means plaintext with no token.
	PeerDialOptions []grpc.DialOption
	// Logger receives the node's logs. nil means slog.Default().
	Logger *slog.Logger
	// TransferHistory is how many finished transfers ListTransfers
	// keeps, newest first. 0 means 100.
	TransferHistory int
	// MetricsListen is the address of an admin HTTP listener serving
	// Prometheus metrics on /metrics, unauthenticated: bind it to
	// loopback or a port only the scraper reaches. "" means none.
	MetricsListen string
	// TracerProvider, when set, traces the node with OpenTelemetry: a
	// server span per call (otelgrpc's stats handler; health checks
	// left out), a client span per call a Pull makes to its peer, with
	// the trace context sent along, and a "ferry.transfer" span per
	// transfer the node registers (see registry). Trace context crosses
	// calls through the global propagator (otel.GetTextMapPropagator),
	// which tracing.Setup sets to W3C tracecontext and baggage. nil means
	// no tracing at all: no stats handler is installed and no span made.
	TracerProvider trace.TracerProvider
	// HealthListen is the address of a plaintext listener serving
	// grpc.health.v1 only (no TransferService, no reflection), for probes
	// that cannot speak TLS, such as kubelet's gRPC probes, when the
	// control plane requires it. Its streams count against MaxOpenStreams'
	// own, separate, limit. "" means none.
	HealthListen string
}

// Node is one ferryd: the gRPC control plane and the data plane, bound to
// their listeners.
type Node struct {
	cfg    Config
	log    *slog.Logger
	root   *fsroot.Root
	data   *transfer.Server
	health *health.Server
	grpc   *grpc.Server
	// stopping is cancelled when shutdown starts; it ends health Watch
	// streams.
	stopping     context.Context
	stopStopping context.CancelFunc
	ctl          net.Listener
	dl           net.Listener
	advertise    string // the data address put in offers
	metrics      *metrics
	admin        *metricsServer  // nil without MetricsListen
	healthOnly   *healthListener // nil without HealthListen
}

// NewNode opens the root and both listeners. Call Run to serve.
func NewNode(cfg Config) (*Node, error) {
	n := &Node{cfg: cfg, log: cfg.Logger}
	if n.log == nil {
		n.log = slog.Default()
	}
	peers, err := parsePeerList(cfg.AllowPeers)
	if err != nil {
		return nil, err
	}
	if cfg.Data.TLS, err = dataTLS(cfg.DataTLS, cfg.TLS); err != nil {
		return nil, err
	}
	cfg.Data.Logger = orDefault(cfg.Data.Logger, n.log)
	root, err := fsroot.OpenRoot(orDefault(cfg.Root, "."))
	if err != nil {
		return nil, err
	}
	n.root = root
	if n.ctl, err = net.Listen("tcp", orDefault(cfg.Listen, "127.0.0.1:7070")); err != nil {
		root.Close()
		return nil, err
	}
	if n.dl, err = net.Listen("tcp", orDefault(cfg.DataListen, "127.0.0.1:7071")); err != nil {
		root.Close()
		n.ctl.Close()
		return nil, err
	}
	advertise, err := advertiseAddr(cfg.AdvertiseData, n.dl.Addr())
	n.advertise = advertise
	if err != nil {
		n.closeAll()
		return nil, err
	}
	// The node's metrics take the data plane's events: Data.Events is
	// replaced, not chained.
	n.metrics = newMetrics(func() int { return n.data.Pending() })
	cfg.Data.Events = n.metrics.events()
	if cfg.MetricsListen != "" {
		if n.admin, err = listenMetrics(cfg.MetricsListen, n.metrics.reg); err != nil {
			n.closeAll()
			return nil, err
		}
	}
	n.data = transfer.NewServer(cfg.Data)
	n.health = health.NewServer()
	n.health.SetServingStatus(ferryv1.TransferService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	svc := &transferService{
		root: root, data: n.data, address: advertise,
		version:  orDefault(cfg.Version, "dev"),
		progress: orDefault(cfg.ProgressInterval, 250*time.Millisecond),
		peerDial: cfg.PeerDialOptions, allowPull: cfg.AllowPull, peers: peers, log: n.log,
		transfers: newRegistry(cfg.TransferHistory),
		listings:  make(chan struct{}, maxListings),
	}
	if cfg.TracerProvider != nil {
		svc.transfers.tracer = cfg.TracerProvider.Tracer(tracerName)
		svc.peerTrace = client.WithTracing(cfg.TracerProvider)
	}
	svc.maxFileStreams = orDefault(cfg.MaxFileStreams, defaultMaxFileStreams)
	svc.pullMaxBytes, svc.pullReceive = cfg.PullMaxBytes, transfer.ReceiveConfig{IdleTimeout: cfg.PullIdleTimeout}
	n.stopping, n.stopStopping = context.WithCancel(context.Background())
	svc.stopping = n.stopping
	n.grpc = newGRPCServer(svc, &healthServer{n.health, n.stopping}, n.log, security{cfg.TLS, newBearerAuth(cfg.AuthToken)},
		orDefault(cfg.MaxStreams, defaultMaxStreams), orDefault(cfg.MaxOpenStreams, defaultMaxOpenStreams), n.metrics.grpc, cfg.TracerProvider)
	if cfg.HealthListen != "" {
		hs := &healthServer{n.health, n.stopping}
		if n.healthOnly, err = listenHealth(cfg.HealthListen, hs, orDefault(cfg.MaxOpenStreams, defaultMaxOpenStreams)); err != nil {
			n.closeAll()
			return nil, err
		}
	}
	n.logSecurity()
	n.logDataTLS()
	n.logPull(peers)
	return n, nil
}

func (n *Node) closeAll() {
	n.root.Close()
	n.ctl.Close()
	n.dl.Close()
	if n.admin != nil {
		n.admin.ln.Close()
	}
	if n.healthOnly != nil {
		n.healthOnly.ln.Close()
	}
}

// Close releases a node that will not Run: its root and listeners.
func (n *Node) Close() error {
	n.stopStopping()
	n.closeAll()
	return nil
}

// Addr is the gRPC listener's address.
func (n *Node) Addr() net.Addr { return n.ctl.Addr() }

// DataAddr is the data listener's address.
func (n *Node) DataAddr() net.Addr { return n.dl.Addr() }

// HealthAddr is the plaintext health listener's address, nil without
// Config.HealthListen.
func (n *Node) HealthAddr() net.Addr {
	if n.healthOnly == nil {
		return nil
	}
	return n.healthOnly.ln.Addr()
}

// MetricsAddr is the metrics listener's address, nil without
// Config.MetricsListen.
func (n *Node) MetricsAddr() net.Addr {
	if n.admin == nil {
		return nil
	}
	return n.admin.ln.Addr()
}

// Run serves until ctx ends, then shuts down gracefully: health turns
// NOT_SERVING, new transfers are refused, running ones get ShutdownGrace
// to finish, then the rest is stopped. It returns nil after a shutdown
// asked for through ctx.
func (n *Node) Run(ctx context.Context) error {
	errc := make(chan error, 4)
	go func() { errc <- n.grpc.Serve(n.ctl) }()
	go func() { errc <- n.data.Serve(n.dl) }()
	running := 2
	if n.admin != nil {
		go func() { errc <- n.admin.serve() }()
		running++
		n.log.Info("serving metrics, unauthenticated", "url", "http://"+n.admin.ln.Addr().String()+"/metrics")
	}
	if n.healthOnly != nil {
		go func() { errc <- n.healthOnly.srv.Serve(n.healthOnly.ln) }()
		running++
		n.log.Info("serving grpc.health.v1 alone, plaintext", "health", n.healthOnly.ln.Addr().String())
	}
	n.log.Info("ferryd serving", "grpc", n.ctl.Addr().String(), "data", n.dl.Addr().String(),
		"advertise", n.advertise, "strategies", fmt.Sprint(n.data.Supported()))
	if ip := n.dl.Addr().(*net.TCPAddr).IP; n.cfg.AdvertiseData == "" && ip.IsUnspecified() {
		n.log.Warn("the data listener is on a wildcard address and --advertise-data is unset: " +
			"offers name the wildcard, and clients use the host they dialled for the control plane; " +
			"set --advertise-data behind a load balancer")
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		running--
		err = fmt.Errorf("listener failed: %w", err)
	}
	n.shutdown()
	for ; running > 0; running-- {
		<-errc
	}
	n.root.Close()
	return err
}

func (n *Node) shutdown() {
	grace := orDefault(n.cfg.ShutdownGrace, 20*time.Second)
	n.log.Info("shutting down", "grace", grace)
	n.health.Shutdown()
	n.stopStopping()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := n.data.Shutdown(ctx); err != nil {
		n.log.Warn("grace period over; aborted running transfers", "err", err)
	}
	stopped := make(chan struct{})
	go func() {
		n.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		n.grpc.Stop()
		<-stopped
	}
	if n.admin != nil {
		n.admin.srv.Close()
	}
	if n.healthOnly != nil {
		n.healthOnly.srv.Stop() // its Watch streams ended with stopping
	}
}

// advertiseAddr resolves the data address put in offers: the data
// listener's own address, or the advertised host (with the listener's port
// when it names none). The host must be an IP a client can dial or a DNS
// name: "$(POD_IP)", say, is a manifest mistake and fails start-up.
func advertiseAddr(advertise string, data net.Addr) (string, error) {
	if advertise == "" {
		return data.String(), nil
	}
	_, port, err := net.SplitHostPort(data.String())
	if err != nil {
		return "", err
	}
	host := advertise
	if h, p, err := net.SplitHostPort(advertise); err == nil {
		host, port = h, p
	} else if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() {
			return "", fmt.Errorf("--advertise-data %q: a wildcard address cannot be dialled", advertise)
		}
	} else if !isDNSName(host) {
		return "", fmt.Errorf("--advertise-data %q: want an IP address or a DNS name, with an optional port", advertise)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("--advertise-data %q: bad port", advertise)
	}
	return net.JoinHostPort(host, port), nil
}

// isDNSName reports whether s is a syntactically valid DNS host name.
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
