package protodiff

import (
	"bytes"
	"cmp"
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
	stepListKey                 // fd is the key field, key its value, index the element's
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
	ranks *keyRanks // stepListKey: of the list the element is in
	name  protoreflect.FullName
	num   protowire.Number
	rule  *rule // the rule node in force at this step, for redaction
}

// preChecks is how many proto.Equal pre-checks that answered "unequal" a
// path may hold. Below that many, sub-messages are walked without asking
// proto.Equal first, so every value is scanned by at most preChecks calls
// of proto.Equal and one walk, whatever the shape of the messages: without
// the bound, a difference at the bottom of a chain of n messages costs
// n proto.Equal calls over ever shorter chains, O(n^2).
const preChecks = 1

// walker holds the state of one Diff call. Walkers are pooled; the method
// values are bound once so that Map.Range and Message.Range callbacks do
// not allocate on every call.
type walker struct {
	d     *Differ
	steps []step
	diffs []Difference
	tol   *tolerance // in force at the current path
	// exact turns every tolerance off: the walk then decides whether two
	// values are identical under the options, an equivalence relation.
	exact bool

	// probe > 0 means the walker only answers "equal?": the first
	// difference sets found and unwinds, nothing is recorded.
	probe     int
	found     bool
	truncated bool

	credit     int  // pre-checks the current path may still ask
	depth      int  // of the messages being walked; the root's is 0
	work       int  // budget left
	stopped    bool // the budget is spent: proto.Equal decides from here on
	incomplete string

	fv      []fieldValue // populated fields of the messages being walked
	collect func(protoreflect.FieldDescriptor, protoreflect.Value) bool

	ms       mapState
	mapKeys  []protoreflect.MapKey // keys of the maps being walked that may differ
	mapScanX func(protoreflect.MapKey, protoreflect.Value) bool
	mapScanY func(protoreflect.MapKey, protoreflect.Value) bool

	buf []byte
}

// fieldValue is a populated field. ord sorts fields in declaration order,
// then extensions by number.
type fieldValue struct {
	fd  protoreflect.FieldDescriptor
	v   protoreflect.Value
	ord int64
}

func newWalker(d *Differ) *walker {
	w := &walker{d: d}
	w.collect = w.collectField
	w.mapScanX = w.mapScanEntryX
	w.mapScanY = w.mapScanEntryY
	return w
}

func (w *walker) reset() {
	clear(w.steps[:cap(w.steps)])
	w.steps = w.steps[:0]
	w.diffs = nil
	w.tol = nil
	w.exact = false
	w.probe = 0
	w.found = false
	w.truncated = false
	w.credit = 0
	w.depth = 0
	w.stopped = false
	w.incomplete = ""
	w.ms = mapState{}
	w.fv = w.fv[:0]
	w.mapKeys = w.mapKeys[:0]
}

// halt reports whether the walk must unwind: a probe found a difference, or
// the result is full.
func (w *walker) halt() bool {
	return w.truncated || (w.probe > 0 && w.found)
}

func (w *walker) push(s step) { w.steps = append(w.steps, s) }

// pop drops the last step, and what it referred to, so that a pooled
// walker keeps no payload alive.
func (w *walker) pop() {
	w.steps[len(w.steps)-1] = step{}
	w.steps = w.steps[:len(w.steps)-1]
}

// root compares the two top-level messages; either may be nil.
func (w *walker) root(mx, my protoreflect.Message) {
	w.tol = w.d.tol
	w.work = w.d.maxWork
	w.credit = preChecks
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
		// No proto.Equal at the root: the usual difference there is
		// per-call noise (an ID, a timestamp) that options ignore, where
		// proto.Equal would only say "unequal" and use up the credit.
		w.walk(mx, my, w.d.root)
	}
}

// message compares two messages of the same type below the root. While the
// path has credit, proto.Equal comes first: every option only makes more
// messages equal, so its "equal" is final, and it is the fastest way to
// reach it (generated messages have a fast path that reflection cannot
// match). Its "unequal" uses up credit for the subtree.
func (w *walker) message(mx, my protoreflect.Message, r *rule) {
	if w.credit > 0 && !w.stopped {
		if equalChecked(mx, my) {
			return
		}
		w.credit--
		w.enter(mx, my, r)
		w.credit++
		return
	}
	w.enter(mx, my, r)
}

