package main

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestPrintEntries(t *testing.T) {
	mtime := timestamppb.New(time.Date(2026, 11, 26, 1, 2, 3, 0, time.Local))
	var b bytes.Buffer
	printEntries(&b, []*ferryv1.FileEntry{
		{Path: "docs", Type: ferryv1.FileType_FILE_TYPE_DIRECTORY, Mode: uint32(fs.ModeDir | 0o755), ModifyTime: mtime},
		{Path: "docs/big.bin", Type: ferryv1.FileType_FILE_TYPE_REGULAR, Size: 3 << 20, Mode: 0o644, ModifyTime: mtime},
		{Path: "latest", Type: ferryv1.FileType_FILE_TYPE_SYMLINK, Mode: uint32(fs.ModeSymlink | 0o777), ModifyTime: mtime, SymlinkTarget: "docs/big.bin"},
	})
	want := "drwxr-xr-x          -  2026-11-26 01:02:03  docs\n" +
		"-rw-r--r--    3.0 MiB  2026-11-26 01:02:03  docs/big.bin\n" +
		"Lrwxrwxrwx          -  2026-11-26 01:02:03  latest -> docs/big.bin\n"
	if b.String() != want {
		t.Errorf("printEntries =\n%s\nwant\n%s", &b, want)
	}
}

func TestPrintTransfers(t *testing.T) {
	start := time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	printTransfers(&b, []*ferryv1.TransferInfo{
		{
			TransferId: "7", Kind: ferryv1.TransferKind_TRANSFER_KIND_DOWNLOAD, State: ferryv1.TransferState_TRANSFER_STATE_RUNNING,
			Path: "big.iso", Peer: "127.0.0.1:5000", Strategy: ferryv1.Strategy_STRATEGY_SPLICE,
			BytesDone: 32 << 20, BytesTotal: 128 << 20, StartTime: timestamppb.New(start),
		},
		{
			TransferId: "pull-2", Kind: ferryv1.TransferKind_TRANSFER_KIND_PULL, State: ferryv1.TransferState_TRANSFER_STATE_FAILED,
			Path: "nope", Destination: "cache/nope", Peer: "10.0.0.1:7070",
			StartTime: timestamppb.New(start), EndTime: timestamppb.New(start.Add(time.Second)),
			ErrorCode: "NOT_FOUND", Error: "peer: no such file",
		},
	}, start.Add(2*time.Second))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("printTransfers printed %d lines, want a header, 2 rows and one error:\n%s", len(lines), &b)
	}
	for i, want := range [][]string{
		{"ID", "KIND", "STATE", "PATH", "PEER", "PROGRESS", "RATE", "TOOK", "STRATEGY"},
		{"7", "download", "running", "big.iso", "25% of 128.0 MiB", "16.0 MiB/s", "2.00 s", "SPLICE"},
		{"pull-2", "pull", "failed", "nope -> cache/nope", "10.0.0.1:7070", "0 B", "1.00 s"},
		{"pull-2: peer: no such file (NOT_FOUND)"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("printTransfers line %d = %q, want it to hold %q", i, lines[i], w)
			}
		}
	}
	b.Reset()
	if printTransfers(&b, nil, start); b.String() != "no transfers\n" {
		t.Errorf("printTransfers(none) = %q, want %q", &b, "no transfers\n")
	}
}

// TestPrintEntriesEscapes checks that names from the server can neither
// forge a listing line nor reach the terminal as escape sequences, and
// that ordinary names (non-ASCII ones included) print as they are.
func TestPrintEntriesEscapes(t *testing.T) {
	mtime := timestamppb.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.Local))
	forged := "a\n-rw-r--r--        1 B  2026-01-01 00:00:00  esc:FORGED"
	var b bytes.Buffer
	printEntries(&b, []*ferryv1.FileEntry{
		{Path: forged, Type: ferryv1.FileType_FILE_TYPE_REGULAR, Size: 1, Mode: 0o644, ModifyTime: mtime},
		{Path: "red\x1b[31m", Type: ferryv1.FileType_FILE_TYPE_REGULAR, Size: 1, Mode: 0o644, ModifyTime: mtime},
		{Path: "link", Type: ferryv1.FileType_FILE_TYPE_SYMLINK, Mode: uint32(fs.ModeSymlink | 0o777), ModifyTime: mtime, SymlinkTarget: "x\r\x1b]0;title\a"},
		{Path: "café ü.txt", Type: ferryv1.FileType_FILE_TYPE_REGULAR, Size: 1, Mode: 0o644, ModifyTime: mtime},
	})
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 4 || strings.ContainsAny(b.String(), "\x1b\r\a") {
		t.Fatalf("printEntries wrote %d lines for 4 entries, or a control character:\n%q", len(lines), b.String())
	}
	for i, want := range []string{
		`  "a\n-rw-r--r--        1 B  2026-01-01 00:00:00  esc:FORGED"`,
		`  "red\x1b[31m"`,
		`  link -> "x\r\x1b]0;title\a"`,
		"  café ü.txt",
	} {
		if !strings.HasSuffix(lines[i], want) {
			t.Errorf("printEntries line %d = %q, want it to end in %q", i, lines[i], want)
		}
	}
}

// TestPrintTransfersEscapes checks the same for transfers: paths, peers,
// ids and error text come from the server.
func TestPrintTransfersEscapes(t *testing.T) {
	start := time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	printTransfers(&b, []*ferryv1.TransferInfo{{
		TransferId: "1\nFORGED", Kind: ferryv1.TransferKind_TRANSFER_KIND_PULL, State: ferryv1.TransferState_TRANSFER_STATE_FAILED,
		Path: "p\x1b[2J", Destination: "d\tx", Peer: "peer\n2", StartTime: timestamppb.New(start), EndTime: timestamppb.New(start),
		ErrorCode: "NOT_FOUND", Error: "no such file\n9: forged error (OK)",
	}}, start)
	out := b.String()
	if n := strings.Count(out, "\n"); n != 3 || strings.ContainsAny(out, "\x1b\t") {
		t.Fatalf("printTransfers wrote %d lines for a header, a row and an error, or a control character:\n%q", n, out)
	}
	for _, want := range []string{`"1\nFORGED"`, `"p\x1b[2J" -> "d\tx"`, `"peer\n2"`, `"no such file\n9: forged error (OK)" (NOT_FOUND)`} {
		if !strings.Contains(out, want) {
			t.Errorf("printTransfers output lacks %s:\n%s", want, out)
		}
	}
}
