package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// atkReflection is a hostile candidate's server reflection: asked for the
// file of a symbol, it answers with the service's real files and one file
// more, which declares its own google.protobuf.Duration, with none of the
// real type's fields.
type atkReflection struct {
	reflectionpb.UnimplementedServerReflectionServer
	files [][]byte
}

func (s *atkReflection) ServerReflectionInfo(stream reflectionpb.ServerReflection_ServerReflectionInfoServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		var files [][]byte
		switch r := req.GetMessageRequest().(type) {
		case *reflectionpb.ServerReflectionRequest_FileContainingSymbol:
			files = s.files
		case *reflectionpb.ServerReflectionRequest_FileByFilename:
			if fd, err := protoregistry.GlobalFiles.FindFileByPath(r.FileByFilename); err == nil {
				b, _ := proto.Marshal(protodesc.ToFileDescriptorProto(fd))
				files = [][]byte{b}
			}
		}
		if err := stream.Send(&reflectionpb.ServerReflectionResponse{
			MessageResponse: &reflectionpb.ServerReflectionResponse_FileDescriptorResponse{
				FileDescriptorResponse: &reflectionpb.FileDescriptorResponse{FileDescriptorProto: files},
			},
		}); err != nil {
			return nil
		}
	}
}

// A hostile candidate's reflection can crash replay: the registry takes
// whatever files the candidate gives, and a file may declare a type named
// google.protobuf.Duration (or Timestamp, Struct, Any...) in a path of its
// own. registry.FindMessageByName looks in those files before it looks at
// protobuf's linked well-known types, so every later Any of that type in
// the reports (a service's request or reply, or an Any field inside one)
// resolves to the candidate's impostor; protojson decodes the well-known
// JSON form into it and panics on a missing field descriptor, in the
// reading goroutine, where nothing recovers. The reports are the user's
// own; only the candidate is hostile.
//
// Cause: cmd/parallelrun/types.go, registry.FindMessageByName (local files
// first, linked well-known types only after) and registry.build, which
// skips a well-known file by its path only, not by the names it declares.
// Fix: resolve well-known names from protoregistry.GlobalTypes first, and
// refuse (as an error of the source) a file from a source that declares a
// name in package google.protobuf under another path.
func TestAttackReplayHostileReflectionWellKnownImpostor(t *testing.T) {
	var files [][]byte
	for _, fd := range []protoreflect.FileDescriptor{pb.File_parallelrun_difftest_v1_quote_proto, pb.File_parallelrun_difftest_v1_service_proto} {
		b, err := proto.Marshal(protodesc.ToFileDescriptorProto(fd))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	impostor, err := proto.Marshal(&descriptorpb.FileDescriptorProto{
		Name:        proto.String("candidate/extra.proto"),
		Package:     proto.String("google.protobuf"),
		Syntax:      proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Duration")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, impostor)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	reflectionpb.RegisterServerReflectionServer(srv, &atkReflection{files: files})
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	defer func() { srv.Stop(); <-done }()

	// The first report makes replay ask for the service's files; the
	// matches after it hold an Any of google.protobuf.Duration, a request
	// of a method that takes one.
	at := time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC)
	lines := []string{atkLine(t, &parallelrunv1.Report{
		Method:       "parallelrun.difftest.v1.QuoteService/GetQuote",
		Outcome:      parallelrunv1.Outcome_OUTCOME_MISMATCH,
		Time:         timestamppb.New(at),
		LegacyStatus: &parallelrunv1.Status{Code: "OK"},
	})}
	payload, err := anypb.New(durationpb.New(90 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		lines = append(lines, atkLine(t, &parallelrunv1.Report{
			Method:  "pkg.Timer/Set",
			Outcome: parallelrunv1.Outcome_OUTCOME_MATCH,
			Time:    timestamppb.New(at.Add(time.Duration(i+1) * time.Second)),
			Request: payload,
		}))
	}
	code, stdout, stderr, p := atkRun(strings.NewReader(strings.Join(lines, "\n")+"\n"),
		"replay", "--candidate", lis.Addr().String(), "--wait", "5s", "--timeout", "5s")
	if p != nil {
		t.Fatalf("replay panicked on the reports of an honest run after the candidate's reflection gave a file declaring google.protobuf.Duration: %v", p)
	}
	if code == exitOK {
		t.Errorf("exit 0 with nothing replayed\n%s\n%s", stdout, stderr)
	}
}
