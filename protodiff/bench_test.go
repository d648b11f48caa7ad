package protodiff_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// benchCase is one pair of messages; every case runs against proto.Equal
// and cmp.Diff with protocmp in the same run, so the ratios hold on a noisy
// machine.
type benchCase struct {
	name       string
	legacy     proto.Message
	candidate  proto.Message
	wantDiffs  int
	differOpts []protodiff.Option
}

func benchCases() []benchCase {
	fdp := protodesc.ToFileDescriptorProto(descriptorpb.File_google_protobuf_descriptor_proto)
	fdpLeaf := proto.Clone(fdp).(*descriptorpb.FileDescriptorProto)
	last := fdpLeaf.MessageType[len(fdpLeaf.MessageType)-1]
	last.Field[len(last.Field)-1].JsonName = proto.String("changed")

	fields := map[string]any{}
	for k := range 10 {
		items := []any{}
		for i := range 5 {
			items = append(items, map[string]any{"id": float64(i), "name": fmt.Sprint("item", i), "ok": i%2 == 0})
		}
		fields[fmt.Sprint("key", k)] = items
	}
	st, err := structpb.NewStruct(fields)
	if err != nil {
		panic(err)
	}
	stLeaf := proto.Clone(st).(*structpb.Struct)
	stLeaf.Fields["key7"].GetListValue().Values[3].GetStructValue().Fields["name"] = structpb.NewStringValue("other")

	q := &pb.Quote{
		QuoteId:    "q-7f3a",
		ComputedAt: timestamppb.New(timestamppb.Now().AsTime()),
		Total:      &pb.Money{CurrencyCode: "EUR", Units: 131, Nanos: 500000000},
		Labels:     map[string]string{"region": "eu", "channel": "web"},
	}
	for i := range 5 {
		q.Items = append(q.Items, &pb.Line{Sku: fmt.Sprint("SKU-", i), Quantity: int64(i + 1),
			Price: &pb.Money{CurrencyCode: "EUR", Units: int64(10 * i), Nanos: 990000000}, DiscountRate: 0.05})
	}
	qLeaf := proto.Clone(q).(*pb.Quote)
	qLeaf.Items[3].Price.Units++
	qNoise := proto.Clone(q).(*pb.Quote)
	qNoise.QuoteId, qNoise.ComputedAt = "q-9b21", &timestamppb.Timestamp{Seconds: 1}
	ignoreNoise := []protodiff.Option{protodiff.WithIgnoredPaths("quote_id", "computed_at")}

	return []benchCase{
		{name: "descriptor/equal", legacy: fdp, candidate: proto.Clone(fdp)},
		{name: "descriptor/leaf", legacy: fdp, candidate: fdpLeaf, wantDiffs: 1},
		{name: "struct/equal", legacy: st, candidate: proto.Clone(st)},
		{name: "struct/leaf", legacy: st, candidate: stLeaf, wantDiffs: 1},
		{name: "quote/equal", legacy: q, candidate: proto.Clone(q)},
		{name: "quote/leaf", legacy: q, candidate: qLeaf, wantDiffs: 1},
		// Per-call noise ignored by option: proto.Equal says "different",
		// the Differ "equal".
		{name: "quote/noise_ignored", legacy: q, candidate: qNoise, differOpts: ignoreNoise},
	}
}

func BenchmarkDiff(b *testing.B) {
	for _, c := range benchCases() {
		d, err := protodiff.New(c.differOpts...)
		if err != nil {
			b.Fatal(err)
		}
		if got := len(d.Diff(c.legacy, c.candidate).Differences); got != c.wantDiffs {
			b.Fatalf("%s: %d differences, want %d", c.name, got, c.wantDiffs)
		}
		b.Run(c.name+"/proto.Equal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				proto.Equal(c.legacy, c.candidate)
			}
		})
		b.Run(c.name+"/protodiff", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d.Diff(c.legacy, c.candidate)
			}
		})
		b.Run(c.name+"/cmp.Diff", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cmp.Diff(c.legacy, c.candidate, protocmp.Transform())
			}
		})
	}
}

