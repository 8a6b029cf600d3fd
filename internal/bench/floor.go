package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The floor is the least a session get can cost in Ferry's shape, with
// none of Ferry's code: a request by a gRPC bidi stream, the file's bytes
// back on a TCP connection bound to that stream. No report, no
// statistics, no limits, no auth. The gRPC peer serves it: the stream's
// first answer is the address of a listener made for it, whose one
// connection the client dials; then each request (the path, a
// google.protobuf.StringValue) is answered on that connection with an
// 8-byte big-endian length and the file's bytes, in one write. Ferry's
// session rows set against it show what Ferry adds; nginx's against it
// show whether the shape can match a web server on this host at all.
//
// The second floor adds what Ferry owes every transfer and the first
// leaves out: a report on the stream. After each answer the server sends
// a message of floorReportBytes bytes (the size of a marshalled Ferry
// session report), which the client reads on a goroutine of its own and
// does not wait for, as Ferry's Session.Get does not wait for its
// report. The stream's metadata asks for it.
const (
	floorMethod      = "/ferrybench.Blob/Floor"
	floorReportMDKey = "x-report-bytes"
	floorReportBytes = 200
)

var floorStream = grpc.StreamDesc{StreamName: "Floor", ServerStreams: true, ClientStreams: true}

// serveFloor runs one floor stream: it binds one data connection, then
// answers each request on it until the client ends the stream.
func serveFloor(root *os.Root, stream grpc.ServerStream) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	if err := stream.SendMsg(wrapperspb.String(l.Addr().String())); err != nil {
		return err
	}
	if tl, ok := l.(*net.TCPListener); ok {
		tl.SetDeadline(time.Now().Add(10 * time.Second))
	}
	conn, err := l.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	l.Close()
	buf := make([]byte, 8+(4<<20)+1) // a file of 4 MiB fits; one byte more says it is larger
	var report *wrapperspb.BytesValue
	if v := metadata.ValueFromIncomingContext(stream.Context(), floorReportMDKey); len(v) == 1 {
		if n, err := strconv.Atoi(v[0]); err == nil && n > 0 && n <= 64<<10 {
			report = &wrapperspb.BytesValue{Value: make([]byte, n)}
		}
	}
	req := new(wrapperspb.StringValue)
	for {
		if err := stream.RecvMsg(req); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		n, err := readSmall(root, req.GetValue(), buf[8:])
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint64(buf, uint64(n))
		if _, err := conn.Write(buf[:8+n]); err != nil {
			return err
		}
		if report != nil {
			if err := stream.SendMsg(report); err != nil {
				return err
			}
		}
	}
}

// readSmall reads the file name into buf, which must hold it whole.
func readSmall(root *os.Root, name string, buf []byte) (int, error) {
	f, err := root.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := io.ReadFull(f, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return n, nil
	}
	if err == nil {
		return n, fmt.Errorf("floor: %s is larger than %d bytes", name, len(buf)-1)
	}
	return n, err
}

// floorClient is the warm client side of one floor stream.
type floorClient struct {
	report  bool         // ask for a report after each answer (the second floor)
	reports atomic.Int64 // reports read
	mu      sync.Mutex
	stream  grpc.ClientStream
	conn    net.Conn
	cancel  context.CancelFunc
	hdr     [8]byte
	buf     []byte
}

// open starts the stream and dials its data connection, once.
func (f *floorClient) open(cc *grpc.ClientConn) error {
	if f.stream != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	if f.report {
		ctx = metadata.AppendToOutgoingContext(ctx, floorReportMDKey, strconv.Itoa(floorReportBytes))
	}
	stream, err := cc.NewStream(ctx, &floorStream, floorMethod)
	if err != nil {
		cancel()
		return err
	}
	addr := new(wrapperspb.StringValue)
	if err := stream.RecvMsg(addr); err != nil {
		cancel()
		return fmt.Errorf("floor: %w", err)
	}
	conn, err := net.Dial("tcp", addr.GetValue())
	if err != nil {
		cancel()
		return fmt.Errorf("floor: %w", err)
	}
	f.stream, f.conn, f.cancel, f.buf = stream, conn, cancel, make([]byte, 4<<20)
	if f.report {
		go func() { // the reports, read and dropped, until the stream ends
			m := new(wrapperspb.BytesValue)
			for stream.RecvMsg(m) == nil {
				f.reports.Add(1)
			}
		}()
	}
	return nil
}

// fetch asks for name and reads its bytes from the data connection.
func (f *floorClient) fetch(cc *grpc.ClientConn, name string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.open(cc); err != nil {
		return 0, err
	}
	if err := f.stream.SendMsg(wrapperspb.String(name)); err != nil {
		return 0, fmt.Errorf("floor: %w", err)
	}
	if _, err := io.ReadFull(f.conn, f.hdr[:]); err != nil {
		return 0, fmt.Errorf("floor: %w", err)
	}
	n := binary.BigEndian.Uint64(f.hdr[:])
	if n > uint64(len(f.buf)) {
		return 0, fmt.Errorf("floor: %d bytes announced, more than %d", n, len(f.buf))
	}
	if _, err := io.ReadFull(f.conn, f.buf[:n]); err != nil {
		return 0, fmt.Errorf("floor: %w", err)
	}
	return int64(n), nil
}

func (f *floorClient) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stream == nil {
		return
	}
	f.stream.CloseSend()
	f.conn.Close()
	f.cancel()
	f.stream = nil
}

func floorRow(report bool) row {
	if report {
		return row{"grpc-floor-report", "floor with a report: as the floor, and a 200-byte report on the stream after each file",
			"P grpc peer", "S ferry-bench"}
	}
	return row{"grpc-floor", "floor: a request on a gRPC bidi stream, the bytes back on a bound TCP connection (no Ferry code)",
		"P grpc peer", "S ferry-bench"}
}
