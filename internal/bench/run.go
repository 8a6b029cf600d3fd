package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Run benchmarks every workload cfg selects and writes the results under
// cfg.Out. It returns an error when something could not be measured (a
// peer failed to start, a transfer failed), never for a missed target;
// results are still written when only some samples failed, and never
// when ctx ended early.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	cfg = cfg.withDefaults()
	res := &Results{Machine: describeMachine(), Settings: settings(cfg), started: time.Now()}
	p, cleanup, err := setUp(ctx, cfg, res)
	defer cleanup()
	if err != nil {
		return nil, err
	}
	var failed []error
	if len(p.workloads()) > 0 {
		failed = runRounds(ctx, p, res)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if cfg.wants("memory") && cfg.MemProbe > 0 {
		fmt.Fprintln(cfg.Log, "memory probe: ferryd serving a 100 GiB sparse file with MMAP")
		if res.Memory, err = memoryProbe(ctx, p); err != nil {
			failed = append(failed, fmt.Errorf("memory probe: %w", err))
		}
	}
	res.RerunForSteal = p.reran
	res.finish(failed)
	if err := writeResults(cfg.Out, res); err != nil {
		return res, err
	}
	return res, errors.Join(failed...)
}

func settings(cfg Config) map[string]string {
	return map[string]string{
		"runs": fmt.Sprint(cfg.Runs), "size": FormatSize(cfg.Size), "large_repeat": fmt.Sprint(cfg.LargeRepeat),
		"small_count": fmt.Sprint(cfg.SmallCount), "medium_count": fmt.Sprint(cfg.MediumCount),
		"dir_files": fmt.Sprint(cfg.DirFiles), "dir_concurrency": fmt.Sprint(cfg.DirConcurrency),
		"streams_size": FormatSize(cfg.StreamsSize), "flow_rate": fmt.Sprint(cfg.FlowRate),
		"only": strings.Join(cfg.Only, ","), "command": strings.Join(append([]string{"ferry-bench"}, os.Args[1:]...), " "),
	}
}

// finish summarizes the rows and evaluates the targets.
func (r *Results) finish(failed []error) {
	var ref *PathResult
	if w := r.workload("large-null"); w != nil {
		ref = w.path("iperf3-z")
	}
	for _, w := range r.Workloads {
		if w.ID == "large-null" || w.ID == "large-file" {
			w.summarize(ref)
		} else {
			w.summarize(nil)
		}
	}
	r.Targets = evaluateTargets(r)
	for _, err := range failed {
		r.Errors = append(r.Errors, err.Error())
	}
	r.Machine.LoadEnd = loadAvg()
	r.Took = time.Since(r.started).Round(time.Second).String()
}
