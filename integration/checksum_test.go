package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// stdSum is the checksum of p by the standard library, by the name the
// ferry flag takes.
func stdSum(alg string, p []byte) []byte {
	if alg == "crc32c" {
		return binary.BigEndian.AppendUint32(nil, crc32.Checksum(p, crc32.MakeTable(crc32.Castagnoli)))
	}
	s := sha256.Sum256(p)
	return s[:]
}

// parseReport parses ferry pull --json output.
func parseReport(t *testing.T, out string) *ferryv1.Report {
	t.Helper()
	var rep ferryv1.Report
	if err := protojson.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("ferry pull --json printed no ferry.v1.Report: %v\n%s", err, out)
	}
	return &rep
}

// TestPullChecksumCLI runs the built ferry with --checksum against a real
// ferryd: the report carries the standard library's value of the range,
// verified, into a file, /dev/null and standard output; the human report
// prints it; an unknown algorithm is refused before any call.
func TestPullChecksumCLI(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	data := writeRandom(t, root, "f.bin", 3<<20+11)
	d := startFerryd(t, root)
	for _, alg := range []string{"crc32c", "sha256"} {
		want := stdSum(alg, data[100:])
		for _, dest := range []string{filepath.Join(out, alg), os.DevNull, "-"} {
			res := ferryOK(t, "pull", "--json", "--checksum", alg, "--offset", "100", "--server", d.Addr, "f.bin", dest)
			report := res.stdout
			if dest == "-" {
				sameBytes(t, "standard output", []byte(res.stdout), data[100:])
				report = res.stderr
			}
			rep := parseReport(t, report)
			if !bytes.Equal(rep.GetChecksum().GetValue(), want) || !rep.GetChecksumVerified() {
				t.Errorf("ferry pull --checksum %s to %s: checksum %x, verified %v; want %x, verified", alg, dest, rep.GetChecksum().GetValue(), rep.GetChecksumVerified(), want)
			}
			// The receiver always hashes; SHA-256 of the file is milliseconds.
			if alg == "sha256" && rep.GetReceiver().GetChecksumCpu().AsDuration() <= 0 {
				t.Errorf("ferry pull --checksum %s to %s: receiver checksum_cpu %v, want > 0, in %s", alg, dest, rep.GetReceiver().GetChecksumCpu().AsDuration(), report)
			}
		}
		got, err := os.ReadFile(filepath.Join(out, alg))
		if err != nil {
			t.Fatal(err)
		}
		sameBytes(t, "landed file", got, data[100:])

		human := ferryOK(t, "pull", "--checksum", alg, "--offset", "100", "--server", d.Addr, "f.bin", os.DevNull)
		verdict := ", verified by the receiver"
		if alg == "crc32c" { // a CRC is a corruption check: the report says so
			verdict = ", matched by the receiver (a corruption check, not proof against tampering)"
		}
		if line := "checksum: " + strings.ToUpper(alg) + " " + hex.EncodeToString(want) + verdict; !strings.Contains(human.stdout, line) {
			t.Errorf("ferry pull --checksum %s: human report lacks %q:\n%s", alg, line, human.stdout)
		}
	}
	bad := ferry(t, "pull", "--checksum", "md5", "--server", d.Addr, "f.bin", filepath.Join(out, "md5"))
	if bad.code == 0 || !strings.Contains(bad.stderr, "md5") {
		t.Errorf("ferry pull --checksum md5: exit %d, stderr %q; want a failure naming md5", bad.code, bad.stderr)
	}
}

// TestPullChecksumMismatch: a byte damaged between ferryd and ferry (a
// proxy on the data path inverts it) fails the pull with DataLoss-like
// words and leaves neither the file nor a partial file; the same pull
// without --checksum lands the damaged bytes, unnoticed.
func TestPullChecksumMismatch(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	data := writeRandom(t, root, "f.bin", 1<<20)
	proxy := listenDataProxy(t)
	d := startFerryd(t, root, "--advertise-data", proxy.Addr())
	proxy.serve(d.DataAddr)
	proxy.corruptAt(1 + 4096)
	for _, flags := range [][]string{{"--checksum", "crc32c"}, {"--checksum", "sha256", "--resume"}} {
		dest := filepath.Join(out, flags[1])
		res := ferry(t, append(append([]string{"pull", "--server", d.Addr}, flags...), "f.bin", dest)...)
		if res.code == 0 || !strings.Contains(res.stderr, "checksum mismatch") {
			t.Errorf("ferry pull %v through a corrupting proxy: exit %d, stderr %q; want a checksum mismatch", flags, res.code, res.stderr)
		}
		for _, p := range []string{dest, dest + ".partial"} {
			if _, err := os.Lstat(p); !os.IsNotExist(err) {
				t.Errorf("ferry pull %v left %s behind (Lstat: %v)", flags, p, err)
			}
		}
	}
	dest := filepath.Join(out, "unchecked")
	ferryOK(t, "pull", "--server", d.Addr, "f.bin", dest)
	if got, _ := os.ReadFile(dest); len(got) != len(data) || bytes.Equal(got, data) {
		t.Errorf("unchecked pull through the corrupting proxy: %d bytes, intact %v; want %d damaged bytes", len(got), bytes.Equal(got, data), len(data))
	}
}

