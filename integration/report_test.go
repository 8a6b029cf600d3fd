package integration

import (
	"encoding/json"
	"strings"
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/testing/protocmp"
)

// senderCalls are the system calls each strategy's sender must make for a
// non-empty range, and those it must not (READ_WRITE must not quietly
// become sendfile, MMAP must not read into a buffer).
var senderCalls = map[ferryv1.Strategy]struct{ must, mustNot []string }{
	ferryv1.Strategy_STRATEGY_READ_WRITE: {[]string{"pread64", "write"}, []string{"sendfile", "splice", "mmap"}},
	ferryv1.Strategy_STRATEGY_MMAP:       {[]string{"mmap", "write"}, []string{"sendfile", "splice", "pread64"}},
	ferryv1.Strategy_STRATEGY_SENDFILE:   {[]string{"sendfile"}, []string{"splice", "write", "pread64"}},
	ferryv1.Strategy_STRATEGY_SPLICE:     {[]string{"splice"}, []string{"sendfile", "write", "pread64"}},
}

// checkJSONReport parses `ferry pull --json` output and checks it: every
// field printed, zeros included; the range; the strategy; and the figures
// that follow from the bytes and the counted calls.
func checkJSONReport(t *testing.T, out, path string, offset, n int, strategy ferryv1.Strategy) *ferryv1.Report {
	t.Helper()
	checkJSONKeys(t, out)
	var rep ferryv1.Report
	if err := protojson.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("ferry pull --json printed no ferry.v1.Report: %v\n%s", err, out)
	}
	want := &ferryv1.Report{Path: path, Offset: uint64(offset), Length: uint64(n)}
	ignore := protocmp.IgnoreFields(&ferryv1.Report{}, "transfer_id", "sender", "receiver", "auto")
	if diff := cmp.Diff(want, &rep, protocmp.Transform(), ignore); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if rep.GetTransferId() == "" {
		t.Error("report has no transfer id")
	}
	if rep.GetSender().GetInline() { // ferry pull --strategy auto takes up to 64 KiB inline
		checkInline(t, &rep, n)
		return &rep
	}
	checkSide(t, "sender", rep.GetSender(), n, strategy)
	checkSide(t, "receiver", rep.GetReceiver(), n, strategy)
	checkSender(t, rep.GetSender(), n, strategy)
	return &rep
}

// checkPartsReport parses a `ferry pull --json --streams N` report of a
// whole file of n bytes and checks it: parts in range order that cover
// the file, each with both sides' figures and a transfer id of its own,
// and both sides' bytes summed at the top.
func checkPartsReport(t *testing.T, out, path string, n, parts int) *ferryv1.Report {
	t.Helper()
	checkJSONKeys(t, out)
	var rep ferryv1.Report
	if err := protojson.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("ferry pull --json printed no ferry.v1.Report: %v\n%s", err, out)
	}
	if rep.GetPath() != path || rep.GetOffset() != 0 || rep.GetLength() != uint64(n) || len(rep.GetParts()) != parts {
		t.Fatalf("report of %q [%d, +%d) with %d parts; want %q [0, +%d) with %d", rep.GetPath(), rep.GetOffset(), rep.GetLength(), len(rep.GetParts()), path, n, parts)
	}
	next := uint64(0)
	for i, p := range rep.GetParts() {
		if p.GetOffset() != next || p.GetTransferId() == "" || p.GetSender().GetBytes() != p.GetLength() || p.GetReceiver().GetBytes() != p.GetLength() {
			t.Errorf("part %d: [%d, +%d), id %q, sender %d bytes, receiver %d; want it from %d, an id, its length each side",
				i, p.GetOffset(), p.GetLength(), p.GetTransferId(), p.GetSender().GetBytes(), p.GetReceiver().GetBytes(), next)
		}
		next += p.GetLength()
	}
	if next != uint64(n) || rep.GetSender().GetBytes() != uint64(n) || rep.GetReceiver().GetBytes() != uint64(n) {
		t.Errorf("parts end at %d, summed bytes sender %d, receiver %d; want %d each", next, rep.GetSender().GetBytes(), rep.GetReceiver().GetBytes(), n)
	}
	return &rep
}

