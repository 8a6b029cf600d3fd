package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"google.golang.org/grpc"
)

// ferryNode is a real ferryd process and the in-process client that
// pulls from it over one warm gRPC connection. The client runs inside
// ferry-bench rather than as the ferry CLI so that small-file latency
// does not include a process start; its CPU is getrusage(RUSAGE_SELF).
type ferryNode struct {
	label      string // "ferryd" and its flags, as tables name it
	srv        *server
	client     *client.Client
	cpu        cpuClock
	strategies []ferryv1.Strategy // supported by this ferryd, in enum order
	sess       sessionState       // session.go
	tls        bool               // its control plane, and so its data channel, is TLS
}

// buildFerryd builds ./cmd/ferryd of the module in the current directory.
func buildFerryd(ctx context.Context, out string) error {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(gomod))
	if err != nil || mod == "" || mod == os.DevNull {
		return fmt.Errorf("building ferryd: run ferry-bench from the ferry module (go env GOMOD: %q, %v)", mod, err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/ferryd")
	cmd.Dir = filepath.Dir(mod)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/ferryd: %w\n%s", err, b)
	}
	return nil
}

// startFerryd runs bin serving root, with the default settings a user
// gets (text logs at info, one line per transfer, to a log file) and
// any flags of the caller's.
func startFerryd(ctx context.Context, bin, work, name, root string, flags ...string) (*ferryNode, error) {
	return startFerrydDial(ctx, bin, work, name, root, nil, flags...)
}

