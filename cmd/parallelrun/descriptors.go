package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// maxProtoSetBytes bounds the descriptor set file read whole.
const maxProtoSetBytes = 256 << 20

// loadProtoSet reads a serialized google.protobuf.FileDescriptorSet (as
// `buf build -o set.binpb` or `protoc --include_imports
// --descriptor_set_out` write it) into a registry. Imports of protobuf's
// own files may be left out of it.
func loadProtoSet(path string) (*registry, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxProtoSetBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d MiB a descriptor set may have here", path, st.Size(), maxProtoSetBytes>>20)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%s: not a serialized google.protobuf.FileDescriptorSet: %w", path, err)
	}
	if len(set.GetFile()) == 0 {
		return nil, fmt.Errorf("%s: a descriptor set with no files", path)
	}
	r := newRegistry(nil, "--proto-set "+path)
	if err := r.register(set.GetFile()); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// maxReflectionFiles bounds the files one reflection lookup may bring.
const maxReflectionFiles = 10_000

// reflectionSource asks the candidate's gRPC server reflection (v1) for
// the file of a symbol and its imports, one stream per lookup.
type reflectionSource struct {
	conn    *grpc.ClientConn
	timeout time.Duration
	ctx     func(context.Context) context.Context // adds the outgoing metadata
}

func (s *reflectionSource) describe() string { return "the candidate's server reflection" }

func (s *reflectionSource) fileContaining(symbol string, have func(string) bool) ([]*descriptorpb.FileDescriptorProto, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel() // ends the stream, whatever state it is in
	stream, err := reflectionpb.NewServerReflectionClient(s.conn).ServerReflectionInfo(s.ctx(ctx))
	if err != nil {
		return nil, reflectionError(err)
	}
	got := map[string]bool{}
	var files []*descriptorpb.FileDescriptorProto
	ask := func(req *reflectionpb.ServerReflectionRequest) error {
		if err := stream.Send(req); err != nil {
			_, err = stream.Recv() // the stream's status says why
			return reflectionError(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			return reflectionError(err)
		}
		if e := resp.GetErrorResponse(); e != nil {
			code := codes.Code(uint32(e.GetErrorCode()))
			if code == codes.NotFound {
				return notFound{e.GetErrorMessage()}
			}
			return fmt.Errorf("%s: %s", codeName(code), e.GetErrorMessage())
		}
		fdr := resp.GetFileDescriptorResponse()
		if fdr == nil {
			return fmt.Errorf("an answer of another kind than files")
		}
		for _, b := range fdr.GetFileDescriptorProto() {
			f := &descriptorpb.FileDescriptorProto{}
			if err := proto.Unmarshal(b, f); err != nil {
				return fmt.Errorf("a file that does not decode: %w", err)
			}
			if !got[f.GetName()] {
				got[f.GetName()] = true
				files = append(files, f)
			}
		}
		if len(files) > maxReflectionFiles {
			return fmt.Errorf("more than %d files for one symbol", maxReflectionFiles)
		}
		return nil
	}
	if err := ask(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol},
	}); err != nil {
		return nil, err
	}
	// A server may leave out the imports it sent before on the stream, or
	// all of them: ask for those still missing, by name.
	for i := 0; i < len(files); i++ {
		for _, dep := range files[i].GetDependency() {
			if got[dep] || have(dep) || isWellKnown(dep) {
				continue
			}
			if err := ask(&reflectionpb.ServerReflectionRequest{
				MessageRequest: &reflectionpb.ServerReflectionRequest_FileByFilename{FileByFilename: dep},
			}); err != nil {
				return nil, fmt.Errorf("import %s: %w", dep, err)
			}
			got[dep] = true
		}
	}
	_ = stream.CloseSend()
	return files, nil
}

func reflectionError(err error) error {
	st := status.Convert(err)
	if st.Code() == codes.Unimplemented {
		return fmt.Errorf("%s: %s (the candidate does not serve reflection: give --proto-set)", codeName(st.Code()), st.Message())
	}
	return fmt.Errorf("%s: %s", codeName(st.Code()), st.Message())
}
