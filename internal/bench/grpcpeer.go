package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The gRPC peer is the usual way people move files over gRPC: one
// server-streaming call whose response messages carry the file in
// chunks. It is defined without a .proto file: a hand-written
// ServiceDesc whose request is a google.protobuf.StringValue (the path)
// and whose responses are google.protobuf.BytesValue chunks, marshalled
// by grpc's default proto codec. The chunk size travels in metadata.
const (
	blobMethod   = "/ferrybench.Blob/Download"
	chunkMDKey   = "x-chunk-size"
	grpcPeerName = "grpc-peer"
)

var blobStream = grpc.StreamDesc{StreamName: "Download", ServerStreams: true}

func blobService(root *os.Root) *grpc.ServiceDesc {
	sd, fd := blobStream, floorStream
	sd.Handler = func(_ any, stream grpc.ServerStream) error { return sendBlob(root, stream) }
	fd.Handler = func(_ any, stream grpc.ServerStream) error { return serveFloor(root, stream) } // floor.go
	return &grpc.ServiceDesc{
		ServiceName: "ferrybench.Blob",
		HandlerType: (*any)(nil),
		Streams:     []grpc.StreamDesc{sd, fd},
	}
}

// sendBlob streams the requested file in chunks read into one reused
// buffer (SendMsg marshals before it returns).
func sendBlob(root *os.Root, stream grpc.ServerStream) error {
	req := new(wrapperspb.StringValue)
	if err := stream.RecvMsg(req); err != nil {
		return err
	}
	chunk := 1 << 20
	if v := metadata.ValueFromIncomingContext(stream.Context(), chunkMDKey); len(v) == 1 {
		if c, err := strconv.Atoi(v[0]); err == nil && c > 0 && c <= 4<<20 {
			chunk = c
		}
	}
	f, err := root.Open(req.GetValue())
	if err != nil {
		return err
	}
	defer f.Close()
	buf, msg := make([]byte, chunk), new(wrapperspb.BytesValue)
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			msg.Value = buf[:n]
			if err := stream.SendMsg(msg); err != nil {
				return err
			}
		}
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// ServeGRPCPeer serves root's files with the blob service on addr until
// ctx ends. ferry-bench runs it as a separate process ("helper
// grpc-serve"), so its CPU is measured like any server's.
func ServeGRPCPeer(ctx context.Context, addr, dir string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return serveGRPCPeer(ctx, l, dir)
}

func serveGRPCPeer(ctx context.Context, l net.Listener, dir string) error {
	return serveGRPCPeerOpts(ctx, l, dir)
}

func serveGRPCPeerOpts(ctx context.Context, l net.Listener, dir string, opts ...grpc.ServerOption) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		l.Close()
		return err
	}
	defer root.Close()
	s := grpc.NewServer(opts...)
	s.RegisterService(blobService(root), struct{}{})
	stop := context.AfterFunc(ctx, s.Stop)
	defer stop()
	return s.Serve(l)
}

// grpcPeer is the running peer server and the warm client connection.
type grpcPeer struct {
	srv         *server
	conn        *grpc.ClientConn
	cpu         cpuClock
	tls         bool
	floor       floorClient // floor.go
	floorReport floorClient
}

func startGRPCPeer(ctx context.Context, self, work, root string, port int) (*grpcPeer, error) {
	return startGRPCPeerWith(ctx, self, work, root, port, nil)
}

// startGRPCPeerWith starts the peer, over TLS with pki's certificate
// when pki is set.
func startGRPCPeerWith(ctx context.Context, self, work, root string, port int, pki *benchPKI) (*grpcPeer, error) {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	name, argv, creds := grpcPeerName, []string{self, "helper", "grpc-serve", addr, root}, insecure.NewCredentials()
	if pki != nil {
		cfg, err := pki.clientTLS()
		if err != nil {
			return nil, err
		}
		name, argv, creds = grpcPeerName+"-tls", []string{self, "helper", "grpc-serve-tls", addr, root, pki.cert, pki.key}, credentials.NewTLS(cfg)
	}
	s, err := startServer(name, filepath.Join(work, name+".log"), argv...)
	if err != nil {
		return nil, err
	}
	p := &grpcPeer{srv: s, cpu: treeCPU([]int{s.pid()}), tls: pki != nil, floorReport: floorClient{report: true}}
	if err := waitListening(ctx, s, port); err != nil {
		return p, err
	}
	p.conn, err = grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	return p, err
}

// fetch downloads name in chunk-sized messages and discards them.
func (p *grpcPeer) fetch(ctx context.Context, name string, chunk int) (int64, error) {
	ctx = metadata.AppendToOutgoingContext(ctx, chunkMDKey, strconv.Itoa(chunk))
	stream, err := p.conn.NewStream(ctx, &blobStream, blobMethod)
	if err != nil {
		return 0, err
	}
	if err := stream.SendMsg(wrapperspb.String(name)); err != nil {
		return 0, err
	}
	if err := stream.CloseSend(); err != nil {
		return 0, err
	}
	var n int64
	msg := new(wrapperspb.BytesValue)
	for {
		if err := stream.RecvMsg(msg); err == io.EOF {
			return n, nil
		} else if err != nil {
			return n, fmt.Errorf("grpc peer: %w", err)
		}
		n += int64(len(msg.GetValue()))
	}
}

func grpcRow(chunk int) row {
	return row{fmt.Sprintf("grpc-%dk", chunk>>10), fmt.Sprintf("gRPC server streaming, %s messages", FormatSize(int64(chunk))),
		"P grpc peer", "S ferry-bench"}
}

// path downloads the large file once.
func (p *grpcPeer) path(name string, size int64, chunk int) path {
	r := grpcRow(chunk)
	if p.tls {
		r.id, r.label = "grpc-tls-"+r.id[len("grpc-"):], r.label+", over TLS 1.3 (user space)"
	}
	return path{rows: []row{r}, run: func(ctx context.Context) ([]Sample, error) {
		s, err := metered(p.cpu, selfCPU, func(s *Sample) (err error) {
			s.Bytes, err = p.fetch(ctx, name, chunk)
			if err == nil && s.Bytes != size {
				err = fmt.Errorf("grpc peer: %d bytes, want %d", s.Bytes, size)
			}
			return err
		})
		return []Sample{s}, err
	}}
}

func (p *grpcPeer) stop() {
	p.floor.close()
	p.floorReport.close()
	if p.conn != nil {
		p.conn.Close()
	}
	p.srv.stop(5 * time.Second)
}