// enter walks two sub-messages one level deeper, unless a limit says
// proto.Equal must decide instead.
func (w *walker) enter(mx, my protoreflect.Message, r *rule) {
	switch {
	case w.stopped:
		w.cutShort(mx, my, r, IncompleteMaxWork)
	case w.depth >= w.d.maxDepth:
		w.cutShort(mx, my, r, IncompleteMaxDepth)
	default:
		w.depth++
		w.walk(mx, my, r)
		w.depth--
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

func (w *walker) collectField(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
	ord := int64(fd.Index())
	if fd.IsExtension() {
		ord = 1<<32 | int64(fd.Number())
	}
	w.fv = append(w.fv, fieldValue{fd: fd, v: v, ord: ord})
	return true
}

func byOrd(a, b fieldValue) int { return cmp.Compare(a.ord, b.ord) }

// populated appends the populated fields of m to w.fv, sorted: Range is
// cheaper than asking every declared field, but its order is unspecified.
func (w *walker) populated(m protoreflect.Message) []fieldValue {
	start := len(w.fv)
	m.Range(w.collect)
	fs := w.fv[start:]
	if !slices.IsSortedFunc(fs, byOrd) {
		slices.SortFunc(fs, byOrd)
	}
	return fs
}

// fields compares two messages of the same type field by field: the
// populated fields of both sides, merged in declaration order.
func (w *walker) fields(mx, my protoreflect.Message, r *rule) {
	start := len(w.fv)
	xs := w.populated(mx)
	ys := w.populated(my)
	end := len(w.fv)
	w.spend(len(xs) + len(ys))
	for i, j := 0, 0; (i < len(xs) || j < len(ys)) && !w.halt(); {
		var fd protoreflect.FieldDescriptor
		var vx, vy protoreflect.Value
		switch {
		case j == len(ys) || (i < len(xs) && xs[i].ord < ys[j].ord):
			fd, vx = xs[i].fd, xs[i].v
			i++
		case i == len(xs) || ys[j].ord < xs[i].ord:
			fd, vy = ys[j].fd, ys[j].v
			j++
		default:
			fd, vx, vy = xs[i].fd, xs[i].v, ys[j].v
			i++
			j++
		}
		w.field(mx, my, fd, vx, vy, r)
	}
	// Nested walks have put w.fv back to end; the entries are cleared so
	// that a pooled walker keeps no message alive.
	clear(w.fv[start:end])
	w.fv = w.fv[:start]
	if !w.d.ignoreUnk && !w.halt() {
		w.unknown(mx.GetUnknown(), my.GetUnknown(), r)
	}
}

// fieldRule returns the rule for field fd below r, and whether the field is
// ignored.
func (w *walker) fieldRule(fd protoreflect.FieldDescriptor, r *rule) (*rule, bool) {
	var fr *rule
	if r != nil {
		if fd.IsExtension() {
			fr = r.paren[fd.FullName()]
		} else {
			fr = r.fields[fd.Name()]
		}
		if fr != nil && fr.ignore {
			return nil, true
		}
	}
	if w.d.ignoreNames != nil {
		if _, ok := w.d.ignoreNames[fd.FullName()]; ok {
			return nil, true
		}
	}
	return fr, false
}

// field compares field fd of mx and my; vx and vy are its values, invalid
// where it is not populated. r is the rule of the message.
func (w *walker) field(mx, my protoreflect.Message, fd protoreflect.FieldDescriptor, vx, vy protoreflect.Value, r *rule) {
	fr, ignored := w.fieldRule(fd, r)
	if ignored {
		return
	}
	hx, hy := vx.IsValid(), vy.IsValid()
	isList, isMap := fd.IsList(), fd.IsMap()
	if hx && hy && !isList && !isMap && fd.Message() == nil && sameScalar(fd, vx, vy) {
		return
	}
	saved := w.tol
	if fr != nil && fr.tol != nil {
		w.tol = fr.tol
	}
	w.push(step{kind: stepField, fd: fd, rule: fr})
	switch {
	case isList:
		// Range gave the populated side's value; Get allocates for lists.
		if !hx {
			vx = mx.Get(fd)
		}
		if !hy {
			vy = my.Get(fd)
		}
		w.list(fd, vx.List(), vy.List(), fr)
	case isMap:
		if !hx {
			vx = mx.Get(fd)
		}
		if !hy {
			vy = my.Get(fd)
		}
		w.mapField(fd, vx.Map(), vy.Map(), fr)
	case hx && hy:
		w.value(fd, vx, vy, fr)
	case !fd.HasPresence():
		// Unset means zero here, so this is a change of value (it is the
		// only way proto3 tells -0 from +0, too).
		if !hx {
			vx = fd.Default()
		} else {
			vy = fd.Default()
		}
		if !w.tolerated(fd, vx, vy) {
			w.report(Changed, fd, vx, vy, fr)
		}
	case hx:
		w.report(Removed, fd, vx, protoreflect.Value{}, fr)
	default:
		w.report(Added, fd, protoreflect.Value{}, vy, fr)
	}
	w.pop()
	w.tol = saved
}

// value compares two singular values of field fd (a field, list element or
// map value).
func (w *walker) value(fd protoreflect.FieldDescriptor, vx, vy protoreflect.Value, r *rule) {
	if fd.Message() != nil {
		w.message(vx.Message(), vy.Message(), r)
		return
	}
	if !w.scalarEqual(fd, vx, vy) {
		w.report(Changed, fd, vx, vy, r)
	}
}

// activeTol is the tolerance that applies here, nil if none does.
func (w *walker) activeTol() *tolerance {
	if w.exact || w.tol == nil || w.tol.zero() {
		return nil
	}
	return w.tol
}

// scalarEqual compares two set scalars under the options.
func (w *walker) scalarEqual(fd protoreflect.FieldDescriptor, vx, vy protoreflect.Value) bool {
	return scalarsEqual(fd, vx, vy, w.activeTol())
}

// scalarsEqual compares two set scalars, floats within tolerance t (nil:
// none), NaN equal to NaN, +0 to -0.
func scalarsEqual(fd protoreflect.FieldDescriptor, vx, vy protoreflect.Value, t *tolerance) bool {
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
		return x == y || (t != nil && t.close(x, y))
	case protoreflect.StringKind:
		return vx.String() == vy.String()
	case protoreflect.BytesKind:
		return bytes.Equal(vx.Bytes(), vy.Bytes())
	}
	return false
}

// tolerated reports whether a float field without presence, set on one side
// only, is within the tolerance: the other side counts as 0. Values equal
// as numbers (+0 and -0) are judged as without a tolerance: different.
func (w *walker) tolerated(fd protoreflect.FieldDescriptor, vx, vy protoreflect.Value) bool {
	if k := fd.Kind(); k != protoreflect.FloatKind && k != protoreflect.DoubleKind {
		return false
	}
	x, y := vx.Float(), vy.Float()
	return x != y && w.close(x, y)
}

// close applies the tolerance in force to two floats that differ as
// numbers.
func (w *walker) close(x, y float64) bool {
	t := w.activeTol()
	return t != nil && t.close(x, y)
}

func (t *tolerance) close(x, y float64) bool {
	if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
		return false
	}
	d := math.Abs(x - y)
	return d <= t.margin || d <= t.fraction*math.Min(math.Abs(x), math.Abs(y))
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
	w.spend(nx + ny)
	isMsg := fd.Message() != nil
	for i := 0; i < nx && i < ny && !w.halt(); i++ {
		vx, vy := lx.Get(i), ly.Get(i)
		if !isMsg && w.scalarEqual(fd, vx, vy) {
			continue
		}
		w.push(step{kind: stepIndex, index: i, rule: r})
		w.value(fd, vx, vy, r)
		w.pop()
	}
	w.extraElements(fd, lx, ly, r, nx, ny)
}

