package protodiff_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// gen builds random messages over any descriptor, from small pools of values
// so that two random messages often share values and differ in few places.
type gen struct{ r *rand.Rand }

func newGen(seed int, stream uint64) gen {
	return gen{rand.New(rand.NewPCG(uint64(seed), stream))}
}

var presenceExts = []protoreflect.ExtensionType{pb.E_ExtInt32, pb.E_ExtString, pb.E_ExtRInt64, pb.E_ExtPresence, pb.E_ExtSecret}

func (g gen) message(m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		if g.r.IntN(4) == 0 {
			g.set(m, fields.Get(i), depth)
		}
	}
	if m.Descriptor().FullName() == "parallelrun.difftest.v1.Presence" {
		for _, xt := range presenceExts {
			if g.r.IntN(4) == 0 {
				g.set(m, xt.TypeDescriptor(), depth)
			}
		}
	}
	if g.r.IntN(8) == 0 {
		var raw []byte
		for range 1 + g.r.IntN(3) {
			raw = protowire.AppendTag(raw, protowire.Number(1000+g.r.IntN(3)), protowire.VarintType)
			raw = protowire.AppendVarint(raw, uint64(g.r.IntN(3)))
		}
		m.SetUnknown(raw)
	}
}

func (g gen) set(m protoreflect.Message, fd protoreflect.FieldDescriptor, depth int) {
	if fd.Message() != nil && depth > 3 {
		return
	}
	switch {
	case fd.IsList():
		l := m.Mutable(fd).List()
		for range g.r.IntN(4) {
			if fd.Message() != nil {
				v := l.NewElement()
				g.fill(fd, v.Message(), depth)
				l.Append(v)
			} else {
				l.Append(g.scalar(fd))
			}
		}
	case fd.IsMap():
		mp := m.Mutable(fd).Map()
		for range g.r.IntN(4) {
			k := g.scalar(fd.MapKey()).MapKey()
			if fd.MapValue().Message() != nil {
				v := mp.NewValue()
				g.fill(fd.MapValue(), v.Message(), depth)
				mp.Set(k, v)
			} else {
				mp.Set(k, g.scalar(fd.MapValue()))
			}
		}
	case fd.Message() != nil:
		v := m.NewField(fd)
		g.fill(fd, v.Message(), depth)
		m.Set(fd, v)
	default:
		m.Set(fd, g.scalar(fd))
	}
}

// fill populates a sub-message; an Any gets a packed Leaf, encoded
// deterministically and without NaN, so that equal payloads have equal bytes
// and proto.Equal stays the reference.
func (g gen) fill(fd protoreflect.FieldDescriptor, m protoreflect.Message, depth int) {
	if m.Descriptor().FullName() == "google.protobuf.Any" {
		leaf := &pb.Leaf{Sku: []string{"", "A1", "B2"}[g.r.IntN(3)], Units: int64(g.r.IntN(3)), Price: float64(g.r.IntN(2))}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(leaf)
		if err != nil {
			panic(err)
		}
		fields := m.Descriptor().Fields()
		m.Set(fields.ByName("type_url"), protoreflect.ValueOfString("type.googleapis.com/parallelrun.difftest.v1.Leaf"))
		m.Set(fields.ByName("value"), protoreflect.ValueOfBytes(b))
		return
	}
	g.message(m, depth+1)
}

func (g gen) scalar(fd protoreflect.FieldDescriptor) protoreflect.Value {
	i := g.r.IntN(5)
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(i%2 == 0)
	case protoreflect.EnumKind:
		// A closed enum drops unknown numbers into unknown fields on
		// parse, so only open enums get one.
		if fd.Enum().IsClosed() {
			return protoreflect.ValueOfEnum(protoreflect.EnumNumber(i % 3))
		}
		return protoreflect.ValueOfEnum([]protoreflect.EnumNumber{0, 1, 2, 99, 1}[i])
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32([]int32{0, 1, -1, math.MaxInt32, 7}[i])
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64([]int64{0, 1, -1, math.MinInt64, 7}[i])
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32([]uint32{0, 1, 2, math.MaxUint32, 7}[i])
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64([]uint64{0, 1, 2, math.MaxUint64, 7}[i])
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32([]float32{0, float32(math.Copysign(0, -1)), 1.5, float32(math.NaN()), float32(math.Inf(1))}[i])
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64([]float64{0, math.Copysign(0, -1), 1.5, math.NaN(), 1e-300}[i])
	case protoreflect.StringKind:
		return protoreflect.ValueOfString([]string{"", "a", "b", "eu", "ü"}[i])
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([][]byte{nil, {}, {0}, []byte("x"), {0xff}}[i])
	}
	panic("not a scalar: " + fd.FullName())
}

