package service_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/service"
)

// allStrategies is every value of the API enum, the server's choice first.
var allStrategies = []ferryv1.Strategy{
	ferryv1.Strategy_STRATEGY_UNSPECIFIED,
	ferryv1.Strategy_STRATEGY_READ_WRITE,
	ferryv1.Strategy_STRATEGY_MMAP,
	ferryv1.Strategy_STRATEGY_SENDFILE,
	ferryv1.Strategy_STRATEGY_SPLICE,
}

// wantSyscalls are the calls each strategy's sender must have counted.
var wantSyscalls = map[ferryv1.Strategy][]string{
	ferryv1.Strategy_STRATEGY_READ_WRITE: {"pread64", "write"},
	ferryv1.Strategy_STRATEGY_MMAP:       {"mmap", "munmap", "write"},
	ferryv1.Strategy_STRATEGY_SENDFILE:   {"sendfile"},
	ferryv1.Strategy_STRATEGY_SPLICE:     {"splice"},
}

func TestDownload(t *testing.T) {
	n := startNode(t, service.Config{})
	const size = 3<<20 + 7 // not a whole number of windows or buffers
	src := writeFile(t, n.root, "dir/src.bin", size)
	caps := n.caps(t)
	out := t.TempDir()
	ranges := []struct {
		name           string
		offset, length uint64
	}{
		{"whole", 0, 0},
		{"range", 4095, 1<<20 + 2},
		{"range past the end", size - 10, 100},
		{"empty at the end", size, 0},
	}
	for _, strategy := range allStrategies {
		t.Run(strategy.String(), func(t *testing.T) {
			want := func(length uint64) ferryv1.Strategy { return expected(caps, strategy, length) }
			if !slices.Contains(caps.Strategies, want(size)) {
				t.Skipf("this host does not support %v (supported: %v)", want(size), caps.Strategies)
			}
			for _, r := range ranges {
				dest := filepath.Join(out, strategy.String()+"-"+r.name)
				opts := client.DownloadOptions{Offset: r.offset, Length: r.length, Strategy: strategy}
				report, err := n.client.Download(testCtx(t), "dir/src.bin", dest, opts)
				if err != nil {
					t.Fatalf("Download(%s, %+v) = %v", r.name, opts, err)
				}
				end := size
				if r.length > 0 {
					end = min(size, int(r.offset+r.length))
				}
				wantData := src[r.offset:end]
				checkLanded(t, dest, wantData)
				checkReport(t, report, want(uint64(len(wantData))), r.offset, uint64(len(wantData)))
			}
			report, err := n.client.Download(testCtx(t), "dir/src.bin", os.DevNull, client.DownloadOptions{Strategy: strategy})
			if err != nil {
				t.Fatalf("Download(%s) = %v", os.DevNull, err)
			}
			checkReport(t, report, want(size), 0, size)
		})
	}
}

// checkLanded checks that dest holds want and that no partial file is
// left beside it.
func checkLanded(t *testing.T, dest string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatalf("reading the destination: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: got %d bytes, want %d bytes equal to the source range", dest, len(got), len(want))
	}
	if _, err := os.Stat(dest + ".partial"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(%s.partial) = %v, want it gone", dest, err)
	}
}

func checkReport(t *testing.T, r *ferryv1.Report, strategy ferryv1.Strategy, offset, length uint64) {
	t.Helper()
	if r.GetPath() != "dir/src.bin" || r.GetOffset() != offset || r.GetLength() != length || r.GetTransferId() == "" {
		t.Errorf("report (path, offset, length, id) = (%q, %d, %d, %q), want (%q, %d, %d, an id)",
			r.GetPath(), r.GetOffset(), r.GetLength(), r.GetTransferId(), "dir/src.bin", offset, length)
	}
	s := r.GetSender()
	if s.GetStrategy() != strategy || s.GetBytes() != length {
		t.Errorf("sender (strategy, bytes) = (%v, %d), want (%v, %d)", s.GetStrategy(), s.GetBytes(), strategy, length)
	}
	if m := s.GetModel(); m == nil || m.GetDescription() == "" || m.GetDmaCopies() == 0 {
		t.Errorf("sender model = %v, want one with a description and DMA copies", m)
	}
	if !s.GetThreadMeasured() || s.GetThreadId() <= 0 {
		t.Errorf("sender (thread_measured, thread_id) = (%v, %d), want (true, > 0)", s.GetThreadMeasured(), s.GetThreadId())
	}
	var calls uint64
	for _, c := range s.GetSyscalls() {
		calls += c
	}
	if s.GetModeSwitches() != 2*calls {
		t.Errorf("sender mode_switches = %d, want 2 x %d syscalls", s.GetModeSwitches(), calls)
	}
	if length > 0 {
		for _, name := range wantSyscalls[strategy] {
			if s.GetSyscalls()[name] == 0 {
				t.Errorf("sender syscalls = %v, want %s counted", s.GetSyscalls(), name)
			}
		}
	}
	if want := length * uint64(wantCPUCopies(strategy, s.GetModel())); s.GetCpuCopiedBytes() != want {
		t.Errorf("sender cpu_copied_bytes = %d, want %d for %v of %d bytes", s.GetCpuCopiedBytes(), want, strategy, length)
	}
	rc := r.GetReceiver()
	if rc.GetBytes() != length || rc.GetSyscalls()["read"] == 0 || rc.GetStrategy() != strategy {
		t.Errorf("receiver (bytes, read calls, strategy) = (%d, %d, %v), want (%d, > 0, %v)",
			rc.GetBytes(), rc.GetSyscalls()["read"], rc.GetStrategy(), length, strategy)
	}
}

// wantCPUCopies is the model's CPU copies per round, as docs/strategies.md
// tabulates them:
// SENDFILE's depends on whether the interface gathers, which the model
// reports.
func wantCPUCopies(s ferryv1.Strategy, m *ferryv1.CopyModel) int {
	switch s {
	case ferryv1.Strategy_STRATEGY_READ_WRITE:
		return 2
	case ferryv1.Strategy_STRATEGY_MMAP:
		return 1
	case ferryv1.Strategy_STRATEGY_SENDFILE:
		if m.GetGather() {
			return 0
		}
		return 1
	}
	return 0
}

// expected is the strategy a request for strategy gets for a transfer of
// length bytes: itself, or for the server's choice the default that
// GetCapabilities names for that length.
func expected(caps *ferryv1.GetCapabilitiesResponse, strategy ferryv1.Strategy, length uint64) ferryv1.Strategy {
	switch {
	case strategy != ferryv1.Strategy_STRATEGY_UNSPECIFIED:
		return strategy
	case length < caps.GetSmallBelow():
		return caps.GetDefaultSmallStrategy()
	}
	return caps.GetDefaultStrategy()
}
