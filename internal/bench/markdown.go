package bench

import (
	"fmt"
	"io"
	"strings"
)

// RenderMarkdown writes the results as docs/bench/results.md.
func RenderMarkdown(w io.Writer, r *Results) {
	m := r.Machine
	fmt.Fprintf(w, "# Ferry benchmark\n\n")
	fmt.Fprintf(w, "Measured %s on %d cores (%s), kernel %s, %s, memory %s; load average %s at the start, %s at the end. "+
		"Fixtures on %s, files landed on %s. Medians of %s interleaved rounds; the run took %s.\n\n",
		m.Date, m.Cores, m.CPUModel, m.Kernel, m.GoVersion, m.MemTotal, m.LoadStart, m.LoadEnd,
		m.FixtureFS, m.DestFS, r.Settings["runs"], r.Took)
	fmt.Fprintf(w, "Host: %s; virtualization: %s.\n\n", m.CPUModel, orStr(m.Virt, "not recorded"))
	fmt.Fprintf(w, "A run during which the hypervisor took more than %.0f%% of the machine's CPU time (steal, /proc/stat) was made again, "+
		"at most %d times: %d runs were. Each sample's steal is in results.json (steal_s).\n\n", 100*stealLimit, stealRetries, r.RerunForSteal)
	fmt.Fprintf(w, "Command: `%s`\n\n", r.Settings["command"])
	fmt.Fprintf(w, "Peers: %s.\n\n", toolList(m.Tools))
	renderTargets(w, r.Targets)
	renderAuto(w, r)
	for _, wl := range r.Workloads {
		renderWorkload(w, wl)
	}
	renderMemory(w, r.Memory)
	fmt.Fprint(w, howMeasured)
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "\n## Errors\n\n")
		for _, e := range r.Errors {
			fmt.Fprintf(w, "- %s\n", oneLine(e))
		}
	}
}

func toolList(tools map[string]string) string {
	var parts []string
	for _, k := range []string{"iperf3", "nginx", "curl", "tar"} {
		if v, ok := tools[k]; ok {
			parts = append(parts, fmt.Sprintf("%s (%s)", k, v))
		}
	}
	return strings.Join(parts, ", ")
}

func renderTargets(w io.Writer, ts []Target) {
	fmt.Fprintf(w, "## Targets\n\nRatios are medians of same-round ratios. An info row puts the target above it in context; "+
		"ctx rows are figures that were targets before, kept without a verdict.\n\n")
	fmt.Fprintf(w, "| # | target | measured | want | verdict |\n|---|---|---|---|---|\n")
	for _, t := range ts {
		want := ""
		if !t.Info && t.Op != "" {
			v := t.Want
			want = t.Op + " " + t.Value(&v)
		}
		verdict := t.Verdict()
		if t.Note != "" {
			verdict += ": " + t.Note
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", t.ID, cell(t.Text), t.Value(t.Measured), want, cell(verdict))
	}
	fmt.Fprintln(w)
}

func renderWorkload(w io.Writer, wl *WorkloadResult) {
	fmt.Fprintf(w, "## %s\n\n", wl.Title)
	if wl.Note != "" {
		fmt.Fprintf(w, "%s\n\n", wl.Note)
	}
	head := "| path | GB/s | wall s | × iperf3 -Z | sender CPU s/GiB | receiver CPU s/GiB | CPU measured by (sender · receiver) |"
	sep := "|---|---:|---:|---:|---:|---:|---|"
	if wl.Latency {
		head, sep = head+" p50 µs | p99 µs |", sep+"---:|---:|"
	}
	fmt.Fprintf(w, "%s runs | note |\n%s---:|---|\n", head, sep)
	for _, p := range wl.Paths {
		fmt.Fprintln(w, pathLine(p, wl.Latency))
	}
	fmt.Fprintln(w)
}

func pathLine(p *PathResult, latency bool) string {
	s := p.Summary
	how := cell(p.SenderCPU + " · " + p.ReceiverCPU)
	if s == nil {
		cols := 6
		if latency {
			cols += 2
		}
		return fmt.Sprintf("| %s |%s %s |%s 0 | failed |", cell(p.Label), strings.Repeat(" — |", 5), how, strings.Repeat(" — |", cols-6))
	}
	line := fmt.Sprintf("| %s | %.3f | %.3f | %s | %.3f | %.3f | %s |", cell(p.Label), s.GBps, s.WallSec,
		fmtOpt(s.RatioIperfZ, "%.2f"), s.SenderCPUPerGiB, s.ReceiverCPUPerGiB, how)
	if latency {
		line += fmt.Sprintf(" %s | %s |", fmtOpt(s.P50us, "%.0f"), fmtOpt(s.P99us, "%.0f"))
	}
	return line + fmt.Sprintf(" %d | %s |", s.Runs, cell(s.Note))
}

func fmtOpt(v *float64, format string) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf(format, *v)
}

