package protodiff

import (
	"bytes"
	"math"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

type stepKind uint8

const (
	stepField   stepKind = iota // fd
	stepIndex                   // index
	stepMapKey                  // key
	stepListKey                 // fd is the key field, key its value
	stepAny                     // name
	stepUnknown                 // num
)

// step is one element of the path the walker is at. Paths are rendered from
// steps only when a difference is recorded, so equal subtrees cost nothing.
type step struct {
	kind  stepKind
	fd    protoreflect.FieldDescriptor
	index int
	key   protoreflect.Value
	name  protoreflect.FullName
	num   protowire.Number
	rule  *rule // the rule node in force at this step, for redaction
}

// walker holds the state of one Diff call. Walkers are pooled; the method
// values are bound once so that Map.Range and Message.Range callbacks do
// not allocate on every call.
type walker struct {
	d     *Differ
	steps []step
	diffs []Difference
	tol   *tolerance

	// probe > 0 means the walker only answers "equal?": the first
	// difference sets found and unwinds, nothing is recorded.
	probe     int
	found     bool
	truncated bool

	ms       mapState
	mapKeys  []protoreflect.MapKey // differing keys of the maps being walked
	mapProbe func(protoreflect.MapKey, protoreflect.Value) bool

	exts       []protoreflect.FieldDescriptor
	collectExt func(protoreflect.FieldDescriptor, protoreflect.Value) bool

	buf []byte
}

func newWalker(d *Differ) *walker {
	w := &walker{d: d}
	w.mapProbe = w.mapProbeEntry
	w.collectExt = w.collectExtension
	return w
}

func (w *walker) reset() {
	w.steps = w.steps[:0]
	w.diffs = nil
	w.tol = nil
	w.probe = 0
	w.found = false
	w.truncated = false
	w.ms = mapState{}
	w.mapKeys = w.mapKeys[:0]
	w.exts = w.exts[:0]
}

// stop reports whether the walk must unwind: a probe found a difference, or
// the result is full.
func (w *walker) stop() bool {
	return w.truncated || (w.probe > 0 && w.found)
}

func (w *walker) push(s step) { w.steps = append(w.steps, s) }
func (w *walker) pop()        { w.steps = w.steps[:len(w.steps)-1] }

// root compares the two top-level messages; either may be nil.
func (w *walker) root(mx, my protoreflect.Message) {
	w.tol = w.d.tol
	switch {
	case mx == nil && my == nil:
	case mx == nil:
		w.report(Added, nil, protoreflect.Value{}, protoreflect.ValueOfMessage(my), w.d.root)
	case my == nil:
		w.report(Removed, nil, protoreflect.ValueOfMessage(mx), protoreflect.Value{}, w.d.root)
	case mx.Descriptor() != my.Descriptor():
		w.typeChanged(string(mx.Descriptor().FullName()), string(my.Descriptor().FullName()))
	case mx.IsValid() != my.IsValid():
		if mx.IsValid() {
			w.report(Removed, nil, protoreflect.ValueOfMessage(mx), protoreflect.Value{}, w.d.root)
		} else {
			w.report(Added, nil, protoreflect.Value{}, protoreflect.ValueOfMessage(my), w.d.root)
		}
	default:
		// No proto.Equal at the root: the walk costs about the same when
		// the messages are equal, and when they differ proto.Equal's work
		// up to the first difference would be done twice.
		w.walk(mx, my, w.d.root)
	}
}

// message compares two messages of the same type. proto.Equal comes first:
// every option only makes more messages equal, so proto.Equal's verdict
// "equal" is final, and it is the fastest way to reach it (generated
// messages have a fast path that the reflection API cannot match).
func (w *walker) message(mx, my protoreflect.Message, r *rule) {
	if !equalFast(mx, my) {
		w.walk(mx, my, r)
	}
}

// walk compares two messages of the same type, an Any by its payload.
func (w *walker) walk(mx, my protoreflect.Message, r *rule) {
	if w.d.resolver != nil && mx.Descriptor().FullName() == anyName {
		w.any(mx, my, r)
		return
	}
	w.fields(mx, my, r)
}

// fields compares two messages of the same type field by field.
func (w *walker) fields(mx, my protoreflect.Message, r *rule) {
	md := mx.Descriptor()
	fields := md.Fields()
	for i, n := 0, fields.Len(); i < n && !w.stop(); i++ {
		fd := fields.Get(i)
		var fr *rule
		if r != nil {
			if fr = r.fields[fd.Name()]; fr != nil && fr.ignore {
				continue
			}
		}
		w.field(mx, my, fd, fr)
	}
	if md.ExtensionRanges().Len() > 0 && !w.stop() {
		w.extensions(mx, my, r)
	}
	if !w.d.ignoreUnk && !w.stop() {
		w.unknown(mx.GetUnknown(), my.GetUnknown(), r)
	}
}

// field compares one field of mx and my; r is the rule for the field.
func (w *walker) field(mx, my protoreflect.Message, fd protoreflect.FieldDescriptor, r *rule) {
	if w.d.ignoreNames != nil {
		if _, ok := w.d.ignoreNames[fd.FullName()]; ok {
			return
		}
	}
	if !fd.HasPresence() && !fd.IsList() && !fd.IsMap() && fd.Message() == nil {
		// A proto3 scalar: equal values mean equal presence, except for
		// the signed zeros, so one Get per side settles the common case
		// without Has, which costs as much.
		if sameScalar(fd, mx.Get(fd), my.Get(fd)) {
			return
		}
	}
	hx, hy := mx.Has(fd), my.Has(fd)
	if !hx && !hy {
		return
	}
	saved := w.tol
	if r != nil && r.tol != nil {
		w.tol = r.tol
	}
	w.push(step{kind: stepField, fd: fd, rule: r})
	switch {
	case fd.IsList():
		w.list(fd, mx.Get(fd).List(), my.Get(fd).List(), r)
	case fd.IsMap():
		w.mapField(fd, mx.Get(fd).Map(), my.Get(fd).Map(), r)
	case hx && hy:
		w.value(fd, mx.Get(fd), my.Get(fd), r)
	case !fd.HasPresence():
		// Unset means zero here, so this is a change of value (it is the
		// only way proto3 tells -0 from +0, too).
		vx, vy := mx.Get(fd), my.Get(fd)
		if w.tol == nil || !w.floatsClose(fd, vx, vy) {
			w.report(Changed, fd, vx, vy, r)
		}
	case hx:
		w.report(Removed, fd, mx.Get(fd), protoreflect.Value{}, r)
	default:
		w.report(Added, fd, protoreflect.Value{}, my.Get(fd), r)
	}
	w.pop()
	w.tol = saved
}

// value compares two singular values of field fd (a field, list element or
// map value).
func (w *walker) value(fd protoreflect.FieldDescriptor, vx, vy protoreflect.Value, r *rule) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		w.message(vx.Message(), vy.Message(), r)
		return
	}
	if !w.scalarEqual(fd, vx, vy) {
		w.report(Changed, fd, vx, vy, r)
	}
}

