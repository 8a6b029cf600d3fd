package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// tracedCalls are the system calls whose counts in ferryd's reports are
// checked against strace's.
var tracedCalls = []string{"sendfile", "splice"}

// TestStraceAgreesWithReports attaches strace to a running ferryd (after
// its start-up probe, which makes one sendfile and two splice calls of its
// own), pulls files with SENDFILE and SPLICE (one of them paced by
// --limit-rate; the same files again inside one session, framed on its
// bound connections), and requires the senders'
// reported call counts to add up to exactly what strace counted. Each
// strategy also moves one file to a reader that holds still until the
// sender has stalled, so EAGAIN returns are certainly among the calls.
//
// ferryd runs with Go's asynchronous preemption off (GODEBUG
// asyncpreemptoff=1): its SIGURG can land while a splice or sendfile is
// under way, and the kernel then restarts the call (ERESTARTSYS), which
// strace -c counts as two calls where the program made one. Seen in CI:
// strace 37 sendfile calls, the reports 36.
func TestStraceAgreesWithReports(t *testing.T) {
	straceBin, err := exec.LookPath("strace")
	if err != nil {
		t.Fatalf("strace is required (CI installs it): %v", err)
	}
	root, out := t.TempDir(), t.TempDir()
	sizes := []int{5<<20 + 1, 9<<20 + 4095, 3 << 20}
	for i, n := range sizes {
		writeRandom(t, root, fmt.Sprint("f", i), n)
	}
	big := writeRandom(t, root, "big", 32<<20)
	d := startFerrydEnv(t, root, []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		[]string{"GODEBUG=" + strings.TrimPrefix(strings.TrimSpace(os.Getenv("GODEBUG")+",asyncpreemptoff=1"), ",")})
	tr := attachStrace(t, straceBin, d.cmd.Process.Pid)
	reported := map[string]uint64{}
	count := func(what string, rep *ferryv1.Report) {
		for _, c := range tracedCalls {
			reported[c] += rep.GetSender().GetSyscalls()[c]
		}
		t.Logf("%s: %d bytes, %d rounds, calls %v", what, rep.GetSender().GetBytes(), rep.GetSender().GetRounds(), rep.GetSender().GetSyscalls())
	}
	for _, s := range []string{"sendfile", "splice"} {
		for i, n := range sizes {
			name := fmt.Sprint("f", i)
			res := ferryOK(t, "pull", "--json", "--server", d.Addr, "--strategy", s, name, filepath.Join(out, s+name))
			count(s+" "+name, checkJSONReport(t, res.stdout, name, 0, n, senderStrategy(s)))
		}
		// Paced (--limit-rate): more, smaller rounds of the same calls.
		res := ferryOK(t, "pull", "--json", "--server", d.Addr, "--strategy", s, "--limit-rate", "32MiB", "f2", filepath.Join(out, s+"paced"))
		count(s+" paced", checkJSONReport(t, res.stdout, "f2", 0, sizes[2], senderStrategy(s)))
		count(s+" stalled", stalledPull(t, d, "big", big, senderStrategy(s)))
		// The same files inside one session: framed on bound connections.
		res = ferryOK(t, "pull", "--json", "--server", d.Addr, "--strategy", s, "f0", "f1", "f2", t.TempDir())
		reps := parseJSONReports(t, res.stdout)
		if len(reps) != len(sizes) {
			t.Fatalf("session pull with %s: %d reports, want %d", s, len(reps), len(sizes))
		}
		for _, rep := range reps {
			if rep.GetSender().GetStrategy() != senderStrategy(s) {
				t.Errorf("session pull of %s: sender strategy %v, want %v", rep.GetPath(), rep.GetSender().GetStrategy(), senderStrategy(s))
			}
			count(s+" session "+rep.GetPath(), rep)
		}
	}
	traced := tr.stop(t)
	calls, errs := map[string]uint64{}, map[string]uint64{}
	for name, row := range traced {
		calls[name], errs[name] = row.calls, row.errors
	}
	if diff := cmp.Diff(reported, calls); diff != "" {
		t.Errorf("system calls: ferryd's reports and strace -c disagree (-reports +strace):\n%s", diff)
	}
	for _, c := range tracedCalls {
		if reported[c] == 0 || errs[c] == 0 {
			t.Errorf("%s: %d calls reported, %d failed (EAGAIN) per strace; want both > 0", c, reported[c], errs[c])
		}
	}
	d.Stop(t)
}

// stalledPull moves path to a reader that reads nothing until the sender
// has stalled, then checks the bytes and returns the report.
func stalledPull(t *testing.T, d *ferryd, path string, want []byte, s ferryv1.Strategy) *ferryv1.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := startRawPull(ctx, t, d, &ferryv1.DownloadRequest{Path: path, Strategy: s})
	p.awaitStalled(t)
	got, rep := p.finish(t)
	sameBytes(t, "stalled pull", got, want)
	if rep.GetSender().GetStrategy() != s {
		t.Errorf("stalled pull: sender strategy %v, want %v", rep.GetSender().GetStrategy(), s)
	}
	return rep
}

