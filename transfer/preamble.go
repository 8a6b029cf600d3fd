package transfer

import (
	"bytes"
	"io"
)

// The data channel's wire format. The client opens a TCP connection and
// sends a fixed 37-byte preamble:
//
//	magic   [4]byte  "FERY"
//	version uint8    1
//	ticket  [32]byte from the offer
//
// The server answers with one verdict byte. After VerdictOK come exactly
// the offered bytes, then the server closes the connection; if it cannot
// send them all, it resets the connection instead, so that a receiver
// never takes a failed transfer for a complete one. After any other
// verdict the server closes at once and sends nothing more.
const (
	preambleMagic   = "FERY"
	ProtocolVersion = 1
	TicketSize      = 32
	preambleSize    = len(preambleMagic) + 1 + TicketSize
)

// Verdict is the server's one-byte answer to a preamble.
type Verdict byte

// Verdicts. Refused covers wrong, used and expired tickets alike, so a
// prober learns nothing about which tickets exist.
const (
	VerdictOK          Verdict = 0
	VerdictRefused     Verdict = 1
	VerdictBadPreamble Verdict = 2
	VerdictUnavailable Verdict = 3
)

func (v Verdict) String() string {
	switch v {
	case VerdictOK:
		return "ok"
	case VerdictRefused:
		return "ticket refused"
	case VerdictBadPreamble:
		return "bad preamble"
	case VerdictUnavailable:
		return "server unavailable"
	}
	return "unknown verdict"
}

// appendPreamble appends the preamble for ticket to b.
func appendPreamble(b []byte, ticket []byte) []byte {
	b = append(b, preambleMagic...)
	b = append(b, ProtocolVersion)
	return append(b, ticket...)
}

// readPreamble reads a preamble and returns its ticket, or ok == false
// when the magic or version is wrong.
func readPreamble(r io.Reader) (ticket [TicketSize]byte, ok bool, err error) {
	var buf [preambleSize]byte
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return ticket, false, err
	}
	return parsePreamble(buf[:])
}

// parsePreamble checks a complete preamble.
func parsePreamble(buf []byte) (ticket [TicketSize]byte, ok bool, err error) {
	if len(buf) != preambleSize || !bytes.Equal(buf[:4], []byte(preambleMagic)) || buf[4] != ProtocolVersion {
		return ticket, false, nil
	}
	copy(ticket[:], buf[5:])
	return ticket, true, nil
}
