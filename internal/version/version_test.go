package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}}
	for _, tt := range []struct {
		name, stamp, module string
		settings            []debug.BuildSetting
		ok                  bool
		want                Info
	}{
		{"stamp wins", "v1.2.3", "v0.0.0-2026", vcs, true, Info{Version: "v1.2.3", Commit: "abc123", Modified: true}},
		{"module version", "dev", "v0.4.0", nil, true, Info{Version: "v0.4.0"}},
		{"devel is no version", "dev", "(devel)", nil, true, Info{Version: "dev"}},
		{"empty stamp", "", "(devel)", nil, true, Info{Version: "dev"}},
		{"no build info", "dev", "", nil, false, Info{Version: "dev"}},
	} {
		bi := &debug.BuildInfo{Main: debug.Module{Version: tt.module}, Settings: tt.settings}
		got := fromBuildInfo(tt.stamp, bi, tt.ok)
		tt.want.Go, tt.want.Platform = runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH
		if got != tt.want {
			t.Errorf("%s: fromBuildInfo(%q, module %q) = %+v, want %+v", tt.name, tt.stamp, tt.module, got, tt.want)
		}
	}
}

func TestString(t *testing.T) {
	s := Info{Version: "v1", Commit: "abc", Modified: true, Go: "go1.26.8", Platform: "linux/amd64"}.String()
	want := "version: v1\ncommit:  abc (modified)\ngo:      go1.26.8 linux/amd64\n"
	if s != want {
		t.Errorf("String() = %q, want %q", s, want)
	}
	if s := (Info{Version: "dev"}).String(); !strings.Contains(s, "commit:  unknown\n") {
		t.Errorf("String() without a commit = %q, want commit:  unknown", s)
	}
}
