package protodiff_test

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// checkDecode checks protodiff's decoder of Any payloads against
// proto.Unmarshal on the same bytes, into generated and dynamic messages.
func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	want := &pb.Kitchen{}
	if err := proto.Unmarshal(b, want); err != nil {
		return
	}
	got := &pb.Kitchen{}
	if err := protodiff.Decode(b, got); err != nil {
		t.Fatalf("decode: %v; proto.Unmarshal accepts the bytes", err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("decoded %v\nproto.Unmarshal %v", got, want)
	}
	// Into dynamicpb, the result must be the same. (proto.Unmarshal into
	// dynamicpb keeps the tags of unknown fields as they came, where it
	// writes them anew for generated messages; the decoder always does
	// the latter, so the generated result is the reference.)
	dyn := dynamicpb.NewMessage(want.ProtoReflect().Descriptor())
	if err := protodiff.Decode(b, dyn); err != nil {
		t.Fatalf("decode into dynamicpb: %v", err)
	}
	if !proto.Equal(dyn, toDynamic(t, want)) {
		t.Fatalf("dynamic: decoded %v\nproto.Unmarshal %v", dyn, want)
	}
}

func TestDecodeMatchesUnmarshal(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	for seed := range n {
		a, b := newGen(seed, 19).pair()
		for _, m := range []proto.Message{a, b} {
			for _, det := range []bool{false, true} {
				enc, err := proto.MarshalOptions{Deterministic: det}.Marshal(m)
				if err != nil {
					t.Fatal(err)
				}
				checkDecode(t, enc)
				// Twice: repeated singular messages merge, scalars replace.
				checkDecode(t, append(enc, enc...))
			}
		}
	}
}

// TestDecodeMapEntryWrongWireType: a key or value repeated in a map entry
// with another wire type is skipped, not taken (found by fuzzing: it made
// Map.Set panic).
func TestDecodeMapEntryWrongWireType(t *testing.T) {
	entry := protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 1)  // value true
	entry = protowire.AppendBytes(protowire.AppendTag(entry, 2, protowire.BytesType), nil) // value, wrong type
	entry = protowire.AppendFixed32(protowire.AppendTag(entry, 1, protowire.Fixed32Type), 7)
	entry = protowire.AppendVarint(protowire.AppendTag(entry, 1, protowire.VarintType), 9) // key, wrong type
	b := protowire.AppendBytes(protowire.AppendTag(nil, 47, protowire.BytesType), entry)   // m_fixed32_bool
	checkDecode(t, b)
	got := &pb.Kitchen{}
	if err := protodiff.Decode(b, got); err != nil || !got.MFixed32Bool[7] || len(got.MFixed32Bool) != 1 {
		t.Fatalf("decoded %v, %v", got.MFixed32Bool, err)
	}
}
