// Package client is the Go API for pulling files from a ferryd: dial the
// control plane, download a path or range to a destination with a chosen
// strategy, and get back the report of both sides. The ferry CLI and the
// tests use it, and so will a node's own node-to-node pull.
//
// It does not serve files, and it does not retry: a failed transfer leaves
// no destination file and returns the error for the caller to judge; with
// DownloadOptions.Resume it keeps the partial file, for the caller to
// continue from by calling again. With DownloadOptions.Checksum it
// verifies the bytes it holds against the server's checksum before it
// keeps the file.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/fsroot"
	"github.com/ferrydev/ferry/internal/apiconv"
	"github.com/ferrydev/ferry/transfer"
)

// Client talks to one ferryd. Its downloads share a pool of data
// connections (transfer.Pool): a warm client's next pull from the same
// data address reuses an idle connection instead of dialling one.
type Client struct {
	conn   *grpc.ClientConn
	target string
	api    ferryv1.TransferServiceClient
	pool   *transfer.Pool
	caps   capsCache // the server's max_streams, asked once
	// checkData, when set, vets every data address before it is dialled.
	checkData func(address string) error
	// dataTLS verifies the data channel (WithDataTLS); plaintextData
	// accepts a plaintext one from a TLS control plane (see datatls.go).
	dataTLS       *tls.Config
	plaintextData bool
}

// Dial connects lazily to target (host:port). With no options the
// connection is plaintext.
func Dial(target string, opts ...grpc.DialOption) (*Client, error) {
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(target, append(controlWindows(), opts...)...)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, target: target, api: ferryv1.NewTransferServiceClient(conn),
		pool: transfer.NewPool(transfer.PoolConfig{})}
	c.dataOptions(opts)
	return c, nil
}

// controlWindows fixes the control connection's HTTP/2 flow-control
// windows, which turns off grpc-go's bandwidth-delay probing: with it,
// every small message drew a PING and a WINDOW_UPDATE, about three more
// writes and reads per session request on each side. The control plane
// carries requests, offers and reports, not bulk bytes, so a fixed
// window that holds many of them loses nothing. A caller's own options
// come after these and win.
func controlWindows() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithInitialWindowSize(1 << 20), grpc.WithInitialConnWindowSize(4 << 20)}
}

// CheckDataAddresses makes every later download of c call check with
// the data address (host:port) an offer names, once an unspecified host
// is filled in, before a connection is made to it: an error refuses the
// offer, and the download fails with it, no byte sent. Call it before
// the first download. ferryd's Pull uses it to keep a peer from pointing
// the node at hosts it was not told to reach; without it, any address an
// offer names is dialled.
func (c *Client) CheckDataAddresses(check func(address string) error) { c.checkData = check }

// Close closes the connection and the idle data connections.
func (c *Client) Close() error {
	c.pool.Close()
	return c.conn.Close()
}

// CloseIdleConnections closes the data connections kept idle for the
// next download, as net/http's Transport.CloseIdleConnections does.
func (c *Client) CloseIdleConnections() { c.pool.CloseIdle() }

// DataConnections reports how many data connections the client's
// downloads have opened, and how many downloads reused one.
func (c *Client) DataConnections() (dials, reuses int64) {
	return c.pool.Dials(), c.pool.Reuses()
}

// Target is the control-plane address the client was dialled with.
func (c *Client) Target() string { return c.target }

// API is the raw generated client, for calls this package does not wrap.
func (c *Client) API() ferryv1.TransferServiceClient { return c.api }

// Capabilities asks what the server supports.
func (c *Client) Capabilities(ctx context.Context) (*ferryv1.GetCapabilitiesResponse, error) {
	return c.api.GetCapabilities(ctx, &ferryv1.GetCapabilitiesRequest{})
}

// Stat describes a path on the server.
func (c *Client) Stat(ctx context.Context, path string) (*ferryv1.StatFileResponse, error) {
	return c.api.StatFile(ctx, &ferryv1.StatFileRequest{Path: path})
}

