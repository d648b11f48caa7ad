package protodiff_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// maxMatching is the size of a maximum matching between nx and ny elements
// related by rel, by brute force over subsets of the candidates.
func maxMatching(nx, ny int, rel func(i, j int) bool) int {
	memo := map[[2]int]int{}
	var best func(i, used int) int
	best = func(i, used int) int {
		if i == nx {
			return 0
		}
		key := [2]int{i, used}
		if v, ok := memo[key]; ok {
			return v
		}
		b := best(i+1, used)
		for j := range ny {
			if used&(1<<j) == 0 && rel(i, j) {
				b = max(b, 1+best(i+1, used|1<<j))
			}
		}
		memo[key] = b
		return b
	}
	return best(0, 0)
}

// checkMatching checks a result on an unordered list against brute force:
// the elements left over are as few as a maximum matching leaves, they are
// distinct valid indexes, and the rest can all be paired.
func checkMatching(t *testing.T, r protodiff.Result, field string, nx, ny int, rel func(i, j int) bool) {
	t.Helper()
	removed, added := map[int]bool{}, map[int]bool{}
	for _, d := range r.Differences {
		i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(d.Path, field+"["), "]"))
		if err != nil {
			t.Fatalf("unexpected difference %s %s", d.Kind, d.Path)
		}
		switch {
		case d.Kind == protodiff.Removed && i < nx && !removed[i]:
			removed[i] = true
		case d.Kind == protodiff.Added && i < ny && !added[i]:
			added[i] = true
		default:
			t.Fatalf("bad difference %s %s", d.Kind, d.Path)
		}
	}
	m := maxMatching(nx, ny, rel)
	if len(removed) != nx-m || len(added) != ny-m {
		t.Fatalf("%d removed, %d added; a maximum matching pairs %d of %d and %d:\n%s", len(removed), len(added), m, nx, ny, dump(r))
	}
	var xs, ys []int
	for i := range nx {
		if !removed[i] {
			xs = append(xs, i)
		}
	}
	for j := range ny {
		if !added[j] {
			ys = append(ys, j)
		}
	}
	if maxMatching(len(xs), len(ys), func(i, j int) bool { return rel(xs[i], ys[j]) }) != m {
		t.Fatalf("the elements left paired cannot all be paired:\n%s", dump(r))
	}
}

var floatPool = []float64{0, math.Copysign(0, -1), 0.1, -0.1, 0.2, 0.25, 1, 1.05, 0.95, 1.1, 2, -2, 3, -3, math.NaN(), math.Inf(1), math.Inf(-1), 100, 104}

func TestUnorderedFloatsMaximum(t *testing.T) {
	tolerances := [][2]float64{{0, 0.1}, {0.05, 0}, {0.5, 0.15}, {1, 0}, {1, 0.1}, {2.5, 0.1}, {4, 0}, {0, 0}}
	n := 3000
	if testing.Short() {
		n = 300
	}
	for seed := range n {
		r := rand.New(rand.NewPCG(uint64(seed), 3))
		tol := tolerances[r.IntN(len(tolerances))]
		d := mustNew(t, protodiff.WithUnorderedLists("packed_double"), protodiff.WithFloatTolerance(tol[0], tol[1]), protodiff.WithMaxDifferences(100))
		x, y := &pb.Kitchen{}, &pb.Kitchen{}
		for range r.IntN(8) {
			x.PackedDouble = append(x.PackedDouble, floatPool[r.IntN(len(floatPool))])
		}
		for range r.IntN(8) {
			y.PackedDouble = append(y.PackedDouble, floatPool[r.IntN(len(floatPool))])
		}
		// The relation, from protodiff itself on single values.
		one := mustNew(t, protodiff.WithFloatTolerance(tol[0], tol[1]))
		rel := func(i, j int) bool {
			return one.Diff(&pb.Kitchen{PackedDouble: x.PackedDouble[i : i+1]}, &pb.Kitchen{PackedDouble: y.PackedDouble[j : j+1]}).Equal()
		}
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			checkMatching(t, d.Diff(x, y), "packed_double", len(x.PackedDouble), len(y.PackedDouble), rel)
		})
	}
}

