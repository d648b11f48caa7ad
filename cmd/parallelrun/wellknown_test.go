package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
)

// countingSource gives the files of the difftest service, and one file
// more, and counts the lookups.
type countingSource struct {
	extra *descriptorpb.FileDescriptorProto
	asked []string
}

func (s *countingSource) fileContaining(symbol string, _ func(string) bool) ([]*descriptorpb.FileDescriptorProto, error) {
	s.asked = append(s.asked, symbol)
	files := []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(pb.File_parallelrun_difftest_v1_quote_proto),
		protodesc.ToFileDescriptorProto(pb.File_parallelrun_difftest_v1_service_proto),
	}
	if s.extra != nil {
		files = append(files, s.extra)
	}
	return files, nil
}

func (s *countingSource) describe() string { return "the test's source" }

// impostor is a file that declares a type of protobuf's own name, with
// none of its fields.
func impostor(path, pkg string) *descriptorpb.FileDescriptorProto {
	return &descriptorpb.FileDescriptorProto{
		Name:        proto.String(path),
		Package:     proto.String(pkg),
		Syntax:      proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Duration")}},
	}
}

func TestRegistryWellKnownTypesAreLinkedOnes(t *testing.T) {
	src := &countingSource{}
	r := newRegistry(src, "the test's source")
	for _, m := range []proto.Message{wrapperspb.String(""), durationpb.New(0), &structpb.Struct{}, &structpb.Value{}, &fieldmaskpb.FieldMask{}, &emptypb.Empty{}} {
		want := m.ProtoReflect().Descriptor()
		mt, err := r.FindMessageByURL("type.googleapis.com/" + string(want.FullName()))
		if err != nil {
			t.Errorf("%s: %v", want.FullName(), err)
			continue
		}
		if mt.Descriptor() != want {
			t.Errorf("%s resolves to another descriptor than the linked one", want.FullName())
		}
	}
	// A name protobuf does not define is not asked of the source, which
	// may give no file declaring it.
	if _, err := r.FindMessageByName("google.protobuf.NoSuch"); !errors.Is(err, protoregistry.NotFound) {
		t.Errorf("google.protobuf.NoSuch: %v, want not found", err)
	}
	if len(src.asked) != 0 {
		t.Errorf("the source was asked for %q", src.asked)
	}
	// A user's type is.
	if _, err := r.FindMessageByName("parallelrun.difftest.v1.Quote"); err != nil || strings.Join(src.asked, " ") != "parallelrun.difftest.v1.Quote" {
		t.Errorf("parallelrun.difftest.v1.Quote: %v; asked %q", err, src.asked)
	}
}

// A file of the source that declares names in protobuf's package is
// refused, and the lookup that brought it fails naming it; protobuf's
// types stay the linked ones.
func TestRegistryRefusesWellKnownImpostors(t *testing.T) {
	for _, f := range []*descriptorpb.FileDescriptorProto{
		impostor("candidate/extra.proto", "google.protobuf"),
		impostor("google/protobuf/not_protobufs.proto", "google.protobuf"),
		impostor("candidate/sub.proto", "google.protobuf.sub"),
	} {
		r := newRegistry(&countingSource{extra: f}, "the test's source")
		_, err := r.findMethod("parallelrun.difftest.v1.QuoteService/GetQuote")
		if err == nil || !strings.Contains(err.Error(), "file "+f.GetName()+" declares names in package "+f.GetPackage()+", which is protobuf's own") {
			t.Errorf("%s: %v", f.GetName(), err)
		}
		mt, err := r.FindMessageByName("google.protobuf.Duration")
		if err != nil || mt.Descriptor() != durationpb.File_google_protobuf_duration_proto.Messages().ByName("Duration") {
			t.Errorf("%s: google.protobuf.Duration resolves to %v (%v)", f.GetName(), mt, err)
		}
	}
	// A copy of a linked file under its own path is no impostor: the
	// linked one serves.
	r := newRegistry(nil, "a set")
	if err := r.register([]*descriptorpb.FileDescriptorProto{protodesc.ToFileDescriptorProto(durationpb.File_google_protobuf_duration_proto)}); err != nil {
		t.Errorf("protobuf's own duration.proto: %v", err)
	}
}

// The same holds for a descriptor set given with --proto-set.
func TestReplayProtoSetWithImpostor(t *testing.T) {
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(durationpb.File_google_protobuf_duration_proto),
		impostor("extra.proto", "google.protobuf"),
	}}
	b, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "set.binpb")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, nil, "replay", "--proto-set", path, "--candidate", serve(t, &quotes{}, false))
	if r.code != exitUsage || !strings.Contains(r.stderr, "file extra.proto declares names in package google.protobuf") {
		t.Errorf("%s", r)
	}
}

// Without a registry (summary), every payload reads as the placeholder,
// protobuf's own types too; with one (replay), protobuf's own types are
// the linked ones, and a name protobuf does not define is a placeholder
// never named after it.
func TestLenient(t *testing.T) {
	registered := newRegistry(nil, "nothing")
	for _, c := range []struct {
		r      *registry
		url    string
		want   protoreflect.FullName
		missed bool
	}{
		{nil, "type.googleapis.com/google.protobuf.Duration", "parallelrun.unresolved.Message", true},
		{nil, "type.googleapis.com/their.v1.Request", "parallelrun.unresolved.Message", true},
		{nil, "not a URL", "parallelrun.unresolved.Message", true},
		{registered, "type.googleapis.com/google.protobuf.Duration", "google.protobuf.Duration", false},
		{registered, "example.com/types/google.protobuf.Struct", "google.protobuf.Struct", false},
		{registered, "type.googleapis.com/google.protobuf.NoSuch", "parallelrun.unresolved.Message", true},
		{registered, "type.googleapis.com/their.v1.Request", "parallelrun.unresolved.Message", true},
	} {
		l := newLenient(c.r)
		mt, err := l.FindMessageByURL(c.url)
		if err != nil {
			t.Errorf("registry %v, %q: %v", c.r != nil, c.url, err)
			continue
		}
		if got := mt.Descriptor().FullName(); got != c.want || (len(l.missed) == 1) != c.missed {
			t.Errorf("registry %v, %q: %s, missed %q; want %s", c.r != nil, c.url, got, l.missed, c.want)
		}
	}
}
