package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// setUp installs the peers, writes the fixtures and starts every server.
// cleanup stops the servers by pid and removes the work directory; it is
// safe to call whatever setUp returned.
func setUp(ctx context.Context, cfg Config, res *Results) (*peers, func(), error) {
	p := &peers{cfg: cfg}
	var stops []func()
	cleanup := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	var err error
	if p.tools, err = ensurePeers(ctx, !cfg.NoInstall, cfg.Log); err != nil {
		return nil, cleanup, err
	}
	if p.work, err = os.MkdirTemp(cfg.Dir, "ferry-bench-"); err != nil {
		return nil, cleanup, err
	}
	stops = append(stops, func() { os.RemoveAll(p.work) })
	if err := os.Chmod(p.work, 0o755); err != nil { // nginx's worker reads the fixtures
		return nil, cleanup, err
	}
	p.dest = orStr(cfg.DestDir, p.work)
	if fi, err := os.Stat(p.dest); err != nil || !fi.IsDir() {
		return nil, cleanup, fmt.Errorf("-dest-dir %s: not a directory (%v)", p.dest, err)
	}
	if p.self, err = os.Executable(); err != nil {
		return nil, cleanup, err
	}
	if err := p.prepare(ctx, res); err != nil {
		return nil, cleanup, err
	}
	if err = p.startAll(ctx, &stops); err != nil {
		return p, cleanup, err
	}
	for _, n := range p.ferryNodes() {
		t0 := time.Now()
		seed := n.waitSeeded(ctx, 30*time.Second)
		fmt.Fprintf(cfg.Log, "%s: auto seeded by %q after %v\n", n.label, seed, time.Since(t0).Round(time.Millisecond))
	}
	return p, cleanup, nil
}

// prepare builds ferryd and writes the fixtures.
func (p *peers) prepare(ctx context.Context, res *Results) error {
	bin := p.cfg.Ferryd
	if bin == "" {
		bin = filepath.Join(p.work, "ferryd")
		fmt.Fprintln(p.cfg.Log, "building ./cmd/ferryd")
		if err := buildFerryd(ctx, bin); err != nil {
			return err
		}
	}
	p.tools["ferryd"] = bin
	root := filepath.Join(p.work, "root")
	t0 := time.Now()
	fmt.Fprintf(p.cfg.Log, "writing fixtures: %s of random data, %d MiB files, %d 4 KiB files, under %s\n",
		FormatSize(p.cfg.Size), mediumFiles, p.cfg.DirFiles, root)
	fx, err := makeFixtures(root, p.cfg.Size, p.cfg.DirFiles)
	if err != nil {
		return fmt.Errorf("fixtures: %w", err)
	}
	fmt.Fprintf(p.cfg.Log, "fixtures written, flushed and cached in %v\n", time.Since(t0).Round(time.Millisecond))
	p.fx = fx
	if p.cfg.wants("streams") {
		if err := p.prepareStreams(); err != nil {
			return err
		}
	}
	m := &res.Machine
	m.FixtureFS, m.DestFS = fsType(root), fsType(p.dest)
	for _, t := range [][]string{{"iperf3", "--version"}, {"nginx", "-v"}, {"curl", "--version"}, {"tar", "--version"}} {
		m.Tools[t[0]] = toolVersion(ctx, p.tools[t[0]], t[1])
	}
	m.Tools["ferryd"] = bin
	return nil
}

// startAll starts the servers, registering each one's stop as soon as
// it exists.
func (p *peers) startAll(ctx context.Context, stops *[]func()) error {
	ports, err := freePorts(6)
	if err != nil {
		return err
	}
	root := p.fx.root
	tlsPort := 0
	if p.cfg.wants("large-null") {
		if p.pki, err = makeBenchPKI(p.work); err != nil {
			return err
		}
		tlsPort = ports[4]
	}
	fmt.Fprintln(p.cfg.Log, "starting iperf3 -s, nginx, the gRPC peer and ferryd")
	p.iperf, err = startIperf(ctx, p.tools["iperf3"], p.work, ports[0])
	if p.iperf != nil {
		*stops = append(*stops, func() { p.iperf.srv.stop(5 * time.Second) })
	}
	if err != nil {
		return err
	}
	p.nginx, err = startNginx(ctx, p.tools["nginx"], p.work, root, ports[1], ports[2], tlsPort, p.pki)
	if p.nginx != nil {
		*stops = append(*stops, func() { p.nginx.srv.stop(5 * time.Second) })
	}
	if err != nil {
		return err
	}
	p.grpc, err = startGRPCPeer(ctx, p.self, p.work, root, ports[3])
	if p.grpc != nil {
		*stops = append(*stops, func() { p.grpc.stop() })
	}
	if err != nil {
		return err
	}
	p.ferry, err = startFerryd(ctx, p.tools["ferryd"], p.work, "ferryd", root)
	if p.ferry != nil {
		*stops = append(*stops, p.ferry.stop)
	}
	if err != nil {
		return err
	}
	if tlsPort > 0 {
		if err := p.startTLS(ctx, stops, ports[5]); err != nil {
			return err
		}
	}
	if p.cfg.wants("small") || p.cfg.wants("medium") {
		p.startFixed(ctx, stops)
	}
	if p.cfg.wants("streams") {
		return p.startStreams(ctx, stops)
	}
	return nil
}

// startFixed starts the ferryd of the fixed-rule rows (--auto=fixed). A
// ferryd without the flag exits at once; that is not fatal to the run:
// the rows record the error in every round and the targets that need
// them are not measured.
func (p *peers) startFixed(ctx context.Context, stops *[]func()) {
	fmt.Fprintln(p.cfg.Log, "starting ferryd --auto=fixed")
	n, err := startFerryd(ctx, p.tools["ferryd"], p.work, "ferryd-fixed", p.fx.root, "--auto=fixed")
	if n != nil {
		*stops = append(*stops, n.stop)
	}
	if err != nil {
		p.fixedErr = fmt.Errorf("ferryd --auto=fixed did not start: %w", err)
		fmt.Fprintln(p.cfg.Log, p.fixedErr)
		return
	}
	p.fixed = n
}