// extraElements reports the elements past the end of the shorter list.
func (w *walker) extraElements(fd protoreflect.FieldDescriptor, lx, ly protoreflect.List, r *rule, nx, ny int) {
	for i := ny; i < nx && !w.halt(); i++ {
		w.push(step{kind: stepIndex, index: i, rule: r})
		w.report(Removed, fd, lx.Get(i), protoreflect.Value{}, r)
		w.pop()
	}
	for i := nx; i < ny && !w.halt(); i++ {
		w.push(step{kind: stepIndex, index: i, rule: r})
		w.report(Added, fd, protoreflect.Value{}, ly.Get(i), r)
		w.pop()
	}
}

// mapState is the map walk in progress, read by the bound Range callbacks
// and saved around nested maps.
type mapState struct {
	x, y  protoreflect.Map
	fd    protoreflect.FieldDescriptor // of the values
	isMsg bool
	// pre: message values are asked proto.Equal in the scan (credit is
	// left, or the budget is spent and proto.Equal decides).
	pre     bool
	missing bool // a key of x is not in y
}

// mapField compares two maps in one scan of each side: scalar values are
// compared there, message values asked proto.Equal while the path has
// credit, and only the keys that may differ are sorted and walked, once.
func (w *walker) mapField(fd protoreflect.FieldDescriptor, mx, my protoreflect.Map, r *rule) {
	vfd := fd.MapValue()
	isMsg := vfd.Message() != nil
	pre := isMsg && (w.credit > 0 || w.stopped)
	w.spend(mx.Len() + my.Len())
	start := len(w.mapKeys)
	saved := w.ms
	w.ms = mapState{x: mx, y: my, fd: vfd, isMsg: isMsg, pre: pre}
	mx.Range(w.mapScanX)
	// As many keys, all of x's in y: the key sets are equal, and y need
	// not be scanned (map iteration allocates).
	if !w.halt() && (w.ms.missing || mx.Len() != my.Len()) {
		my.Range(w.mapScanY)
	}
	w.ms = saved
	keys := w.mapKeys[start:]
	if w.probe == 0 {
		slices.SortFunc(keys, keyCompare(fd.MapKey().Kind()))
	}
	for _, k := range keys {
		if w.halt() {
			break
		}
		w.push(step{kind: stepMapKey, key: k.Value(), rule: r})
		vx, vy := mx.Get(k), my.Get(k)
		switch {
		case vx.IsValid() && vy.IsValid() && isMsg:
			if pre && w.credit > 0 && !w.stopped {
				// proto.Equal said "unequal" in the scan: not again.
				w.credit--
				w.enter(vx.Message(), vy.Message(), r)
				w.credit++
			} else {
				w.message(vx.Message(), vy.Message(), r)
			}
		case vx.IsValid() && vy.IsValid():
			w.report(Changed, vfd, vx, vy, r)
		case vx.IsValid():
			w.report(Removed, vfd, vx, protoreflect.Value{}, r)
		default:
			w.report(Added, vfd, protoreflect.Value{}, vy, r)
		}
		w.pop()
	}
	clear(w.mapKeys[start:])
	w.mapKeys = w.mapKeys[:start]
}