// answered bounds one short call to the server (StatFile,
// GetCapabilities, made before a pull's data) by the receive's idle
// timeout: a server that never answers is as silent as one that stops
// sending. idle 0 or less, or a caller's deadline sooner than idle,
// means no bound of its own.
func answered[T any](ctx context.Context, idle time.Duration, what string, call func(context.Context) (T, error)) (T, error) {
	if d, ok := ctx.Deadline(); idle <= 0 || ok && time.Until(d) <= idle {
		return call(ctx)
	}
	qctx, cancel := context.WithTimeout(ctx, idle)
	defer cancel()
	v, err := call(qctx)
	if err != nil && ctx.Err() == nil && (qctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded) {
		// The server's timer for the deadline this call sent can fire
		// before the client's own: its DeadlineExceeded is this bound's
		// verdict too (a caller's earlier deadline was sent instead).
		err = fmt.Errorf("%w: no answer to %s within %v", transfer.ErrIdle, what, idle)
	}
	return v, err
}

// stat is Stat bounded by idle (answered).
func (c *Client) stat(ctx context.Context, idle time.Duration, path string) (*ferryv1.StatFileResponse, error) {
	return answered(ctx, idle, "StatFile", func(ctx context.Context) (*ferryv1.StatFileResponse, error) { return c.Stat(ctx, path) })
}

// ErrNotResumable: Download with Resume found a partial file that cannot
// belong to the requested range. It is left as it was.
var ErrNotResumable = errors.New("cannot resume")

// DownloadOptions shape one download. The zero value fetches the whole
// file with the server's choice of strategy.
type DownloadOptions struct {
	Offset   uint64
	Length   uint64 // 0 means to the end of the file
	Strategy ferryv1.Strategy
	// Resume continues from dest.partial, which an earlier Download with
	// Resume kept when it failed: only the bytes past it are fetched, and
	// a failure keeps the partial file for the next attempt. Without
	// Resume a partial file is emptied first and removed on failure.
	Resume bool
	// Progress, if set, is called with each progress message, from the
	// goroutine that called Download.
	Progress func(*ferryv1.Progress)
	// Receive tunes the receiving copy loop.
	Receive ReceiveConfig
	// Checksum asks the server for the range's checksum, which Download
	// verifies against what the destination holds before it keeps the
	// file; a mismatch is an error wrapping transfer.ErrChecksumMismatch
	// and leaves no file. UNSPECIFIED asks for none.
	Checksum ferryv1.ChecksumAlgorithm
	// InlineMax accepts the bytes inside the offer, with no data
	// connection, when the range is at most this long (the server caps
	// it at MaxInline). 0 means never.
	InlineMax uint64
	// RateLimit asks the server to pace the data channel to at most this
	// many bytes per second; its own ceiling (ferryd --max-rate) may hold
	// it lower, and the report's sender.rate_limit says which applied.
	// 0 means no limit of this download's own.
	RateLimit uint64
	// Streams splits the range over this many data connections at once
	// (parallel streams), each part a Download of its own with its own
	// ticket, written at its offset into the one destination file, which
	// still lands once, whole. Fewer are used when a part would be under
	// 8 MiB, and never more than the server's
	// GetCapabilitiesResponse.max_streams. 0 or 1 means one stream.
	// Standard output ("-") takes one stream only: more is an error.
	Streams int
	// MaxBytes caps the file a download lands: an offer that would make
	// it longer (with Resume, counting what the partial file holds) is
	// refused with an error wrapping ErrTooLarge before a byte is
	// written. 0 means no cap. Whatever the cap, an offer is refused when
	// it is longer than the Length asked for, or when the destination's
	// file system has too little free space for it (ErrNoSpace).
	MaxBytes uint64
}

// Download fetches path into dest (a file path, "-" for standard output,
// or /dev/null). A file lands whole or not at all: it is written to
// dest.partial, fsynced and renamed only once the data channel carried
// every byte and the server's report arrived. The returned report holds
// the server's sender statistics and this side's receiver statistics.
//
// With opts.Resume, the bytes dest.partial already holds count as the
// start of the range: the report covers the rest, moved this time, and
// its offset says where that began. Download refuses a partial file
// larger than the remote range; one of the right size or smaller is
// trusted, as nothing else is known about it (a file changed in place
// goes unnoticed). A failure keeps the partial file, except when the
// server says the source changed during the transfer (Aborted): then the
// bytes it holds are no longer worth continuing from.
//
// With opts.Streams above 1 the range is fetched in parts at once (see
// parts.go): the report then holds a report per part, and a resumed
// download fetches only what the parts lack, as the journal beside the
// partial file (DEST.partial.parts) says.
func (c *Client) Download(ctx context.Context, path, dest string, opts DownloadOptions) (*ferryv1.Report, error) {
	if opts.Streams > 1 && dest == "-" {
		return nil, errStdoutStreams
	}
	req := downloadRequest(path, dest, opts)
	if !opts.Resume {
		if opts.Streams > 1 {
			return c.downloadParts(ctx, req, dest, nil, opts)
		}
		return c.download(ctx, req, dest, nil, opts)
	}
	dst, err := fsroot.ResumeDestination(dest)
	if err != nil {
		return nil, err
	}
	defer dst.Abort()
	if report, ok, err := c.resumeParts(ctx, req, dst, opts); ok || err != nil {
		return report, err
	}
	held, err := c.skipHeld(ctx, opts.Receive.IdleLimit(), req, dest, dst.Resumed())
	if err != nil {
		return nil, err
	}
	if held {
		return alreadyHeld(req, dest, dst)
	}
	return c.download(ctx, req, dest, dst, opts)
}