// checkSide checks what holds for both sides' statistics.
func checkSide(t *testing.T, side string, st *ferryv1.TransferStats, n int, strategy ferryv1.Strategy) {
	t.Helper()
	if st.GetStrategy() != strategy || st.GetBytes() != uint64(n) {
		t.Errorf("%s: strategy %v, bytes %d; want %v, %d", side, st.GetStrategy(), st.GetBytes(), strategy, n)
	}
	var calls uint64
	for _, c := range st.GetSyscalls() {
		calls += c
	}
	if got := st.GetModeSwitches(); got != 2*calls {
		t.Errorf("%s: mode_switches = %d, want 2 x %d counted calls", side, got, calls)
	}
	if got, want := st.GetCpuCopiedBytes(), uint64(n)*uint64(st.GetModel().GetCpuCopies()); got != want {
		t.Errorf("%s: cpu_copied_bytes = %d, want %d bytes x %d copies", side, got, n, st.GetModel().GetCpuCopies())
	}
	if st.GetDuration().AsDuration() < 0 || st.GetUserCpu().AsDuration() < 0 || st.GetSystemCpu().AsDuration() < 0 {
		t.Errorf("%s: negative duration or CPU time: %v", side, st)
	}
}

// checkSender checks the sender's calls and copy model for its strategy.
func checkSender(t *testing.T, st *ferryv1.TransferStats, n int, strategy ferryv1.Strategy) {
	t.Helper()
	calls := st.GetSyscalls()
	for _, name := range senderCalls[strategy].mustNot {
		if calls[name] != 0 {
			t.Errorf("sender %v made %d %s calls: %v", strategy, calls[name], name, calls)
		}
	}
	for _, name := range senderCalls[strategy].must {
		if n > 0 && calls[name] == 0 {
			t.Errorf("sender %v made no %s call for %d bytes: %v", strategy, name, n, calls)
		}
	}
	m := st.GetModel()
	want := map[ferryv1.Strategy]uint32{
		ferryv1.Strategy_STRATEGY_READ_WRITE: 2,
		ferryv1.Strategy_STRATEGY_MMAP:       1,
		ferryv1.Strategy_STRATEGY_SENDFILE:   1,
		ferryv1.Strategy_STRATEGY_SPLICE:     0,
	}[strategy]
	if m.GetGather() {
		want = 0
	}
	if m.GetCpuCopies() != want || m.GetGather() && strategy != ferryv1.Strategy_STRATEGY_SENDFILE {
		t.Errorf("sender %v model: %d CPU copies, gather %v; want %d", strategy, m.GetCpuCopies(), m.GetGather(), want)
	}
}

// checkJSONKeys requires every field of Report, and of the TransferStats
// and CopyModel in it, to be printed under its JSON name, zeros included.
func checkJSONKeys(t *testing.T, out string) {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("ferry pull --json: %v\n%s", err, out)
	}
	missing := missingKeys(raw, (&ferryv1.Report{}).ProtoReflect().Descriptor(), "")
	for _, k := range []string{"sender", "receiver"} {
		for _, f := range []string{"cpuCopiedBytes", "voluntaryContextSwitches", "involuntaryContextSwitches", "syscalls", "model"} {
			if obj, _ := raw[k].(map[string]any); obj[f] == nil {
				missing = append(missing, k+"."+f)
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("ferry pull --json lacks %s:\n%s", strings.Join(missing, ", "), out)
	}
}

// missingKeys lists the fields of md absent from obj, descending into the
// ferry.v1 messages it holds.
func missingKeys(obj map[string]any, md protoreflect.MessageDescriptor, prefix string) []string {
	var missing []string
	fields := md.Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		v, ok := obj[f.JSONName()]
		if !ok {
			missing = append(missing, prefix+f.JSONName())
			continue
		}
		sub, isObj := v.(map[string]any)
		if isObj && f.Message() != nil && !f.IsMap() && f.Message().ParentFile().Package() == "ferry.v1" {
			missing = append(missing, missingKeys(sub, f.Message(), prefix+f.JSONName()+".")...)
		}
	}
	return missing
}