func (w *walker) scalarEqual(fd protoreflect.FieldDescriptor, vx, vy protoreflect.Value) bool {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return vx.Bool() == vy.Bool()
	case protoreflect.EnumKind:
		return vx.Enum() == vy.Enum()
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return vx.Int() == vy.Int()
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return vx.Uint() == vy.Uint()
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		x, y := vx.Float(), vy.Float()
		if math.IsNaN(x) || math.IsNaN(y) {
			return math.IsNaN(x) && math.IsNaN(y)
		}
		return x == y || (w.tol != nil && w.floatsClose(fd, vx, vy))
	case protoreflect.StringKind:
		return vx.String() == vy.String()
	case protoreflect.BytesKind:
		return bytes.Equal(vx.Bytes(), vy.Bytes())
	}
	return false
}

// sameScalar reports whether two values of a scalar field are identical:
// floats by their bits (NaNs aside), so that -0 and +0 differ.
func sameScalar(fd protoreflect.FieldDescriptor, vx, vy protoreflect.Value) bool {
	switch fd.Kind() {
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		x, y := vx.Float(), vy.Float()
		return math.Float64bits(x) == math.Float64bits(y) || (math.IsNaN(x) && math.IsNaN(y))
	case protoreflect.BoolKind:
		return vx.Bool() == vy.Bool()
	case protoreflect.EnumKind:
		return vx.Enum() == vy.Enum()
	case protoreflect.StringKind:
		return vx.String() == vy.String()
	case protoreflect.BytesKind:
		return bytes.Equal(vx.Bytes(), vy.Bytes())
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return vx.Uint() == vy.Uint()
	}
	return vx.Int() == vy.Int()
}