// mutate changes one random place of m: it clears, replaces or adds a field,
// possibly deep inside.
func (g gen) mutate(m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	if fields.Len() == 0 {
		return
	}
	fd := fields.Get(g.r.IntN(fields.Len()))
	switch {
	case fd.Message() != nil && !fd.IsList() && !fd.IsMap() && m.Has(fd) && g.r.IntN(2) == 0 &&
		m.Descriptor().FullName() != "google.protobuf.Any":
		g.mutate(m.Mutable(fd).Message(), depth+1)
	case m.Has(fd) && g.r.IntN(2) == 0:
		m.Clear(fd)
	default:
		g.set(m, fd, depth)
	}
}

// pair returns two messages: equal, slightly different, or unrelated.
func (g gen) pair() (proto.Message, proto.Message) {
	a := &pb.Kitchen{}
	g.message(a.ProtoReflect(), 0)
	switch g.r.IntN(3) {
	case 0:
		return a, proto.Clone(a)
	case 1:
		b := proto.Clone(a)
		for range 1 + g.r.IntN(3) {
			g.mutate(b.ProtoReflect(), 0)
		}
		return a, b
	}
	b := &pb.Kitchen{}
	g.message(b.ProtoReflect(), 0)
	return a, b
}

func must(d *protodiff.Differ, err error) *protodiff.Differ {
	if err != nil {
		panic(err)
	}
	return d
}

var (
	rawAny = must(protodiff.New(protodiff.WithRawAny()))
	// keyed pairs list elements by keys that repeat often in random
	// messages, NaN and signed zeros included.
	keyed = must(protodiff.New(protodiff.WithRawAny(), protodiff.WithListKey("r_message", "sku"),
		protodiff.WithListKey("children", "f_double"), protodiff.WithListKey("presence.entry", "key"),
		protodiff.WithListKey("child.r_message", "units")))
	// zeroTolerance must change nothing.
	zeroTolerance = must(protodiff.New(protodiff.WithFloatTolerance(0, 0), protodiff.WithFloatToleranceAt("child", 0, 0)))
)

// checkProperties is what the property test and the fuzz target assert for
// any two messages of one type.
func checkProperties(t *testing.T, a, b proto.Message) {
	t.Helper()
	raw := rawAny.Diff(a, b)
	if raw.Equal() != proto.Equal(a, b) {
		t.Fatalf("WithRawAny: Diff equal=%v, proto.Equal=%v\n%s", raw.Equal(), proto.Equal(a, b), dump(raw))
	}
	def := protodiff.Diff(a, b)
	if def.Equal() != raw.Equal() {
		// Unpacking Any may only turn byte differences of Any into equality.
		if !def.Equal() {
			t.Fatalf("unpacking Any found differences that bytes do not:\n%s", dump(def))
		}
		for _, d := range raw.Differences {
			if !strings.HasSuffix(d.Field, ".value") {
				t.Fatalf("unpacked Any equal, but a raw difference is not in an Any: %s", d.Path)
			}
		}
	}
	if z := zeroTolerance.Diff(a, b); dump(z) != dump(def) {
		t.Fatalf("a zero tolerance changed the result:\n%s\nvs\n%s", dump(z), dump(def))
	}
	kr := keyed.Diff(a, b)
	if kr.Equal() && !raw.Equal() {
		// Keys only pair elements differently: equal by key means equal
		// as a multiset, never more than that.
		for _, d := range raw.Differences {
			if !strings.HasPrefix(d.Field, "r_message") && !strings.HasPrefix(d.Field, "children") &&
				!strings.HasPrefix(d.Field, "presence.entry") && !strings.HasPrefix(d.Field, "child.r_message") {
				t.Fatalf("equal by key, but a difference is outside the keyed lists: %s", d.Path)
			}
		}
	}
	for _, r := range []protodiff.Result{def, raw, kr} {
		for _, d := range r.Differences {
			if err := differsAt(a, b, d); err != nil {
				t.Fatalf("%s %s: %v\nall:\n%s", d.Kind, d.Path, err, dump(r))
			}
		}
	}
	// dynamicpb goes through the reflection API only, without proto.Equal's
	// fast path for generated code: the result must be the same.
	da, db := toDynamic(t, a), toDynamic(t, b)
	if got := rawAny.Diff(da, db); dump(got) != dump(raw) {
		t.Fatalf("dynamicpb differs from generated:\n%s\nvs\n%s", dump(got), dump(raw))
	}
}

