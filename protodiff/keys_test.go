package protodiff_test

import (
	"math"
	"testing"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

func TestListKeyNaN(t *testing.T) {
	d := mustNew(t, protodiff.WithListKey("r_message", "price"))
	nan := math.NaN()
	// NaN keys pair up, as NaN equals NaN everywhere in protodiff.
	check(t, d.Diff(
		&pb.Kitchen{RMessage: []*pb.Leaf{{Price: 1, Units: 5}, {Price: nan, Units: 1}}},
		&pb.Kitchen{RMessage: []*pb.Leaf{{Price: nan, Units: 2}, {Price: 1, Units: 5}}}),
		want{path: "r_message[price=NaN].units", field: "r_message.units", kind: protodiff.Changed, legacy: "1", candidate: "2"})
	// +0 and -0 are one key; the fields still tell them apart (proto3
	// without presence: -0 is set, +0 is not).
	check(t, d.Diff(
		&pb.Kitchen{RMessage: []*pb.Leaf{{Price: math.Copysign(0, -1), Sku: "a"}}},
		&pb.Kitchen{RMessage: []*pb.Leaf{{Price: 0, Sku: "a"}}}),
		want{path: "r_message[price=-0].price", field: "r_message.price", kind: protodiff.Changed, legacy: "-0", candidate: "0"})
}

func TestListKeyRepeated(t *testing.T) {
	d := mustNew(t, protodiff.WithListKey("items", "sku"), protodiff.WithIgnoredPaths("computed_at"))
	// The n-th element with a key pairs with the n-th on the other side,
	// and from the second on its path says which it is.
	r := d.Diff(
		quote(line("A", 1), line("A", 2), line("B", 1), line("A", 7)),
		quote(line("B", 1), line("A", 1), line("A", 3)))
	check(t, r,
		want{path: `items[sku="A"#2].price.units`, field: "items.price.units", kind: protodiff.Changed, legacy: "2", candidate: "3"},
		want{path: `items[sku="A"#3]`, field: "items", kind: protodiff.Removed,
			legacy: `{sku:"A" quantity:1 price:{currency_code:"EUR" units:7}}`})
	r = d.Diff(quote(line("A", 1)), quote(line("A", 1), line("A", 1)))
	check(t, r, want{path: `items[sku="A"#2]`, field: "items", kind: protodiff.Added,
		candidate: `{sku:"A" quantity:1 price:{currency_code:"EUR" units:1}}`})
	// Every path locates one element: no two differences share one.
	seen := map[string]bool{}
	r = d.Diff(quote(line("A", 1), line("A", 2), line("A", 3)), quote(line("A", 4), line("A", 5), line("A", 6)))
	for _, diff := range r.Differences {
		if seen[diff.Path] {
			t.Errorf("two differences at %s", diff.Path)
		}
		seen[diff.Path] = true
	}
	if len(seen) != 3 {
		t.Errorf("%d differences:\n%s", len(seen), dump(r))
	}
}