// hostileCase is a shape of hostile input at one size.
type hostileCase struct {
	name      string
	opts      []protodiff.Option
	legacy    proto.Message
	candidate proto.Message
	// equalCopy is a copy of legacy, for a baseline where proto.Equal
	// scans the whole input (on reordered lists it stops at once).
	equalCopy proto.Message
	wantDiffs int
}

func hostileCases() []hostileCase {
	var cs []hostileCase
	for _, n := range []int{2500, 5000, 10000} {
		cs = append(cs, hostileCase{name: fmt.Sprintf("chain/%d", n), legacy: childChain(n, 1), candidate: childChain(n, 2), wantDiffs: 1})
	}
	for _, n := range []int{1250, 2500, 5000} {
		// Two levels each (the Any and its payload): 5,000 is the deepest
		// that the default depth compares in full.
		cs = append(cs, hostileCase{name: fmt.Sprintf("any_chain/%d", n), legacy: anyChain(n, 1), candidate: anyChain(n, 2), wantDiffs: 1})
	}
	for _, n := range []int{25000, 50000, 100000} {
		x, y := &pb.Kitchen{}, &pb.Kitchen{}
		for i := range n {
			x.RString = append(x.RString, fmt.Sprint("s", i))
			y.RString = append(y.RString, fmt.Sprint("s", n-1-i))
		}
		y.RString[n/2] = "new"
		cs = append(cs, hostileCase{name: fmt.Sprintf("unordered_strings/%d", n), opts: []protodiff.Option{protodiff.WithUnorderedLists("r_string")},
			legacy: x, candidate: y, equalCopy: proto.Clone(x), wantDiffs: 2})

		q, r := &pb.Quote{Items: lineItems(n, false)}, &pb.Quote{Items: lineItems(n, true)}
		r.Items[n/2].Quantity = 100
		cs = append(cs, hostileCase{name: fmt.Sprintf("unordered_messages/%d", n), opts: []protodiff.Option{protodiff.WithUnorderedLists("items")},
			legacy: q, candidate: r, equalCopy: proto.Clone(q), wantDiffs: 2})

		f, g := &pb.Kitchen{}, &pb.Kitchen{}
		for i := range n {
			f.PackedDouble = append(f.PackedDouble, float64(i)/4)
			g.PackedDouble = append(g.PackedDouble, float64(n-1-i)/4+0.2)
		}
		g.PackedDouble[n/2] = -1
		cs = append(cs, hostileCase{name: fmt.Sprintf("unordered_floats_tolerance/%d", n),
			opts:   []protodiff.Option{protodiff.WithUnorderedLists("packed_double"), protodiff.WithFloatTolerance(0, 0.3)},
			legacy: f, candidate: g, equalCopy: proto.Clone(f), wantDiffs: 2})
	}
	return cs
}

// BenchmarkHostile runs the shapes of hostile input at growing sizes, each
// beside proto.Equal on the same input (and, for reordered lists, where
// proto.Equal stops at the first element, on an equal copy as well).
func BenchmarkHostile(b *testing.B) {
	for _, c := range hostileCases() {
		d, err := protodiff.New(c.opts...)
		if err != nil {
			b.Fatal(err)
		}
		if r := d.Diff(c.legacy, c.candidate); len(r.Differences) != c.wantDiffs || r.Incomplete != "" {
			b.Fatalf("%s: %d differences, Incomplete %q, want %d", c.name, len(r.Differences), r.Incomplete, c.wantDiffs)
		}
		b.Run(c.name+"/proto.Equal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				proto.Equal(c.legacy, c.candidate)
			}
		})
		if c.equalCopy != nil {
			b.Run(c.name+"/proto.Equal_copy", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					proto.Equal(c.legacy, c.equalCopy)
				}
			})
		}
		b.Run(c.name+"/protodiff", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d.Diff(c.legacy, c.candidate)
			}
		})
	}
}
