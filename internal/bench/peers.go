package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// peerTools maps each command the peers need to its Debian package. tar
// and sh come with every Debian system; the nc side of tar c | nc is
// ferry-bench itself (see netcat.go), so no netcat package is needed.
var peerTools = []struct{ bin, pkg string }{
	{"iperf3", "iperf3"}, {"nginx", "nginx"}, {"curl", "curl"}, {"tar", "tar"}, {"sh", "dash"},
}

// lookTool finds bin on PATH or in the sbin directories a non-login
// root shell may lack.
func lookTool(bin string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, bin)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", bin)
}

// ensurePeers returns the path of every peer tool, installing the
// missing ones with apt-get (update first, only when something is
// missing) when allowed and running as root.
func ensurePeers(ctx context.Context, allowInstall bool, log io.Writer) (map[string]string, error) {
	missing := missingTools()
	if len(missing) > 0 {
		if !allowInstall || os.Geteuid() != 0 {
			return nil, fmt.Errorf("missing %s: install them (apt-get install -y %s) or run ferry-bench as root without -no-install",
				strings.Join(missing, ", "), strings.Join(missing, " "))
		}
		if err := aptInstall(ctx, missing, log); err != nil {
			return nil, err
		}
	}
	paths := map[string]string{}
	for _, t := range peerTools {
		p, err := lookTool(t.bin)
		if err != nil {
			return nil, fmt.Errorf("after install: %w", err)
		}
		paths[t.bin] = p
	}
	return paths, nil
}

// missingTools lists the packages of the tools not found.
func missingTools() []string {
	var pkgs []string
	for _, t := range peerTools {
		if _, err := lookTool(t.bin); err != nil {
			pkgs = append(pkgs, t.pkg)
		}
	}
	return pkgs
}

func aptInstall(ctx context.Context, pkgs []string, log io.Writer) error {
	fmt.Fprintf(log, "installing %s with apt-get\n", strings.Join(pkgs, " "))
	for _, argv := range [][]string{
		{"apt-get", "update"},
		append([]string{"apt-get", "install", "-y", "--no-install-recommends"}, pkgs...),
	} {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
	}
	if pid, err := os.ReadFile("/run/nginx.pid"); err == nil {
		fmt.Fprintf(log, "note: the nginx package started the system nginx (pid %s); ferry-bench leaves it alone and runs its own\n",
			strings.TrimSpace(string(pid)))
	}
	return nil
}