func toDynamic(t *testing.T, m proto.Message) proto.Message {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	dm := dynamicpb.NewMessage(m.ProtoReflect().Descriptor())
	if err := (proto.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}).Unmarshal(b, dm); err != nil {
		t.Fatal(err)
	}
	return dm
}

func TestPropertyRandomMessages(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	for seed := range n {
		g := gen{rand.New(rand.NewPCG(uint64(seed), 7))}
		a, b := g.pair()
		t.Run(strconv.Itoa(seed), func(t *testing.T) {
			checkProperties(t, a, b)
			checkProperties(t, b, a)
		})
	}
}

// differsAt checks that the two messages really differ where d says.
func differsAt(a, b proto.Message, d protodiff.Difference) error {
	path := d.Path
	if i := strings.Index(path, "["+protodiff.Redacted+"]"); i >= 0 {
		// A redacted map key cannot be followed: check the map instead.
		path, d.Kind = path[:i], protodiff.Changed
	}
	la, err := resolve(a.ProtoReflect(), path)
	if err != nil {
		return fmt.Errorf("legacy: %w", err)
	}
	lb, err := resolve(b.ProtoReflect(), path)
	if err != nil {
		return fmt.Errorf("candidate: %w", err)
	}
	switch d.Kind {
	case protodiff.Added:
		if la.present || !lb.present {
			return fmt.Errorf("added, but present: legacy %v, candidate %v", la.present, lb.present)
		}
	case protodiff.Removed:
		if !la.present || lb.present {
			return fmt.Errorf("removed, but present: legacy %v, candidate %v", la.present, lb.present)
		}
	case protodiff.Changed:
		if la.present == lb.present && la.equal(lb) {
			return fmt.Errorf("changed, but equal")
		}
	case protodiff.TypeChanged:
		if la.typeName == lb.typeName {
			return fmt.Errorf("type changed, but both are %s", la.typeName)
		}
	}
	return nil
}

// located is what a path leads to in one message.
type located struct {
	present  bool
	fd       protoreflect.FieldDescriptor // nil for unknown bytes and roots
	v        protoreflect.Value
	raw      []byte // unknown fields of one number
	typeName string // of a root or an Any
}

func (l located) equal(o located) bool {
	if l.fd == nil {
		return bytes.Equal(l.raw, o.raw)
	}
	return l.v.Equal(o.v)
}

