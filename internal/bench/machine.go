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
	Date     string `json:"date"`
	Cores    int    `json:"cores"`
	CPUModel string `json:"cpu_model"`
	// Virt says whether the figures come from a virtual machine or a
	// container, and what the host says about it (see describeVirt).
	Virt      string            `json:"virtualization"`
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
		Virt:      describeVirt(),
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

// describeVirt gathers what the host says about virtualization: the
// hypervisor flag of /proc/cpuinfo (set by the CPU for a guest),
// systemd-detect-virt's answers for a VM and a container when it is
// installed, and the DMI vendor and product when they are readable. A
// loopback figure from a VM includes the hypervisor's costs.
func describeVirt() string {
	var parts []string
	if hasCPUFlag(procField("/proc/cpuinfo", "flags"), "hypervisor") {
		parts = append(parts, "hypervisor flag set")
	} else {
		parts = append(parts, "no hypervisor flag")
	}
	if bin, err := exec.LookPath("systemd-detect-virt"); err == nil {
		for _, kind := range []string{"--vm", "--container"} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			out, _ := exec.CommandContext(ctx, bin, kind).Output() // exits 1 for "none"
			cancel()
			if v := strings.TrimSpace(string(out)); v != "" {
				parts = append(parts, "systemd-detect-virt "+kind+": "+v)
			}
		}
	}
	var dmi []string
	for _, f := range []string{"sys_vendor", "product_name"} {
		if b, err := os.ReadFile("/sys/class/dmi/id/" + f); err == nil && strings.TrimSpace(string(b)) != "" {
			dmi = append(dmi, strings.TrimSpace(string(b)))
		}
	}
	if len(dmi) > 0 {
		parts = append(parts, "DMI: "+strings.Join(dmi, " "))
	}
	return strings.Join(parts, "; ")
}

// hasCPUFlag reports whether flag is one of the space-separated flags
// of a /proc/cpuinfo "flags" line.
func hasCPUFlag(flags, flag string) bool {
	for _, f := range strings.Fields(flags) {
		if f == flag {
			return true
		}
	}
	return false
}
