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
