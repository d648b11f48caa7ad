package protodiff_test

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// Hostile input: what an unfinished candidate may send. Each case checks
// the result exactly; that the cost is linear is checked deterministically
// in linear_test.go, by counting work, not by timing.

func TestDeepChain(t *testing.T) {
	const n = 10_000
	check(t, protodiff.Diff(childChain(n, 1), childChain(n, 2)),
		want{path: childPath(n, "f_int32"), field: childPath(n, "f_int32"), kind: protodiff.Changed, legacy: "1", candidate: "2"})
	r := protodiff.Diff(childChain(n, 1), childChain(n, 1))
	check(t, r)
	if r.Incomplete != "" {
		t.Errorf("equal chains: Incomplete %q", r.Incomplete)
	}
	// Every level differs: differences stop at the maximum, quickly.
	x, y := childChain(n, 1), childChain(n, 1)
	for c := y; c != nil; c = c.Child {
		c.FString = "x"
	}
	r = protodiff.Diff(x, y)
	if len(r.Differences) != protodiff.DefaultMaxDifferences || !r.Truncated || r.Differences[1].Path != "child.f_string" {
		t.Errorf("got %d differences, truncated %v, second at %q", len(r.Differences), r.Truncated, r.Differences[1].Path)
	}
}

func TestAnyChain(t *testing.T) {
	const n = 3000
	r := protodiff.Diff(anyChain(n, 1), anyChain(n, 2))
	check(t, r, want{path: anyPath(n, "f_int32"), field: anyPath(n, "f_int32"), kind: protodiff.Changed, legacy: "1", candidate: "2"})
	check(t, protodiff.Diff(anyChain(n, 1), anyChain(n, 1)))
	if r.Incomplete != "" {
		t.Errorf("Incomplete %q", r.Incomplete)
	}
}