// DownloadTo is Download into a destination the caller prepared, such as
// a fsroot.RootDestination beneath a node's root: it commits dst once
// every byte arrived and the server's report came, and aborts it on
// failure. opts.Resume is not supported here: the destination decides.
// opts.Streams is, as for Download; dst then keeps no parts journal.
func (c *Client) DownloadTo(ctx context.Context, path string, dst *fsroot.Destination, opts DownloadOptions) (*ferryv1.Report, error) {
	defer dst.Abort()
	if opts.Resume {
		return nil, errors.New("ferry: DownloadTo cannot resume")
	}
	req := downloadRequest(path, dst.Path, opts)
	req.Sink = ferryv1.Sink_SINK_FILE // dst lands a file, wherever its name points
	if opts.Streams > 1 {
		return c.downloadParts(ctx, req, dst.Path, dst, opts)
	}
	return c.download(ctx, req, dst.Path, dst, opts)
}

// skipHeld moves req past the have bytes dest's partial file holds, after
// checking that the remote range is at least that long. It reports true
// when the partial file already holds a range of explicit length whole.
func (c *Client) skipHeld(ctx context.Context, idle time.Duration, req *ferryv1.DownloadRequest, dest string, have int64) (bool, error) {
	if have == 0 {
		return false, nil
	}
	fi, err := c.stat(ctx, idle, req.GetPath())
	if err != nil {
		return false, err
	}
	if fi.GetIsDir() {
		return false, nil // the Download call says why it cannot be fetched
	}
	end := fi.GetSize()
	if req.Length > 0 {
		end = min(end, req.Offset+req.Length)
	}
	if end < req.Offset || uint64(have) > end-req.Offset {
		return false, fmt.Errorf("%w: %s.partial holds %d bytes, more than the remote range's %d, so it is not "+
			"from this file (remove it, or pull without resuming)", ErrNotResumable, dest, have, end-min(end, req.Offset))
	}
	req.Offset += uint64(have)
	if req.Length > 0 {
		req.Length -= uint64(have)
		return req.Length == 0, nil
	}
	return false, nil
}

// alreadyHeld lands a partial file that holds the whole requested range,
// and reports that nothing moved.
func alreadyHeld(req *ferryv1.DownloadRequest, dest string, dst *fsroot.Destination) (*ferryv1.Report, error) {
	if err := dst.Commit(); err != nil {
		return nil, fmt.Errorf("ferry: landing %s: %w", dest, err)
	}
	none := apiconv.Stats(transfer.Stats{})
	return &ferryv1.Report{Path: req.GetPath(), Offset: req.GetOffset(), Sender: none, Receiver: none}, nil
}

// download runs one Download call into dst, or, when dst is nil, into a
// destination created once the offer has arrived.
func (c *Client) download(ctx context.Context, req *ferryv1.DownloadRequest, dest string, dst *fsroot.Destination, opts DownloadOptions) (*ferryv1.Report, error) {
	report, _, err := c.fetch(ctx, req, dest, dst, opts, nil)
	return report, err
}

