package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Machine describes the host the figures were measured on.
type Machine struct {
	Date      string            `json:"date"`
	Cores     int               `json:"cores"`
	CPUModel  string            `json:"cpu_model"`
	Kernel    string            `json:"kernel"`
	GoVersion string            `json:"go_version"`
	MemTotal  string            `json:"mem_total"`
	LoadStart string            `json:"loadavg_start"`
	LoadEnd   string            `json:"loadavg_end"`
	FixtureFS string            `json:"fixture_fs"`
	DestFS    string            `json:"dest_fs"`
	Tools     map[string]string `json:"tools"`
}

func describeMachine() Machine {
	var u unix.Utsname
	unix.Uname(&u)
	return Machine{
		Date:      time.Now().UTC().Format(time.RFC3339),
		Cores:     runtime.NumCPU(),
		CPUModel:  procField("/proc/cpuinfo", "model name"),
		Kernel:    unix.ByteSliceToString(u.Release[:]),
		GoVersion: runtime.Version(),
		MemTotal:  memTotal(),
		LoadStart: loadAvg(),
		Tools:     map[string]string{},
	}
}

// procField is the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func memTotal() string {
	var kib int64
	if _, err := fmt.Sscanf(procField("/proc/meminfo", "MemTotal"), "%d kB", &kib); err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// fsType names the file system holding path, from its statfs magic.
func fsType(path string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "unknown"
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return fmt.Sprintf("%#x", st.Type)
}

// toolVersion runs argv and keeps the first line it prints (nginx -v
// prints to stderr).
func toolVersion(ctx context.Context, argv ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return orStr(line, "unknown")
}
