package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydev/ferry/internal/benchfmt"
)

// iperfServer is one "iperf3 -s" for the whole run; each path runs an
// "iperf3 -c" against it. The client sends (-Z makes it sendfile), the
// server receives.
type iperfServer struct {
	bin  string
	port int
	srv  *server
	cpu  cpuClock
}

func startIperf(ctx context.Context, bin, work string, port int) (*iperfServer, error) {
	s, err := startServer("iperf3 -s", filepath.Join(work, "iperf3.log"),
		bin, "-s", "-B", "127.0.0.1", "-p", strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	ip := &iperfServer{bin: bin, port: port, srv: s, cpu: treeCPU([]int{s.pid()})}
	return ip, waitListening(ctx, s, port)
}

// path is iperf3 -c -n size, plain or with -Z.
func (ip *iperfServer) path(size int64, zerocopy bool) path {
	r := row{"iperf3", "iperf3, one stream", "W iperf3 -c", "P iperf3 -s"}
	argv := []string{ip.bin, "-c", "127.0.0.1", "-p", strconv.Itoa(ip.port), "-n", strconv.FormatInt(size, 10), "-J"}
	if zerocopy {
		r = row{"iperf3-z", "iperf3 -Z (sendfile), one stream", r.sender, r.receiver}
		argv = append(argv, "-Z")
	}
	return path{rows: []row{r}, run: func(ctx context.Context) ([]Sample, error) {
		for try := 0; ; try++ {
			var busy bool
			s, err := metered(nil, ip.cpu, func(s *Sample) (err error) {
				busy, err = ip.client(ctx, s, argv)
				return err
			})
			if !busy || try == 20 {
				return []Sample{s}, err
			}
			// The server takes a moment to reset after a test; waiting
			// here keeps the retry out of the measured wall time.
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}}
}

// client runs iperf3 -c once. busy says the server was still resetting
// from the previous test and the run should be retried.
func (ip *iperfServer) client(ctx context.Context, s *Sample, argv []string) (busy bool, err error) {
	var out bytes.Buffer
	ps, err := runCommand(ctx, &out, argv...)
	res, perr := parseIperf(out.Bytes())
	if perr == nil && res.Error == "" && err == nil {
		s.Bytes, s.SenderCPU = res.End.SumReceived.Bytes, waitCPU(ps).Seconds()
		s.ToolGBps = benchfmt.GBps(res.End.SumReceived.Bytes, res.End.SumReceived.Seconds)
		return false, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	return strings.Contains(res.Error, "busy"), fmt.Errorf("iperf3 -c: %v; %s; %v", err, res.Error, perr)
}

// iperfResult is the part of iperf3 -J output the harness reads.
type iperfResult struct {
	End struct {
		SumSent     iperfSum `json:"sum_sent"`
		SumReceived iperfSum `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

type iperfSum struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
}

func parseIperf(b []byte) (iperfResult, error) {
	var r iperfResult
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("iperf3 -J output: %w", err)
	}
	if r.Error == "" && r.End.SumReceived.Bytes == 0 {
		return r, fmt.Errorf("iperf3 -J output: no end.sum_received")
	}
	return r, nil
}