// fetch is download, and for a part of a range it also checks the offer
// (check, when set, before a byte moves) and returns what the receive
// did, failed or not: its statistics (the bytes it wrote) and when it
// ended.
func (c *Client) fetch(ctx context.Context, req *ferryv1.DownloadRequest, dest string, dst *fsroot.Destination,
	opts DownloadOptions, check func(*ferryv1.Offer) error) (*ferryv1.Report, received, error) {
	ctx, cancelCause := context.WithCancelCause(ctx)
	cancel := func() { cancelCause(nil) }
	defer cancel()
	idle := opts.Receive.IdleLimit()
	stream, err := c.api.Download(ctx, req)
	if err != nil {
		return nil, received{}, err
	}
	offer, err := awaitOffer(ctx, stream, req, idle, cancelCause)
	if err != nil {
		return nil, received{}, err
	}
	sec, err := c.dataTLSFor(stream.Context(), offer)
	if err != nil {
		return nil, received{}, err
	}
	if dst, err = acceptOffer(req, offer, dest, dst, opts, check); err != nil {
		return nil, received{}, err
	}
	defer dst.Abort()
	want, err := expectChecksum(req, offer, dst)
	if err != nil {
		return nil, received{}, err
	}

	recv := make(chan received, 1)
	stop := func() {}
	go func() {
		st, err := c.receive(ctx, offer, sec, dst, opts.Receive)
		if err != nil && !errors.Is(err, transfer.ErrShortTransfer) {
			// Stop the RPC: the server frees the ticket and the file. A
			// short transfer is left to the server, whose status says why.
			cancel()
		} else { // the server sends its report, or its status, at once
			stop = silence(idle, cancelCause, "waiting for its report")
		}
		recv <- received{st, err, time.Now()}
	}()
	report, serr := follow(stream, opts.Progress)
	if serr != nil {
		cancel()
	}
	r := <-recv
	stop()
	serr = idleCause(ctx, serr)
	if err := outcome(r, serr, int64(offer.GetLength())); err != nil {
		if errors.Is(serr, transfer.ErrIdle) && r.err != nil { // it explains the receive's end
			err = fmt.Errorf("%w (the data channel had ended: %v)", serr, r.err)
		}
		if status.Code(err) == codes.Aborted {
			dst.Remove() // the source changed: its bytes are not worth resuming from
		}
		return nil, r, err
	}
	if err := verify(ctx, want, dst, report, &r.stats); err != nil {
		dst.Remove() // which bytes are wrong is unknown: none are worth resuming from
		return nil, r, fmt.Errorf("ferry: %s: %w", dest, err)
	}
	if err := dst.Commit(); err != nil {
		return nil, r, fmt.Errorf("ferry: landing %s: %w", dest, err)
	}
	report.Receiver = apiconv.Stats(r.stats)
	return report, r, nil
}

// awaitOffer reads the Download's first message, which must be the
// offer, within the idle timeout, unless a checksum was asked for: the
// server hashes the range before it offers it, which may take longer.
func awaitOffer(ctx context.Context, stream grpc.ServerStreamingClient[ferryv1.DownloadResponse], req *ferryv1.DownloadRequest,
	idle time.Duration, cancel context.CancelCauseFunc) (*ferryv1.Offer, error) {
	stop := func() {}
	if req.GetChecksum() == ferryv1.ChecksumAlgorithm_CHECKSUM_ALGORITHM_UNSPECIFIED {
		stop = silence(idle, cancel, "waiting for the offer")
	}
	first, err := stream.Recv()
	stop()
	if err != nil {
		return nil, idleCause(ctx, err)
	}
	offer := first.GetOffer()
	if offer == nil {
		return nil, errors.New("ferry: server did not start with an offer")
	}
	return offer, nil
}

// acceptOffer checks an offer against the request, the caller's check,
// the size cap and the destination's free space, before a byte is
// written, and returns the destination to receive into: dst, or a new
// one at dest when dst is nil.
func acceptOffer(req *ferryv1.DownloadRequest, offer *ferryv1.Offer, dest string, dst *fsroot.Destination,
	opts DownloadOptions, check func(*ferryv1.Offer) error) (*fsroot.Destination, error) {
	if err := checkOffer(req, offer); err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(offer); err != nil {
			return nil, err
		}
	}
	var held int64
	if dst != nil {
		held = dst.Resumed()
	}
	if err := checkSize(dest, held, offer.GetLength(), opts.MaxBytes); err != nil {
		return nil, err
	}
	created := dst == nil
	if created {
		var err error
		if dst, err = fsroot.CreateDestination(dest); err != nil {
			return nil, err
		}
	}
	if err := checkRoom(dst, int64(offer.GetLength())); err != nil {
		if created {
			dst.Abort()
		}
		return nil, err
	}
	return dst, nil
}

