// Package bench is ferry-bench, Ferry's benchmark: it runs Ferry side
// by side with the peers users would pick instead — iperf3, nginx fetched by
// curl, a gRPC server-streaming download, tar c | nc — all on 127.0.0.1,
// in interleaved rounds, and writes the medians as Markdown, JSON and an
// SVG chart, with each performance target and its measured ratio.
//
// It is a package of its own, not cmd/ferry-bench, because it outgrew a
// main: installing, starting and stopping peers, fixtures, workloads, CPU
// accounting and rendering. cmd/ferry-bench stays flags → Config → Run.
// It is internal: nothing outside this module should build on it.
//
// How the figures are obtained (the Markdown repeats it under the tables):
//
//   - wall time: the harness's monotonic clock around one whole transfer
//     (or one whole batch of small ones), process start included for peers
//     driven by a command (curl, iperf3 -c, tar);
//   - throughput: bytes moved / wall time, in decimal GB/s;
//   - CPU: "P" is the utime+stime delta of /proc/<pid>/stat of a server
//     process and its children (ferryd, nginx master+worker, iperf3 -s, the
//     gRPC peer), "W" the wait4 rusage of a client command (which includes
//     the processes it waited for, such as tar and the nc relay), "S" the
//     getrusage(RUSAGE_SELF) delta of ferry-bench itself, for the clients
//     that run in-process (Ferry, the gRPC client, the Go HTTP client).
//
// The medians, percentiles, GB/s and per-GiB figures and the drawing of
// the chart are internal/benchfmt's, shared with ferry compare; this
// package decides what is summarized and charted.
//
// It does not tune Ferry, and a missed target is a result, not an error:
// Run fails only when something could not be measured. Its tests cover
// the pure parts (summaries, /proc parsing, rendering); go test never
// runs the benchmark. Every process it starts runs in its own process
// group, is stopped by pid when Run returns or the context ends (SIGINT),
// and gets PR_SET_PDEATHSIG should ferry-bench itself be killed.
package bench
