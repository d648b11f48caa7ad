package protodiff_test

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

func TestRedact(t *testing.T) {
	m := &pb.Kitchen{
		Secret:     "s",
		FString:    "kept",
		FMessage:   &pb.Leaf{Note: "n", Sku: "kept"},
		RMessage:   []*pb.Leaf{{Note: "n", Units: 1}},
		MInt32Leaf: map[int32]*pb.Leaf{1: {Note: "n"}},
		SecretMap:  map[string]string{"k": "v"},
		Any:        mustAnyT(&pb.Quote{CustomerEmail: "e", QuoteId: "kept"}),
		RAny:       []*anypb.Any{{TypeUrl: "example.com/unknown.Type", Value: []byte("x")}},
		Child:      &pb.Kitchen{SecretLeaf: &pb.Leaf{Units: 1}},
	}
	m.Presence = &pb.Presence{}
	proto.SetExtension(m.Presence, pb.E_ExtSecret, "x")
	proto.SetExtension(m.Presence, pb.E_ExtString, "kept")

	protodiff.Redact(m)

	want := &pb.Kitchen{
		FString:    "kept",
		FMessage:   &pb.Leaf{Sku: "kept"},
		RMessage:   []*pb.Leaf{{Units: 1}},
		MInt32Leaf: map[int32]*pb.Leaf{1: {}},
		Any:        mustAnyT(&pb.Quote{QuoteId: "kept"}),
		RAny:       []*anypb.Any{{TypeUrl: "example.com/unknown.Type"}},
		Child:      &pb.Kitchen{},
		Presence:   &pb.Presence{},
	}
	proto.SetExtension(want.Presence, pb.E_ExtString, "kept")
	if r := protodiff.Diff(m, want); !r.Equal() {
		t.Fatalf("redacted message differs from the expected one:\n%s", dump(r))
	}
	var q pb.Quote
	if err := m.Any.UnmarshalTo(&q); err != nil || q.CustomerEmail != "" || q.QuoteId != "kept" {
		t.Fatalf("Any payload: %v, %v", &q, err)
	}
	protodiff.Redact(nil)
	protodiff.Redact((*pb.Leaf)(nil))
}
