package service

import (
	"math"

	"github.com/ferrydev/ferry/transfer"
)

// inlineMax is a request's inline_max as the data plane takes it: capped
// at transfer.MaxInline (the server's own limit), so that no request can
// ask for a larger message.
func inlineMax(asked uint64) int64 {
	return int64(min(asked, transfer.MaxInline, math.MaxInt64))
}

// dataAddress is the offer's data address: none when the bytes are
// inline.
func (s *transferService) dataAddress(t *transfer.Transfer) string {
	if t.Inline {
		return ""
	}
	return s.address
}

// ticketOf is the offer's ticket: none when the bytes are inline.
func ticketOf(t *transfer.Transfer) []byte {
	if t.Inline {
		return nil
	}
	return t.Ticket[:]
}
