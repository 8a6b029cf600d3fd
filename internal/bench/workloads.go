package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
)

// row names one line of a results table and how its CPU was measured.
type row struct{ id, label, sender, receiver string }

// path is one way of moving a workload's bytes. Most produce one row;
// curl into a file produces two (without and with fsync).
type path struct {
	rows []row
	run  func(ctx context.Context) ([]Sample, error)
}

// workload is one table: paths run in the same order every round.
type workload struct {
	id, title, note string
	latency         bool
	before          func() error // untimed, before the round's paths
	settle          func() error // untimed, before each path
	// repeat runs each path this many times per round, in passes over
	// all the paths (runWorkload), its samples summed into the round's
	// one; 0 or 1: once.
	repeat int
	paths  []path
}

// peers is everything the workloads run against.
type peers struct {
	reran int // runs made again for steal (runOnce)
	cfg   Config
	tools map[string]string
	self  string // this executable, for the helper processes
	work  string
	dest  string // where to-file workloads land
	fx    *fixtures
	iperf *iperfServer
	nginx *nginxServer
	grpc  *grpcPeer
	ferry *ferryNode
	// The encrypted rows' peers (large-null only): the run's certificate,
	// the gRPC peer over TLS and a ferryd with TLS on both channels; nil
	// when not run.
	pki      benchPKI
	grpcTLS  *grpcPeer
	ferryTLS *ferryNode
	// fixed is a ferryd started with --auto=fixed (the size rule auto
	// followed before it measured); nil when it would not start, and
	// fixedErr says why.
	fixed    *ferryNode
	fixedErr error
	// held and plain serve the streams workload: held paces every data
	// connection (--max-flow-rate), plain does not.
	held, plain *ferryNode
}

// workloads are the selected workloads, in the order of Workloads.
func (p *peers) workloads() []workload {
	build := map[string]func() workload{
		"large-null": p.largeNull, "large-file": p.largeFile, "medium": p.medium,
		"small": p.small, "dir": p.dir, "streams": p.streams,
	}
	var out []workload
	for _, id := range Workloads {
		if b, ok := build[id]; ok && p.cfg.wants(id) {
			out = append(out, b())
		}
	}
	return out
}

func (p *peers) rewarm() error { return warm(filepath.Join(p.fx.root, p.fx.big)) }

func (p *peers) largeNull() workload {
	size, big := p.cfg.Size, p.fx.big
	w := workload{id: "large-null", before: p.rewarm, repeat: p.cfg.LargeRepeat,
		title: FormatSize(size) + " file in the page cache → /dev/null",
		note: fmt.Sprintf("Each path moves the file %d times in each round, in passes over all the paths; the round's figure is their sum (bytes over summed time).",
			max(p.cfg.LargeRepeat, 1)),
		paths: []path{
			p.iperf.path(size, false), p.iperf.path(size, true),
			p.nginx.curlPath(p.tools["curl"], big, size, true), p.nginx.curlPath(p.tools["curl"], big, size, false),
			p.grpc.path(big, size, 1<<20), p.grpc.path(big, size, 64<<10),
		}}
	for _, st := range p.ferry.ferryStrategies() {
		w.paths = append(w.paths, p.ferry.largePath(big, size, st, "", false))
	}
	// The receiver's own lever, side by side: auto with a reading receiver.
	w.paths = append(w.paths, p.ferry.largePath(big, size, ferryv1.Strategy_STRATEGY_UNSPECIFIED, "", true))
	w.paths = append(w.paths, p.tlsRows(big, size)...)
	return w
}

func (p *peers) largeFile() workload {
	size, big := p.cfg.Size, p.fx.big
	// Each path starts on a settled disk (syncFS): the last path's deleted
	// file is written off, journal and discards included (this disk is
	// mounted with discard). Without it the next path to fsync paid for
	// the last one's delete: a Ferry pull right after "curl -o, then
	// fsync" took 3.8-5.5 s where the same pull took 1.4-1.7 s elsewhere
	// in the round.
	w := workload{id: "large-file", before: p.rewarm, settle: func() error { return syncFS(p.dest) },
		title: FormatSize(size) + " file in the page cache → a new file (" + fsType(p.dest) + ")",
		note: "curl does not fsync; Ferry's client always lands a file by fsync + rename, " +
			"so compare Ferry with the \"then fsync\" row for like with like.",
		paths: []path{p.nginx.curlFilePath(p.tools["curl"], big, p.dest, size)}}
	for _, st := range p.ferry.ferryStrategies() {
		w.paths = append(w.paths, p.ferry.largePath(big, size, st, p.dest, false))
	}
	w.paths = append(w.paths, p.ferry.largePath(big, size, ferryv1.Strategy_STRATEGY_UNSPECIFIED, p.dest, true))
	return w
}

func (p *peers) medium() workload {
	w := p.batch("medium", "1 MiB files, one after another over a warm client → /dev/null",
		p.fx.medium, p.cfg.MediumCount, 1<<20, []int{1 << 20, 64 << 10})
	w.paths = append(w.paths, p.inFlightPaths(p.fx.medium, p.cfg.MediumCount, 8, 1<<20)...) // session.go
	return w
}

