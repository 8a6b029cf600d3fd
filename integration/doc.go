// Package integration holds Ferry's end-to-end tests. They build ferryd and
// ferry with `go build` once (TestMain), run them as real processes on
// 127.0.0.1 and drive them the way a user and an operator would: the ferry
// CLI, the real grpcurl, strace attached to a running ferryd, SIGTERM. The
// same package checks what CI must keep true of the tree: generated code
// matches a fresh `buf generate`, gofmt and go vet are clean, and imports
// run one way (cmd → service → transfer).
//
// Pinned tools (grpcurl, buf, protoc-gen-go, protoc-gen-go-grpc) are taken
// from $FERRY_TOOLS_BIN, then PATH, then a per-version cache directory,
// each only if its build information shows the pinned version; when none
// fits, the test installs the pinned version with `go install` into
// $FERRY_TOOLS_BIN, or the cache when that is unset. strace is required
// from the system (CI installs it).
//
// What it does not do: it uses no mocks and no in-process servers (the
// packages' own tests do that), it never sleeps to synchronise (it waits on
// ferryd's "serving" log line, on grpc.health.v1 and on strace's attach
// line), and it talks to no address but loopback. Under -race the binaries
// are built with -race too, so a race in ferryd fails the test that saw
// the process exit.
package integration