// senderStrategy is the API strategy of a --strategy value.
func senderStrategy(flag string) ferryv1.Strategy {
	for _, x := range strategies {
		if x.flag == flag {
			return x.api
		}
	}
	panic("unknown strategy " + flag)
}

// TestStraceAgreesWithReceiverReports runs the ferry CLI under
// `strace -f -c` and requires the receiver's reported splice and
// sync_file_range counts to be exactly strace's, for pulls into a file
// (spliced socket -> pipe -> file, written back every 8 MiB) and into
// /dev/null (spliced, no writeback), and none of either for a pull with
// --receive-read. Only the receive loop makes these calls in the CLI;
// read and write are left out because gRPC makes them too. The CLI runs
// without asynchronous preemption, as ferryd does above. Over two
// parallel streams (--streams 2) the parts' receive loops run at once,
// on threads of their own: the parts' counts, summed, must be strace's
// (and the report's summed receiver figures the same sums).
func TestStraceAgreesWithReceiverReports(t *testing.T) {
	straceBin, err := exec.LookPath("strace")
	if err != nil {
		t.Fatalf("strace is required (CI installs it): %v", err)
	}
	root, out := t.TempDir(), t.TempDir()
	want := writeRandom(t, root, "f", 20<<20+3)
	d := startFerryd(t, root)
	env := append(cleanEnv(), "GODEBUG=asyncpreemptoff=1")
	for _, tt := range []struct {
		name, dest string
		args       []string
		writeback  uint64 // sync_file_range calls: at 8 and 16 MiB of a file
	}{
		{"file", filepath.Join(out, "f"), nil, 2},
		{"null", os.DevNull, nil, 0},
		{"file-read", filepath.Join(out, "g"), []string{"--receive-read"}, 2},
		{"file-streams", filepath.Join(out, "s"), []string{"--streams", "2"}, 2}, // at 8 MiB of each 10 MiB part
	} {
		t.Run(tt.name, func(t *testing.T) {
			summary := filepath.Join(t.TempDir(), "strace.out")
			args := append([]string{"-f", "-c", "-e", "trace=splice,sync_file_range", "-o", summary, bin.ferry,
				"pull", "--json", "--no-progress", "--server", d.Addr, "--strategy", "sendfile"}, tt.args...)
			res := run(t, env, straceBin, append(args, "f", tt.dest)...)
			if res.code != 0 {
				t.Fatalf("strace ferry pull: exit %d\n%s", res.code, res.stderr)
			}
			var rep *ferryv1.Report
			if slices.Contains(tt.args, "--streams") {
				rep = checkPartsReport(t, res.stdout, "f", len(want), 2)
			} else {
				rep = checkJSONReport(t, res.stdout, "f", 0, len(want), ferryv1.Strategy_STRATEGY_SENDFILE)
			}
			if tt.dest != os.DevNull {
				got, err := os.ReadFile(tt.dest)
				if err != nil {
					t.Fatal(err)
				}
				sameBytes(t, tt.name, got, want)
			}
			text, err := os.ReadFile(summary)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := parseStraceSummary(string(text))
			if err != nil {
				t.Fatalf("strace summary: %v\n%s", err, text)
			}
			recv := rep.GetReceiver()
			reported := map[string]uint64{}
			traced := map[string]uint64{}
			for _, c := range []string{"splice", "sync_file_range"} {
				if n := recv.GetSyscalls()[c]; n > 0 {
					reported[c] = n
				}
				if parts := rep.GetParts(); len(parts) > 0 {
					var sum uint64
					for _, p := range parts {
						sum += p.GetReceiver().GetSyscalls()[c]
					}
					if sum != reported[c] {
						t.Errorf("%s: the parts' receivers made %d calls, the summed receiver %d", c, sum, reported[c])
					}
				}
				if n := rows[c].calls; n > 0 {
					traced[c] = n
				}
			}
			if diff := cmp.Diff(reported, traced); diff != "" {
				t.Errorf("receiver's report and strace -c disagree (-report +strace):\n%s", diff)
			}
			spliced := !slices.Contains(tt.args, "--receive-read")
			if spliced != (reported["splice"] >= 2*recv.GetRounds()) || spliced != (recv.GetPipeSize() > 0) {
				t.Errorf("receiver: %d rounds, syscalls %v, pipe %d bytes; want spliced = %v", recv.GetRounds(), recv.GetSyscalls(), recv.GetPipeSize(), spliced)
			}
			if reported["sync_file_range"] != tt.writeback {
				t.Errorf("receiver: %d sync_file_range calls, want %d", reported["sync_file_range"], tt.writeback)
			}
		})
	}
}