func renderMemory(w io.Writer, m *Memory) {
	if m == nil {
		return
	}
	fmt.Fprintf(w, "## ferryd memory\n\n")
	if m.Note != "" {
		fmt.Fprintf(w, "%s\n\n", m.Note)
		return
	}
	fmt.Fprintf(w, "A fresh ferryd serving a %s sparse file with MMAP, each phase cut off after %.1f s; "+
		"peak VmRSS sampled every 10 ms from /proc/<pid>/status.\n\n", FormatSize(m.SparseSize), m.DurationSec)
	fmt.Fprintf(w, "| pulls | peak RSS MiB | bytes sent (server progress) |\n|---:|---:|---:|\n")
	fmt.Fprintf(w, "| 1 | %.1f | %d |\n| %d | %.1f | %d |\n\n", m.SingleMmapMiB, m.BytesSingle, m.Concurrent, m.ConcurrentMiB, m.BytesConcurrent)
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(oneLine(s), "|", `\|`)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

const howMeasured = `## How each figure is measured

- **Order**: rounds interleave the paths: each round runs every workload's paths one after another, forward in odd rounds
  and backward in even ones (A B C, C B A, …). Before each path, untimed, ferry-bench runs a Go GC of itself and waits
  until the servers are idle (no CPU tick for 50 ms, at most 2 s); before each path of the large file into a file it
  also runs syncfs on the destination's file system, so a path does not pay for the last one's writes and deletes.
  The tables show medians over rounds.
  A warm-up pass of the small-file workloads runs first. The large file is re-read (cat > /dev/null) before each round's
  large-file workloads, so it is in the page cache.
- **wall s**: ferry-bench's monotonic clock around one transfer, or around one batch of small files. For peers driven by a
  command (curl, iperf3 -c, tar c | nc) it includes starting the process; in-process clients (Ferry, the gRPC client,
  Go's HTTP client) reuse a warm connection.
- **GB/s**: payload bytes / wall s, decimal GB (the directory rows count the files' bytes, not tar's headers).
  iperf3's own figure and Ferry's receiver figure are in results.json as tool_gbps.
- **× iperf3 -Z**: the median over rounds of this row's GB/s divided by iperf3 -Z's in the same round.
- **CPU s/GiB**: CPU seconds (user + system) per GiB moved. How each side was measured:
  **P** = the utime + stime delta in /proc/<pid>/stat of a server process started once for the run (for nginx,
  master + worker; 10 ms ticks); **W** = the wait4 rusage of a client command, which includes what it waited for
  (the sh pipelines include tar and the nc relay); **S** = the getrusage(RUSAGE_SELF) delta of ferry-bench, where
  the in-process clients run. Sender and receiver share the same 2 cores, so neither figure is free of the other's load.
- **p50 / p99 µs**: nearest-rank percentiles of per-file latency within a round (request to last byte), median over rounds.
- **Peers**: iperf3 -c -n SIZE (plain and -Z) against one iperf3 -s; nginx (daemon off, 1 worker, access log off,
  config in a temp dir, stopped by pid) with sendfile on + tcp_nopush, or sendfile off, fetched by curl -o; a gRPC
  server-streaming download written in the bench (google.protobuf.BytesValue chunks of 1 MiB or 64 KiB, and 1 MiB or
  4 KiB for the 4 KiB files, its server a
  separate process); tar c | nc with ferry-bench as the nc relay (read/write, 64 KiB); ferryd built from this tree, as
  a separate process with default settings, and Ferry's Go client in-process. The fixed-rule rows run against a second
  ferryd started with --auto=fixed (READ_WRITE below 8 MiB, MMAP from 8 MiB: auto's rule before it measured).
- **Auto**: a request with no strategy (STRATEGY_UNSPECIFIED) leaves the choice to the server, which measures each
  strategy per size class and sends a share of transfers with another to keep measuring it. The auto rows are measured as
  they are, explorations included. Each auto row records per round, from every transfer's report, the strategy that moved
  the bytes (sender.strategy) and whether the transfer was an exploration (Report.auto): "Auto's choice" above, and
  samples[].auto in results.json. After each round, untimed, ferry-bench reads every ferryd's policy
  (GetCapabilities auto) and keeps each size class's pick.
- **Streams**: client.DownloadOptions.Streams = N splits the file's range into N parts, each a Download of its own on its
  own data connection, all at once. The held rows pull from a ferryd started with --max-flow-rate, which has the kernel
  pace each of its data connections (SO_MAX_PACING_RATE); the plain rows from a ferryd without it. In target 4 "the link"
  is the plain one-stream row of the same round, and N held streams are expected to reach N times one held stream, but
  no more than 0.9 times the link. A run fails a streams row whose report has fewer parts than it asked for (the server
  caps them at its --max-file-streams).
- **The best single strategy** of a size class is the row of one named strategy with the best median (GB/s; p50 for
  4 KiB files); auto is compared with it round by round.
`

// renderAuto writes how auto chose: for each row whose strategy the
// server chose, the round's pick and explorations, from the reports;
// then each ferryd's policy as GetCapabilities gave it after each round.
func renderAuto(w io.Writer, r *Results) {
	type autoRow struct {
		name string
		p    *PathResult
	}
	var rows []autoRow
	rounds := 0
	for _, wl := range r.Workloads {
		for _, p := range wl.Paths {
			has := false
			for _, s := range p.Samples {
				has = has || s.Auto != nil
				rounds = max(rounds, s.Round)
			}
			if has {
				rows = append(rows, autoRow{wl.ID + ": " + p.Label, p})
			}
		}
	}
	if len(rows) == 0 && len(r.AutoPolicies) == 0 {
		return
	}
	fmt.Fprintf(w, "## Auto's choice\n\n")
	if len(rows) > 0 {
		fmt.Fprintf(w, "The strategy that moved each auto row's transfers, round by round, from each transfer's report "+
			"(sender.strategy, and Report.auto for the explorations: transfers the server sent with another strategy "+
			"than its pick, to keep measuring it). \"not reported\": the reports did not say the server chose. "+
			"Per row and round in results.json as samples[].auto.\n\n")
		fmt.Fprintf(w, "| row |%s\n|---|%s\n", roundHeads(rounds), strings.Repeat("---|", rounds))
		for _, ar := range rows {
			cells := make([]string, rounds)
			for i := range cells {
				cells[i] = "—"
			}
			for _, s := range ar.p.Samples {
				if s.Round >= 1 && s.Round <= rounds {
					cells[s.Round-1] = s.Auto.String()
					if s.Err != "" {
						cells[s.Round-1] = "failed"
					}
				}
			}
			fmt.Fprintf(w, "| %s |%s\n", cell(ar.name), cellsAfter(cells))
		}
		fmt.Fprintln(w)
	}
	for _, ap := range r.AutoPolicies {
		renderPolicy(w, ap)
	}
}

func roundHeads(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, " round %d |", i)
	}
	return b.String()
}

