package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
)

// The labels of stats.proto: how each figure was obtained.
const (
	measured = "MEASURED"
	counted  = "COUNTED"
	derived  = "DERIVED"
	modelled = "MODELLED"
)

// printReport renders a pull's report as a summary table: the server's
// sending side and this machine's receiving side, side by side, each
// figure labelled with how it was obtained. Sizes and times are in human
// units; --json has the exact integers. wall is the whole pull's wall
// time, measured here around the call: the header uses it for an inline
// pull, whose receiver duration is one write(2), not a transfer. The
// server's text goes through safe.
func printReport(out io.Writer, src, dest string, r *ferryv1.Report, wall time.Duration) {
	s, rc := r.GetSender(), r.GetReceiver()
	fmt.Fprintln(out, reportHeader(src, dest, r, wall)+"\n")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\t\tsender (server)\treceiver (this host)")
	for _, row := range reportRows {
		if row.show == nil || row.show(s) || row.show(rc) {
			rv := row.value(rc)
			if row.how == modelled && !modelHappened(rc) {
				rv = "n/a: no socket read (inline)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", row.name, row.how, row.value(s), rv)
		}
	}
	tw.Flush()
	fmt.Fprintf(out, "\nsender model: %s\nreceiver model: %s\n", safe(s.GetModel().GetDescription()), receiverModel(rc))
	if line := checksumLine(r); line != "" {
		fmt.Fprintln(out, line)
	}
	if s.GetInline() || rc.GetInline() {
		fmt.Fprintln(out, "inline: the bytes came inside the offer, with no data connection; the sender's figures cover its file read only, the receiver's its write to the destination only")
	}
	printParts(out, r)
}

