package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
)

// The streams workload: one file split over parallel data connections
// (client.DownloadOptions.Streams), from a ferryd whose every data
// connection is paced below what loopback carries (--max-flow-rate: one
// flow held below the link, as a per-flow policer or a long path holds
// it), and from a plain ferryd, where one flow already fills loopback.
// Both ferryds serve only this workload, so its parts do not feed the
// auto measurements of the other workloads' ferryd.

// streamsFile is the workload's file under the fixture root.
const streamsFile = "streams.bin"

var (
	heldStreams  = []int{1, 2, 4, 8}
	plainStreams = []int{1, 4}
)

// prepareStreams writes the workload's file (random, flushed, cached).
func (p *peers) prepareStreams() error {
	path := filepath.Join(p.fx.root, streamsFile)
	t0 := time.Now()
	fmt.Fprintf(p.cfg.Log, "writing the streams fixture: %s of random data\n", FormatSize(p.cfg.StreamsSize))
	if err := writeRandom(path, p.cfg.StreamsSize, rand.NewChaCha8([32]byte{'s', 't', 'r', 'e', 'a', 'm', 's'})); err != nil {
		return fmt.Errorf("streams fixture: %w", err)
	}
	if err := syncFS(p.fx.root); err != nil {
		return err
	}
	fmt.Fprintf(p.cfg.Log, "streams fixture written and flushed in %v\n", time.Since(t0).Round(time.Millisecond))
	return warm(path)
}

// startStreams starts the workload's two ferryds.
func (p *peers) startStreams(ctx context.Context, stops *[]func()) error {
	rate := strconv.FormatInt(p.cfg.FlowRate, 10)
	fmt.Fprintf(p.cfg.Log, "starting ferryd --max-flow-rate %s and a plain ferryd for the streams workload\n", rate)
	var err error
	p.held, err = startFerryd(ctx, p.tools["ferryd"], p.work, "ferryd-held", p.fx.root, "--max-flow-rate", rate)
	if p.held != nil {
		p.held.label = "ferryd --max-flow-rate " + rate
		*stops = append(*stops, p.held.stop)
	}
	if err != nil {
		return err
	}
	p.plain, err = startFerryd(ctx, p.tools["ferryd"], p.work, "ferryd-streams", p.fx.root)
	if p.plain != nil {
		p.plain.label = "ferryd (streams workload)"
		*stops = append(*stops, p.plain.stop)
	}
	return err
}

// warmStreams pulls the first 64 MiB of the streams file in 8 streams
// from each of the workload's ferryds, so the client has asked for the
// server's cap on streams and the code paths are warm before round 1.
func (p *peers) warmStreams(ctx context.Context) {
	for _, n := range nonNil(p.held, p.plain) {
		opts := client.DownloadOptions{Length: 64 << 20, Streams: heldStreams[len(heldStreams)-1]}
		n.pullWith(ctx, streamsFile, os.DevNull, opts) // errors show up in the measured rounds
	}
}

// streamsRowID names a streams row: held (the paced ferryd) or plain.
func streamsRowID(held bool, n int) string {
	if held {
		return "ferry-streams-held-" + strconv.Itoa(n)
	}
	return "ferry-streams-" + strconv.Itoa(n)
}

func (p *peers) streams() workload {
	size, rate := p.cfg.StreamsSize, p.cfg.FlowRate
	w := workload{id: "streams", before: func() error { return warm(filepath.Join(p.fx.root, streamsFile)) },
		title: FormatSize(size) + " file in the page cache → /dev/null in parallel streams",
		note: fmt.Sprintf("Ferry auto with DownloadOptions.Streams = N: the range split into N parts, each a Download of its own over its own data connection. "+
			"\"held\": a ferryd started with --max-flow-rate %d, which paces each data connection at %.0f MB/s (SO_MAX_PACING_RATE), "+
			"one flow held below what loopback carries; \"plain\": a ferryd with no flow rate. Both serve only this workload.",
			rate, float64(rate)/1e6)}
	for _, n := range heldStreams {
		w.paths = append(w.paths, p.held.streamsPath(streamsRow(true, n, rate), size, n))
	}
	for _, n := range plainStreams {
		w.paths = append(w.paths, p.plain.streamsPath(streamsRow(false, n, rate), size, n))
	}
	return w
}

func streamsRow(held bool, n int, rate int64) row {
	label := fmt.Sprintf("Ferry auto, %d stream", n)
	if n > 1 {
		label += "s"
	}
	sender := "P ferryd"
	if held {
		label += fmt.Sprintf(", each flow held at %.0f MB/s", float64(rate)/1e6)
		sender = "P ferryd --max-flow-rate"
	} else {
		label += ", plain loopback"
	}
	return row{streamsRowID(held, n), label, sender, "S ferry-bench"}
}

// streamsPath pulls the streams file to /dev/null in n streams and
// checks that the report has n parts (the client uses fewer when the
// server caps them, or when a part would be too small).
func (n *ferryNode) streamsPath(r row, size int64, streams int) path {
	return path{rows: []row{r}, run: func(ctx context.Context) ([]Sample, error) {
		s, err := metered(n.cpu, selfCPU, func(s *Sample) error {
			opts := client.DownloadOptions{Strategy: ferryv1.Strategy_STRATEGY_UNSPECIFIED, Streams: streams}
			rep, err := n.pullWith(ctx, streamsFile, os.DevNull, opts)
			if err != nil {
				return err
			}
			s.Bytes, s.Note = int64(rep.GetReceiver().GetBytes()), usedNote(rep)
			s.ToolGBps = rep.GetReceiver().GetThroughputBytesPerSecond() / 1e9
			s.Auto = &AutoUse{}
			s.Auto.add(rep)
			if s.Bytes != size {
				return fmt.Errorf("ferry, %d streams: %d bytes, want %d", streams, s.Bytes, size)
			}
			if parts := max(1, len(rep.GetParts())); parts != streams {
				return fmt.Errorf("ferry: asked for %d streams, the report has %d parts", streams, parts)
			}
			if streams > 1 {
				s.Note = fmt.Sprintf("%d parts, each on its own data connection, sent with %s", streams, countList(s.Auto.Strategies, nil))
			}
			return nil
		})
		return []Sample{s}, err
	}}
}
