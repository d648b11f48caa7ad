package protodiff_test

import (
	"bytes"
	"runtime"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
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

// bottomWithSecret is an encoded Kitchen{f_int32: 1, secret: "s3cret"}.
func bottomWithSecret() []byte {
	b := protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 1)
	return protowire.AppendString(protowire.AppendTag(b, 80, protowire.BytesType), "s3cret")
}

// wrapChain wraps an encoded Kitchen in n levels of Kitchen{any: ...}.
func wrapChain(n int, bottom []byte) *pb.Kitchen {
	urlField := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), kitchenURL)
	sizes := make([]int, n+1)
	anySizes := make([]int, n)
	sizes[n] = len(bottom)
	for k := n - 1; k >= 0; k-- {
		anySizes[k] = len(urlField) + protowire.SizeTag(2) + protowire.SizeBytes(sizes[k+1])
		sizes[k] = protowire.SizeTag(70) + protowire.SizeBytes(anySizes[k])
	}
	b := make([]byte, 0, sizes[0])
	for k := range n {
		b = protowire.AppendTag(b, 70, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(anySizes[k]))
		b = append(b, urlField...)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizes[k+1]))
	}
	m := &pb.Kitchen{}
	if err := proto.Unmarshal(append(b, bottom...), m); err != nil {
		panic(err)
	}
	return m
}

// unwrap follows n levels of any down a chain.
func unwrap(t *testing.T, m *pb.Kitchen, n int) *pb.Kitchen {
	t.Helper()
	for range n {
		next := &pb.Kitchen{}
		if err := m.GetAny().UnmarshalTo(next); err != nil {
			t.Fatal(err)
		}
		m = next
	}
	return m
}

func TestRedactAnyChain(t *testing.T) {
	const n = 3000
	m := wrapChain(n, bottomWithSecret())
	protodiff.Redact(m)
	if bottom := unwrap(t, m, n); bottom.Secret != "" || bottom.FInt32 != 1 {
		t.Errorf("bottom after Redact: %v", bottom)
	}
	// Nothing to redact: the bytes are left as they are.
	plain := anyChain(n, 1)
	before := plain.Any.Value
	protodiff.Redact(plain)
	if &plain.Any.Value[0] != &before[0] {
		t.Error("Redact rewrote a payload that holds nothing sensitive")
	}

	alloc := func(n int) uint64 {
		m := wrapChain(n, bottomWithSecret())
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		protodiff.Redact(m)
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	small, large := alloc(1000), alloc(4000)
	if ratio := float64(large) / float64(small); ratio > 8 {
		t.Errorf("Redact: 1,000 levels %d bytes, 4,000 levels %d bytes (%.1fx): not linear", small, large, ratio)
	}

	// Past the maximum depth, what cannot be inspected is cleared.
	deep := wrapChain(6000, bottomWithSecret())
	protodiff.Redact(deep)
	b, err := proto.Marshal(deep)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("s3cret")) {
		t.Error("the secret survived past the maximum depth")
	}
	// The Any at the limit lost its payload; the levels above it are kept.
	if got := unwrap(t, deep, protodiff.DefaultMaxDepth/2-1); got.Any == nil || len(got.Any.Value) != 0 || got.Any.TypeUrl != kitchenURL {
		t.Errorf("at the limit: %v", got.Any)
	}
}

// TestRedactMatchesReference redacts random messages, wrapped in Any two
// levels deep, and compares the result with a straightforward reference:
// decode every payload, clear, encode again.
func TestRedactMatchesReference(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	for seed := range n {
		g := newGen(seed, 17)
		a, _ := g.pair()
		m := &pb.Kitchen{
			Any:      mustAnyT(a),
			RAny:     []*anypb.Any{mustAnyT(&pb.Kitchen{Any: mustAnyT(a), Secret: "s"}), mustAnyT(&pb.Leaf{Note: "n", Sku: "k"})},
			Children: []*pb.Kitchen{proto.Clone(a).(*pb.Kitchen)},
		}
		want := proto.Clone(m).(*pb.Kitchen)
		refRedact(t, want.ProtoReflect())
		protodiff.Redact(m)
		if r := protodiff.Diff(m, want); !r.Equal() {
			t.Fatalf("seed %d: Redact differs from the reference:\n%s", seed, dump(r))
		}
	}
}

func refRedact(t *testing.T, m protoreflect.Message) {
	var cleared []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Options().(interface{ GetDebugRedact() bool }).GetDebugRedact() {
			cleared = append(cleared, fd)
			return true
		}
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					refRedact(t, mv.Message())
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				for i := 0; i < v.List().Len(); i++ {
					refRedact(t, v.List().Get(i).Message())
				}
			}
		case fd.Message() != nil:
			refRedact(t, v.Message())
		}
		return true
	})
	for _, fd := range cleared {
		m.Clear(fd)
	}
	if a, ok := m.Interface().(*anypb.Any); ok && len(a.Value) > 0 {
		p, err := a.UnmarshalNew()
		if err != nil {
			t.Fatal(err)
		}
		refRedact(t, p.ProtoReflect())
		if a.Value, err = proto.Marshal(p); err != nil {
			t.Fatal(err)
		}
	}
}
