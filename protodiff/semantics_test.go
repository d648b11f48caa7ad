package protodiff_test

import (
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// want is the part of a Difference a case checks; empty Legacy/Candidate
// fields are checked too, so a case spells out both rendered values.
type want struct {
	path, field string
	kind        protodiff.Kind
	legacy      string
	candidate   string
}

func check(t *testing.T, got protodiff.Result, wants ...want) {
	t.Helper()
	if len(got.Differences) != len(wants) {
		t.Fatalf("got %d differences, want %d:\n%s", len(got.Differences), len(wants), dump(got))
	}
	for i, w := range wants {
		d := got.Differences[i]
		field := w.field
		if field == "" {
			field = w.path
		}
		if d.Path != w.path || d.Field != field || d.Kind != w.kind || d.Legacy != w.legacy || d.Candidate != w.candidate {
			t.Errorf("difference %d:\n got  %s %q (%q) %q -> %q\n want %s %q (%q) %q -> %q",
				i, d.Kind, d.Path, d.Field, d.Legacy, d.Candidate, w.kind, w.path, field, w.legacy, w.candidate)
		}
	}
}

func dump(r protodiff.Result) string {
	var b strings.Builder
	for _, d := range r.Differences {
		b.WriteString("  " + d.Kind.String() + " " + d.Path + ": " + d.Legacy + " -> " + d.Candidate + "\n")
	}
	return b.String()
}

// diffAgrees runs the default Diff and checks it against proto.Equal.
func diffAgrees(t *testing.T, a, b proto.Message) protodiff.Result {
	t.Helper()
	r := protodiff.Diff(a, b)
	if r.Equal() != proto.Equal(a, b) {
		t.Fatalf("Diff equal=%v but proto.Equal=%v:\n%s", r.Equal(), proto.Equal(a, b), dump(r))
	}
	return r
}

func withUnknown(m proto.Message, raw []byte) proto.Message {
	m.ProtoReflect().SetUnknown(raw)
	return m
}

func varintField(num protowire.Number, v uint64) []byte {
	b := protowire.AppendTag(nil, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNaNEqualsNaN(t *testing.T) {
	nan := math.NaN()
	check(t, diffAgrees(t, &pb.Kitchen{FDouble: nan, PackedDouble: []float64{nan}}, &pb.Kitchen{FDouble: nan, PackedDouble: []float64{nan}}))
	check(t, diffAgrees(t, &pb.Kitchen{FDouble: nan}, &pb.Kitchen{FDouble: 1}),
		want{path: "f_double", kind: protodiff.Changed, legacy: "NaN", candidate: "1"})
}

func TestSignedZero(t *testing.T) {
	negZero := math.Copysign(0, -1)
	// Without presence, -0 is set and +0 is not: proto.Equal tells them apart.
	check(t, diffAgrees(t, &pb.Kitchen{FDouble: 0}, &pb.Kitchen{FDouble: negZero}),
		want{path: "f_double", kind: protodiff.Changed, legacy: "0", candidate: "-0"})
	check(t, diffAgrees(t, &pb.Kitchen{FFloat: float32(negZero)}, &pb.Kitchen{}),
		want{path: "f_float", kind: protodiff.Changed, legacy: "-0", candidate: "0"})
	// With presence, or in a list, both are set and compare equal.
	check(t, diffAgrees(t, &pb.Kitchen{OptDouble: proto.Float64(0)}, &pb.Kitchen{OptDouble: proto.Float64(negZero)}))
	check(t, diffAgrees(t, &pb.Kitchen{PackedDouble: []float64{0}}, &pb.Kitchen{PackedDouble: []float64{negZero}}))
}

func TestUnsetVersusEmptyMessage(t *testing.T) {
	check(t, diffAgrees(t, &pb.Kitchen{}, &pb.Kitchen{FMessage: &pb.Leaf{}}),
		want{path: "f_message", kind: protodiff.Added, candidate: "{}"})
	check(t, diffAgrees(t, &pb.Kitchen{Presence: &pb.Presence{Item: &pb.Presence_Item{}}}, &pb.Kitchen{Presence: &pb.Presence{}}),
		want{path: "presence.item", kind: protodiff.Removed, legacy: "{}"})
}

func TestNilVersusEmptyBytes(t *testing.T) {
	check(t, diffAgrees(t, &pb.Kitchen{FBytes: nil, RBytes: [][]byte{nil}}, &pb.Kitchen{FBytes: []byte{}, RBytes: [][]byte{{}}}))
	check(t, diffAgrees(t, &pb.Kitchen{FBytes: []byte("a\x00")}, &pb.Kitchen{}),
		want{path: "f_bytes", kind: protodiff.Changed, legacy: `"a\x00"`, candidate: `""`})
}

func TestUnknownFields(t *testing.T) {
	a, b := varintField(1000, 1), varintField(1001, 2)
	// Another order across numbers is equal; proto.Equal agrees.
	check(t, diffAgrees(t,
		withUnknown(&pb.Leaf{}, append(append([]byte{}, a...), b...)),
		withUnknown(&pb.Leaf{}, append(append([]byte{}, b...), a...))))
	// Within one number, order matters.
	c := varintField(1000, 3)
	check(t, diffAgrees(t,
		withUnknown(&pb.Leaf{}, append(append([]byte{}, a...), c...)),
		withUnknown(&pb.Leaf{}, append(append([]byte{}, c...), a...))),
		want{path: "1000", kind: protodiff.Changed, legacy: `"\xc0>\x01\xc0>\x03"`, candidate: `"\xc0>\x03\xc0>\x01"`})
	check(t, diffAgrees(t, &pb.Kitchen{FMessage: &pb.Leaf{}}, &pb.Kitchen{FMessage: withUnknown(&pb.Leaf{}, b).(*pb.Leaf)}),
		want{path: "f_message.1001", kind: protodiff.Added, candidate: `"\xc8>\x02"`})
	// Bytes that do not parse are compared whole, without a panic.
	check(t, protodiff.Diff(withUnknown(&pb.Leaf{}, []byte{0xff, 0xff}), withUnknown(&pb.Leaf{}, []byte{0xff, 0xfe})),
		want{path: "0", kind: protodiff.Changed, legacy: `"\xff\xff"`, candidate: `"\xff\xfe"`})
	check(t, protodiff.Diff(withUnknown(&pb.Leaf{}, a), withUnknown(&pb.Leaf{}, b), protodiff.WithIgnoredUnknown()))
}

// leafBytes encodes Leaf{sku: "A1", units: 7} with its fields in the given
// order, so one message gets two valid encodings.
func leafBytes(unitsFirst bool) []byte {
	sku := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "A1")
	units := varintField(2, 7)
	if unitsFirst {
		return append(units, sku...)
	}
	return append(sku, units...)
}

func TestAnyUnpacked(t *testing.T) {
	url := "type.googleapis.com/parallelrun.difftest.v1.Leaf"
	x := &pb.Kitchen{Any: &anypb.Any{TypeUrl: url, Value: leafBytes(false)}}
	y := &pb.Kitchen{Any: &anypb.Any{TypeUrl: url, Value: leafBytes(true)}}
	if proto.Equal(x, y) {
		t.Fatal("proto.Equal should see two encodings as different")
	}
	// The one documented exception to proto.Equal: equal payloads are equal.
	check(t, protodiff.Diff(x, y))
	// WithRawAny restores proto.Equal's verdict; payload bytes are shown by
	// their size, since nothing in them can be redacted.
	check(t, protodiff.Diff(x, y, protodiff.WithRawAny()),
		want{path: "any.value", kind: protodiff.Changed, legacy: "<6 bytes>", candidate: "<6 bytes>"})

	// Differences are reported inside the payload.
	check(t, diffAgrees(t,
		&pb.Kitchen{Any: mustAny(t, &pb.Leaf{Sku: "A1", Units: 7})},
		&pb.Kitchen{Any: mustAny(t, &pb.Leaf{Sku: "A1", Units: 8})}),
		want{path: "any.(parallelrun.difftest.v1.Leaf).units", kind: protodiff.Changed, legacy: "7", candidate: "8"})
	check(t, diffAgrees(t,
		&pb.Kitchen{RAny: []*anypb.Any{mustAny(t, &pb.Leaf{}), mustAny(t, &pb.Tier{Name: "gold"})}},
		&pb.Kitchen{RAny: []*anypb.Any{mustAny(t, &pb.Leaf{}), mustAny(t, &pb.Tier{Name: "silver"})}}),
		want{path: "r_any[1].(parallelrun.difftest.v1.Tier).name", field: "r_any.(parallelrun.difftest.v1.Tier).name",
			kind: protodiff.Changed, legacy: `"gold"`, candidate: `"silver"`})

	// Another type: one difference.
	check(t, diffAgrees(t,
		&pb.Kitchen{Any: mustAny(t, &pb.Leaf{})},
		&pb.Kitchen{Any: mustAny(t, &pb.Tier{})}),
		want{path: "any", kind: protodiff.TypeChanged, legacy: "parallelrun.difftest.v1.Leaf", candidate: "parallelrun.difftest.v1.Tier"})

	// A type nobody registered, or bytes that do not decode: bytes compared,
	// never shown.
	check(t, diffAgrees(t,
		&pb.Kitchen{Any: &anypb.Any{TypeUrl: "example.com/no.Such", Value: []byte{1}}},
		&pb.Kitchen{Any: &anypb.Any{TypeUrl: "example.com/no.Such", Value: []byte{2}}}),
		want{path: "any.value", kind: protodiff.Changed, legacy: "<1 bytes>", candidate: "<1 bytes>"})
	check(t, diffAgrees(t,
		&pb.Kitchen{Any: &anypb.Any{TypeUrl: url, Value: []byte{0xff}}},
		&pb.Kitchen{Any: &anypb.Any{TypeUrl: url, Value: leafBytes(false)}}),
		want{path: "any.value", kind: protodiff.Changed, legacy: "<1 bytes>", candidate: "<6 bytes>"})
	// Rendered whole, an Any shows its payload unpacked, or its type URL and
	// size when it cannot be.
	check(t, diffAgrees(t,
		&pb.Kitchen{Any: &anypb.Any{TypeUrl: url, Value: leafBytes(true)}},
		&pb.Kitchen{}),
		want{path: "any", kind: protodiff.Removed, legacy: `{type_url:"type.googleapis.com/parallelrun.difftest.v1.Leaf" value:{sku:"A1" units:7}}`})
	check(t, diffAgrees(t,
		&pb.Kitchen{},
		&pb.Kitchen{RAny: []*anypb.Any{{TypeUrl: "example.com/no.Such", Value: []byte("secret")}}}),
		want{path: "r_any[0]", field: "r_any", kind: protodiff.Added, candidate: `{type_url:"example.com/no.Such" value:<6 bytes>}`})
}

func TestMapInsertionOrder(t *testing.T) {
	x, y := &pb.Kitchen{MStringString: map[string]string{}}, &pb.Kitchen{MStringString: map[string]string{}}
	keys := strings.Fields("a b c d e f g h i j k l m n o p q r s t")
	for i := range keys {
		x.MStringString[keys[i]] = keys[i]
		y.MStringString[keys[len(keys)-1-i]] = keys[len(keys)-1-i]
	}
	check(t, diffAgrees(t, x, y))
	y.MStringString["c"] = "C"
	delete(y.MStringString, "a")
	y.MStringString["zz"] = "z"
	check(t, diffAgrees(t, x, y),
		want{path: `m_string_string["a"]`, field: "m_string_string", kind: protodiff.Removed, legacy: `"a"`},
		want{path: `m_string_string["c"]`, field: "m_string_string", kind: protodiff.Changed, legacy: `"c"`, candidate: `"C"`},
		want{path: `m_string_string["zz"]`, field: "m_string_string", kind: protodiff.Added, candidate: `"z"`})
}

func TestMapKeysOfEveryKind(t *testing.T) {
	check(t, diffAgrees(t,
		&pb.Kitchen{MInt32Leaf: map[int32]*pb.Leaf{-5: {Units: 1}, 3: {}}, MBoolLeaf: map[bool]*pb.Leaf{true: {}}, MUint64Bytes: map[uint64][]byte{7: nil}},
		&pb.Kitchen{MInt32Leaf: map[int32]*pb.Leaf{-5: {Units: 2}, 3: {}}, MBoolLeaf: map[bool]*pb.Leaf{false: {}}, MUint64Bytes: map[uint64][]byte{7: []byte("x")}}),
		want{path: "m_int32_leaf[-5].units", field: "m_int32_leaf.units", kind: protodiff.Changed, legacy: "1", candidate: "2"},
		want{path: "m_uint64_bytes[7]", field: "m_uint64_bytes", kind: protodiff.Changed, legacy: `""`, candidate: `"x"`},
		want{path: "m_bool_leaf[false]", field: "m_bool_leaf", kind: protodiff.Added, candidate: "{}"},
		want{path: "m_bool_leaf[true]", field: "m_bool_leaf", kind: protodiff.Removed, legacy: "{}"})
}

func TestOneofSwitchingCase(t *testing.T) {
	check(t, diffAgrees(t,
		&pb.Kitchen{Choice: &pb.Kitchen_OString{OString: "x"}},
		&pb.Kitchen{Choice: &pb.Kitchen_OInt64{OInt64: 5}}),
		want{path: "o_string", kind: protodiff.Removed, legacy: `"x"`},
		want{path: "o_int64", kind: protodiff.Added, candidate: "5"})
	// A oneof member with a zero value is still set.
	check(t, diffAgrees(t,
		&pb.Kitchen{Choice: &pb.Kitchen_OString{OString: ""}},
		&pb.Kitchen{}),
		want{path: "o_string", kind: protodiff.Removed, legacy: `""`})
}

func TestProto2ExplicitDefaults(t *testing.T) {
	// Set to its default is still set.
	check(t, diffAgrees(t, &pb.Presence{}, &pb.Presence{Count: proto.Int32(5), Shade: pb.Shade_SHADE_DARK.Enum()}),
		want{path: "count", kind: protodiff.Added, candidate: "5"},
		want{path: "shade", kind: protodiff.Added, candidate: "SHADE_DARK"})
	check(t, diffAgrees(t, &pb.Presence{Name: proto.String("none")}, &pb.Presence{Name: proto.String("")}),
		want{path: "name", kind: protodiff.Changed, legacy: `"none"`, candidate: `""`})
}

func TestProto3Optional(t *testing.T) {
	check(t, diffAgrees(t, &pb.Kitchen{}, &pb.Kitchen{OptInt32: proto.Int32(0)}),
		want{path: "opt_int32", kind: protodiff.Added, candidate: "0"})
	check(t, diffAgrees(t, &pb.Kitchen{OptString: proto.String("")}, &pb.Kitchen{}),
		want{path: "opt_string", kind: protodiff.Removed, legacy: `""`})
	check(t, diffAgrees(t, &pb.Kitchen{FInt32: 0}, &pb.Kitchen{FInt32: 1}),
		want{path: "f_int32", kind: protodiff.Changed, legacy: "0", candidate: "1"})
}

func TestExtensions(t *testing.T) {
	x, y := &pb.Presence{}, &pb.Presence{}
	proto.SetExtension(x, pb.E_ExtInt32, int32(1))
	proto.SetExtension(y, pb.E_ExtInt32, int32(2))
	proto.SetExtension(y, pb.E_ExtString, "s")
	proto.SetExtension(x, pb.E_ExtRInt64, []int64{1, 2})
	proto.SetExtension(y, pb.E_ExtRInt64, []int64{1})
	check(t, diffAgrees(t, x, y),
		want{path: "(parallelrun.difftest.v1.ext_int32)", kind: protodiff.Changed, legacy: "1", candidate: "2"},
		want{path: "(parallelrun.difftest.v1.ext_string)", kind: protodiff.Added, candidate: `"s"`},
		want{path: "(parallelrun.difftest.v1.ext_r_int64)[1]", field: "(parallelrun.difftest.v1.ext_r_int64)", kind: protodiff.Removed, legacy: "2"})

	inner := &pb.Presence{}
	proto.SetExtension(inner, pb.E_ExtPresence, &pb.Presence{Count: proto.Int32(1)})
	check(t, diffAgrees(t, &pb.Kitchen{Presence: inner}, &pb.Kitchen{Presence: &pb.Presence{}}),
		want{path: "presence.(parallelrun.difftest.v1.ext_presence)", kind: protodiff.Removed, legacy: "{count:1}"})
	check(t, diffAgrees(t, &pb.Kitchen{}, &pb.Kitchen{Presence: inner}),
		want{path: "presence", kind: protodiff.Added, candidate: "{(parallelrun.difftest.v1.ext_presence):{count:1}}"})
}

func TestGroups(t *testing.T) {
	check(t, diffAgrees(t,
		&pb.Presence{Item: &pb.Presence_Item{Label: proto.String("a")}, Entry: []*pb.Presence_Entry{{}, {Key: proto.String("k")}}},
		&pb.Presence{Item: &pb.Presence_Item{Label: proto.String("b")}, Entry: []*pb.Presence_Entry{{}, {}}}),
		want{path: "item.label", kind: protodiff.Changed, legacy: `"a"`, candidate: `"b"`},
		want{path: "entry[1].key", field: "entry.key", kind: protodiff.Removed, legacy: `"k"`})
}

func TestEnumUnknownNumber(t *testing.T) {
	check(t, diffAgrees(t, &pb.Kitchen{FEnum: pb.Color(99)}, &pb.Kitchen{FEnum: pb.Color_COLOR_RED}),
		want{path: "f_enum", kind: protodiff.Changed, legacy: "99", candidate: "COLOR_RED"})
	check(t, diffAgrees(t, &pb.Kitchen{REnum: []pb.Color{99}}, &pb.Kitchen{REnum: []pb.Color{99}}))
}

func TestTypedNilAndNil(t *testing.T) {
	var typedNil *pb.Leaf
	check(t, diffAgrees(t, typedNil, &pb.Leaf{}),
		want{path: "", kind: protodiff.Added, candidate: "{}"})
	check(t, diffAgrees(t, &pb.Leaf{Units: 1}, typedNil),
		want{path: "", kind: protodiff.Removed, legacy: "{units:1}"})
	check(t, diffAgrees(t, typedNil, (*pb.Leaf)(nil)))
	check(t, diffAgrees(t, nil, nil))
	check(t, diffAgrees(t, nil, &pb.Leaf{}),
		want{path: "", kind: protodiff.Added, candidate: "{}"})
	check(t, diffAgrees(t, typedNil, nil),
		want{path: "", kind: protodiff.Removed, legacy: "<nil>"})
}

func TestDifferentTypes(t *testing.T) {
	check(t, diffAgrees(t, &pb.Leaf{}, &pb.Tier{}),
		want{path: "", kind: protodiff.TypeChanged, legacy: "parallelrun.difftest.v1.Leaf", candidate: "parallelrun.difftest.v1.Tier"})
	check(t, diffAgrees(t, (*pb.Leaf)(nil), &pb.Tier{}),
		want{path: "", kind: protodiff.TypeChanged, legacy: "parallelrun.difftest.v1.Leaf", candidate: "parallelrun.difftest.v1.Tier"})
}

func TestListsByPosition(t *testing.T) {
	check(t, diffAgrees(t,
		&pb.Kitchen{RString: []string{"a", "b"}, RMessage: []*pb.Leaf{{Units: 1}}},
		&pb.Kitchen{RString: []string{"a", "c", "d"}, RMessage: []*pb.Leaf{{Units: 2}}}),
		want{path: "r_string[1]", field: "r_string", kind: protodiff.Changed, legacy: `"b"`, candidate: `"c"`},
		want{path: "r_string[2]", field: "r_string", kind: protodiff.Added, candidate: `"d"`},
		want{path: "r_message[0].units", field: "r_message.units", kind: protodiff.Changed, legacy: "1", candidate: "2"})
}

func TestWellKnownTypesAreMessages(t *testing.T) {
	check(t, diffAgrees(t,
		&pb.Quote{ComputedAt: &timestamppb.Timestamp{Seconds: 1}},
		&pb.Quote{ComputedAt: &timestamppb.Timestamp{Seconds: 1, Nanos: 5}}),
		want{path: "computed_at.nanos", kind: protodiff.Changed, legacy: "0", candidate: "5"})
}

func TestValueLengthIsCapped(t *testing.T) {
	long := strings.Repeat("é", 200)
	r := protodiff.Diff(&pb.Leaf{Sku: long}, &pb.Leaf{}, protodiff.WithMaxValueLength(16))
	if got := r.Differences[0].Legacy; got != `"éééééé…` {
		t.Errorf("cut value = %q", got)
	}
}
