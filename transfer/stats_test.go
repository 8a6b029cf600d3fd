package transfer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrydev/ferry/fsroot"
)

// TestStats checks the counted figures of each strategy on a 40960-byte
// file sent in 4096-byte (MMAP: 8192-byte) rounds, where the counts are
// set by the code: exact where nothing but the file decides them, bounded
// below where the socket may answer EAGAIN or accept a partial write.
func TestStats(t *testing.T) {
	const size = 40960
	dir := t.TempDir()
	path, data := writeFile(t, dir, size)
	tests := []struct {
		strategy  Strategy
		rounds    int64 // exact; 0 means at least minRounds
		minRounds int64
		exact     map[string]int64   // exact counts
		atLeast   map[string]int64   // lower bounds, in rounds
		cpuCopied int64              // CPUCopiedBytes
		check     func(*Stats) error // strategy-specific
	}{
		{strategy: ReadWrite, rounds: 10, exact: map[string]int64{"pread64": 10}, atLeast: map[string]int64{"write": 1}, cpuCopied: 2 * size},
		// One fstat per window, and one at the end, check that the file
		// did not shrink.
		{strategy: Mmap, rounds: 5, exact: map[string]int64{"mmap": 5, "munmap": 5, "fstat": 6}, atLeast: map[string]int64{"write": 1}, cpuCopied: size},
		// A new server's first splice makes its pipe: pipe2, F_SETPIPE_SZ,
		// F_GETPIPE_SZ.
		{strategy: Splice, rounds: 10, exact: map[string]int64{"pipe2": 1, "fcntl": 2}, atLeast: map[string]int64{"splice": 2}, cpuCopied: 0},
		{strategy: Sendfile, minRounds: 10, atLeast: map[string]int64{"sendfile": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.strategy.String(), func(t *testing.T) {
			ts := startServer(t, small)
			tr := ts.offer(t, path, Source{Strategy: tt.strategy})
			rst, got := ts.receiveFile(t, tr, dir, ReceiveConfig{BufferSize: 4096, ReadWrite: true})
			if string(got) != string(data) {
				t.Fatalf("received %d bytes, want %d exact", len(got), size)
			}
			st, err := tr.Result()
			if err != nil {
				t.Fatalf("Result() error = %v", err)
			}
			checkCommon(t, "sender", &st, size)
			if st.Strategy != tt.strategy {
				t.Errorf("Strategy = %v, want %v", st.Strategy, tt.strategy)
			}
			if tt.rounds > 0 && st.Rounds != tt.rounds || st.Rounds < tt.minRounds {
				t.Errorf("Rounds = %d, want %d (at least %d)", st.Rounds, tt.rounds, tt.minRounds)
			}
			keys := make(map[string]bool)
			for name, want := range tt.exact {
				keys[name] = true
				if got := st.Syscalls[name]; got != want {
					t.Errorf("Syscalls[%q] = %d, want %d", name, got, want)
				}
			}
			for name, per := range tt.atLeast {
				keys[name] = true
				if got, want := st.Syscalls[name], per*st.Rounds; got < want {
					t.Errorf("Syscalls[%q] = %d, want at least %d", name, got, want)
				}
			}
			for name := range st.Syscalls {
				if !keys[name] {
					t.Errorf("Syscalls[%q] = %d, want none", name, st.Syscalls[name])
				}
			}
			gather := tt.strategy == Sendfile && ts.gather.gathers(ts.addrTCP(t))
			if diff := cmp.Diff(senderModel(tt.strategy, gather), st.Model); diff != "" {
				t.Errorf("Model mismatch (-want +got):\n%s", diff)
			}
			if tt.strategy == Sendfile && !gather {
				tt.cpuCopied = size
			}
			if got := st.CPUCopiedBytes(); got != tt.cpuCopied {
				t.Errorf("CPUCopiedBytes() = %d, want %d", got, tt.cpuCopied)
			}
			if got, want := st.DMACopiedBytes(), int64(2*size); got != want {
				t.Errorf("DMACopiedBytes() = %d, want %d", got, want)
			}
			if tt.strategy == Splice {
				if st.PipeSize < 4096 || st.PipeSize > 8192 {
					t.Errorf("PipeSize = %d, want 4096 as configured (or the kernel's minimum)", st.PipeSize)
				}
			} else if st.PipeSize != 0 {
				t.Errorf("PipeSize = %d, want 0 without splice", st.PipeSize)
			}

			// The receiver reads into a 4096-byte buffer and writes each
			// read to the file, then reads once more to see the end.
			checkCommon(t, "receiver", &rst, size)
			if rst.Rounds < 10 || rst.Syscalls["write"] != rst.Rounds || rst.Syscalls["read"] < rst.Rounds+1 {
				t.Errorf("receiver Rounds = %d, Syscalls = %v; want Rounds >= 10, write == Rounds, read > Rounds", rst.Rounds, rst.Syscalls)
			}
			if diff := cmp.Diff(receiverModel(false, false), rst.Model); diff != "" {
				t.Errorf("receiver Model mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// checkCommon checks what every measured transfer reports.
func checkCommon(t *testing.T, side string, st *Stats, size int64) {
	t.Helper()
	if st.Bytes != size {
		t.Errorf("%s Bytes = %d, want %d", side, st.Bytes, size)
	}
	if !st.ThreadMeasured || st.ThreadID <= 0 {
		t.Errorf("%s ThreadMeasured, ThreadID = %v, %d; want true, > 0", side, st.ThreadMeasured, st.ThreadID)
	}
	if st.Duration <= 0 || st.UserCPU < 0 || st.SystemCPU < 0 || st.VoluntaryCtxSwitches < 0 || st.InvoluntaryCtxSwitches < 0 {
		t.Errorf("%s Duration %v, UserCPU %v, SystemCPU %v, ctx switches %d/%d; want positive, then non-negative",
			side, st.Duration, st.UserCPU, st.SystemCPU, st.VoluntaryCtxSwitches, st.InvoluntaryCtxSwitches)
	}
	var calls int64
	for _, n := range st.Syscalls {
		calls += n
	}
	if got := st.ModeSwitches(); got != 2*calls || calls == 0 {
		t.Errorf("%s ModeSwitches() = %d, want 2 × %d calls", side, got, calls)
	}
	if st.Throughput() <= 0 {
		t.Errorf("%s Throughput() = %v, want > 0", side, st.Throughput())
	}
}

// TestStatsPipeReuse checks that a second splice transfer reuses the
// first one's pipe instead of making another.
func TestStatsPipeReuse(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeFile(t, dir, 40960)
	ts := startServer(t, small)
	for i, want := range []int64{1, 0, 0} {
		tr := ts.offer(t, path, Source{Strategy: Splice})
		ts.receiveFile(t, tr, dir, ReceiveConfig{})
		st, err := tr.Result()
		if err != nil {
			t.Fatalf("transfer %d: Result() error = %v", i, err)
		}
		if st.Syscalls["pipe2"] != want || st.Syscalls["fcntl"] != 2*want {
			t.Errorf("transfer %d: Syscalls = %v, want pipe2 %d and fcntl %d", i, st.Syscalls, want, 2*want)
		}
	}
}

// TestStatsThreadMeasureMin checks that transfers below ThreadMeasureMin
// are not locked to a thread, and those at or above it are.
func TestStatsThreadMeasureMin(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeFile(t, dir, 4096)
	for _, tt := range []struct {
		min  int64
		want bool
	}{{0, true}, {4096, true}, {4097, false}} {
		ts := startServer(t, Config{ThreadMeasureMin: tt.min})
		tr := ts.offer(t, path, Source{Strategy: ReadWrite})
		rst, _ := ts.receiveFile(t, tr, dir, ReceiveConfig{ThreadMeasureMin: tt.min})
		st, _ := tr.Result()
		if st.ThreadMeasured != tt.want || rst.ThreadMeasured != tt.want || (st.ThreadID > 0) != tt.want {
			t.Errorf("ThreadMeasureMin %d: sender ThreadMeasured %v (ThreadID %d), receiver %v; want %v",
				tt.min, st.ThreadMeasured, st.ThreadID, rst.ThreadMeasured, tt.want)
		}
		if len(st.Syscalls) == 0 || st.Duration <= 0 {
			t.Errorf("ThreadMeasureMin %d: Syscalls %v, Duration %v; want counted anyway", tt.min, st.Syscalls, st.Duration)
		}
	}
}

// TestStatsReceiver checks the receiver's figures on each of its paths:
// into /dev/null or a file, reading into a buffer or splicing through a
// pipe, and that a file's writeback starts every writebackChunk bytes.
func TestStatsReceiver(t *testing.T) {
	const size = 20<<20 + 1 // two writeback chunks and a bit
	dir := t.TempDir()
	path, data := writeFile(t, dir, size)
	ts := startServer(t, Config{})
	for _, tt := range []struct {
		name          string
		discard, read bool
	}{
		{"discard/read", true, true},
		{"discard/splice", true, false},
		{"file/read", false, true},
		{"file/splice", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := ts.offer(t, path, Source{Strategy: Sendfile})
			dstPath := os.DevNull
			if !tt.discard {
				dstPath = filepath.Join(t.TempDir(), "dst")
			}
			dst, err := fsroot.CreateDestination(dstPath)
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Abort()
			rst, err := Receive(t.Context(), ts.ticket(tr), dst, ReceiveConfig{ReadWrite: tt.read})
			if err != nil {
				t.Fatalf("Receive() = %v", err)
			}
			if err := dst.Commit(); err != nil {
				t.Fatalf("Commit() = %v", err)
			}
			if !tt.discard {
				got, err := os.ReadFile(dstPath)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("landed %d bytes (err %v), want the %d sent", len(got), err, size)
				}
			}
			checkCommon(t, "receiver", &rst, size)
			if diff := cmp.Diff(receiverModel(tt.discard, !tt.read), rst.Model); diff != "" {
				t.Errorf("receiver Model mismatch (-want +got):\n%s", diff)
			}
			sc := rst.Syscalls
			wantCopied := int64(size)
			switch {
			case tt.read:
				// A read per round (more on EAGAIN), and one to see the end.
				if sc["read"] < rst.Rounds+1 || sc["splice"] != 0 || rst.PipeSize != 0 {
					t.Errorf("reading receiver: Rounds %d, Syscalls %v, PipeSize %d; want read > Rounds, no splice", rst.Rounds, sc, rst.PipeSize)
				}
				if tt.discard && sc["write"] != 0 || !tt.discard && sc["write"] < rst.Rounds {
					t.Errorf("reading receiver: Rounds %d, Syscalls %v; want a write per round into a file, none discarding", rst.Rounds, sc)
				}
				if !tt.discard {
					wantCopied = 2 * size
				}
			default:
				// Into the pipe (more on EAGAIN) and out of it, per round;
				// one read to see the end; the payload is never read.
				if sc["splice"] < 2*rst.Rounds || sc["write"] != 0 || sc["read"] < 1 || sc["read"] > 3 || rst.PipeSize < 4096 {
					t.Errorf("splicing receiver: Rounds %d, Syscalls %v, PipeSize %d; want 2 splices a round, a read or so to see the end, no write",
						rst.Rounds, sc, rst.PipeSize)
				}
				if tt.discard {
					wantCopied = 0
				}
			}
			if got := rst.CPUCopiedBytes(); got != wantCopied {
				t.Errorf("CPUCopiedBytes() = %d, want %d", got, wantCopied)
			}
			// Writeback starts at 8 MiB and 16 MiB of a file, never for
			// /dev/null.
			if want := map[bool]int64{true: 0, false: 2}[tt.discard]; sc["sync_file_range"] != want {
				t.Errorf("Syscalls[sync_file_range] = %d, want %d", sc["sync_file_range"], want)
			}
		})
	}
}

// TestMmapWindowFor checks how the mapping budget shares out windows.
func TestMmapWindowFor(t *testing.T) {
	tests := []struct {
		cfg            Config
		active, mapped int64
		want           int64
	}{
		{Config{}, 1, 0, 4 << 20},
		{Config{}, 8, 0, 4 << 20},
		{Config{}, 32, 0, 1 << 20},
		{Config{}, 64, 0, 512 << 10},
		{Config{}, 200, 0, 160 << 10},
		{Config{}, 10000, 0, minMmapWindow},
		// The budget is nearly used up by windows mapped earlier, when
		// fewer transfers shared it: only what is free is handed out.
		{Config{}, 40, 31 << 20, (32 << 20) / 40 &^ (pageSize - 1)},
		{Config{}, 40, 32<<20 - 200<<10, 200 << 10},
		{Config{}, 40, 40 << 20, minMmapWindow},
		{Config{MmapBudget: -1}, 10000, 1 << 30, 4 << 20},
		{Config{MmapWindow: 8192}, 200, 0, 8192},
		{Config{MmapBudget: 3 << 20}, 7, 0, (3 << 20) / 7 &^ (pageSize - 1)},
	}
	for _, tt := range tests {
		if got := tt.cfg.mmapWindowFor(tt.active, tt.mapped); got != tt.want {
			t.Errorf("mmapWindowFor(%d, %d) with budget %d, window %d = %d, want %d", tt.active, tt.mapped, tt.cfg.MmapBudget, tt.cfg.MmapWindow, got, tt.want)
		}
	}
}
