package bench

import (
	"os"
	"slices"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and parentheses, as the kernel allows.
	line := "4242 (a (weird) name) S 17 4242 4242 0 -1 4194560 300 0 0 0 250 75 0 0 20 0 3 0 123 456 789\n"
	got, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatalf("parseProcStat() error = %v", err)
	}
	if want := (procStat{PPID: 17, UTime: 250, STime: 75}); got != want {
		t.Errorf("parseProcStat() = %+v, want %+v", got, want)
	}
	if got.cpu() != 3250*time.Millisecond {
		t.Errorf("cpu() = %v, want 3.25s", got.cpu())
	}
	for _, bad := range []string{"", "1 (x) S 1 2 3", "1 (x) S z 1 1 0 -1 0 0 0 0 0 ut st 0"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) succeeded, want an error", bad)
		}
	}
}

func TestReadProcStatSelf(t *testing.T) {
	st, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatalf("readProcStat(self) error = %v", err)
	}
	if st.PPID != os.Getppid() {
		t.Errorf("readProcStat(self).PPID = %d, want %d", st.PPID, os.Getppid())
	}
}

func TestDescendants(t *testing.T) {
	parents := map[int]int{1: 0, 10: 1, 11: 10, 12: 10, 13: 11, 20: 1, 30: 99}
	got := descendants(parents, 10)
	slices.Sort(got)
	if want := []int{10, 11, 12, 13}; !slices.Equal(got, want) {
		t.Errorf("descendants(10) = %v, want %v", got, want)
	}
}

func TestListeningPorts(t *testing.T) {
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1B9E 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1B9F 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
`
	got := listeningPorts([]byte(tcp))
	if !got[7070] || !got[80] || got[7071] || len(got) != 2 {
		t.Errorf("listeningPorts() = %v, want 7070 and 80 only (7071 is ESTABLISHED)", got)
	}
}

func TestParseStatusKiB(t *testing.T) {
	status := "Name:\tferryd\nVmHWM:\t   20480 kB\nVmRSS:\t   15360 kB\nThreads:\t7\n"
	if got, err := parseStatusKiB([]byte(status), "VmRSS"); err != nil || got != 15<<20 {
		t.Errorf("parseStatusKiB(VmRSS) = %d, %v, want %d", got, err, 15<<20)
	}
	if _, err := parseStatusKiB([]byte(status), "VmSwap"); err == nil {
		t.Errorf("parseStatusKiB(VmSwap) succeeded on a status without it")
	}
}

func TestHasCPUFlag(t *testing.T) {
	for _, tc := range []struct {
		flags, flag string
		want        bool
	}{
		{"fpu vme de pse tsc hypervisor lahf_lm", "hypervisor", true},
		{"hypervisor", "hypervisor", true},
		{"fpu vme de pse tsc lahf_lm", "hypervisor", false},
		{"fpu not_hypervisor_x", "hypervisor", false}, // whole flags only
		{"", "hypervisor", false},
	} {
		if got := hasCPUFlag(tc.flags, tc.flag); got != tc.want {
			t.Errorf("hasCPUFlag(%q, %q) = %v, want %v", tc.flags, tc.flag, got, tc.want)
		}
	}
}

func TestParseSteal(t *testing.T) {
	got, err := parseSteal([]byte("cpu  928886 0 840851 9476470 36705 0 121561 74768 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	if err != nil || got != 747.68 {
		t.Errorf("parseSteal = %v, %v; want 747.68 s", got, err)
	}
	if _, err := parseSteal([]byte("intr 1 2 3\n")); err == nil {
		t.Error("parseSteal of a file with no cpu line: no error")
	}
}