// floatsClose applies the tolerance in force to two float values.
func (w *walker) floatsClose(fd protoreflect.FieldDescriptor, vx, vy protoreflect.Value) bool {
	if k := fd.Kind(); k != protoreflect.FloatKind && k != protoreflect.DoubleKind {
		return false
	}
	x, y := vx.Float(), vy.Float()
	if x == y {
		return true
	}
	if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
		return false
	}
	d := math.Abs(x - y)
	return d <= w.tol.margin || d <= w.tol.fraction*math.Min(math.Abs(x), math.Abs(y))
}

// equal answers whether two values are equal under the options, recording
// nothing.
func (w *walker) equal(fd protoreflect.FieldDescriptor, vx, vy protoreflect.Value, r *rule) bool {
	saved := w.found
	w.probe++
	w.found = false
	w.value(fd, vx, vy, r)
	eq := !w.found
	w.probe--
	w.found = saved
	return eq
}

func (w *walker) list(fd protoreflect.FieldDescriptor, lx, ly protoreflect.List, r *rule) {
	if r != nil {
		switch {
		case r.key != "":
			if kfd := listKeyField(fd, r.key); kfd != nil {
				w.keyedList(fd, kfd, lx, ly, r)
				return
			}
		case r.unordered:
			w.unorderedList(fd, lx, ly, r)
			return
		}
	}
	nx, ny := lx.Len(), ly.Len()
	for i := 0; i < nx && i < ny && !w.stop(); i++ {
		w.push(step{kind: stepIndex, index: i, rule: r})
		w.value(fd, lx.Get(i), ly.Get(i), r)
		w.pop()
	}
	for i := ny; i < nx && !w.stop(); i++ {
		w.push(step{kind: stepIndex, index: i, rule: r})
		w.report(Removed, fd, lx.Get(i), protoreflect.Value{}, r)
		w.pop()
	}
	for i := nx; i < ny && !w.stop(); i++ {
		w.push(step{kind: stepIndex, index: i, rule: r})
		w.report(Added, fd, protoreflect.Value{}, ly.Get(i), r)
		w.pop()
	}
}

