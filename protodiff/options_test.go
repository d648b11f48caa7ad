package protodiff_test

import (
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

func mustNew(t *testing.T, opts ...protodiff.Option) *protodiff.Differ {
	t.Helper()
	d, err := protodiff.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func quote(items ...*pb.Line) *pb.Quote {
	return &pb.Quote{
		QuoteId:    "q-1",
		ComputedAt: timestamppb.New(timestamppb.Now().AsTime()),
		Items:      items,
		Total:      &pb.Money{CurrencyCode: "EUR", Units: 10},
	}
}

func line(sku string, units int64) *pb.Line {
	return &pb.Line{Sku: sku, Quantity: 1, Price: &pb.Money{CurrencyCode: "EUR", Units: units}}
}

func TestIgnoredPaths(t *testing.T) {
	x := quote(line("A", 1), line("B", 2))
	y := quote(line("A", 1), line("B", 3))
	y.QuoteId, y.ComputedAt = "q-2", &timestamppb.Timestamp{Seconds: 1}
	x.Items[0].Sku = "a"

	d := mustNew(t, protodiff.WithIgnoredPaths("quote_id", "computed_at", "items.price"))
	check(t, d.Diff(x, y),
		want{path: "items[0].sku", field: "items.sku", kind: protodiff.Changed, legacy: `"a"`, candidate: `"A"`})

	// "items.sku" ignores the sku of every element.
	d = mustNew(t, protodiff.WithIgnoredPaths("quote_id", "computed_at", "items.sku"))
	check(t, d.Diff(x, y),
		want{path: "items[1].price.units", field: "items.price.units", kind: protodiff.Changed, legacy: "2", candidate: "3"})

	// Inside an Any and in unknown fields.
	d = mustNew(t, protodiff.WithIgnoredPaths("detail.(parallelrun.difftest.v1.Tier).level", "1000"))
	check(t, d.Diff(
		&pb.Quote{Detail: mustAnyT(&pb.Tier{Name: "a", Level: 1})},
		withUnknown(&pb.Quote{Detail: mustAnyT(&pb.Tier{Name: "a", Level: 2})}, varintField(1000, 1))))
}

func mustAnyT(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}

func TestIgnoredFields(t *testing.T) {
	x := &pb.Kitchen{FMessage: &pb.Leaf{Units: 1, Sku: "x"}, Child: &pb.Kitchen{FMessage: &pb.Leaf{Units: 2}}}
	y := &pb.Kitchen{FMessage: &pb.Leaf{Units: 5, Sku: "y"}, Child: &pb.Kitchen{FMessage: &pb.Leaf{Units: 6}}}
	d := mustNew(t, protodiff.WithIgnoredFields("parallelrun.difftest.v1.Leaf.units"))
	check(t, d.Diff(x, y),
		want{path: "f_message.sku", kind: protodiff.Changed, legacy: `"x"`, candidate: `"y"`})

	px, py := &pb.Presence{}, &pb.Presence{}
	proto.SetExtension(px, pb.E_ExtInt32, int32(1))
	d = mustNew(t, protodiff.WithIgnoredFields("parallelrun.difftest.v1.ext_int32"))
	check(t, d.Diff(px, py))
}

func TestFloatTolerance(t *testing.T) {
	x := &pb.Kitchen{FDouble: 100, FFloat: 1, PackedDouble: []float64{1000}, FMessage: &pb.Leaf{Price: 10}}
	y := &pb.Kitchen{FDouble: 100.5, FFloat: 1.01, PackedDouble: []float64{1001}, FMessage: &pb.Leaf{Price: 10.2}}

	// A fraction of the smaller magnitude.
	check(t, mustNew(t, protodiff.WithFloatTolerance(0.01, 0)).Diff(x, y),
		want{path: "f_message.price", kind: protodiff.Changed, legacy: "10", candidate: "10.2"})
	// A margin.
	check(t, mustNew(t, protodiff.WithFloatTolerance(0, 0.6)).Diff(x, y),
		want{path: "packed_double[0]", field: "packed_double", kind: protodiff.Changed, legacy: "1000", candidate: "1001"})
	// Per path, overriding the global one, for everything below the path.
	d := mustNew(t, protodiff.WithFloatTolerance(0.01, 0), protodiff.WithFloatToleranceAt("f_message", 0, 0.5))
	check(t, d.Diff(x, y))
	d = mustNew(t, protodiff.WithFloatToleranceAt("f_message.price", 0, 0.5))
	check(t, d.Diff(x, y),
		want{path: "f_double", kind: protodiff.Changed, legacy: "100", candidate: "100.5"},
		want{path: "f_float", kind: protodiff.Changed, legacy: "1", candidate: "1.01"},
		want{path: "packed_double[0]", field: "packed_double", kind: protodiff.Changed, legacy: "1000", candidate: "1001"})

	// Unset (zero) against a tiny value in a field without presence.
	check(t, mustNew(t, protodiff.WithFloatTolerance(0, 1e-9)).Diff(&pb.Kitchen{}, &pb.Kitchen{FDouble: 1e-12}))
	// NaN and infinities are not approximately anything else.
	d = mustNew(t, protodiff.WithFloatTolerance(1, 1e300))
	check(t, d.Diff(&pb.Kitchen{FDouble: math.NaN()}, &pb.Kitchen{FDouble: 1}),
		want{path: "f_double", kind: protodiff.Changed, legacy: "NaN", candidate: "1"})
	check(t, d.Diff(&pb.Kitchen{FDouble: math.Inf(1)}, &pb.Kitchen{FDouble: 1}),
		want{path: "f_double", kind: protodiff.Changed, legacy: "Inf", candidate: "1"})
	check(t, d.Diff(&pb.Kitchen{FDouble: math.Inf(-1)}, &pb.Kitchen{FDouble: math.Inf(-1)}))
}

func TestUnorderedLists(t *testing.T) {
	d := mustNew(t, protodiff.WithUnorderedLists("r_string", "r_message"))
	check(t, d.Diff(
		&pb.Kitchen{RString: []string{"a", "b", "c", "b"}, RMessage: []*pb.Leaf{{Units: 1}, {Units: 2}}},
		&pb.Kitchen{RString: []string{"b", "c", "b", "a"}, RMessage: []*pb.Leaf{{Units: 2}, {Units: 1}}}))
	// An insertion is one Added, not a cascade of Changed.
	check(t, d.Diff(
		&pb.Kitchen{RString: []string{"a", "b", "c"}},
		&pb.Kitchen{RString: []string{"a", "x", "b", "c"}}),
		want{path: "r_string[1]", field: "r_string", kind: protodiff.Added, candidate: `"x"`})
	// Multiplicity counts.
	check(t, d.Diff(
		&pb.Kitchen{RString: []string{"b", "b", "a"}},
		&pb.Kitchen{RString: []string{"a", "b"}}),
		want{path: "r_string[1]", field: "r_string", kind: protodiff.Removed, legacy: `"b"`})
	// Other lists stay ordered.
	check(t, d.Diff(&pb.Kitchen{PackedInt32: []int32{1, 2}}, &pb.Kitchen{PackedInt32: []int32{2, 1}}),
		want{path: "packed_int32[0]", field: "packed_int32", kind: protodiff.Changed, legacy: "1", candidate: "2"},
		want{path: "packed_int32[1]", field: "packed_int32", kind: protodiff.Changed, legacy: "2", candidate: "1"})
	// Element equality follows the other options.
	d = mustNew(t, protodiff.WithUnorderedLists("packed_double"), protodiff.WithFloatTolerance(0, 0.1))
	check(t, d.Diff(&pb.Kitchen{PackedDouble: []float64{1, 2}}, &pb.Kitchen{PackedDouble: []float64{2.05, 1.05}}))
}

func TestListKey(t *testing.T) {
	d := mustNew(t, protodiff.WithListKey("items", "sku"), protodiff.WithIgnoredPaths("computed_at"))
	x := quote(line("A", 1), line("B", 2), line("C", 3))
	// Reordered: equal.
	check(t, d.Diff(x, quote(line("C", 3), line("A", 1), line("B", 2))))
	// Inserted and changed: one Added and one Changed, by key.
	check(t, d.Diff(x, quote(line("N", 9), line("A", 1), line("B", 5), line("C", 3))),
		want{path: `items[sku="B"].price.units`, field: "items.price.units", kind: protodiff.Changed, legacy: "2", candidate: "5"},
		want{path: `items[sku="N"]`, field: "items", kind: protodiff.Added,
			candidate: `{sku:"N" quantity:1 price:{currency_code:"EUR" units:9}}`})
	// Removed, and repeated keys pair up in order: the second "A" is the
	// one left over, and its path says so.
	check(t, d.Diff(quote(line("A", 1), line("A", 2)), quote(line("A", 1))),
		want{path: `items[sku="A"#2]`, field: "items", kind: protodiff.Removed,
			legacy: `{sku:"A" quantity:1 price:{currency_code:"EUR" units:2}}`})
	// A key that is not a scalar field: compared by position.
	d = mustNew(t, protodiff.WithListKey("items", "price"))
	check(t, d.Diff(&pb.Quote{Items: []*pb.Line{line("A", 1), line("B", 1)}}, &pb.Quote{Items: []*pb.Line{line("B", 1), line("A", 1)}}),
		want{path: "items[0].sku", field: "items.sku", kind: protodiff.Changed, legacy: `"A"`, candidate: `"B"`},
		want{path: "items[1].sku", field: "items.sku", kind: protodiff.Changed, legacy: `"B"`, candidate: `"A"`})
}

func TestMaxDifferences(t *testing.T) {
	x := &pb.Kitchen{RString: []string{"a", "b", "c", "d", "e"}}
	y := &pb.Kitchen{RString: []string{"1", "2", "3", "4", "5"}}
	r := mustNew(t, protodiff.WithMaxDifferences(3)).Diff(x, y)
	if len(r.Differences) != 3 || !r.Truncated {
		t.Fatalf("got %d differences, truncated=%v", len(r.Differences), r.Truncated)
	}
	r = mustNew(t, protodiff.WithMaxDifferences(5)).Diff(x, y)
	if len(r.Differences) != 5 || r.Truncated {
		t.Fatalf("exactly at the limit: got %d differences, truncated=%v", len(r.Differences), r.Truncated)
	}
	many := &pb.Kitchen{}
	for range 100 {
		many.PackedInt32 = append(many.PackedInt32, 1)
	}
	r = protodiff.Diff(&pb.Kitchen{}, many)
	if len(r.Differences) != protodiff.DefaultMaxDifferences || !r.Truncated {
		t.Fatalf("default: got %d differences, truncated=%v", len(r.Differences), r.Truncated)
	}
}

func TestRedaction(t *testing.T) {
	x := &pb.Kitchen{Secret: "s3cret", SecretLeaf: &pb.Leaf{Units: 1}, SecretList: []string{"a"},
		FMessage: &pb.Leaf{Note: "private", Units: 1}, FString: "card 4111"}
	y := &pb.Kitchen{Secret: "other", SecretLeaf: &pb.Leaf{Units: 2}, SecretList: []string{"b"},
		RMessage: []*pb.Leaf{{Note: "private too"}}, FString: "card 4222"}
	r := mustNew(t, protodiff.WithRedactedPaths("f_string")).Diff(x, y)
	check(t, r,
		want{path: "f_string", kind: protodiff.Changed, legacy: protodiff.Redacted, candidate: protodiff.Redacted},
		want{path: "f_message", kind: protodiff.Removed, legacy: "{units:1 note:[REDACTED]}"},
		want{path: "r_message[0]", field: "r_message", kind: protodiff.Added, candidate: "{note:[REDACTED]}"},
		want{path: "secret", kind: protodiff.Changed, legacy: protodiff.Redacted, candidate: protodiff.Redacted},
		want{path: "secret_leaf.units", kind: protodiff.Changed, legacy: protodiff.Redacted, candidate: protodiff.Redacted},
		want{path: "secret_list[0]", field: "secret_list", kind: protodiff.Changed, legacy: protodiff.Redacted, candidate: protodiff.Redacted})
	for _, d := range r.Differences {
		for _, s := range []string{"s3cret", "other", "private", "4111", "4222"} {
			if strings.Contains(d.Legacy+d.Candidate, s) {
				t.Errorf("%s leaks %q", d.Path, s)
			}
		}
	}
	// Map keys and list keys below a sensitive field are data too.
	check(t, protodiff.Diff(&pb.Kitchen{SecretMap: map[string]string{"ann@example.com": "1"}}, &pb.Kitchen{}),
		want{path: "secret_map[[REDACTED]]", field: "secret_map", kind: protodiff.Removed, legacy: protodiff.Redacted})
	d := mustNew(t, protodiff.WithListKey("items", "sku"), protodiff.WithRedactedPaths("items"))
	check(t, d.Diff(&pb.Quote{Items: []*pb.Line{{Sku: "A1"}}}, &pb.Quote{}),
		want{path: "items[sku=[REDACTED]]", field: "items", kind: protodiff.Removed, legacy: protodiff.Redacted})

	// Extensions marked debug_redact, and the side that lacks a value stays empty.
	px := &pb.Presence{}
	proto.SetExtension(px, pb.E_ExtSecret, "pin 1234")
	check(t, protodiff.Diff(px, &pb.Presence{}),
		want{path: "(parallelrun.difftest.v1.ext_secret)", kind: protodiff.Removed, legacy: protodiff.Redacted})
}

func TestAnyResolverOption(t *testing.T) {
	x := &pb.Quote{Detail: mustAnyT(&pb.Tier{Level: 1})}
	y := &pb.Quote{Detail: mustAnyT(&pb.Tier{Level: 2})}
	// An empty registry cannot resolve the payload: bytes are compared, and
	// shown by their size only.
	check(t, mustNew(t, protodiff.WithAnyResolver(new(protoregistry.Types))).Diff(x, y),
		want{path: "detail.value", kind: protodiff.Changed, legacy: "<2 bytes>", candidate: "<2 bytes>"})
	check(t, mustNew(t, protodiff.WithAnyResolver(nil)).Diff(x, y),
		want{path: "detail.(parallelrun.difftest.v1.Tier).level", kind: protodiff.Changed, legacy: "1", candidate: "2"})
}

func TestBadOptions(t *testing.T) {
	for _, tc := range []struct {
		opt  protodiff.Option
		want string
	}{
		{protodiff.WithIgnoredPaths("items[0].id"), `protodiff: WithIgnoredPaths "items[0].id": list indexes and map keys are not allowed`},
		{protodiff.WithIgnoredPaths(""), `protodiff: WithIgnoredPaths "": empty path`},
		{protodiff.WithIgnoredPaths("a..b"), `protodiff: WithIgnoredPaths "a..b": empty field name`},
		{protodiff.WithIgnoredPaths("a."), `protodiff: WithIgnoredPaths "a.": trailing dot`},
		{protodiff.WithIgnoredPaths("a-b"), `protodiff: WithIgnoredPaths "a-b": "a-b" is not a field name`},
		{protodiff.WithRedactedPaths("x.(a..b)"), `protodiff: WithRedactedPaths "x.(a..b)": "a..b" is not a full name`},
		{protodiff.WithUnorderedLists("x.(a"), `protodiff: WithUnorderedLists "x.(a": unclosed "("`},
		{protodiff.WithIgnoredPaths("x.0"), `protodiff: WithIgnoredPaths "x.0": "0" is not a valid field number`},
		{protodiff.WithIgnoredPaths("(a)b"), `protodiff: WithIgnoredPaths "(a)b": missing dot before "b"`},
		{protodiff.WithIgnoredFields("a..b"), `protodiff: WithIgnoredFields "a..b": not a full field name`},
		{protodiff.WithFloatTolerance(-1, 0), "protodiff: WithFloatTolerance: fraction must be a finite number >= 0, not -1"},
		{protodiff.WithFloatTolerance(0, math.NaN()), "protodiff: WithFloatTolerance: margin must be a finite number >= 0, not NaN"},
		{protodiff.WithFloatToleranceAt("f", 0, math.Inf(1)), `protodiff: WithFloatToleranceAt "f": margin must be a finite number >= 0, not +Inf`},
		{protodiff.WithListKey("items", "a.b"), `protodiff: WithListKey "items": key "a.b" is not a field name`},
		{protodiff.WithMaxDifferences(0), "protodiff: WithMaxDifferences: 0 is less than 1"},
		{protodiff.WithMaxValueLength(3), "protodiff: WithMaxValueLength: 3 is less than 16"},
		{protodiff.WithMaxDepth(0), "protodiff: WithMaxDepth: 0 is not between 1 and 100000"},
		{protodiff.WithMaxDepth(protodiff.MaxDepthLimit + 1), "protodiff: WithMaxDepth: 100001 is not between 1 and 100000"},
		{protodiff.WithMaxWork(0), "protodiff: WithMaxWork: 0 is less than 1"},
	} {
		_, err := protodiff.New(tc.opt)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("got error %v, want %q", err, tc.want)
		}
	}
	for _, tc := range []struct {
		opts []protodiff.Option
		want string
	}{
		{[]protodiff.Option{protodiff.WithUnorderedLists("items"), protodiff.WithListKey("items", "sku")},
			`protodiff: WithListKey "items": the list is already unordered (WithUnorderedLists)`},
		{[]protodiff.Option{protodiff.WithListKey("items", "sku"), protodiff.WithUnorderedLists("items")},
			`protodiff: WithListKey "items": the list is already unordered (WithUnorderedLists)`},
		{[]protodiff.Option{protodiff.WithListKey("items", "sku"), protodiff.WithListKey("items", "id")},
			`protodiff: WithListKey "items": two keys, "sku" and "id"`},
	} {
		_, err := protodiff.New(tc.opts...)
		if err == nil || err.Error() != tc.want {
			t.Errorf("got error %v, want %q", err, tc.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Diff with a bad option did not panic")
		}
	}()
	protodiff.Diff(&pb.Leaf{}, &pb.Leaf{}, protodiff.WithMaxDifferences(-1))
}
