// Package version says which build a binary is: its version, the commit
// it was built from and the Go that built it. Both binaries print it
// (ferry version, ferryd --version).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Info is what a binary knows of its own build.
type Info struct {
	// Version is the -ldflags "-X main.version=..." stamp when there is
	// one, else the module version the go command recorded (a tag, or a
	// pseudo-version), else "dev".
	Version string
	// Commit is the VCS revision the binary was built from ("" when the
	// build recorded none: -buildvcs=false, or not built in a checkout).
	Commit string
	// Modified says the checkout had uncommitted changes.
	Modified bool
	// Go is the toolchain that built the binary (runtime.Version()).
	Go string
	// Platform is GOOS/GOARCH.
	Platform string
}

// Get reads the running binary's build information. stamp is the main
// package's version variable: "" or "dev" means none was stamped.
func Get(stamp string) Info {
	bi, ok := debug.ReadBuildInfo()
	return fromBuildInfo(stamp, bi, ok)
}

func fromBuildInfo(stamp string, bi *debug.BuildInfo, ok bool) Info {
	i := Info{Version: stamp, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if ok {
		if i.Version == "" || i.Version == "dev" {
			if v := bi.Main.Version; v != "" && v != "(devel)" {
				i.Version = v
			}
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Commit = s.Value
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
	}
	if i.Version == "" {
		i.Version = "dev"
	}
	return i
}

// String is three labelled lines, each ending in a newline:
//
//	version: v0.3.0
//	commit:  4f1c2e9b0a7d... (modified)
//	go:      go1.26.8 linux/amd64
//
// A build that recorded no revision says "commit:  unknown".
func (i Info) String() string {
	commit := i.Commit
	if commit == "" {
		commit = "unknown"
	}
	if i.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("version: %s\ncommit:  %s\ngo:      %s %s\n", i.Version, commit, i.Go, i.Platform)
}
