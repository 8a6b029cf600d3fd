package transfer

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// The seed corpora of these targets live in testdata/fuzz/<target>/ as
// well as in the f.Add calls; integration.TestFuzz runs each target for a
// bounded time.

func FuzzParsePreamble(f *testing.F) {
	good := appendPreamble(nil, bytes.Repeat([]byte{0xab}, TicketSize))
	f.Add(good)
	f.Add(good[:preambleSize-1])
	f.Add(append(bytes.Clone(good), 0))
	f.Add(appendPreambleVersion(nil, ProtocolVersionKeepAlive, bytes.Repeat([]byte{0xcd}, TicketSize)))
	f.Add(appendPreambleVersion(nil, ProtocolVersionSession, bytes.Repeat([]byte{0xcd}, TicketSize)))
	f.Add(appendPreambleVersion(nil, 4, bytes.Repeat([]byte{0xcd}, TicketSize)))
	f.Add([]byte{})
	f.Add([]byte("FERY\x02"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ticket, version, ok, err := parsePreamble(b)
		if err != nil {
			t.Fatalf("parsePreamble(%q) error = %v, want nil", b, err)
		}
		if !ok {
			if ticket != [TicketSize]byte{} || version != 0 {
				t.Fatalf("parsePreamble(%q) = %x, %d, false; want a zero ticket and version", b, ticket, version)
			}
		} else if version != ProtocolVersion && version != ProtocolVersionKeepAlive && version != ProtocolVersionSession {
			t.Fatalf("parsePreamble(%q) accepted version %d", b, version)
		} else if re := appendPreambleVersion(nil, version, ticket[:]); !bytes.Equal(re, b) {
			t.Fatalf("appendPreambleVersion(parsePreamble(%q)) = %q, want the input", b, re)
		}
		// readPreamble takes the first preambleSize bytes and judges them
		// alike.
		rt, rv, rok, rerr := readPreamble(bytes.NewReader(b))
		switch {
		case len(b) < preambleSize:
			if rok || (rerr != io.EOF && rerr != io.ErrUnexpectedEOF) {
				t.Fatalf("readPreamble(%d bytes) = %v, %v; want false, EOF", len(b), rok, rerr)
			}
		default:
			pt, pv, pok, _ := parsePreamble(b[:preambleSize])
			if rt != pt || rv != pv || rok != pok || rerr != nil {
				t.Fatalf("readPreamble(%q) = %x, %d, %v, %v; want %x, %d, %v, nil", b, rt, rv, rok, rerr, pt, pv, pok)
			}
		}
	})
}

// FuzzParseFrameHeader: any bytes either parse as a data frame header
// that writes back to the same bytes, or are refused with ErrBadFrame;
// nothing panics, and no length past 63 bits gets through.
func FuzzParseFrameHeader(f *testing.F) {
	f.Add(appendFrameHeader(nil, 1, 4096))
	f.Add(appendFrameHeader(nil, 0, 0))
	f.Add(appendFrameHeader(nil, 1<<64-1, 1<<63-1))
	f.Add(append([]byte{FrameData}, bytes.Repeat([]byte{0xff}, 16)...))
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{FrameData})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseFrameHeader(b)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) || h != (FrameHeader{}) {
				t.Fatalf("ParseFrameHeader(%x) = %+v, %v; want a zero header and ErrBadFrame", b, h, err)
			}
			return
		}
		if h.Length < 0 {
			t.Fatalf("ParseFrameHeader(%x) length %d", b, h.Length)
		}
		if re := appendFrameHeader(nil, h.ID, h.Length); !bytes.Equal(re, b) {
			t.Fatalf("appendFrameHeader(ParseFrameHeader(%x)) = %x", b, re)
		}
	})
}
