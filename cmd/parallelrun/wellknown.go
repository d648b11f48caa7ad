package main

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	// Linked for their registration: every type of package google.protobuf
	// is resolved from the linked copies, never from a descriptor the
	// input gives (see isWellKnown), so all of them must be here. A
	// service may take or answer any of them (rpc Now(google.protobuf.Empty)
	// returns (google.protobuf.Timestamp)), and protojson writes several in
	// JSON forms of their own that only the real types read.
	_ "google.golang.org/protobuf/types/known/anypb"
	_ "google.golang.org/protobuf/types/known/apipb"
	_ "google.golang.org/protobuf/types/known/durationpb"
	_ "google.golang.org/protobuf/types/known/emptypb"
	_ "google.golang.org/protobuf/types/known/fieldmaskpb"
	_ "google.golang.org/protobuf/types/known/sourcecontextpb"
	_ "google.golang.org/protobuf/types/known/structpb"
	_ "google.golang.org/protobuf/types/known/timestamppb"
	_ "google.golang.org/protobuf/types/known/typepb"
	_ "google.golang.org/protobuf/types/known/wrapperspb"
	_ "google.golang.org/protobuf/types/pluginpb"
)

// isWellKnown says whether a name or file path is one of protobuf's own,
// which are linked in this command: a descriptor set or a server may leave
// them out. Other linked types (the command's own) are never taken from
// the global registry, so that what a user's type resolves to never
// depends on what this binary happens to link.
func isWellKnown(nameOrPath string) bool {
	return strings.HasPrefix(nameOrPath, "google.protobuf.") || strings.HasPrefix(nameOrPath, "google/protobuf/")
}

// wellKnownType is the linked type of a name in package google.protobuf.
// A name that protobuf does not define is not found: no descriptor from
// the input may define it instead (see declaresWellKnown).
func wellKnownType(name protoreflect.FullName) (protoreflect.MessageType, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(name)
	if err != nil {
		return nil, notFound{"not a message type of protobuf's own, and no other file may declare one"}
	}
	return mt, nil
}

// declaresWellKnown says whether a file declares names in package
// google.protobuf (or below it). protojson reads the well-known types by
// their names, in JSON forms of their own; a type of the same name with
// other fields, such as a hostile candidate's reflection may give, would
// make it fail on fields that are not there.
func declaresWellKnown(f *descriptorpb.FileDescriptorProto) bool {
	pkg := f.GetPackage()
	return pkg == "google.protobuf" || strings.HasPrefix(pkg, "google.protobuf.")
}
