package protodiff_test

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// Differs built again from the same options are the same; any option
// that changes what is compared makes them differ.
func TestSameOptions(t *testing.T) {
	build := func(opts ...protodiff.Option) *protodiff.Differ {
		t.Helper()
		d, err := protodiff.New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	base := func() []protodiff.Option {
		return []protodiff.Option{
			protodiff.WithIgnoredPaths("quote.quote_id"),
			protodiff.WithListKey("quote.items", "sku"),
			protodiff.WithFloatTolerance(0.01, 0),
			protodiff.WithFloatToleranceAt("quote.total", 0, 1e-9),
		}
	}
	if d := build(base()...); !d.SameOptions(build(base()...)) {
		t.Error("the same options built twice are not the same")
	}
	// One call or two make the same recorded options.
	if !build(protodiff.WithIgnoredPaths("a", "b")).SameOptions(build(protodiff.WithIgnoredPaths("a"), protodiff.WithIgnoredPaths("b"))) {
		t.Error("paths given in one call or two differ")
	}
	if !build(protodiff.WithAnyResolver(protoregistry.GlobalTypes)).SameOptions(build()) {
		t.Error("the default resolver given explicitly differs from the default")
	}
	for name, opt := range map[string]protodiff.Option{
		"ignored path":     protodiff.WithIgnoredPaths("quote.total"),
		"ignored field":    protodiff.WithIgnoredFields("parallelrun.difftest.v1.Quote.quote_id"),
		"tolerance":        protodiff.WithFloatTolerance(0.02, 0),
		"path tolerance":   protodiff.WithFloatToleranceAt("quote.total", 0, 1e-6),
		"unordered list":   protodiff.WithUnorderedLists("quote.labels"),
		"list key":         protodiff.WithListKey("quote.lines", "sku"),
		"redacted path":    protodiff.WithRedactedPaths("quote.customer_email"),
		"ignored unknown":  protodiff.WithIgnoredUnknown(),
		"raw any":          protodiff.WithRawAny(),
		"resolver":         protodiff.WithAnyResolver(new(protoregistry.Types)),
		"max differences":  protodiff.WithMaxDifferences(3),
		"max value length": protodiff.WithMaxValueLength(20),
		"max depth":        protodiff.WithMaxDepth(10),
		"max work":         protodiff.WithMaxWork(10),
	} {
		if build(base()...).SameOptions(build(append(base(), opt)...)) {
			t.Errorf("%s: not told apart", name)
		}
	}
	var none *protodiff.Differ
	if none.SameOptions(build()) || !none.SameOptions(nil) {
		t.Error("nil Differs")
	}
}