// renderPolicy writes one ferryd's policy: per size class, the pick
// after each round, why it stood at the end, and what each strategy
// measured. Classes for receivers across a network are left to
// results.json: every transfer here is on loopback.
func renderPolicy(w io.Writer, ap *AutoPolicy) {
	fmt.Fprintf(w, "**%s**, GetCapabilities auto", ap.Server)
	if ap.Note != "" {
		fmt.Fprintf(w, ": %s.\n\n", ap.Note)
		if len(ap.Classes) == 0 {
			return
		}
	} else {
		fmt.Fprintf(w, ": objective %q, explores %.1f%% of auto transfers, seeded by %q", ap.Objective, 100*ap.ExploreShare, orStr(ap.Seed, "(unsaid)"))
		if len(ap.Classes) == 0 {
			fmt.Fprintf(w, "; no size classes.\n\n")
			return
		}
		fmt.Fprintf(w, " (classes for a receiver across a network: results.json).\n\n")
	}
	fmt.Fprintf(w, "| size class |%s at the end: why | measured by strategy at the end (GB/s, samples) |\n|---|%s---|---|\n",
		roundHeads(len(ap.Rounds)), strings.Repeat("---|", len(ap.Rounds)))
	for _, c := range ap.Classes {
		if c.Network == "network" {
			continue
		}
		var picks []string
		for _, rp := range ap.Rounds {
			picks = append(picks, orStr(rp.Picks[c.Class], "—"))
		}
		var costs []string
		for _, sc := range c.Costs {
			s := fmt.Sprintf("%s %.3f (%d)", sc.Strategy, sc.GBps, sc.Samples)
			if sc.Failed {
				s = sc.Strategy + " failed"
			}
			costs = append(costs, s)
		}
		if c.LeftOutForSteal > 0 {
			costs = append(costs, fmt.Sprintf("%d left out for steal", c.LeftOutForSteal))
		}
		fmt.Fprintf(w, "| %s |%s %s: %s | %s |\n", cell(c.Class), cellsAfter(picks), cell(c.Pick), cell(orStr(c.Reason, "—")),
			cell(orStr(strings.Join(costs, ", "), "—")))
	}
	fmt.Fprintln(w)
}

// cellsAfter is " a | b |": table cells that follow a "|".
func cellsAfter(cs []string) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, " %s |", cell(c))
	}
	return b.String()
}
