package protodiff_test

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

func TestCheck(t *testing.T) {
	resp := (&pb.GetQuoteResponse{}).ProtoReflect().Descriptor()
	kitchen := (&pb.Kitchen{}).ProtoReflect().Descriptor()
	for _, tc := range []struct {
		opt  protodiff.Option
		md   protoreflect.MessageDescriptor
		want string // "" when the option fits
	}{
		{protodiff.WithIgnoredPaths("quote.quote_id", "quote.items.price.units", "quote.labels", "quote.17",
			"quote.detail.(parallelrun.difftest.v1.Tier).level"), resp, ""},
		{protodiff.WithIgnoredPaths("quote.quote_idd"), resp,
			`protodiff: WithIgnoredPaths "quote.quote_idd": parallelrun.difftest.v1.GetQuoteResponse: no field "quote_idd" in parallelrun.difftest.v1.Quote`},
		{protodiff.WithRedactedPaths("quote.quote_id.x"), resp,
			`protodiff: WithRedactedPaths "quote.quote_id.x": parallelrun.difftest.v1.GetQuoteResponse: parallelrun.difftest.v1.Quote.quote_id is a string field: nothing is below it`},
		{protodiff.WithIgnoredPaths("quote.detail.(x.Nope).a"), resp,
			`protodiff: WithIgnoredPaths "quote.detail.(x.Nope).a": parallelrun.difftest.v1.GetQuoteResponse: the Any resolver does not know x.Nope`},
		{protodiff.WithIgnoredPaths("m_int32_leaf.units", "presence.(parallelrun.difftest.v1.ext_int32)", "presence.entry.key"), kitchen, ""},
		{protodiff.WithIgnoredPaths("presence.(parallelrun.difftest.v1.Tier)"), kitchen,
			`protodiff: WithIgnoredPaths "presence.(parallelrun.difftest.v1.Tier)": parallelrun.difftest.v1.Kitchen: no extension parallelrun.difftest.v1.Tier`},
		{protodiff.WithIgnoredPaths("(parallelrun.difftest.v1.ext_int32)"), kitchen,
			`protodiff: WithIgnoredPaths "(parallelrun.difftest.v1.ext_int32)": parallelrun.difftest.v1.Kitchen: parallelrun.difftest.v1.ext_int32 extends parallelrun.difftest.v1.Presence, not parallelrun.difftest.v1.Kitchen`},
		{protodiff.WithListKey("quote.items", "sku"), resp, ""},
		{protodiff.WithListKey("quote.labels", "key"), resp,
			`protodiff: WithListKey "quote.labels": parallelrun.difftest.v1.GetQuoteResponse: parallelrun.difftest.v1.Quote.labels is not a repeated message field`},
		{protodiff.WithListKey("r_string", "x"), kitchen,
			`protodiff: WithListKey "r_string": parallelrun.difftest.v1.Kitchen: parallelrun.difftest.v1.Kitchen.r_string is not a repeated message field`},
		{protodiff.WithListKey("quote.items", "skuu"), resp,
			`protodiff: WithListKey "quote.items": parallelrun.difftest.v1.GetQuoteResponse: key: no field "skuu" in parallelrun.difftest.v1.Line`},
		{protodiff.WithListKey("quote.items", "price"), resp,
			`protodiff: WithListKey "quote.items": parallelrun.difftest.v1.GetQuoteResponse: key: parallelrun.difftest.v1.Line.price is not a singular scalar field`},
		{protodiff.WithUnorderedLists("r_string", "r_message", "presence.entry"), kitchen, ""},
		{protodiff.WithUnorderedLists("m_string_string"), kitchen,
			`protodiff: WithUnorderedLists "m_string_string": parallelrun.difftest.v1.Kitchen: parallelrun.difftest.v1.Kitchen.m_string_string is not a repeated field`},
		{protodiff.WithUnorderedLists("any.(parallelrun.difftest.v1.Leaf)"), kitchen,
			`protodiff: WithUnorderedLists "any.(parallelrun.difftest.v1.Leaf)": parallelrun.difftest.v1.Kitchen: "any.(parallelrun.difftest.v1.Leaf)" is not a repeated field`},
		{protodiff.WithFloatToleranceAt("quote.items.discount_rate", 0, 1), resp, ""},
		{protodiff.WithFloatToleranceAt("quote.total", 0, 1), resp, ""},
		{protodiff.WithFloatToleranceAt("quote.quote_id", 0, 1), resp,
			`protodiff: WithFloatToleranceAt "quote.quote_id": parallelrun.difftest.v1.GetQuoteResponse: parallelrun.difftest.v1.Quote.quote_id is a string field, not a float, double or message field`},
		{protodiff.WithIgnoredFields("parallelrun.difftest.v1.Quote.computed_at", "parallelrun.difftest.v1.ext_int32"), resp, ""},
		{protodiff.WithIgnoredFields("parallelrun.difftest.v1.Quote.computed"), resp,
			`protodiff: WithIgnoredFields "parallelrun.difftest.v1.Quote.computed": parallelrun.difftest.v1.GetQuoteResponse: no field "computed" in parallelrun.difftest.v1.Quote`},
		{protodiff.WithIgnoredFields("no.such.Field"), resp,
			`protodiff: WithIgnoredFields "no.such.Field": parallelrun.difftest.v1.GetQuoteResponse: no such field in the global registry`},
		{protodiff.WithIgnoredFields("parallelrun.difftest.v1.Quote"), resp,
			`protodiff: WithIgnoredFields "parallelrun.difftest.v1.Quote": parallelrun.difftest.v1.GetQuoteResponse: parallelrun.difftest.v1.Quote is not a field`},
	} {
		err := mustNew(t, tc.opt).Check(tc.md)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}

	// Raw Any has no payloads to name.
	err := mustNew(t, protodiff.WithRawAny(), protodiff.WithIgnoredPaths("quote.detail.(parallelrun.difftest.v1.Tier)")).Check(resp)
	if err == nil || !strings.HasSuffix(err.Error(), "Any payloads are compared as bytes (WithRawAny)") {
		t.Errorf("raw Any: %v", err)
	}

	// One error per bad value, each a *CheckError.
	err = mustNew(t, protodiff.WithIgnoredPaths("quote.a", "quote.quote_id", "quote.b"), protodiff.WithUnorderedLists("quote")).Check(resp)
	var errs interface{ Unwrap() []error }
	if !errors.As(err, &errs) || len(errs.Unwrap()) != 3 {
		t.Fatalf("got %v", err)
	}
	var ce *protodiff.CheckError
	if !errors.As(err, &ce) || ce.Option != "WithIgnoredPaths" || ce.Value != "quote.a" || ce.Type != "parallelrun.difftest.v1.GetQuoteResponse" || ce.Err == nil {
		t.Errorf("first error: %#v", ce)
	}
}