// printParts lists a parallel-streams pull's parts, one line each: the
// bytes of the file it covered, the strategy, the bytes moved, the
// receiver's duration and throughput, and the checksum's verdict. The
// table above sums them.
func printParts(out io.Writer, r *ferryv1.Report) {
	parts := r.GetParts()
	if len(parts) == 0 {
		return
	}
	fmt.Fprintf(out, "\n%d parts at once, summed above (duration: the longest part; throughput: over the wall time):\n", len(parts))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for i, p := range parts {
		rc := p.GetReceiver()
		line := fmt.Sprintf("  part %d\tbytes %d-%d\t%s\t%s\tin %s\t(%s)", i+1, p.GetOffset(), p.GetOffset()+p.GetLength()-1,
			strategyName(p.GetSender().GetStrategy()), humanBytes(rc.GetBytes()), humanDuration(rc.GetDuration().AsDuration()),
			humanRate(rc.GetThroughputBytesPerSecond()))
		if p.GetChecksum() != nil {
			line += "\tchecksum not verified"
			if p.GetChecksumVerified() {
				line = strings.TrimSuffix(line, "not verified") + "verified"
			}
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

// reportHeader is the report's first line. For a data-channel pull it
// gives the receiver's MEASURED duration and DERIVED throughput; for an
// inline pull, the wall time of the whole pull on this host (gRPC call
// included) and the rate it gives.
func reportHeader(src, dest string, r *ferryv1.Report, wall time.Duration) string {
	s, rc := r.GetSender(), r.GetReceiver()
	head := fmt.Sprintf("pulled %s -> %s: %s", safe(src), safe(dest), humanBytes(s.GetBytes()))
	if n := len(r.GetParts()); n > 0 {
		return fmt.Sprintf("%s in %s (%s) with %s over %d streams", head, humanDuration(rc.GetDuration().AsDuration()),
			humanRate(rc.GetThroughputBytesPerSecond()), strategyName(s.GetStrategy()), n)
	}
	if !s.GetInline() && !rc.GetInline() {
		return fmt.Sprintf("%s in %s (%s) with %s%s", head, humanDuration(rc.GetDuration().AsDuration()),
			humanRate(rc.GetThroughputBytesPerSecond()), strategyName(s.GetStrategy()), autoNote(r.GetAuto()))
	}
	head += " inline (inside the offer, no data connection)"
	if wall <= 0 {
		return head
	}
	return fmt.Sprintf("%s in %s (%s), the wall time of the whole pull", head, humanDuration(wall),
		humanRate(float64(s.GetBytes())/wall.Seconds()))
}

// autoNote says how the server chose the strategy, when it did.
func autoNote(a *ferryv1.AutoChoice) string {
	switch {
	case !a.GetChosenByServer():
		return ""
	case a.GetExploration():
		return fmt.Sprintf(" (the server's choice, exploring, for %s)", safe(a.GetSizeClass()))
	case a.GetSizeClass() == "":
		return " (the server's choice)"
	}
	return fmt.Sprintf(" (the server's choice for %s)", safe(a.GetSizeClass()))
}

// modelHappened reports whether t's copy model describes calls that were
// made. An inline receiver's model is that of a socket read and a write,
// but it counted no read: its figures per round fall short of the model's.
func modelHappened(t *ferryv1.TransferStats) bool {
	if !t.GetInline() || t.GetSyscalls()["read"] > 0 {
		return true
	}
	return t.GetModeSwitches() >= uint64(t.GetModel().GetModeSwitches())*max(t.GetRounds(), 1)
}

// receiverModel is the receiver's model line, marked as not what happened
// when modelHappened says so.
func receiverModel(rc *ferryv1.TransferStats) string {
	d := safe(rc.GetModel().GetDescription())
	if modelHappened(rc) {
		return d
	}
	return fmt.Sprintf("n/a, no socket read happened (counted: %s); the report's model is for a data connection: %s", syscalls(rc.GetSyscalls()), d)
}

// reportRow is one line of the summary table: a figure of both sides.
type reportRow struct {
	name, how string
	value     func(*ferryv1.TransferStats) string
	show      func(*ferryv1.TransferStats) bool // nil: always
}

var reportRows = []reportRow{
	{"strategy", "", func(t *ferryv1.TransferStats) string { return strategyName(t.GetStrategy()) }, nil},
	{"data channel", "", func(t *ferryv1.TransferStats) string { return orString(safe(t.GetEncryption()), "plaintext") },
		func(t *ferryv1.TransferStats) bool { return t.GetEncryption() != "" }},
	{"bytes", measured, func(t *ferryv1.TransferStats) string {
		return fmt.Sprintf("%s (%d)", humanBytes(t.GetBytes()), t.GetBytes())
	}, nil},
	{"duration", measured, func(t *ferryv1.TransferStats) string { return humanDuration(t.GetDuration().AsDuration()) }, nil},
	{"throughput", derived, func(t *ferryv1.TransferStats) string { return humanRate(t.GetThroughputBytesPerSecond()) }, nil},
	{"rate limit", "", func(t *ferryv1.TransferStats) string {
		if t.GetRateLimit() == 0 {
			return "none"
		}
		return humanRate(float64(t.GetRateLimit()))
	}, func(t *ferryv1.TransferStats) bool { return t.GetRateLimit() > 0 }},
	{"CPU user / sys", measured, threadFigure(func(t *ferryv1.TransferStats) string {
		s := humanDuration(t.GetUserCpu().AsDuration()) + " / " + humanDuration(t.GetSystemCpu().AsDuration())
		if t.GetEncryption() != "" {
			s += ", TLS included"
		}
		return s
	}), nil},
	{"context switches vol / invol", measured, threadFigure(func(t *ferryv1.TransferStats) string {
		return fmt.Sprintf("%d / %d", t.GetVoluntaryContextSwitches(), t.GetInvoluntaryContextSwitches())
	}), nil},
	{"syscalls", counted, func(t *ferryv1.TransferStats) string { return syscalls(t.GetSyscalls()) }, nil},
	{"rounds", counted, func(t *ferryv1.TransferStats) string { return fmt.Sprint(t.GetRounds()) }, nil},
	{"mode switches (2 x syscalls)", derived, func(t *ferryv1.TransferStats) string { return fmt.Sprint(t.GetModeSwitches()) }, nil},
	{"copies per round", modelled, func(t *ferryv1.TransferStats) string {
		m := t.GetModel()
		return fmt.Sprintf("%d CPU, %d DMA, %d mode switches", m.GetCpuCopies(), m.GetDmaCopies(), m.GetModeSwitches())
	}, nil},
	{"splice pipe", measured, func(t *ferryv1.TransferStats) string {
		if t.GetPipeSize() == 0 {
			return "none"
		}
		return humanBytes(t.GetPipeSize())
	}, func(t *ferryv1.TransferStats) bool { return t.GetPipeSize() > 0 }},
	{"CPU-copied bytes", modelled, func(t *ferryv1.TransferStats) string { return humanBytes(t.GetCpuCopiedBytes()) }, nil},
	{"DMA-copied bytes", modelled, func(t *ferryv1.TransferStats) string { return humanBytes(t.GetDmaCopiedBytes()) }, nil},
	{"checksum CPU", measured, func(t *ferryv1.TransferStats) string {
		if t.GetChecksumCached() {
			return "cached"
		}
		return humanDuration(t.GetChecksumCpu().AsDuration())
	}, func(t *ferryv1.TransferStats) bool {
		return t.GetChecksumCpu().AsDuration() > 0 || t.GetChecksumCached()
	}},
	{"thread", "", func(t *ferryv1.TransferStats) string {
		switch {
		case !t.GetThreadMeasured():
			return "not locked"
		case t.GetThreadId() == 0: // summed over parallel streams
			return "one per part (locked)"
		}
		return fmt.Sprintf("tid %d (locked)", t.GetThreadId())
	}, nil},
}

// threadFigure shows a per-thread figure only when the data path ran on
// one locked thread, the condition for it to belong to this transfer.
func threadFigure(f func(*ferryv1.TransferStats) string) func(*ferryv1.TransferStats) string {
	return func(t *ferryv1.TransferStats) string {
		if !t.GetThreadMeasured() {
			return "not measured"
		}
		return f(t)
	}
}

// checksumLine describes the report's end-to-end checksum, or is empty
// when none was asked for.
func checksumLine(r *ferryv1.Report) string {
	c, value := r.GetChecksum(), ""
	if parts := r.GetParts(); len(parts) > 0 {
		c, value = parts[0].GetChecksum(), "of each part's range"
	}
	if c == nil || c.GetAlgorithm() == ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_UNSPECIFIED {
		return ""
	}
	if value == "" {
		value = hex.EncodeToString(c.GetValue())
	}
	verdict := "not verified by the receiver"
	switch {
	case r.GetChecksumVerified() && c.GetAlgorithm() == ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_CRC32C:
		// A CRC catches corruption; a deliberate change can keep it.
		verdict = "matched by the receiver (a corruption check, not proof against tampering)"
	case r.GetChecksumVerified():
		verdict = "verified by the receiver"
	}
	name := strings.TrimPrefix(c.GetAlgorithm().String(), "CHECKSUM_ALGORITHM_")
	return fmt.Sprintf("checksum: %s %s, %s", name, value, verdict)
}

func syscalls(m map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", safe(k), m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func fsMode(m uint32) fs.FileMode { return fs.FileMode(m) }

// orString is s, or def when s is empty.
func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
