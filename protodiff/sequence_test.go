package protodiff_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

func TestDiffUnordered(t *testing.T) {
	q := func(sku string, units int64, rate float64) proto.Message {
		return &pb.Line{Sku: sku, Quantity: units, DiscountRate: rate}
	}
	d, err := protodiff.New(protodiff.WithFloatToleranceAt("discount_rate", 0, 0.01), protodiff.WithRedactedPaths("sku"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name              string
		legacy, candidate []proto.Message
		want              string
	}{
		{"both empty", nil, nil, ""},
		{"same in another order", []proto.Message{q("A", 1, 0.1), q("B", 2, 0.2)}, []proto.Message{q("B", 2, 0.2), q("A", 1, 0.1)}, ""},
		{"within tolerance", []proto.Message{q("A", 1, 0.100), q("A", 1, 0.105)}, []proto.Message{q("A", 1, 0.109), q("A", 1, 0.095)}, ""},
		{"one more", []proto.Message{q("A", 1, 0)}, []proto.Message{q("A", 1, 0), q("B", 2, 0)},
			`added [1]: "" -> "{sku:[REDACTED] quantity:2}"`},
		{"one fewer", []proto.Message{q("A", 1, 0), q("B", 2, 0)}, []proto.Message{q("B", 2, 0)},
			`removed [0]: "{sku:[REDACTED] quantity:1}" -> ""`},
		{"mixed types", []proto.Message{q("A", 1, 0)}, []proto.Message{&pb.Money{}},
			`type_changed : "messages of types parallelrun.difftest.v1.Line and parallelrun.difftest.v1.Money" -> ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			for _, diff := range d.DiffUnordered(tc.legacy, tc.candidate).Differences {
				got += fmt.Sprintf("%s %s: %q -> %q", diff.Kind, diff.Path, diff.Legacy, diff.Candidate)
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// A long sequence in another order matches in about n log n, as a list
// does.
func TestDiffUnorderedLong(t *testing.T) {
	const n = 20_000
	r := rand.New(rand.NewPCG(1, 2))
	legacy := make([]proto.Message, n)
	for i := range legacy {
		legacy[i] = &pb.Quote{QuoteId: fmt.Sprint("q", i), Total: &pb.Money{Units: int64(i)}}
	}
	candidate := append([]proto.Message(nil), legacy...)
	r.Shuffle(n, func(i, j int) { candidate[i], candidate[j] = candidate[j], candidate[i] })
	candidate[7] = &pb.Quote{QuoteId: "new"}
	d, err := protodiff.New()
	if err != nil {
		t.Fatal(err)
	}
	res := d.DiffUnordered(legacy, candidate)
	if len(res.Differences) != 2 || res.Incomplete != "" {
		t.Fatalf("%d differences, incomplete %q: %v", len(res.Differences), res.Incomplete, res.Differences)
	}
}