// resolve follows a Difference.Path in m. It is a test's own reading of the
// documented path syntax, independent of the walker.
func resolve(m protoreflect.Message, path string) (located, error) {
	cur := located{present: m.IsValid(), v: protoreflect.ValueOfMessage(m), typeName: string(m.Descriptor().FullName())}
	for rest := path; rest != ""; {
		if rest[0] == '.' {
			rest = rest[1:]
		}
		if !cur.present {
			return located{}, nil
		}
		switch {
		case rest[0] == '[':
			// A quoted key may hold ']' itself, after "name=" in a keyed
			// list, and "#n" may follow it.
			tok := rest[1:]
			prefix := ""
			if eq := strings.IndexByte(tok, '='); eq >= 0 && eq < strings.IndexAny(tok, `]"`) {
				prefix, tok = tok[:eq+1], tok[eq+1:]
			}
			if strings.HasPrefix(tok, `"`) {
				q, err := strconv.QuotedPrefix(tok)
				if err != nil {
					return located{}, err
				}
				tok, rest = q, tok[len(q):]
				if strings.HasPrefix(rest, "#") {
					end := strings.IndexByte(rest, ']')
					tok, rest = tok+rest[:end], rest[end:]
				}
			} else {
				end := strings.IndexByte(tok, ']')
				tok, rest = tok[:end], tok[end:]
			}
			tok = prefix + tok
			if !strings.HasPrefix(rest, "]") {
				return located{}, fmt.Errorf("unclosed key in %q", path)
			}
			rest = rest[1:]
			if cur.fd.IsList() {
				l := cur.v.List()
				i, err := strconv.Atoi(tok)
				if err != nil {
					i, err = keyedIndex(cur.fd, l, tok)
				}
				if err != nil {
					return located{}, err
				}
				cur = located{present: i >= 0 && i < l.Len(), fd: cur.fd}
				if cur.present {
					cur.v = l.Get(i)
					if cur.fd.Message() != nil {
						cur.typeName = anyType(cur.v.Message())
					}
				}
				continue
			}
			mk, err := parseKey(cur.fd.MapKey(), tok)
			if err != nil {
				return located{}, err
			}
			mp := cur.v.Map()
			cur = located{present: mp.Has(mk), fd: cur.fd.MapValue(), v: mp.Get(mk)}
			if cur.present && cur.fd.Message() != nil {
				cur.typeName = anyType(cur.v.Message())
			}
		case rest[0] == '(':
			end := strings.IndexByte(rest, ')')
			name := protoreflect.FullName(rest[1:end])
			rest = rest[end+1:]
			msg := cur.v.Message()
			if msg.Descriptor().FullName() == "google.protobuf.Any" {
				p, err := msg.Interface().(*anypb.Any).UnmarshalNew()
				if err != nil {
					return located{}, err
				}
				cur = located{present: true, v: protoreflect.ValueOfMessage(p.ProtoReflect()), typeName: string(name)}
				continue
			}
			xt, err := protoregistry.GlobalTypes.FindExtensionByName(name)
			if err != nil {
				return located{}, err
			}
			xd := xt.TypeDescriptor()
			cur = located{present: msg.Has(xd), fd: xd, v: msg.Get(xd)}
		default:
			end := strings.IndexAny(rest, ".[")
			if end < 0 {
				end = len(rest)
			}
			tok := rest[:end]
			rest = rest[end:]
			msg := cur.v.Message()
			if n, err := strconv.Atoi(tok); err == nil {
				raw := unknownOf(msg.GetUnknown(), protowire.Number(n))
				cur = located{present: raw != nil, raw: raw}
				continue
			}
			fd := msg.Descriptor().Fields().ByName(protoreflect.Name(tok))
			if fd == nil {
				return located{}, fmt.Errorf("no field %q in %s", tok, msg.Descriptor().FullName())
			}
			cur = located{present: msg.Has(fd), fd: fd, v: msg.Get(fd)}
			if fd.Message() != nil && cur.present && !fd.IsList() && !fd.IsMap() {
				cur.typeName = anyType(cur.v.Message())
			}
		}
	}
	return cur, nil
}

// keyedIndex finds the element of a keyed list that a token such as
// `sku="A1"`, `sku="A1"#2` or `price=NaN` names: the n-th (from 1) whose
// key equals the value, NaN equal to NaN and +0 to -0 as in protodiff. It
// returns -1 when there is no such element.
func keyedIndex(fd protoreflect.FieldDescriptor, l protoreflect.List, tok string) (int, error) {
	name, val, ok := strings.Cut(tok, "=")
	if !ok {
		return 0, fmt.Errorf("%q is neither an index nor a key", tok)
	}
	nth := 1
	if h := strings.LastIndexByte(val, '#'); h >= 0 && !strings.HasSuffix(val, `"`) {
		n, err := strconv.Atoi(val[h+1:])
		if err != nil || n < 2 {
			return 0, fmt.Errorf("bad occurrence in %q", tok)
		}
		nth, val = n, val[:h]
	}
	kfd := fd.Message().Fields().ByName(protoreflect.Name(name))
	if kfd == nil {
		return 0, fmt.Errorf("no key field %q", name)
	}
	want, err := parseScalar(kfd, val)
	if err != nil {
		return 0, err
	}
	for i := 0; i < l.Len(); i++ {
		if keysEqual(kfd, l.Get(i).Message().Get(kfd), want) {
			if nth--; nth == 0 {
				return i, nil
			}
		}
	}
	return -1, nil
}

func keysEqual(fd protoreflect.FieldDescriptor, a, b protoreflect.Value) bool {
	switch fd.Kind() {
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		x, y := a.Float(), b.Float()
		return x == y || (math.IsNaN(x) && math.IsNaN(y))
	case protoreflect.BytesKind:
		return bytes.Equal(a.Bytes(), b.Bytes())
	}
	return a.Equal(b)
}

