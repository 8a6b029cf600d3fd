package transfer

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestPreambleRoundTrip(t *testing.T) {
	var ticket [TicketSize]byte
	copy(ticket[:], randomBytes(TicketSize))
	b := appendPreamble([]byte("prefix"), ticket[:])
	if got, want := len(b), len("prefix")+37; got != want || preambleSize != 37 {
		t.Fatalf("appendPreamble added %d bytes (preambleSize %d), want 37", got-len("prefix"), preambleSize)
	}
	if !bytes.Equal(b[:10], []byte("prefixFERY")) || b[10] != 1 {
		t.Errorf("appendPreamble wrote %q, want magic FERY then version 1", b[:11])
	}
	got, v, ok, err := parsePreamble(b[len("prefix"):])
	if got != ticket || v != ProtocolVersion || !ok || err != nil {
		t.Errorf("parsePreamble(appendPreamble(%x)) = %x, %d, %v, %v; want the ticket, 1, true, nil", ticket, got, v, ok, err)
	}
	got, v, ok, err = readPreamble(bytes.NewReader(b[len("prefix"):]))
	if got != ticket || v != ProtocolVersion || !ok || err != nil {
		t.Errorf("readPreamble(appendPreamble(%x)) = %x, %d, %v, %v; want the ticket, 1, true, nil", ticket, got, v, ok, err)
	}
	b2 := appendPreambleVersion(nil, ProtocolVersionKeepAlive, ticket[:])
	if len(b2) != 37 || b2[4] != 2 {
		t.Errorf("appendPreambleVersion(2) wrote %q, want 37 bytes with version 2", b2)
	}
	got, v, ok, err = parsePreamble(b2)
	if got != ticket || v != ProtocolVersionKeepAlive || !ok || err != nil {
		t.Errorf("parsePreamble(version 2 preamble) = %x, %d, %v, %v; want the ticket, 2, true, nil", got, v, ok, err)
	}
}

func TestPreambleBad(t *testing.T) {
	good := appendPreamble(nil, make([]byte, TicketSize))
	with := func(i int, c byte) []byte {
		b := bytes.Clone(good)
		b[i] = c
		return b
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"magic", with(0, 'f')},
		{"magic end", with(3, 'Z')},
		{"version 0", with(4, 0)},
		{"version 4", with(4, 4)},
		{"short", good[:preambleSize-1]},
		{"long", append(bytes.Clone(good), 0)},
		{"empty", nil},
	}
	for _, tt := range tests {
		if got, _, ok, err := parsePreamble(tt.in); ok || err != nil || got != [TicketSize]byte{} {
			t.Errorf("parsePreamble(%s) = %x, %v, %v; want zero, false, nil", tt.name, got, ok, err)
		}
	}
	if _, _, ok, err := readPreamble(bytes.NewReader(good[:10])); ok || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("readPreamble(10 bytes) = %v, %v; want false, %v", ok, err, io.ErrUnexpectedEOF)
	}
	if _, _, ok, err := readPreamble(bytes.NewReader(with(4, 9))); ok || err != nil {
		t.Errorf("readPreamble(version 9) = %v, %v; want false, nil", ok, err)
	}
}

func TestVerdictString(t *testing.T) {
	tests := []struct {
		v    Verdict
		want string
	}{
		{VerdictOK, "ok"},
		{VerdictRefused, "ticket refused"},
		{VerdictBadPreamble, "bad preamble"},
		{VerdictUnavailable, "server unavailable"},
		{Verdict(200), "unknown verdict"},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("Verdict(%d).String() = %q, want %q", byte(tt.v), got, tt.want)
		}
	}
}
