package protodiff_test

import (
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

func TestZeroToleranceChangesNothing(t *testing.T) {
	negZero := math.Copysign(0, -1)
	for _, d := range []*protodiff.Differ{
		mustNew(t, protodiff.WithFloatTolerance(0, 0)),
		mustNew(t, protodiff.WithFloatToleranceAt("f_double", 0, 0)),
		// A zero tolerance at a path turns a global one off there.
		mustNew(t, protodiff.WithFloatTolerance(0.5, 1), protodiff.WithFloatToleranceAt("f_double", 0, 0)),
	} {
		// An implicit -0 is set, an implicit +0 is not.
		check(t, d.Diff(&pb.Kitchen{FDouble: negZero}, &pb.Kitchen{}),
			want{path: "f_double", kind: protodiff.Changed, legacy: "-0", candidate: "0"})
		check(t, d.Diff(&pb.Kitchen{FDouble: 1}, &pb.Kitchen{FDouble: math.Nextafter(1, 2)}),
			want{path: "f_double", kind: protodiff.Changed, legacy: "1", candidate: "1.0000000000000002"})
	}
	// The random messages of the property test check the rest: see
	// zeroTolerance in checkProperties.
}

func TestToleranceRule(t *testing.T) {
	negZero := math.Copysign(0, -1)
	d := mustNew(t, protodiff.WithFloatTolerance(0.1, 1e-9))
	// Equal as numbers: judged as without a tolerance. An implicit -0 stays
	// different from unset, although 0 is within any margin of it.
	check(t, d.Diff(&pb.Kitchen{FDouble: negZero}, &pb.Kitchen{}),
		want{path: "f_double", kind: protodiff.Changed, legacy: "-0", candidate: "0"})
	// With presence, or in lists, the zeros are equal anyway.
	check(t, d.Diff(&pb.Kitchen{OptDouble: proto.Float64(negZero), PackedDouble: []float64{negZero}},
		&pb.Kitchen{OptDouble: proto.Float64(0), PackedDouble: []float64{0}}))
	// Unset counts as 0 in a field without presence...
	check(t, d.Diff(&pb.Kitchen{FDouble: 1e-10}, &pb.Kitchen{}))
	// ...but a field with presence that is unset differs.
	check(t, d.Diff(&pb.Kitchen{OptDouble: proto.Float64(1e-10)}, &pb.Kitchen{}),
		want{path: "opt_double", kind: protodiff.Removed, legacy: "1e-10"})
	// The fraction is of the smaller magnitude.
	check(t, d.Diff(&pb.Kitchen{FDouble: 100}, &pb.Kitchen{FDouble: 110}))
	check(t, d.Diff(&pb.Kitchen{FDouble: 100}, &pb.Kitchen{FDouble: 111}),
		want{path: "f_double", kind: protodiff.Changed, legacy: "100", candidate: "111"})
}
