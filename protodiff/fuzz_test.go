package protodiff_test

import (
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
)

// FuzzDiff decodes two Kitchen messages from the fuzzer's bytes and checks
// the same properties as the random-message test: no panic, empty exactly
// when proto.Equal (with raw Any), every path a real difference, and the
// same result for generated and dynamic messages. The seed corpus in
// testdata/fuzz/FuzzDiff holds encoded pairs from the random generator.
func FuzzDiff(f *testing.F) {
	for seed := range 16 {
		g := gen{rand.New(rand.NewPCG(uint64(seed), 11))}
		a, b := g.pair()
		ab, err1 := proto.Marshal(a)
		bb, err2 := proto.Marshal(b)
		if err1 != nil || err2 != nil {
			f.Fatal(err1, err2)
		}
		f.Add(ab, bb)
	}
	f.Fuzz(func(t *testing.T, ab, bb []byte) {
		a, b := &pb.Kitchen{}, &pb.Kitchen{}
		if proto.Unmarshal(ab, a) != nil || proto.Unmarshal(bb, b) != nil {
			return
		}
		checkProperties(t, a, b)
	})
}
