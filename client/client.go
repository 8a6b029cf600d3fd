// Package client is the Go API for pulling files from a ferryd: dial the
// control plane, download a path or range to a destination with a chosen
// strategy, and get back the report of both sides. The ferry CLI and the
// tests use it, and so will a node's own node-to-node pull.
//
// It does not serve files, and it does not retry: a failed transfer leaves
// no destination file and returns the error for the caller to judge.
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/internal/apiconv"
	"github.com/ferrydev/ferry/transfer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Client talks to one ferryd.
type Client struct {
	conn   *grpc.ClientConn
	target string
	api    ferryv1.TransferServiceClient
}

// Dial connects lazily to target (host:port). With no options the
// connection is plaintext.
func Dial(target string, opts ...grpc.DialOption) (*Client, error) {
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, target: target, api: ferryv1.NewTransferServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

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

// DownloadOptions shape one download. The zero value fetches the whole
// file with the server's choice of strategy.
type DownloadOptions struct {
	Offset   uint64
	Length   uint64 // 0 means to the end of the file
	Strategy ferryv1.Strategy
	// Progress, if set, is called with each progress message, from the
	// goroutine that called Download.
	Progress func(*ferryv1.Progress)
	// Receive tunes the receiving copy loop.
	Receive transfer.ReceiveConfig
}

// Download fetches path into dest (a file path, "-" for standard output,
// or /dev/null). A file lands whole or not at all: it is written to
// dest.partial, fsynced and renamed only once the data channel carried
// every byte and the server's report arrived. The returned report holds
// the server's sender statistics and this side's receiver statistics.
func (c *Client) Download(ctx context.Context, path, dest string, opts DownloadOptions) (*ferryv1.Report, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.api.Download(ctx, &ferryv1.DownloadRequest{
		Path: path, Offset: opts.Offset, Length: opts.Length, Strategy: opts.Strategy,
	})
	if err != nil {
		return nil, err
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	offer := first.GetOffer()
	if offer == nil {
		return nil, errors.New("ferry: server did not start with an offer")
	}
	dst, err := transfer.CreateDestination(dest)
	if err != nil {
		return nil, err
	}
	defer dst.Abort()

	recv := make(chan received, 1)
	go func() {
		st, err := c.receive(ctx, offer, dst, opts.Receive)
		if err != nil && !errors.Is(err, transfer.ErrShortTransfer) {
			// Stop the RPC: the server frees the ticket and the file. A
			// short transfer is left to the server, whose status says why.
			cancel()
		}
		recv <- received{st, err}
	}()
	report, serr := follow(stream, opts.Progress)
	if serr != nil {
		cancel()
	}
	r := <-recv
	if err := pick(r.err, serr); err != nil {
		return nil, err
	}
	if err := dst.Commit(); err != nil {
		return nil, fmt.Errorf("ferry: landing %s: %w", dest, err)
	}
	report.Receiver = apiconv.Stats(r.stats)
	return report, nil
}

type received struct {
	stats transfer.Stats
	err   error
}

// receive runs the data channel for an offer.
func (c *Client) receive(ctx context.Context, offer *ferryv1.Offer, dst *transfer.Destination, cfg transfer.ReceiveConfig) (transfer.Stats, error) {
	strategy, _ := apiconv.FromStrategy(offer.GetStrategy())
	return transfer.Receive(ctx, transfer.Ticket{
		Address:  dataAddress(offer.GetDataAddress(), c.target),
		Ticket:   offer.GetTicket(),
		Length:   int64(offer.GetLength()),
		Strategy: strategy,
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

// pick chooses the error to report when either side failed. A local
// failure (disk full, say) explains the server's view of a closed
// connection, so it wins; otherwise the server's status says more than
// "the data channel closed early".
func pick(recvErr, streamErr error) error {
	switch {
	case recvErr == nil:
		return streamErr
	case streamErr == nil:
		return recvErr
	case errors.Is(recvErr, context.Canceled):
		return streamErr // we cancelled the receive because the RPC failed
	case errors.Is(recvErr, transfer.ErrShortTransfer) && status.Code(streamErr) != codes.Canceled:
		return streamErr
	}
	return recvErr
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
