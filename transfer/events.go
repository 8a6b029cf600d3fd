package transfer

import (
	"context"
	"errors"
	"log/slog"
)

// Events are hooks the data plane calls at its notable moments, for
// metrics (service adapts them to Prometheus). Every field may be nil.
// They run on the data plane's own goroutines, some under its locks: they
// must return quickly and must not call back into the Server.
type Events struct {
	// Issued is called when an offer mints a ticket.
	Issued func()
	// Refused is called when an offer or a data connection is turned
	// away (see Refusal for the reasons).
	Refused func(Refusal)
	// Started is called when a data connection presents a live ticket
	// and its transfer starts sending.
	Started func()
	// Finished is called once for every transfer offered, however it
	// ends: those with a ticket, and those whose bytes went inline
	// (Stats.Inline), for which Issued was not called. Finish.Started
	// says whether Started was called for it.
	Finished func(Finish)
}

// Refusal says why an offer or a data connection was turned away. A
// connection that closes or stays silent before a whole preamble is
// dropped, not refused: an idle keep-alive connection ends that way too.
type Refusal string

const (
	// RefusedBusy: an offer past Config.MaxTransfers (ErrBusy); no ticket
	// was issued.
	RefusedBusy Refusal = "busy"
	// RefusedHandshakeLimit: a data connection past Config.MaxHandshakes,
	// answered VerdictUnavailable.
	RefusedHandshakeLimit Refusal = "handshake_limit"
	// RefusedBadPreamble: a preamble with the wrong magic or version.
	RefusedBadPreamble Refusal = "bad_preamble"
	// RefusedUnknownTicket: a ticket that is not pending: wrong, already
	// used, expired or revoked (they are indistinguishable by design: a
	// spent ticket is forgotten).
	RefusedUnknownTicket Refusal = "unknown_ticket"
	// RefusedWrongClient: a ticket bound to another client address
	// (Config.BindDataToClient); it stays pending.
	RefusedWrongClient Refusal = "wrong_client"
	// RefusedSessionFull: a connection that would bind to a session
	// already holding Config.SessionConns, or past Config.MaxBoundConns,
	// answered VerdictUnavailable.
	RefusedSessionFull Refusal = "session_full"
	// RefusedPlaintext: a plaintext preamble where the data channel
	// requires TLS (Config.TLS), answered VerdictTLSRequired; its ticket,
	// if pending, is revoked.
	RefusedPlaintext Refusal = "plaintext"
)

// Outcome classifies how a transfer ended.
type Outcome string

const (
	// OutcomeOK: every offered byte was handed to the kernel.
	OutcomeOK Outcome = "ok"
	// OutcomeCanceled: stopped on purpose before it ended: its offer was
	// cancelled (the Download call ended or gave up) or the server shut
	// down (ErrClosed).
	OutcomeCanceled Outcome = "canceled"
	// OutcomeExpired: nobody presented the ticket within TicketTTL.
	OutcomeExpired Outcome = "expired"
	// OutcomeError: any other failure: the source changed, the
	// connection broke, a system call failed.
	OutcomeError Outcome = "error"
)

// outcomeOf classifies a transfer's error.
func outcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrTicketExpired):
		return OutcomeExpired
	case errors.Is(err, context.Canceled), errors.Is(err, ErrClosed):
		return OutcomeCanceled
	}
	return OutcomeError
}

// Finish describes a finished transfer.
type Finish struct {
	ID   string
	Path string
	// Peer is the data connection's remote address, or the offer's
	// client address when no data connection came ("" if neither is
	// known).
	Peer string
	// Started reports whether a data connection claimed the ticket.
	Started bool
	// Stats.Strategy is the strategy that ran: READ_WRITE after a fall
	// back.
	Stats   Stats
	Outcome Outcome
	Err     error
}

// log writes the transfer's one line: Info when it went well, Warn
// otherwise.
func (f *Finish) log(log *slog.Logger) {
	lvl := slog.LevelInfo
	if f.Outcome != OutcomeOK {
		lvl = slog.LevelWarn
	}
	attrs := []any{"id", f.ID, "peer", f.Peer, "path", f.Path, "strategy", f.Stats.Strategy.String(),
		"bytes", f.Stats.Bytes, "took", f.Stats.Duration, "outcome", string(f.Outcome)}
	if f.Stats.Inline {
		attrs = append(attrs, "inline", true)
	}
	if f.Err != nil {
		attrs = append(attrs, "err", f.Err)
	}
	log.Log(context.Background(), lvl, "transfer finished", attrs...)
}

func (e *Events) issued() {
	if e.Issued != nil {
		e.Issued()
	}
}

func (e *Events) refused(r Refusal) {
	if e.Refused != nil {
		e.Refused(r)
	}
}

func (e *Events) started() {
	if e.Started != nil {
		e.Started()
	}
}

func (e *Events) finished(f Finish) {
	if e.Finished != nil {
		e.Finished(f)
	}
}
