package protodiff_test

import (
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
)

// FuzzDiff decodes two Kitchen messages from the fuzzer's bytes and checks
// the same properties as the random-message test: no panic, empty exactly
// when proto.Equal (with raw Any), every path a real difference (keyed
// paths included), the same result for generated and dynamic messages, a
// zero tolerance changing nothing; then, under option sets that change the
// semantics, that equal messages are equal, that equality is symmetric and
// that a budget never makes a result wrongly empty; that Redact leaves no
// sensitive value; and that the decoder of Any payloads agrees with
// proto.Unmarshal on the raw bytes. The seed corpus in testdata/fuzz/FuzzDiff
// holds encoded pairs from the random generator and past findings.
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
		checkOptionSets(t, a, b)
		checkRedact(t, a)
		checkDecode(t, ab)
	})
}
