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
//
// Version 2 (ProtocolVersionKeepAlive) is the same up to the last byte of
// the payload; then the server writes one trailer byte (TrailerOK) instead
// of closing, and waits for the next preamble on the same connection, for
// at most Config.HandshakeTimeout (see keepalive.go). A failed send still
// resets the connection. A preamble of either version may follow; version
// 1 ends the connection after its transfer as before.
//
// Version 3 (ProtocolVersionSession) binds the connection to a session:
// its ticket is the session's, and after VerdictOK the server sends the
// session's transfers as frames (see session.go), until the session ends.
const (
	preambleMagic   = "FERY"
	ProtocolVersion = 1
	// ProtocolVersionKeepAlive asks the server to keep the connection
	// open after the transfer, for the next preamble.
	ProtocolVersionKeepAlive = 2
	TicketSize               = 32
	preambleSize             = len(preambleMagic) + 1 + TicketSize
)

// Trailer bytes end a transfer on a keep-alive (version 2) connection.
const (
	TrailerOK     byte = 0
	TrailerFailed byte = 1
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
	// VerdictTLSRequired answers a plaintext preamble on a data channel
	// that requires TLS; the ticket it carried is revoked.
	VerdictTLSRequired Verdict = 4
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
	case VerdictTLSRequired:
		return "TLS required"
	}
	return "unknown verdict"
}

// appendPreamble appends the version 1 preamble for ticket to b.
func appendPreamble(b []byte, ticket []byte) []byte {
	return appendPreambleVersion(b, ProtocolVersion, ticket)
}

// appendPreambleVersion appends the preamble of a version for ticket to b.
func appendPreambleVersion(b []byte, version byte, ticket []byte) []byte {
	b = append(b, preambleMagic...)
	b = append(b, version)
	return append(b, ticket...)
}

// readPreamble reads a preamble and returns its ticket and version, or
// ok == false when the magic or version is wrong.
func readPreamble(r io.Reader) (ticket [TicketSize]byte, version byte, ok bool, err error) {
	var buf [preambleSize]byte
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return ticket, 0, false, err
	}
	return parsePreamble(buf[:])
}

// parsePreamble checks a complete preamble.
func parsePreamble(buf []byte) (ticket [TicketSize]byte, version byte, ok bool, err error) {
	if len(buf) != preambleSize || !bytes.Equal(buf[:4], []byte(preambleMagic)) ||
		(buf[4] != ProtocolVersion && buf[4] != ProtocolVersionKeepAlive && buf[4] != ProtocolVersionSession) {
		return ticket, 0, false, nil
	}
	copy(ticket[:], buf[5:])
	return ticket, buf[4], true, nil
}
