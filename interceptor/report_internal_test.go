package interceptor

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// distinctFields keeps each field once, in order of appearance, on either
// side of the size where it switches from a scan to a map.
func TestDistinctFields(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n, kinds := r.IntN(60), 1+r.IntN(30)
		diffs := make([]protodiff.Difference, n)
		var want []string
		for i := range diffs {
			diffs[i].Field = fmt.Sprintf("f%d", r.IntN(kinds))
			if !slices.Contains(want, diffs[i].Field) {
				want = append(want, diffs[i].Field)
			}
		}
		if got := distinctFields(diffs); !slices.Equal(got, want) {
			t.Fatalf("distinctFields(%d diffs) = %q, want %q", n, got, want)
		}
	}
}