func (w *walker) mapField(fd protoreflect.FieldDescriptor, mx, my protoreflect.Map, r *rule) {
	vfd := fd.MapValue()
	if mx.Len() == my.Len() {
		// One pass over x finds the keys whose values differ. If every key
		// of x is in y, the key sets are equal and only those keys are
		// walked, in sorted order since map order is random.
		saved, start := w.ms, len(w.mapKeys)
		w.ms = mapState{y: my, fd: vfd, rule: r}
		mx.Range(w.mapProbe)
		st := w.ms
		w.ms = saved
		keys := w.mapKeys[start:]
		switch {
		case st.unequal:
			w.found = true
		case !st.missing:
			slices.SortFunc(keys, keyCompare(fd.MapKey().Kind()))
			for _, k := range keys {
				if w.stop() {
					break
				}
				w.push(step{kind: stepMapKey, key: k.Value(), rule: r})
				w.value(vfd, mx.Get(k), my.Get(k), r)
				w.pop()
			}
		}
		w.mapKeys = w.mapKeys[:start]
		if st.unequal || !st.missing {
			return
		}
	}
	if w.probe > 0 {
		w.found = true
		return
	}
	for _, k := range sortedKeys(fd.MapKey(), mx, my) {
		if w.stop() {
			return
		}
		w.push(step{kind: stepMapKey, key: k.Value(), rule: r})
		hx, hy := mx.Has(k), my.Has(k)
		switch {
		case hx && hy:
			w.value(vfd, mx.Get(k), my.Get(k), r)
		case hx:
			w.report(Removed, vfd, mx.Get(k), protoreflect.Value{}, r)
		default:
			w.report(Added, vfd, protoreflect.Value{}, my.Get(k), r)
		}
		w.pop()
	}
}

// mapState is the map walk in progress, read by the bound Range callback
// and saved around nested maps.
type mapState struct {
	y       protoreflect.Map
	fd      protoreflect.FieldDescriptor // of the values
	rule    *rule
	missing bool // a key of x is not in y
	unequal bool // probing: a value differs
}

func (w *walker) mapProbeEntry(k protoreflect.MapKey, vx protoreflect.Value) bool {
	if !w.ms.y.Has(k) {
		w.ms.missing = true
		return false
	}
	if w.equal(w.ms.fd, vx, w.ms.y.Get(k), w.ms.rule) {
		return true
	}
	if w.probe > 0 {
		w.ms.unequal = true
		return false
	}
	w.mapKeys = append(w.mapKeys, k)
	return true
}

func (w *walker) extensions(mx, my protoreflect.Message, r *rule) {
	start := len(w.exts)
	mx.Range(w.collectExt)
	my.Range(w.collectExt)
	exts := sortExtensions(w.exts[start:])
	for _, xd := range exts {
		if w.stop() {
			break
		}
		var xr *rule
		if r != nil {
			if xr = r.paren[xd.FullName()]; xr != nil && xr.ignore {
				continue
			}
		}
		w.field(mx, my, xd, xr)
	}
	w.exts = w.exts[:start]
}

func (w *walker) collectExtension(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
	if fd.IsExtension() {
		w.exts = append(w.exts, fd)
	}
	return true
}

// unknown compares unknown fields as proto.Equal does: per field number,
// the concatenation of that number's fields in order.
func (w *walker) unknown(ux, uy protoreflect.RawFields, r *rule) {
	if bytes.Equal(ux, uy) {
		return
	}
	if w.probe > 0 && len(ux) != len(uy) {
		w.found = true
		return
	}
	gx, gy := groupUnknown(ux), groupUnknown(uy)
	for _, num := range unknownNumbers(gx, gy) {
		if w.stop() {
			return
		}
		var nr *rule
		if r != nil {
			if nr = r.numbers[num]; nr != nil && nr.ignore {
				continue
			}
		}
		bx, okx := gx[num]
		by, oky := gy[num]
		if okx && oky && bytes.Equal(bx, by) {
			continue
		}
		w.push(step{kind: stepUnknown, num: num, rule: nr})
		var vx, vy protoreflect.Value
		kind := Changed
		if okx {
			vx = protoreflect.ValueOfBytes(bx)
		} else {
			kind = Added
		}
		if oky {
			vy = protoreflect.ValueOfBytes(by)
		} else {
			kind = Removed
		}
		w.report(kind, nil, vx, vy, nr)
		w.pop()
	}
}

// typeChanged records a difference of message types at the current path.
func (w *walker) typeChanged(x, y string) {
	if w.probe > 0 {
		w.found = true
		return
	}
	w.record(TypeChanged, x, y)
}
