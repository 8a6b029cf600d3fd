package service

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// TestAPIDocumented requires a leading comment on every service, method,
// message, field, enum and enum value of ferry.v1, in the descriptors
// reflection serves: `grpcurl describe` is the API's documentation.
func TestAPIDocumented(t *testing.T) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(apiDescriptors, &set); err != nil {
		t.Fatal(err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	check := func(d protoreflect.Descriptor) {
		checked++
		loc := d.ParentFile().SourceLocations().ByDescriptor(d)
		if strings.TrimSpace(loc.LeadingComments) == "" {
			t.Errorf("%s has no comment", d.FullName())
		}
	}
	var messages func(protoreflect.MessageDescriptors)
	enums := func(es protoreflect.EnumDescriptors) {
		for i := range es.Len() {
			check(es.Get(i))
			for j := range es.Get(i).Values().Len() {
				check(es.Get(i).Values().Get(j))
			}
		}
	}
	messages = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			m := ms.Get(i)
			if m.IsMapEntry() {
				continue // synthesized for a map field, which has the comment
			}
			check(m)
			for j := range m.Fields().Len() {
				check(m.Fields().Get(j))
			}
			for j := range m.Oneofs().Len() {
				check(m.Oneofs().Get(j))
			}
			enums(m.Enums())
			messages(m.Messages())
		}
	}
	files.RangeFilesByPackage("ferry.v1", func(f protoreflect.FileDescriptor) bool {
		for i := range f.Services().Len() {
			s := f.Services().Get(i)
			check(s)
			for j := range s.Methods().Len() {
				check(s.Methods().Get(j))
			}
		}
		messages(f.Messages())
		enums(f.Enums())
		return true
	})
	if checked < 100 {
		t.Errorf("checked %d descriptors; the ferry.v1 set looks incomplete", checked)
	}
	// Reflection answers from these, not from the comment-less copies
	// the generated code registers.
	r, err := documented()
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.FindDescriptorByName("ferry.v1.PullRequest.peer")
	if err != nil {
		t.Fatal(err)
	}
	if c := d.ParentFile().SourceLocations().ByDescriptor(d).LeadingComments; !strings.Contains(c, "control-plane address") {
		t.Errorf("reflection's ferry.v1.PullRequest.peer comment = %q", c)
	}
}