// TestPullRPCChecksum drives Pull with a checksum through the real
// grpcurl: verified in the report; through a corrupting proxy in front of
// the peer's data listener, Code: DataLoss and no file in B's root.
func TestPullRPCChecksum(t *testing.T) {
	grpcurl := toolPath(t, grpcurlTool)
	rootA, rootB := t.TempDir(), t.TempDir()
	want := writeRandom(t, rootA, "m.bin", 2<<20+3)
	proxy := listenDataProxy(t)
	a := startFerryd(t, rootA, "--advertise-data", proxy.Addr())
	proxy.serve(a.DataAddr)
	b := startFerryd(t, rootB, "--allow-pull")

	body := `{"peer": "` + a.Addr + `", "path": "m.bin", "destination": "m.bin", "checksum": "CHECKSUM_ALGORITHM_SHA256"}`
	r := run(t, os.Environ(), grpcurl, "-plaintext", "-d", body, b.Addr, serviceName+"/Pull")
	if r.code != 0 {
		t.Fatalf("grpcurl Pull: exit %d\n%s", r.code, r.stderr)
	}
	msgs := pullMessages(t, r.stdout)
	report := msgs[len(msgs)-1].GetReport()
	if !report.GetChecksumVerified() || !bytes.Equal(report.GetChecksum().GetValue(), stdSum("sha256", want)) {
		t.Errorf("grpcurl Pull: checksum %x, verified %v; want %x, verified", report.GetChecksum().GetValue(), report.GetChecksumVerified(), stdSum("sha256", want))
	}
	got, err := os.ReadFile(filepath.Join(rootB, "m.bin"))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("B's m.bin holds %d bytes (err %v), want A's %d", len(got), err, len(want))
	}

	proxy.corruptAt(1 + 1<<20)
	bad := strings.Replace(body, `"destination": "m.bin"`, `"destination": "bad.bin"`, 1)
	r = run(t, os.Environ(), grpcurl, "-plaintext", "-d", bad, b.Addr, serviceName+"/Pull")
	if r.code == 0 || !strings.Contains(r.stderr, "Code: DataLoss") {
		t.Errorf("grpcurl Pull through a corrupting proxy: exit %d, stderr %q; want Code: DataLoss", r.code, r.stderr)
	}
	for _, p := range []string{"bad.bin", "bad.bin.partial"} {
		if _, err := os.Lstat(filepath.Join(rootB, p)); !os.IsNotExist(err) {
			t.Errorf("a DataLoss Pull left %s behind (Lstat: %v)", p, err)
		}
	}
}

// TestPullInlineCLI: ferry pull with the server's choice takes a file of
// at most 64 KiB inside the offer; a named strategy, or one byte more,
// uses the data channel.
func TestPullInlineCLI(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	small := writeRandom(t, root, "small", 4<<10)
	edge := writeRandom(t, root, "edge", 64<<10+1)
	d := startFerryd(t, root)
	for _, tc := range []struct {
		name   string
		args   []string
		want   []byte
		inline bool
	}{
		{"auto", []string{"small"}, small, true},
		{"named", []string{"--strategy", "sendfile", "small"}, small, false},
		{"named-inline", []string{"--strategy", "sendfile", "--inline-max", "65536", "small"}, small, true},
		{"64KiB+1", []string{"edge"}, edge, false},
	} {
		dest := filepath.Join(out, tc.name)
		res := ferryOK(t, append(append([]string{"pull", "--json", "--server", d.Addr}, tc.args...), dest)...)
		rep := parseReport(t, res.stdout)
		if rep.GetSender().GetInline() != tc.inline || rep.GetReceiver().GetInline() != tc.inline {
			t.Errorf("ferry pull %v: sender inline %v, receiver inline %v; want %v", tc.args, rep.GetSender().GetInline(), rep.GetReceiver().GetInline(), tc.inline)
		}
		if tc.inline {
			checkInline(t, rep, len(tc.want))
		}
		got, err := os.ReadFile(dest)
		if err != nil {
			t.Fatal(err)
		}
		sameBytes(t, tc.name, got, tc.want)
	}
}

// checkInline checks the report of a range that came inside the offer:
// the sender read it with one counted pread64 (none when empty) and made
// no data-channel call, and reports READ_WRITE, inline, on both sides.
func checkInline(t *testing.T, rep *ferryv1.Report, n int) {
	t.Helper()
	if n > 64<<10 {
		t.Errorf("%d bytes came inline; the limit is 64 KiB", n)
	}
	rw := ferryv1.Strategy_STRATEGY_READ_WRITE
	checkSide(t, "sender", rep.GetSender(), n, rw)
	checkSide(t, "receiver", rep.GetReceiver(), n, rw)
	wantPreads := uint64(1)
	if n == 0 {
		wantPreads = 0
	}
	calls := rep.GetSender().GetSyscalls()
	if calls["pread64"] != wantPreads || len(calls) > int(wantPreads) {
		t.Errorf("inline sender calls %v, want %d pread64 and nothing else", calls, wantPreads)
	}
	if !rep.GetReceiver().GetInline() {
		t.Error("inline sender, but the receiver's stats do not say inline")
	}
}
