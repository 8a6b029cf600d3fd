package main

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestSafe(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"docs/a.txt", "docs/a.txt"},
		{"with space.txt", "with space.txt"},
		{"café/日本.txt", "café/日本.txt"},
		{"", ""},
		{"a\nb", `"a\nb"`},
		{"tab\there", `"tab\there"`},
		{"red\x1b[31m", `"red\x1b[31m"`},
		{"cr\r", `"cr\r"`},
		{"del\x7f", `"del\x7f"`},
		{"bidi\u202etxt.exe", `"bidi\u202etxt.exe"`},
		{"bad\xffutf8", `"bad\xffutf8"`},
		{`"quoted"`, `"\"quoted\""`},
		{`mid"quote`, `mid"quote`},
	} {
		if got := safe(tt.in); got != tt.want {
			t.Errorf("safe(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestErrorText(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{status.Error(codes.NotFound, "no such file: a.txt"), "no such file: a.txt (NotFound)"},
		{status.Error(codes.NotFound, "no such file: a\nferry: forged\x1b[0m"), `"no such file: a\nferry: forged\x1b[0m" (NotFound)`},
		{fmt.Errorf("ferry: %s: %w", "x\ny", errors.New("boom")), `"x\ny: boom"`},
		{fmt.Errorf("ferry: %s: %w", "/tmp/t", errors.New("not a directory")), "/tmp/t: not a directory"},
		{errors.New("plain"), "plain"},
	} {
		if got := errorText(tt.err); got != tt.want {
			t.Errorf("errorText(%q) = %s, want %s", tt.err, got, tt.want)
		}
	}
}
