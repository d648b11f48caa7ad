package protodiff_test

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

func TestDifferRedact(t *testing.T) {
	tier, err := anypb.New(&pb.Tier{Name: "gold", Level: 3})
	if err != nil {
		t.Fatal(err)
	}
	m := &pb.Quote{
		QuoteId:       "q-1",
		CustomerEmail: "someone@example.com", // debug_redact
		Items:         []*pb.Line{{Sku: "A", Quantity: 1}, {Sku: "B", Quantity: 2}},
		Labels:        map[string]string{"eu": "yes"},
		Detail:        tier,
		Total:         &pb.Money{CurrencyCode: "EUR", Units: 10},
	}
	d, err := protodiff.New(protodiff.WithRedactedPaths("quote_id", "items.sku", "labels", "detail.(parallelrun.difftest.v1.Tier).name"))
	if err != nil {
		t.Fatal(err)
	}
	d.Redact(m)
	wantTier, _ := anypb.New(&pb.Tier{Level: 3})
	want := &pb.Quote{
		Items:  []*pb.Line{{Quantity: 1}, {Quantity: 2}},
		Detail: wantTier,
		Total:  &pb.Money{CurrencyCode: "EUR", Units: 10},
	}
	if !proto.Equal(m, want) {
		t.Errorf("redacted:\n got  %v\n want %v", m, want)
	}

	// Without redacted paths, only debug_redact fields go.
	m = &pb.Quote{QuoteId: "q-1", CustomerEmail: "someone@example.com"}
	plain, _ := protodiff.New()
	plain.Redact(m)
	if !proto.Equal(m, &pb.Quote{QuoteId: "q-1"}) {
		t.Errorf("redacted without paths: %v", m)
	}

	// An Any payload on a redacted path that cannot be decoded is cleared.
	m = &pb.Quote{Detail: &anypb.Any{TypeUrl: "type.googleapis.com/parallelrun.difftest.v1.Tier", Value: []byte{0xff}}}
	d.Redact(m)
	if len(m.GetDetail().GetValue()) != 0 {
		t.Errorf("an undecodable payload on a redacted path stays: %v", m)
	}
}