// startFerrydDial is startFerryd whose client dials with opts (nil:
// plaintext).
func startFerrydDial(ctx context.Context, bin, work, name, root string, opts []grpc.DialOption, flags ...string) (*ferryNode, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	ctl := "127.0.0.1:" + strconv.Itoa(ports[0])
	argv := append([]string{bin, "--root", root, "--listen", ctl, "--data-listen", "127.0.0.1:" + strconv.Itoa(ports[1])}, flags...)
	s, err := startServer(name, filepath.Join(work, name+".log"), argv...)
	if err != nil {
		return nil, err
	}
	n := &ferryNode{label: strings.Join(append([]string{"ferryd"}, flags...), " "), srv: s, cpu: treeCPU([]int{s.pid()})}
	if err := waitListening(ctx, s, ports[0]); err != nil { // fails at once if ferryd exits (a flag it lacks, say)
		return n, fmt.Errorf("%w (see %s.log)", err, name)
	}
	if n.client, err = client.Dial(ctl, opts...); err != nil {
		return n, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	caps, err := n.client.API().GetCapabilities(ctx, &ferryv1.GetCapabilitiesRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return n, fmt.Errorf("%s not ready: %w (see %s.log)", name, err, name)
	}
	n.strategies = caps.GetStrategies()
	return n, nil
}

// waitSeeded waits, untimed, until the ferryd's measuring auto has been
// seeded (its start-up probe is done: the policy's seed is no longer
// "none"), or timeout. Until then auto follows the fixed order and the
// probe's own transfers compete with the measured ones. A ferryd with no
// auto policy, or a pinned one, has nothing to wait for. It returns the
// seed it saw last.
func (n *ferryNode) waitSeeded(ctx context.Context, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		caps, err := n.client.Capabilities(cctx)
		cancel()
		seed := caps.GetAuto().GetSeed()
		if err != nil || caps.GetAuto() == nil || seed != "none" || time.Now().After(deadline) {
			return seed
		}
		select {
		case <-ctx.Done():
			return seed
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ferryNodes are the ferryds running for the rounds, each once.
func (p *peers) ferryNodes() []*ferryNode {
	return nonNil(p.ferry, p.fixed, p.held, p.plain, p.ferryTLS)
}

// policyNodes are the ferryds whose auto policy results.md shows: the
// one of the workloads that compare strategies, and the fixed rule's.
func (p *peers) policyNodes() []*ferryNode { return nonNil(p.ferry, p.fixed) }

func nonNil(nodes ...*ferryNode) []*ferryNode {
	var out []*ferryNode
	for _, n := range nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

func (n *ferryNode) stop() {
	n.closeSession()
	if n.client != nil {
		n.client.Close()
	}
	n.srv.stop(10 * time.Second)
}

// pull downloads name to dest with strategy st.
func (n *ferryNode) pull(ctx context.Context, name, dest string, st ferryv1.Strategy) (*ferryv1.Report, error) {
	return n.pullWith(ctx, name, dest, client.DownloadOptions{Strategy: st})
}

// pullWith is pull with options of the caller's.
func (n *ferryNode) pullWith(ctx context.Context, name, dest string, opts client.DownloadOptions) (*ferryv1.Report, error) {
	st := opts.Strategy
	if st == ferryv1.Strategy_STRATEGY_UNSPECIFIED {
		opts.InlineMax = client.MaxInline // as ferry pull does with auto
	}
	rep, err := n.client.Download(ctx, name, dest, opts)
	if err != nil {
		return nil, fmt.Errorf("ferry %s %s: %w", strategyName(st), name, err)
	}
	return rep, nil
}

// usedNote says which strategy the server used for a report.
func usedNote(rep *ferryv1.Report) string {
	note := "server used " + rep.GetSender().GetStrategy().String()
	if rep.GetSender().GetInline() {
		note += " (inline in the offer)"
	}
	return note
}

// fetch is a fetchFunc pulling to /dev/null with strategy st. For auto
// it hands back each report, for the round's AutoUse.
func (n *ferryNode) fetch(st ferryv1.Strategy) fetchFunc {
	return func(ctx context.Context, name string) (fetched, error) {
		rep, err := n.pull(ctx, name, os.DevNull, st)
		if err != nil {
			return fetched{}, err
		}
		f := fetched{bytes: int64(rep.GetReceiver().GetBytes()), note: usedNote(rep)}
		if st == ferryv1.Strategy_STRATEGY_UNSPECIFIED {
			f.report = rep
		}
		return f, nil
	}
}

func strategyName(st ferryv1.Strategy) string {
	if st == ferryv1.Strategy_STRATEGY_UNSPECIFIED {
		return "auto"
	}
	return strings.ToLower(strings.TrimPrefix(st.String(), "STRATEGY_"))
}

// ferryStrategies is auto followed by every strategy this ferryd offers.
func (n *ferryNode) ferryStrategies() []ferryv1.Strategy {
	return append([]ferryv1.Strategy{ferryv1.Strategy_STRATEGY_UNSPECIFIED}, n.strategies...)
}

func ferryRow(st ferryv1.Strategy, suffix, labelSuffix string) row {
	name := strategyName(st)
	return row{"ferry-" + strings.ReplaceAll(name, "_", "-") + suffix, "Ferry " + name + labelSuffix, "P ferryd", "S ferry-bench"}
}

// largePath pulls the large file once, to /dev/null or to a new file
// under destDir (which the client fsyncs and renames into place). With
// readWrite the receiver reads into a buffer and writes it out instead of
// splicing socket -> pipe -> destination.
func (n *ferryNode) largePath(big string, size int64, st ferryv1.Strategy, destDir string, readWrite bool) path {
	suffix, label := "", ""
	if readWrite {
		suffix, label = "-read", ", receiver reads"
	}
	r := ferryRow(st, suffix, label)
	if destDir != "" {
		r = ferryRow(st, "-file"+suffix, label+" → file (fsync + rename)")
	}
	if n.tls {
		r = tlsStrategyRow(r)
	}
	return path{rows: []row{r}, run: func(ctx context.Context) ([]Sample, error) {
		dest := os.DevNull
		if destDir != "" {
			dest = filepath.Join(destDir, "ferry.out")
			defer os.Remove(dest)
		}
		s, err := metered(n.cpu, selfCPU, func(s *Sample) (err error) {
			opts := client.DownloadOptions{Strategy: st, Receive: client.ReceiveConfig{ReadWrite: readWrite}}
			rep, err := n.pullWith(ctx, big, dest, opts)
			if err != nil {
				return err
			}
			s.Bytes, s.Note = int64(rep.GetReceiver().GetBytes()), usedNote(rep)
			s.ToolGBps = rep.GetReceiver().GetThroughputBytesPerSecond() / 1e9
			if st == ferryv1.Strategy_STRATEGY_UNSPECIFIED {
				s.Auto = &AutoUse{}
				s.Auto.add(rep)
			}
			if s.Bytes != size {
				err = fmt.Errorf("ferry: %d bytes, want %d", s.Bytes, size)
			}
			return err
		})
		return []Sample{s}, err
	}}
}
