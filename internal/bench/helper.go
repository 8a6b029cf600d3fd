package bench

import (
	"context"
	"fmt"
	"os"
)

// Helper runs one of the processes ferry-bench starts from its own
// executable ("ferry-bench helper NAME ARGS..."):
//
//	grpc-serve ADDR DIR   the gRPC streaming peer
//	grpc-serve-tls ADDR DIR CERT KEY   the same over TLS
//	nc-send ADDR          stdin to a TCP connection (the nc of tar c | nc)
//	nc-recv ADDR          one accepted TCP connection to stdout (nc -l)
func Helper(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("helper: want grpc-serve, nc-send or nc-recv")
	}
	switch name, rest := args[0], args[1:]; {
	case name == "grpc-serve" && len(rest) == 2:
		return ServeGRPCPeer(ctx, rest[0], rest[1])
	case name == "grpc-serve-tls" && len(rest) == 4:
		return serveGRPCPeerTLS(ctx, rest[0], rest[1], rest[2], rest[3])
	case name == "nc-send" && len(rest) == 1:
		return NetcatSend(ctx, rest[0], os.Stdin)
	case name == "nc-recv" && len(rest) == 1:
		return NetcatListen(ctx, rest[0], os.Stdout)
	}
	return fmt.Errorf("helper: bad arguments %q", args)
}
