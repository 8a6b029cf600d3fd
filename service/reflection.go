package service

import (
	_ "embed"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// apiDescriptors is the ferry.v1 API as `buf build -o service/ferry.binpb`
// writes it: the descriptors of proto/ WITH their source info, which the
// generated Go code leaves out. Reflection serves these, so that
// `grpcurl describe` prints every message's and field's comment.
// integration/TestGeneratedCode fails when this file is stale.
//
//go:embed ferry.binpb
var apiDescriptors []byte

// documented is the API's descriptors with comments, first, then
// everything else the binary links in (health, reflection itself).
var documented = sync.OnceValues(func() (protodesc.Resolver, error) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(apiDescriptors, &set); err != nil {
		return nil, fmt.Errorf("ferry.binpb: %w", err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("ferry.binpb: %w", err)
	}
	return resolvers{files, protoregistry.GlobalFiles}, nil
})

// registerReflection registers server reflection, v1 and v1alpha (grpcurl
// asks for either), answering from the documented descriptors. Should they
// fail to load, which a test rules out, reflection still works without
// comments.
func registerReflection(s *grpc.Server) {
	opts := reflection.ServerOptions{Services: s}
	if r, err := documented(); err == nil {
		opts.DescriptorResolver = r
	}
	reflectionv1.RegisterServerReflectionServer(s, reflection.NewServerV1(opts))
	reflectionv1alpha.RegisterServerReflectionServer(s, reflection.NewServer(opts))
}

// resolvers asks each resolver in turn; the first that knows a name wins.
type resolvers []protodesc.Resolver

func (rs resolvers) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	for _, r := range rs {
		if fd, err := r.FindFileByPath(path); err == nil {
			return fd, nil
		}
	}
	return nil, fmt.Errorf("%q: %w", path, protoregistry.NotFound)
}

func (rs resolvers) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	for _, r := range rs {
		if d, err := r.FindDescriptorByName(name); err == nil {
			return d, nil
		}
	}
	return nil, fmt.Errorf("%q: %w", name, protoregistry.NotFound)
}