// parseScalar reads a scalar as protodiff renders it.
func parseScalar(fd protoreflect.FieldDescriptor, s string) (protoreflect.Value, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		u, err := strconv.Unquote(s)
		return protoreflect.ValueOfString(u), err
	case protoreflect.BytesKind:
		u, err := strconv.Unquote(s)
		return protoreflect.ValueOfBytes([]byte(u)), err
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f, err := strconv.ParseFloat(s, 64)
		return protoreflect.ValueOfFloat64(f), err
	case protoreflect.BoolKind:
		b, err := strconv.ParseBool(s)
		return protoreflect.ValueOfBool(b), err
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByName(protoreflect.Name(s)); ev != nil {
			return protoreflect.ValueOfEnum(ev.Number()), nil
		}
		n, err := strconv.ParseInt(s, 10, 32)
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), err
	}
	mk, err := parseKey(fd, s)
	return mk.Value(), err
}

func anyType(m protoreflect.Message) string {
	if a, ok := m.Interface().(*anypb.Any); ok {
		return a.GetTypeUrl()
	}
	return string(m.Descriptor().FullName())
}

func unknownOf(raw protoreflect.RawFields, num protowire.Number) []byte {
	var out []byte
	for len(raw) > 0 {
		n, _, l := protowire.ConsumeField(raw)
		if l < 0 {
			if num == 0 {
				return append(out, raw...)
			}
			break
		}
		if n == num {
			out = append(out, raw[:l]...)
		}
		raw = raw[l:]
	}
	return out
}

func parseKey(fd protoreflect.FieldDescriptor, tok string) (protoreflect.MapKey, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		s, err := strconv.Unquote(tok)
		return protoreflect.ValueOfString(s).MapKey(), err
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(tok == "true").MapKey(), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := strconv.ParseInt(tok, 10, 32)
		return protoreflect.ValueOfInt32(int32(n)).MapKey(), err
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, err := strconv.ParseInt(tok, 10, 64)
		return protoreflect.ValueOfInt64(n).MapKey(), err
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := strconv.ParseUint(tok, 10, 32)
		return protoreflect.ValueOfUint32(uint32(n)).MapKey(), err
	default:
		n, err := strconv.ParseUint(tok, 10, 64)
		return protoreflect.ValueOfUint64(n).MapKey(), err
	}
}

// Lists compared as multisets by the option sets below.
var (
	unordered1 = []string{"r_string", "r_message", "packed_double", "r_float", "children", "r_bytes", "presence.entry", "r_any", "children.r_message"}
	unordered2 = []string{"r_message", "packed_double", "r_float", "children", "children.r_message.tags", "r_message.tags"}
)

// optionSets are Differs with options that change the semantics, each with
// the lists it compares as multisets.
var optionSets = []struct {
	d         *protodiff.Differ
	unordered []string
}{
	{must(protodiff.New(protodiff.WithUnorderedLists(unordered1...))), unordered1},
	{must(protodiff.New(protodiff.WithUnorderedLists(unordered2...), protodiff.WithFloatTolerance(0.5, 0.25))), unordered2},
	{must(protodiff.New(protodiff.WithUnorderedLists("packed_double", "r_float"), protodiff.WithFloatTolerance(3, 0.5))), []string{"packed_double", "r_float"}},
	{must(protodiff.New(protodiff.WithListKey("r_message", "sku"), protodiff.WithListKey("children", "f_double"),
		protodiff.WithIgnoredPaths("f_string", "children.f_int32", "17"), protodiff.WithIgnoredFields("parallelrun.difftest.v1.Leaf.units"),
		protodiff.WithIgnoredUnknown())), nil},
}

// budgeted pairs option sets with twins whose budgets are small enough to
// be hit about half the time.
var budgeted = [][2]*protodiff.Differ{
	{optionSets[0].d, must(protodiff.New(protodiff.WithUnorderedLists(unordered1...), protodiff.WithMaxWork(60)))},
	{optionSets[1].d, must(protodiff.New(protodiff.WithUnorderedLists(unordered2...),
		protodiff.WithFloatTolerance(0.5, 0.25), protodiff.WithMaxDepth(2), protodiff.WithMaxWork(40)))},
}