func (p *peers) small() workload {
	return p.batch("small", "4 KiB files, one after another over a warm client → /dev/null (latency)",
		// 4 KiB messages: one message, one buffer the file's size, the
		// least a gRPC download of a 4 KiB file can do (the floor).
		p.fx.small, p.cfg.SmallCount, 4<<10, []int{1 << 20, 4 << 10})
}

// batch is a small-file workload: nginx over a keep-alive Go HTTP client,
// the gRPC peer and Ferry, all warm, all in-process clients.
func (p *peers) batch(id, title string, names []string, count int, size int64, chunks []int) workload {
	buf := make([]byte, 1<<20)
	w := workload{id: id, title: title, latency: true,
		note: "Every client is in ferry-bench and keeps its connection: Go net/http keep-alive for nginx, " +
			"one gRPC connection for the gRPC peer and for Ferry's control plane (Ferry's client keeps its data connections open between pulls and reuses them)."}
	for _, sf := range []bool{true, false} {
		url := func(name string) string { return p.nginx.url(sf, name) }
		w.paths = append(w.paths, batchPath(nginxRow(sf, "go-http", "S ferry-bench"), p.nginx.cpu, selfCPU, names, count, size,
			func(ctx context.Context, name string) (fetched, error) {
				n, err := p.nginx.get(ctx, url(name), buf)
				return fetched{bytes: n}, err
			}))
	}
	for _, c := range chunks {
		w.paths = append(w.paths, batchPath(grpcRow(c), p.grpc.cpu, selfCPU, names, count, size,
			func(ctx context.Context, name string) (fetched, error) {
				n, err := p.grpc.fetch(ctx, name, c)
				return fetched{bytes: n}, err
			}))
	}
	for _, f := range []*floorClient{&p.grpc.floor, &p.grpc.floorReport} {
		w.paths = append(w.paths, batchPath(floorRow(f.report), p.grpc.cpu, selfCPU, names, count, size,
			func(ctx context.Context, name string) (fetched, error) {
				n, err := f.fetch(p.grpc.conn, name)
				return fetched{bytes: n}, err
			}))
	}
	for _, st := range p.ferry.ferryStrategies() {
		w.paths = append(w.paths, batchPath(ferryRow(st, "", ""), p.ferry.cpu, selfCPU, names, count, size, p.ferry.fetch(st)))
	}
	w.paths = append(w.paths, batchPath(sessionRow(1), p.ferry.cpu, selfCPU, names, count, size,
		p.ferry.sessionFetch(ferryv1.Strategy_STRATEGY_UNSPECIFIED)))
	// Auto as it was before it measured: ferryd --auto=fixed, the fixed
	// preference by size. Target 3 compares the measured choice with it.
	fixed := row{"ferry-auto-fixed", "Ferry auto, fixed rule (ferryd --auto=fixed)", "P ferryd --auto=fixed", "S ferry-bench"}
	if p.fixed == nil {
		w.paths = append(w.paths, failingPath(fixed, p.fixedErr))
	} else {
		auto := ferryv1.Strategy_STRATEGY_UNSPECIFIED
		w.paths = append(w.paths, batchPath(fixed, p.fixed.cpu, selfCPU, names, count, size, p.fixed.fetch(auto)))
	}
	return w
}

// failingPath is a row that could not be measured: every round records
// err as its sample's error.
func failingPath(r row, err error) path {
	return path{rows: []row{r}, run: func(context.Context) ([]Sample, error) {
		return []Sample{{}}, err
	}}
}

func (p *peers) dir() workload {
	n, conc := len(p.fx.files), p.cfg.DirConcurrency
	title := "A directory of " + strconv.Itoa(n) + " files of 4 KiB"
	return workload{id: "dir", title: title,
		note: "Ferry pull -r is one DownloadTree call landing the files durably (written unnamed, made durable in groups by syncfs, then linked into place), " +
			"the like for like of tar x, which does not fsync; the other Ferry row is " + strconv.Itoa(n) +
			" separate pulls over one warm client, " + strconv.Itoa(conc) + " at a time, to /dev/null, with the file names known in advance. " +
			"tar and the nc relay are processes started for every run, as in the shell pipeline.",
		paths: []path{
			tarPath(p.self, p.fx.root, p.fx.dir, p.work, p.dest, n, false),
			tarPath(p.self, p.fx.root, p.fx.dir, p.work, p.dest, n, true),
			concurrentPath(ferryRow(ferryv1.Strategy_STRATEGY_UNSPECIFIED, "-dir", " ("+strconv.Itoa(n)+" pulls, "+strconv.Itoa(conc)+" concurrent)"),
				p.ferry.cpu, selfCPU, p.fx.files, conc, 4096, p.ferry.fetch(ferryv1.Strategy_STRATEGY_UNSPECIFIED)),
			p.ferry.treePath(p.fx.dir, p.dest, n, conc), // tree.go
			p.ferry.syncPath(p.fx.dir, p.dest, n, conc),
		}}
}
