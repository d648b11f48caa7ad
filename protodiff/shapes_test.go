package protodiff_test

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
)

// Shapes of hostile input: deep, long or both. Each builder takes the size
// and the value at the bottom, so that two calls give messages that are
// equal or differ in one place only.

// childChain is a Kitchen with n nested children, f_int32 = leaf at the
// bottom.
func childChain(n int, leaf int32) *pb.Kitchen {
	root := &pb.Kitchen{}
	cur := root
	for range n {
		cur.Child = &pb.Kitchen{}
		cur = cur.Child
	}
	cur.FInt32 = leaf
	return root
}

func childPath(n int, field string) string {
	return strings.Repeat("child.", n) + field
}

const kitchenURL = "type.googleapis.com/parallelrun.difftest.v1.Kitchen"

// anyChainBytes encodes a Kitchen whose any field holds a Kitchen whose any
// field holds ..., n levels of Any, with f_int32 = leaf at the bottom. It
// is written straight on the wire, outside in, since marshalling the
// levels one by one would copy the rest of the chain at each.
func anyChainBytes(n int, leaf int32) []byte {
	bottom := protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), uint64(leaf))
	urlField := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), kitchenURL)
	// sizes[k]: the Kitchen at level k, encoded.
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
	return append(b, bottom...)
}

func anyChain(n int, leaf int32) *pb.Kitchen {
	m := &pb.Kitchen{}
	if err := proto.Unmarshal(anyChainBytes(n, leaf), m); err != nil {
		panic(err)
	}
	return m
}

func anyPath(n int, field string) string {
	return strings.Repeat("any.(parallelrun.difftest.v1.Kitchen).", n) + field
}

// structChain is a Kitchen whose st Struct nests n Structs under key "k",
// with "leaf": leaf at the bottom.
func structChain(n int, leaf string) *pb.Kitchen {
	st := &structpb.Struct{Fields: map[string]*structpb.Value{"leaf": structpb.NewStringValue(leaf)}}
	for range n {
		st = &structpb.Struct{Fields: map[string]*structpb.Value{
			"k":     structpb.NewStructValue(st),
			"other": structpb.NewNumberValue(1),
		}}
	}
	return &pb.Kitchen{St: st}
}

func structPath(n int) string {
	return "st" + strings.Repeat(`.fields["k"].struct_value`, n) + `.fields["leaf"].string_value`
}

// mapChain is a Kitchen whose m_string_kitchen nests n Kitchens under key
// "k" (with a sibling "s" each), f_int32 = leaf at the bottom.
func mapChain(n int, leaf int32) *pb.Kitchen {
	root := &pb.Kitchen{FInt32: leaf}
	for range n {
		root = &pb.Kitchen{MStringKitchen: map[string]*pb.Kitchen{"k": root, "s": {FString: "sibling"}}}
	}
	return root
}

func mapPath(n int) string {
	return strings.Repeat(`m_string_kitchen["k"].`, n) + "f_int32"
}

// lineItems is a list of n distinct Lines, in order or reversed.
func lineItems(n int, reversed bool) []*pb.Line {
	items := make([]*pb.Line, n)
	for i := range items {
		k := i
		if reversed {
			k = n - 1 - i
		}
		items[i] = &pb.Line{Sku: fmt.Sprint("SKU-", k), Quantity: int64(k % 7), DiscountRate: float64(k) / 8}
	}
	return items
}