// TestAnyChainMemory checks that unpacking a chain of Any allocates memory
// linear in its length: every level used to copy the rest of the chain.
func TestAnyChainMemory(t *testing.T) {
	alloc := func(n int) uint64 {
		x, y := anyChain(n, 1), anyChain(n, 2)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r := protodiff.Diff(x, y)
		runtime.ReadMemStats(&after)
		if len(r.Differences) != 1 {
			t.Fatalf("%d levels: %d differences", n, len(r.Differences))
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	small, large := alloc(1000), alloc(4000)
	// Linear: 4x the levels, about 4x the bytes (paths included, which are
	// linear too; slices that grow by doubling make it up to twice that).
	// Quadratic would be 16x.
	if ratio := float64(large) / float64(small); ratio > 8 {
		t.Errorf("1,000 levels: %d bytes; 4,000 levels: %d bytes (%.1fx)", small, large, ratio)
	}
	if large > 64<<20 {
		t.Errorf("4,000 levels allocate %d bytes", large)
	}
}

func TestAnyChainPastMaxDepth(t *testing.T) {
	// Each level is two messages deep (the Any and its payload): 6,000
	// levels reach past the default depth of 10,000.
	const n = 6000
	x, y := anyChain(n, 1), anyChain(n, 2)
	r := protodiff.Diff(x, y)
	if r.Incomplete != protodiff.IncompleteMaxDepth || len(r.Differences) != 1 {
		t.Fatalf("Incomplete %q, %d differences:\n%.500s", r.Incomplete, len(r.Differences), dump(r))
	}
	d := r.Differences[0]
	// The walk stops at the Any at depth 10,000 (the 5,000th), and
	// proto.Equal finds the rest different.
	if wantPath := anyPath(4999, "any"); d.Path != wantPath || d.Kind != protodiff.Changed {
		t.Errorf("difference %s at %.80s…, want at %.80s…", d.Kind, d.Path, wantPath)
	}
	if !strings.HasPrefix(d.Legacy, `{type_url:"`+kitchenURL+`" value:`) {
		t.Errorf("rendered as %.100s", d.Legacy)
	}
	// Equal chains past the limit are equal: proto.Equal says so first.
	check(t, protodiff.Diff(x, anyChain(n, 1)))
	// Far deeper, with a raised limit: no stack overflow.
	const deep = 40_000
	d2, err := protodiff.New(protodiff.WithMaxDepth(protodiff.MaxDepthLimit))
	if err != nil {
		t.Fatal(err)
	}
	r = d2.Diff(anyChain(deep, 1), anyChain(deep, 2))
	if r.Incomplete != "" || len(r.Differences) != 1 || r.Differences[0].Path != anyPath(deep, "f_int32") {
		t.Fatalf("%d levels: Incomplete %q, %d differences", deep, r.Incomplete, len(r.Differences))
	}
}

func TestStructDeep(t *testing.T) {
	const n = 400
	check(t, protodiff.Diff(structChain(n, "a"), structChain(n, "b")),
		want{path: structPath(n), field: "st" + strings.Repeat(".fields.struct_value", n) + ".fields.string_value",
			kind: protodiff.Changed, legacy: `"a"`, candidate: `"b"`})
	check(t, protodiff.Diff(structChain(n, "a"), structChain(n, "a")))
}

func TestMapsDeep(t *testing.T) {
	const n = 200
	check(t, protodiff.Diff(mapChain(n, 1), mapChain(n, 2)),
		want{path: mapPath(n), field: strings.Repeat("m_string_kitchen.", n) + "f_int32", kind: protodiff.Changed, legacy: "1", candidate: "2"})
	check(t, protodiff.Diff(mapChain(n, 1), mapChain(n, 1)))
}

func TestLongUnorderedLists(t *testing.T) {
	const n = 100_000
	t.Run("strings", func(t *testing.T) {
		d := mustNew(t, protodiff.WithUnorderedLists("r_string"))
		x, y := &pb.Kitchen{}, &pb.Kitchen{}
		for i := range n {
			x.RString = append(x.RString, fmt.Sprint("s", i))
			y.RString = append(y.RString, fmt.Sprint("s", n-1-i))
		}
		check(t, d.Diff(x, y))
		y.RString[7] = "new" // was s(n-8)
		check(t, d.Diff(x, y),
			want{path: fmt.Sprintf("r_string[%d]", n-8), field: "r_string", kind: protodiff.Removed, legacy: fmt.Sprintf(`"s%d"`, n-8)},
			want{path: "r_string[7]", field: "r_string", kind: protodiff.Added, candidate: `"new"`})
	})
	t.Run("messages", func(t *testing.T) {
		d := mustNew(t, protodiff.WithUnorderedLists("items"))
		x, y := &pb.Quote{Items: lineItems(n, false)}, &pb.Quote{Items: lineItems(n, true)}
		check(t, d.Diff(x, y))
		y.Items[3].Quantity = 100 // was SKU-(n-4)
		check(t, d.Diff(x, y),
			want{path: fmt.Sprintf("items[%d]", n-4), field: "items", kind: protodiff.Removed,
				legacy: fmt.Sprintf(`{sku:"SKU-%d" quantity:%d discount_rate:%g}`, n-4, (n-4)%7, float64(n-4)/8)},
			want{path: "items[3]", field: "items", kind: protodiff.Added,
				candidate: fmt.Sprintf(`{sku:"SKU-%d" quantity:100 discount_rate:%g}`, n-4, float64(n-4)/8)})
	})
	t.Run("identical messages", func(t *testing.T) {
		// One bucket of 100,000 identical elements, with a tolerance: one
		// class per side, one comparison.
		d := mustNew(t, protodiff.WithUnorderedLists("items"), protodiff.WithFloatTolerance(0, 0.01))
		x, y := &pb.Quote{}, &pb.Quote{}
		for range n {
			x.Items = append(x.Items, &pb.Line{Sku: "same", DiscountRate: 0.5})
			y.Items = append(y.Items, &pb.Line{Sku: "same", DiscountRate: 0.505})
		}
		y.Items = append(y.Items, &pb.Line{Sku: "same", DiscountRate: 0.52})
		r := d.Diff(x, y)
		check(t, r, want{path: fmt.Sprintf("items[%d]", n), field: "items", kind: protodiff.Added, candidate: `{sku:"same" discount_rate:0.52}`})
		if r.Incomplete != "" {
			t.Errorf("Incomplete %q", r.Incomplete)
		}
	})
	t.Run("floats with tolerance", func(t *testing.T) {
		d := mustNew(t, protodiff.WithUnorderedLists("packed_double"), protodiff.WithFloatTolerance(0, 0.3))
		x, y := &pb.Kitchen{}, &pb.Kitchen{}
		for i := range n {
			// Each candidate value is within the margin of two legacy
			// values: only a maximum matching pairs them all.
			x.PackedDouble = append(x.PackedDouble, float64(i)/4)
			y.PackedDouble = append(y.PackedDouble, float64(n-1-i)/4+0.2)
		}
		check(t, d.Diff(x, y))
		y.PackedDouble = append(y.PackedDouble, math.NaN())
		x.PackedDouble = append(x.PackedDouble, math.NaN(), -1)
		check(t, d.Diff(x, y),
			want{path: fmt.Sprintf("packed_double[%d]", n+1), field: "packed_double", kind: protodiff.Removed, legacy: "-1"})
	})
}

func TestDepthBudget(t *testing.T) {
	d := mustNew(t, protodiff.WithMaxDepth(5))
	r := d.Diff(childChain(8, 1), childChain(8, 2))
	if r.Incomplete != protodiff.IncompleteMaxDepth {
		t.Errorf("Incomplete %q", r.Incomplete)
	}
	at := strings.TrimSuffix(childPath(6, ""), ".")
	check(t, r, want{path: at, field: at, kind: protodiff.Changed, legacy: "{child:{child:{f_int32:1}}}", candidate: "{child:{child:{f_int32:2}}}"})
	// Within the limit, nothing changes.
	r = d.Diff(childChain(4, 1), childChain(4, 2))
	check(t, r, want{path: childPath(4, "f_int32"), field: childPath(4, "f_int32"), kind: protodiff.Changed, legacy: "1", candidate: "2"})
	if r.Incomplete != "" {
		t.Errorf("Incomplete %q", r.Incomplete)
	}
}

func TestWorkBudget(t *testing.T) {
	x, y := childChain(100, 1), childChain(100, 2)
	x.RString, y.RString = []string{"a", "b"}, []string{"a", "c"}
	d := mustNew(t, protodiff.WithMaxWork(20))
	r := d.Diff(x, y)
	if r.Incomplete != protodiff.IncompleteMaxWork {
		t.Errorf("Incomplete %q", r.Incomplete)
	}
	// The walk runs out of work on the way down the chain, and reports
	// where it stood; the list at the root is compared as before.
	if len(r.Differences) != 2 || r.Differences[0].Path != "r_string[1]" ||
		!strings.HasPrefix(r.Differences[1].Path, "child.child.") || r.Differences[1].Kind != protodiff.Changed {
		t.Errorf("differences:\n%s", dump(r))
	}
	// An option excuses what proto.Equal sees as different: past the
	// budget, it is reported anyway, and Incomplete says why.
	d = mustNew(t, protodiff.WithMaxWork(1), protodiff.WithIgnoredFields("parallelrun.difftest.v1.Leaf.units"))
	r = d.Diff(&pb.Kitchen{FString: "a", FMessage: &pb.Leaf{Units: 1}}, &pb.Kitchen{FString: "a", FMessage: &pb.Leaf{Units: 2}})
	check(t, r, want{path: "f_message", kind: protodiff.Changed, legacy: "{units:1}", candidate: "{units:2}"})
	if r.Incomplete != protodiff.IncompleteMaxWork {
		t.Errorf("Incomplete %q", r.Incomplete)
	}
	// Unordered lists past the budget are compared by position.
	d = mustNew(t, protodiff.WithMaxWork(3), protodiff.WithUnorderedLists("r_string"))
	r = d.Diff(&pb.Kitchen{RString: []string{"a", "b"}}, &pb.Kitchen{RString: []string{"b", "a"}})
	check(t, r, want{path: "r_string", kind: protodiff.Changed, legacy: `["a" "b"]`, candidate: `["b" "a"]`})
	if r.Incomplete != protodiff.IncompleteMaxWork {
		t.Errorf("Incomplete %q", r.Incomplete)
	}
}

// TestNeverSilentlyEqual runs random pairs through tiny budgets: a result
// may hold differences that the options excuse (and says Incomplete), but
// an empty one always means equal.
func TestNeverSilentlyEqual(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	differs := []*protodiff.Differ{
		mustNew(t, protodiff.WithRawAny(), protodiff.WithMaxWork(1)),
		mustNew(t, protodiff.WithRawAny(), protodiff.WithMaxWork(7)),
		mustNew(t, protodiff.WithRawAny(), protodiff.WithMaxWork(30)),
		mustNew(t, protodiff.WithRawAny(), protodiff.WithMaxDepth(1)),
		mustNew(t, protodiff.WithRawAny(), protodiff.WithMaxDepth(2), protodiff.WithMaxWork(12)),
	}
	for seed := range n {
		g := newGen(seed, 13)
		a, b := g.pair()
		eq := proto.Equal(a, b)
		for i, d := range differs {
			r := d.Diff(a, b)
			if r.Equal() != eq && (r.Equal() || r.Incomplete == "") {
				t.Fatalf("seed %d, differ %d: Diff equal=%v (Incomplete %q), proto.Equal=%v\n%s", seed, i, r.Equal(), r.Incomplete, eq, dump(r))
			}
			for _, diff := range r.Differences {
				if err := differsAt(a, b, diff); err != nil {
					t.Fatalf("seed %d, differ %d: %s %s: %v", seed, i, diff.Kind, diff.Path, err)
				}
			}
		}
	}
}
