package service

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// bearerAuth checks the bearer token on every call except those to the
// open services. Its zero value checks nothing.
type bearerAuth struct {
	want [sha256.Size]byte // the token's digest
	on   bool
}

func newBearerAuth(token string) bearerAuth {
	if token == "" {
		return bearerAuth{}
	}
	return bearerAuth{want: sha256.Sum256([]byte(token)), on: true}
}

// openService reports whether service answers without a token: health,
// because Kubernetes probes carry none, and reflection, which describes
// the API and no data.
func openService(service string) bool {
	return service == "grpc.health.v1.Health" || strings.HasPrefix(service, "grpc.reflection.")
}

// Match tells the selector which calls need the token: all but the open
// services', when a token is set.
func (a bearerAuth) Match(_ context.Context, c interceptors.CallMeta) bool {
	return a.on && !openService(c.Service)
}

// check is the auth.AuthFunc. The tokens are compared as SHA-256 digests
// in constant time, so neither their content nor their length leaks
// through timing.
func (a bearerAuth) check(ctx context.Context) (context.Context, error) {
	got, err := auth.AuthFromMD(ctx, "bearer")
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, `this server requires "authorization: Bearer <token>"`)
	}
	sum := sha256.Sum256([]byte(got))
	if subtle.ConstantTimeCompare(sum[:], a.want[:]) != 1 {
		return nil, status.Error(codes.Unauthenticated, "invalid bearer token")
	}
	return ctx, nil
}

func (a bearerAuth) unary() grpc.UnaryServerInterceptor {
	return selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(a.check), a)
}

func (a bearerAuth) stream() grpc.StreamServerInterceptor {
	return selector.StreamServerInterceptor(auth.StreamServerInterceptor(a.check), a)
}