// reversed returns a copy of m with the lists at the given index-free
// paths reversed, at every depth the paths reach. The copy goes through the
// wire: proto.Clone turns a -0 without presence into +0, which proto.Equal
// tells apart.
func reversed(m proto.Message, paths []string) proto.Message {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	c := m.ProtoReflect().New().Interface()
	if err := proto.Unmarshal(b, c); err != nil {
		panic(err)
	}
	for _, p := range paths {
		reverseAt(c.ProtoReflect(), strings.Split(p, "."))
	}
	return c
}

func reverseAt(m protoreflect.Message, path []string) {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(path[0]))
	if fd == nil || !m.Has(fd) {
		return
	}
	switch {
	case len(path) == 1 && fd.IsList():
		l := m.Mutable(fd).List()
		for i, j := 0, l.Len()-1; i < j; i, j = i+1, j-1 {
			vi, vj := l.Get(i), l.Get(j)
			l.Set(i, vj)
			l.Set(j, vi)
		}
	case len(path) == 1 || fd.Message() == nil || fd.IsMap():
	case fd.IsList():
		l := m.Mutable(fd).List()
		for i := 0; i < l.Len(); i++ {
			reverseAt(l.Get(i).Message(), path[1:])
		}
	default:
		reverseAt(m.Mutable(fd).Message(), path[1:])
	}
}

// checkOptionSets checks what holds under any options: equal messages are
// equal, equality is symmetric, and a budget never makes a result wrongly
// empty.
func checkOptionSets(t *testing.T, a, b proto.Message) {
	t.Helper()
	eq := proto.Equal(a, b)
	for i, o := range optionSets {
		r := o.d.Diff(a, b)
		if eq && !r.Equal() {
			t.Fatalf("option set %d: proto.Equal, but:\n%s", i, dump(r))
		}
		if back := o.d.Diff(b, a); back.Equal() != r.Equal() {
			t.Fatalf("option set %d: equal one way (%v), not the other:\n%s\nvs\n%s", i, r.Equal(), dump(r), dump(back))
		}
		if o.unordered != nil {
			if r := o.d.Diff(a, reversed(a, o.unordered)); !r.Equal() {
				t.Fatalf("option set %d: unequal to itself with its unordered lists reversed:\n%s", i, dump(r))
			}
			// Reversing preserves the result too.
			if r2 := o.d.Diff(a, reversed(b, o.unordered)); r2.Equal() != r.Equal() {
				t.Fatalf("option set %d: reversing the candidate's unordered lists turned equal=%v into %v", i, r.Equal(), r2.Equal())
			}
		}
	}
	for i, pair := range budgeted {
		if full, cut := pair[0].Diff(a, b), pair[1].Diff(a, b); cut.Equal() && !full.Equal() {
			t.Fatalf("budget %d: empty result (Incomplete %q) for messages that differ:\n%s", i, cut.Incomplete, dump(full))
		}
	}
}

// checkRedact checks that Redact leaves no sensitive field set, inside Any
// payloads too.
func checkRedact(t *testing.T, m proto.Message) {
	t.Helper()
	c := proto.Clone(m)
	protodiff.Redact(c)
	if path := secretAt(c.ProtoReflect(), ""); path != "" {
		t.Fatalf("Redact left a sensitive value at %s", path)
	}
}

func secretAt(m protoreflect.Message, at string) string {
	found := ""
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := at + "." + string(fd.Name())
		if fd.Options().(interface{ GetDebugRedact() bool }).GetDebugRedact() {
			found = p
			return false
		}
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					found = secretAt(mv.Message(), p)
					return found == ""
				})
			}
		case fd.IsList():
			for i := 0; i < v.List().Len() && found == "" && fd.Message() != nil; i++ {
				found = secretAt(v.List().Get(i).Message(), p)
			}
		case fd.Message() != nil:
			found = secretAt(v.Message(), p)
		}
		return found == ""
	})
	if a, ok := m.Interface().(*anypb.Any); ok && found == "" && len(a.Value) > 0 {
		if p, err := a.UnmarshalNew(); err == nil {
			found = secretAt(p.ProtoReflect(), at+".("+string(p.ProtoReflect().Descriptor().FullName())+")")
		}
	}
	return found
}

func TestOptionSets(t *testing.T) {
	n := 1500
	if testing.Short() {
		n = 150
	}
	for seed := range n {
		a, b := newGen(seed, 23).pair()
		checkOptionSets(t, a, b)
		checkRedact(t, a)
	}
}
