package client

import (
	"errors"
	"testing"

	"github.com/ferrydev/ferry/fsroot"
)

// TestEntryPath: only clean paths below the tree are taken from a server.
func TestEntryPath(t *testing.T) {
	for _, p := range []string{"a", "a/b", "a.partial", "..a", "a/..b"} {
		if got, err := entryPath(p); err != nil || got != p {
			t.Errorf("entryPath(%q) = %q, %v; want it back, nil", p, got, err)
		}
	}
	for _, p := range []string{"", ".", "..", "../a", "a/../../b", "a/../b", "/etc/passwd", "a//b", "a/", "./a", "a/."} {
		if _, err := entryPath(p); !errors.Is(err, fsroot.ErrInvalidPath) {
			t.Errorf("entryPath(%q) = %v, want %v", p, err, fsroot.ErrInvalidPath)
		}
	}
}

// TestSafeTarget: relative symlink targets that stay inside the tree are
// kept (cleaned); the rest are skipped.
func TestSafeTarget(t *testing.T) {
	tests := []struct {
		link, target, want string
		ok                 bool
	}{
		{"l", "f", "f", true},
		{"d/l", "../f", "../f", true},
		{"d/e/l", "../../f", "../../f", true},
		{"l", ".", ".", true},
		{"d/l", "x/../y", "y", true},
		{"d/l", "a/../..", "..", true},
		{"l", "..", "", false},
		{"l", "../f", "", false},
		{"d/l", "../../f", "", false},
		{"l", "a/../../f", "", false},
		{"l", "/etc/passwd", "", false},
		{"l", "", "", false},
	}
	for _, tt := range tests {
		got, ok := safeTarget(tt.link, tt.target)
		if got != tt.want || ok != tt.ok {
			t.Errorf("safeTarget(%q, %q) = %q, %v; want %q, %v", tt.link, tt.target, got, ok, tt.want, tt.ok)
		}
	}
}