func (w *walker) mapScanEntryX(k protoreflect.MapKey, vx protoreflect.Value) bool {
	s := &w.ms
	vy := s.y.Get(k)
	switch {
	case !vy.IsValid():
		s.missing = true
	case s.isMsg:
		if s.pre && equalChecked(vx.Message(), vy.Message()) {
			return true
		}
		w.mapKeys = append(w.mapKeys, k)
		return true // to be walked: not a difference yet
	case w.scalarEqual(s.fd, vx, vy):
		return true
	}
	return w.mapDifference(k)
}

func (w *walker) mapScanEntryY(k protoreflect.MapKey, _ protoreflect.Value) bool {
	if w.ms.x.Has(k) {
		return true
	}
	return w.mapDifference(k)
}

// mapDifference collects a key known to differ; a probe stops there.
func (w *walker) mapDifference(k protoreflect.MapKey) bool {
	if w.probe > 0 {
		w.found = true
		return false
	}
	w.mapKeys = append(w.mapKeys, k)
	return true
}

// unknown compares unknown fields as proto.Equal does: per field number,
// the concatenation of that number's fields in order.
func (w *walker) unknown(ux, uy protoreflect.RawFields, r *rule) {
	if bytes.Equal(ux, uy) {
		return
	}
	if w.probe > 0 && len(ux) != len(uy) && (r == nil || r.numbers == nil) {
		w.found = true
		return
	}
	// Splitting by number reads every byte.
	w.spend(1 + (len(ux)+len(uy))/64)
	gx, gy := groupUnknown(ux), groupUnknown(uy)
	for _, num := range unknownNumbers(gx, gy) {
		if w.halt() {
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