type received struct {
	stats transfer.Stats
	err   error
	end   time.Time // when the receive returned
}

// receive runs the data channel for an offer, over TLS with sec when
// it is set.
func (c *Client) receive(ctx context.Context, offer *ferryv1.Offer, sec *tls.Config, dst *fsroot.Destination, cfg transfer.ReceiveConfig) (transfer.Stats, error) {
	strategy, _ := apiconv.FromStrategy(offer.GetStrategy())
	if offer.GetInline() {
		return transfer.ReceiveInline(offer.GetData(), int64(offer.GetLength()), dst, strategy)
	}
	addr, err := c.dataAddress(offer)
	if err != nil {
		return transfer.Stats{}, err
	}
	return c.pool.Receive(ctx, transfer.Ticket{
		Address:  addr,
		Ticket:   offer.GetTicket(),
		Length:   int64(offer.GetLength()),
		Strategy: strategy,
		TLS:      sec,
	}, dst, cfg)
}

// follow reads progress messages until the report.
func follow(stream grpc.ServerStreamingClient[ferryv1.DownloadResponse], progress func(*ferryv1.Progress)) (*ferryv1.Report, error) {
	for {
		msg, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		switch ev := msg.GetEvent().(type) {
		case *ferryv1.DownloadResponse_Progress:
			if progress != nil {
				progress(ev.Progress)
			}
		case *ferryv1.DownloadResponse_Report:
			return ev.Report, nil
		}
	}
}

// outcome is the error of a download whose receive ended with r and
// whose call ended with serr, nil if both went well. A server status that
// names no cause (Internal, Unknown: the data connection went, say) is
// no better than the receiver's count, so the count is reported, with
// the status's message for the server log; this holds even when the
// status arrived first and the receive was cancelled because of it.
func outcome(r received, serr error, length int64) error {
	if opaque(serr) && errors.Is(r.err, context.Canceled) && r.stats.Bytes < length {
		r.err = fmt.Errorf("%w: got %d of %d bytes", transfer.ErrShortTransfer, r.stats.Bytes, length)
	}
	err := pick(r.err, serr)
	if opaque(serr) && errors.Is(err, transfer.ErrShortTransfer) {
		err = fmt.Errorf("%w (server: %s)", err, status.Convert(serr).Message())
	}
	return err
}

// pick chooses the error to report when either side failed. A local
// failure (disk full, say) explains the server's view of a closed
// connection, so it wins. A data channel that closed early is explained
// by a server status that names a cause (the source changed, the server
// is shutting down), but not by an opaque one or by our own cancelling.
func pick(recvErr, streamErr error) error {
	switch {
	case recvErr == nil:
		return streamErr
	case streamErr == nil:
		return recvErr
	case errors.Is(recvErr, context.Canceled):
		return streamErr // we cancelled the receive because the RPC failed
	case errors.Is(recvErr, transfer.ErrShortTransfer) && status.Code(streamErr) != codes.Canceled && !opaque(streamErr):
		return streamErr
	}
	return recvErr
}

// opaque reports whether err is a server status that names no cause.
func opaque(err error) bool {
	c := status.Code(err)
	return err != nil && (c == codes.Internal || c == codes.Unknown)
}

// dataAddress is the address to dial for an offer's data channel, once
// CheckDataAddresses' check, if any, has accepted it.
func (c *Client) dataAddress(offer *ferryv1.Offer) (string, error) {
	return c.checkedAddress(offer.GetDataAddress())
}

// checkedAddress is the address to dial for a data address the server
// named, once CheckDataAddresses' check, if any, has accepted it.
func (c *Client) checkedAddress(offered string) (string, error) {
	addr := dataAddress(offered, c.target)
	if c.checkData != nil {
		if err := c.checkData(addr); err != nil {
			return "", err
		}
	}
	return addr, nil
}

// dataAddress fills in the control plane's host when the offer names an
// unspecified one (a server listening on 0.0.0.0 with nothing to
// advertise).
func dataAddress(offered, target string) string {
	host, port, err := net.SplitHostPort(offered)
	if err != nil {
		return offered
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return offered
	}
	if i := strings.LastIndex(target, "/"); strings.Contains(target, "://") && i >= 0 {
		target = target[i+1:] // dns:///host:port, passthrough:///host:port
	}
	th, _, err := net.SplitHostPort(target)
	if err != nil {
		return offered
	}
	return net.JoinHostPort(th, port)
}
