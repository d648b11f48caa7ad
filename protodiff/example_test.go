package protodiff_test

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

func Example() {
	legacy := &pb.Quote{
		Items: []*pb.Line{{Sku: "A1", Quantity: 2, Price: &pb.Money{CurrencyCode: "EUR", Units: 10}}},
		Total: &pb.Money{CurrencyCode: "EUR", Units: 20},
	}
	candidate := &pb.Quote{
		Items: []*pb.Line{{Sku: "A1", Quantity: 2, Price: &pb.Money{CurrencyCode: "EUR", Units: 11}}},
		Total: &pb.Money{CurrencyCode: "EUR", Units: 22},
	}
	for _, d := range protodiff.Diff(legacy, candidate).Differences {
		fmt.Printf("%s %s: %s -> %s\n", d.Kind, d.Path, d.Legacy, d.Candidate)
	}
	// Output:
	// changed items[0].price.units: 10 -> 11
	// changed total.units: 20 -> 22
}

func ExampleNew() {
	// Build once per configuration, reuse from every goroutine.
	d, err := protodiff.New(
		protodiff.WithIgnoredPaths("quote_id", "computed_at"), // per-call noise
		protodiff.WithListKey("items", "sku"),                 // pair lines by SKU, not position
		protodiff.WithFloatToleranceAt("items.discount_rate", 0, 1e-9),
	)
	if err != nil {
		panic(err)
	}
	legacy := &pb.Quote{
		QuoteId:    "q-1",
		ComputedAt: &timestamppb.Timestamp{Seconds: 100},
		Items:      []*pb.Line{{Sku: "A1", Quantity: 1}, {Sku: "B2", Quantity: 1, DiscountRate: 0.1}},
	}
	candidate := &pb.Quote{
		QuoteId:    "q-2",
		ComputedAt: &timestamppb.Timestamp{Seconds: 101},
		Items:      []*pb.Line{{Sku: "B2", Quantity: 3, DiscountRate: 0.1 + 1e-12}, {Sku: "C3"}, {Sku: "A1", Quantity: 1}},
	}
	for _, diff := range d.Diff(legacy, candidate).Differences {
		fmt.Printf("%s %s (metric label %s): %q -> %q\n", diff.Kind, diff.Path, diff.Field, diff.Legacy, diff.Candidate)
	}
	// Output:
	// changed items[sku="B2"].quantity (metric label items.quantity): "1" -> "3"
	// added items[sku="C3"] (metric label items): "" -> "{sku:\"C3\"}"
}

func ExampleWithRedactedPaths() {
	// customer_email is marked [debug_redact = true] in its .proto file;
	// labels is redacted by option.
	d, err := protodiff.New(protodiff.WithRedactedPaths("labels"))
	if err != nil {
		panic(err)
	}
	legacy := &pb.Quote{CustomerEmail: "ann@example.com", Labels: map[string]string{"vip": "yes"}}
	candidate := &pb.Quote{CustomerEmail: "bob@example.com", Labels: map[string]string{"vip": "no"}}
	for _, diff := range d.Diff(legacy, candidate).Differences {
		fmt.Printf("%s: %s -> %s\n", diff.Path, diff.Legacy, diff.Candidate)
	}
	// Output:
	// labels[[REDACTED]]: [REDACTED] -> [REDACTED]
	// customer_email: [REDACTED] -> [REDACTED]
}

func ExampleWithMaxDifferences() {
	d, err := protodiff.New(protodiff.WithMaxDifferences(2))
	if err != nil {
		panic(err)
	}
	r := d.Diff(&pb.Kitchen{RString: []string{"a", "b", "c"}}, &pb.Kitchen{})
	fmt.Println(len(r.Differences), r.Truncated)
	// Output:
	// 2 true
}

func ExampleNew_badOption() {
	_, err := protodiff.New(protodiff.WithIgnoredPaths("items[0].id"))
	fmt.Println(err)
	// Output:
	// protodiff: WithIgnoredPaths "items[0].id": list indexes and map keys are not allowed: use the index-free form (items.price, not items[0].price)
}

func ExampleDiffer_Check() {
	d, err := protodiff.New(
		protodiff.WithIgnoredPaths("quote.quote_idd"), // a typo
		protodiff.WithListKey("quote.items", "sku"),
	)
	if err != nil {
		panic(err)
	}
	// Check the options against the type of the replies they will see.
	err = d.Check((&pb.GetQuoteResponse{}).ProtoReflect().Descriptor())
	fmt.Println(err)
	// Output:
	// protodiff: WithIgnoredPaths "quote.quote_idd": parallelrun.difftest.v1.GetQuoteResponse: no field "quote_idd" in parallelrun.difftest.v1.Quote
}

// Replies that come one by one, such as a stream's, compared as a
// multiset: only what has no equal partner on the other side is reported.
func ExampleDiffer_DiffUnordered() {
	d, err := protodiff.New(protodiff.WithIgnoredPaths("quote_id"))
	if err != nil {
		panic(err)
	}
	quote := func(id string, units int64) proto.Message {
		return &pb.Quote{QuoteId: id, Total: &pb.Money{CurrencyCode: "EUR", Units: units}}
	}
	legacy := []proto.Message{quote("a", 10), quote("b", 20), quote("c", 30)}
	candidate := []proto.Message{quote("x", 30), quote("y", 10), quote("z", 25)}
	for _, diff := range d.DiffUnordered(legacy, candidate).Differences {
		// One side of an added or removed message is empty.
		fmt.Println(diff.Kind, diff.Path, diff.Legacy+diff.Candidate)
	}
	// Output:
	// removed [1] {quote_id:"b" total:{currency_code:"EUR" units:20}}
	// added [2] {quote_id:"z" total:{currency_code:"EUR" units:25}}
}
