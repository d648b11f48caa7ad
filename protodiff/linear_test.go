package protodiff_test

import (
	"fmt"
	"math"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// TestLinearCost checks that the cost of a comparison grows linearly with
// its input whatever the shape and the options: doubling the input at most
// doubles the work (2.2x with the constant parts), where work is what the
// walk charges to its budget plus the values that its proto.Equal checks
// visit. Counted, not timed, so that a noisy machine cannot make it flaky
// nor hide a regression; BENCHMARKS.md has the times.
func TestLinearCost(t *testing.T) {
	type shape struct {
		name string
		opts []protodiff.Option
		pair func(n int) (proto.Message, proto.Message)
		n    int
		// equal: the options excuse every difference
		equal bool
	}
	reversed := func(n int) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprint("s", n-1-i)
		}
		return s
	}
	shapes := []shape{
		{name: "child chain", n: 1000, pair: func(n int) (proto.Message, proto.Message) { return childChain(n, 1), childChain(n, 2) }},
		{name: "any chain", n: 1000, pair: func(n int) (proto.Message, proto.Message) { return anyChain(n, 1), anyChain(n, 2) }},
		{name: "struct chain", n: 200, pair: func(n int) (proto.Message, proto.Message) { return structChain(n, "a"), structChain(n, "b") }},
		{name: "map chain", n: 200, pair: func(n int) (proto.Message, proto.Message) { return mapChain(n, 1), mapChain(n, 2) }},
		{name: "map chain, ignored leaf", n: 200, equal: true, opts: []protodiff.Option{protodiff.WithIgnoredFields("parallelrun.difftest.v1.Kitchen.f_int32")},
			pair: func(n int) (proto.Message, proto.Message) { return mapChain(n, 1), mapChain(n, 2) }},
		{name: "child chain, every level differs", n: 1000, opts: []protodiff.Option{protodiff.WithMaxDifferences(1 << 20)},
			pair: func(n int) (proto.Message, proto.Message) {
				x, y := childChain(n, 1), childChain(n, 1)
				for c := y; c != nil; c = c.Child {
					c.FUint32 = 1
				}
				return x, y
			}},
		{name: "unordered strings", n: 5000, opts: []protodiff.Option{protodiff.WithUnorderedLists("r_string")},
			pair: func(n int) (proto.Message, proto.Message) {
				x := &pb.Kitchen{RString: reversed(n)}
				y := &pb.Kitchen{RString: reversed(n)}
				y.RString[0], y.RString[n-1] = y.RString[n-1], "new"
				return x, y
			}},
		{name: "unordered messages", n: 5000, opts: []protodiff.Option{protodiff.WithUnorderedLists("items")},
			pair: func(n int) (proto.Message, proto.Message) {
				return &pb.Quote{Items: lineItems(n, false)}, &pb.Quote{Items: lineItems(n, true)[1:]}
			}},
		{name: "unordered messages, tolerance", n: 5000, opts: []protodiff.Option{protodiff.WithUnorderedLists("items"), protodiff.WithFloatTolerance(0, 0.01)},
			pair: func(n int) (proto.Message, proto.Message) {
				y := lineItems(n, true)
				for _, l := range y {
					l.DiscountRate += 0.005
				}
				return &pb.Quote{Items: lineItems(n, false)}, &pb.Quote{Items: y[1:]}
			}},
		{name: "unordered floats, tolerance", n: 5000, opts: []protodiff.Option{protodiff.WithUnorderedLists("packed_double"), protodiff.WithFloatTolerance(0.5, 0.3)},
			pair: func(n int) (proto.Message, proto.Message) {
				x, y := &pb.Kitchen{}, &pb.Kitchen{}
				for i := range n {
					x.PackedDouble = append(x.PackedDouble, float64(i)/4)
					y.PackedDouble = append(y.PackedDouble, float64(n-i)/4+0.2)
				}
				y.PackedDouble = append(y.PackedDouble, math.Inf(1))
				return x, y
			}},
		{name: "unordered messages, one large but equal", n: 5000,
			opts: []protodiff.Option{protodiff.WithUnorderedLists("r_message"), protodiff.WithIgnoredPaths("r_message.1000")},
			pair: func(n int) (proto.Message, proto.Message) {
				// Ignored unknown bytes as large as the list: comparing
				// every element with this one would be quadratic.
				big := &pb.Leaf{Sku: "a"}
				big.ProtoReflect().SetUnknown(protowire.AppendBytes(protowire.AppendTag(nil, 1000, protowire.BytesType), make([]byte, 64*n)))
				x, y := &pb.Kitchen{RMessage: []*pb.Leaf{big}}, &pb.Kitchen{}
				for range n {
					x.RMessage = append(x.RMessage, &pb.Leaf{Sku: "a"})
					y.RMessage = append(y.RMessage, &pb.Leaf{Sku: "a"})
				}
				y.RMessage = append(y.RMessage, &pb.Leaf{Sku: "a", Units: 1})
				return x, y
			}},
		{name: "keyed list, every element differs", n: 5000,
			opts: []protodiff.Option{protodiff.WithListKey("items", "sku"), protodiff.WithMaxDifferences(1 << 20)},
			pair: func(n int) (proto.Message, proto.Message) {
				x, y := &pb.Quote{Items: lineItems(n, false)}, &pb.Quote{Items: lineItems(n, false)}
				for _, l := range y.Items {
					l.Sku = "same" // one key for all: ranks up to n
					l.Quantity++
				}
				for _, l := range x.Items {
					l.Sku = "same"
				}
				return x, y
			}},
		{name: "keyed list", n: 5000, opts: []protodiff.Option{protodiff.WithListKey("items", "sku")},
			pair: func(n int) (proto.Message, proto.Message) {
				return &pb.Quote{Items: lineItems(n, false)}, &pb.Quote{Items: lineItems(n, true)[1:]}
			}},
	}
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			d := mustNew(t, s.opts...)
			cost := func(n int) int {
				x, y := s.pair(n)
				r, c := protodiff.DiffCost(d, x, y)
				if r.Equal() != s.equal || r.Incomplete != "" {
					t.Fatalf("%d: equal %v, Incomplete %q", n, r.Equal(), r.Incomplete)
				}
				return c
			}
			c1, c2, c4 := cost(s.n), cost(2*s.n), cost(4*s.n)
			t.Logf("cost %d, %d, %d", c1, c2, c4)
			if float64(c2) > 2.2*float64(c1) || float64(c4) > 2.2*float64(c2) {
				t.Errorf("cost %d at n=%d, %d at 2n, %d at 4n: more than linear", c1, s.n, c2, c4)
			}
		})
	}
}