func TestUnorderedMessagesMaximum(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	skus := []string{"a", "b"}
	tags := [][]string{nil, {"x"}, {"x", "y"}, {"y", "x"}}
	for seed := range n {
		r := rand.New(rand.NewPCG(uint64(seed), 5))
		opts := []protodiff.Option{protodiff.WithUnorderedLists("r_message.tags"), protodiff.WithIgnoredPaths("r_message.note")}
		switch r.IntN(3) {
		case 0:
			opts = append(opts, protodiff.WithFloatTolerance(0, 0.1))
		case 1:
			opts = append(opts, protodiff.WithFloatToleranceAt("r_message.price", 0.3, 0))
		}
		leaf := func() *pb.Leaf {
			return &pb.Leaf{Sku: skus[r.IntN(len(skus))], Price: floatPool[r.IntN(len(floatPool))],
				Tags: tags[r.IntN(len(tags))], Note: skus[r.IntN(len(skus))]}
		}
		x, y := &pb.Kitchen{}, &pb.Kitchen{}
		for range r.IntN(8) {
			x.RMessage = append(x.RMessage, leaf())
		}
		for range r.IntN(8) {
			y.RMessage = append(y.RMessage, leaf())
		}
		if r.IntN(4) == 0 && len(x.RMessage) > 0 {
			// Identical elements on both sides, in another order.
			y.RMessage = append(y.RMessage, proto.Clone(x.RMessage[0]).(*pb.Leaf))
		}
		one := mustNew(t, opts...)
		rel := func(i, j int) bool {
			return one.Diff(&pb.Kitchen{RMessage: x.RMessage[i : i+1]}, &pb.Kitchen{RMessage: y.RMessage[j : j+1]}).Equal()
		}
		d := mustNew(t, append(opts, protodiff.WithUnorderedLists("r_message"), protodiff.WithMaxDifferences(100))...)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			checkMatching(t, d.Diff(x, y), "r_message", len(x.RMessage), len(y.RMessage), rel)
		})
	}
}

// TestUnorderedToleranceNotTransitive is the reported case: 1.0 and 1.1
// against 1.05 and 0.95 with a margin of 0.1. Greedy matching paired 1.0
// with 1.05 and left 1.1 and 0.95 over; a maximum matching pairs them all.
func TestUnorderedToleranceNotTransitive(t *testing.T) {
	d := mustNew(t, protodiff.WithUnorderedLists("packed_double", "r_message"), protodiff.WithFloatTolerance(0, 0.1))
	check(t, d.Diff(&pb.Kitchen{PackedDouble: []float64{1.0, 1.1}}, &pb.Kitchen{PackedDouble: []float64{1.05, 0.95}}))
	check(t, d.Diff(
		&pb.Kitchen{RMessage: []*pb.Leaf{{Sku: "a", Price: 1.0}, {Sku: "a", Price: 1.1}}},
		&pb.Kitchen{RMessage: []*pb.Leaf{{Sku: "a", Price: 1.05}, {Sku: "a", Price: 0.95}}}))
}

// TestUnorderedDeterministic checks that equal elements pair in index
// order: of several equal legacy elements, the last ones are left over.
func TestUnorderedDeterministic(t *testing.T) {
	d := mustNew(t, protodiff.WithUnorderedLists("r_message", "r_string"))
	check(t, d.Diff(
		&pb.Kitchen{RString: []string{"a", "b", "a", "a"}, RMessage: []*pb.Leaf{{Sku: "a"}, {Sku: "a"}, {Sku: "b"}}},
		&pb.Kitchen{RString: []string{"a", "a"}, RMessage: []*pb.Leaf{{Sku: "b"}, {Sku: "a"}, {Sku: "c"}, {Sku: "a"}, {Sku: "a"}}}),
		want{path: "r_string[1]", field: "r_string", kind: protodiff.Removed, legacy: `"b"`},
		want{path: "r_string[3]", field: "r_string", kind: protodiff.Removed, legacy: `"a"`},
		want{path: "r_message[2]", field: "r_message", kind: protodiff.Added, candidate: `{sku:"c"}`},
		want{path: "r_message[4]", field: "r_message", kind: protodiff.Added, candidate: `{sku:"a"}`})
}
