package bearer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFile(t *testing.T) {
	for _, tc := range []struct {
		content, want string
		wantErr       bool
	}{
		{"s3cret-token", "s3cret-token", false},
		{"s3cret-token\n", "s3cret-token", false},
		{"s3cret-token\r\n", "s3cret-token", false},
		{"s3cret-token\n\n", "s3cret-token", false},
		{"", "", true},
		{"\n", "", true},
		{"two words\n", "", true},
		{"tab\there", "", true},
		{"line\nbreak", "", true},
		{"trailing-space \n", "", true},
		{"caf\xc3\xa9", "", true},
		{"nul\x00", "", true},
	} {
		file := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFile(file)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ReadFile(%q) = %q, %v; want %q, error %v", tc.content, got, err, tc.want, tc.wantErr)
		}
		if secret := strings.TrimSpace(tc.content); err != nil && secret != "" && strings.Contains(err.Error(), secret) {
			t.Errorf("ReadFile(%q) error %q shows the token", tc.content, err)
		}
	}
}

func TestReadFileMissing(t *testing.T) {
	file := filepath.Join(t.TempDir(), "absent")
	if _, err := ReadFile(file); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("ReadFile(%q) = %v, want an error naming the file", file, err)
	}
}
