package protodiff

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// report records a difference at the current path, with the two values
// rendered (an invalid Value is the missing side). fd describes the values;
// nil means raw unknown-field bytes or a root message.
func (w *walker) report(kind Kind, fd protoreflect.FieldDescriptor, vx, vy protoreflect.Value, r *rule) {
	if w.probe > 0 {
		w.found = true
		return
	}
	if len(w.diffs) >= w.d.maxDiffs {
		// Known before rendering: the values would be thrown away.
		w.truncated = true
		return
	}
	var lx, ly string
	if w.redacted() {
		if vx.IsValid() {
			lx = Redacted
		}
		if vy.IsValid() {
			ly = Redacted
		}
	} else {
		lx, ly = w.render(fd, vx, r), w.render(fd, vy, r)
	}
	w.record(kind, lx, ly)
}

func (w *walker) record(kind Kind, legacy, candidate string) {
	if len(w.diffs) >= w.d.maxDiffs {
		w.truncated = true
		return
	}
	w.diffs = append(w.diffs, Difference{
		Path:      w.path(false),
		Field:     w.path(true),
		Kind:      kind,
		Legacy:    legacy,
		Candidate: candidate,
	})
}

// redacted reports whether anything on the current path is sensitive.
func (w *walker) redacted() bool {
	for _, s := range w.steps {
		if s.sensitive() {
			return true
		}
	}
	return false
}

func (s *step) sensitive() bool {
	return (s.rule != nil && s.rule.redact) || (s.kind == stepField && isDebugRedact(s.fd))
}

func isDebugRedact(fd protoreflect.FieldDescriptor) bool {
	opts, _ := fd.Options().(*descriptorpb.FieldOptions)
	return opts.GetDebugRedact()
}

// path renders the current path, or its index-free form.
func (w *walker) path(indexFree bool) string {
	b := w.buf[:0]
	// Map keys and list keys are data too: below a sensitive field they are
	// redacted like values.
	sensitive := false
	for i, s := range w.steps {
		switch s.kind {
		case stepField:
			if i > 0 {
				b = append(b, '.')
			}
			if s.fd.IsExtension() {
				b = append(b, '(')
				b = append(b, s.fd.FullName()...)
				b = append(b, ')')
			} else {
				b = append(b, s.fd.Name()...)
			}
		case stepAny:
			if i > 0 {
				b = append(b, '.')
			}
			b = append(b, '(')
			b = append(b, s.name...)
			b = append(b, ')')
		case stepUnknown:
			if i > 0 {
				b = append(b, '.')
			}
			b = strconv.AppendInt(b, int64(s.num), 10)
		case stepIndex:
			if !indexFree {
				b = append(b, '[')
				b = strconv.AppendInt(b, int64(s.index), 10)
				b = append(b, ']')
			}
		case stepMapKey:
			if !indexFree {
				b = append(b, '[')
				if sensitive {
					b = append(b, Redacted...)
				} else {
					b = appendKey(b, s.key)
				}
				b = append(b, ']')
			}
		case stepListKey:
			if !indexFree {
				b = append(b, '[')
				b = append(b, s.fd.Name()...)
				b = append(b, '=')
				if sensitive || isDebugRedact(s.fd) {
					b = append(b, Redacted...)
				} else {
					b = appendScalar(b, s.fd, s.key)
				}
				b = append(b, ']')
			}
		}
		sensitive = sensitive || s.sensitive()
	}
	w.buf = b
	return string(b)
}

func appendKey(b []byte, k protoreflect.Value) []byte {
	switch v := k.Interface().(type) {
	case string:
		return strconv.AppendQuote(b, v)
	case bool:
		return strconv.AppendBool(b, v)
	case int32, int64:
		return strconv.AppendInt(b, k.Int(), 10)
	case uint32, uint64:
		return strconv.AppendUint(b, k.Uint(), 10)
	}
	return b
}

// render turns a value into text of bounded length. Messages are written
// compactly in field order, `{sku:"A1" price:{units:5}}`, with sensitive
// fields replaced by [Redacted].
func (w *walker) render(fd protoreflect.FieldDescriptor, v protoreflect.Value, r *rule) string {
	if !v.IsValid() {
		return ""
	}
	max := w.d.maxValueLen
	var b []byte
	switch {
	case fd == nil:
		if m, ok := v.Interface().(protoreflect.Message); ok {
			b = appendMessage(b, m, r, max)
		} else {
			b = strconv.AppendQuote(b, string(v.Bytes()))
		}
	default:
		b = appendSingular(b, fd, v, r, max)
	}
	return cut(b, max)
}

// cut shortens b to at most max bytes, on a rune boundary, marking the cut.
func cut(b []byte, max int) string {
	if len(b) <= max {
		return string(b)
	}
	const mark = "…"
	n := max - len(mark)
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return string(b[:n]) + mark
}

func appendSingular(b []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value, r *rule, max int) []byte {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return appendMessage(b, v.Message(), r, max)
	}
	return appendScalar(b, fd, v)
}

func appendScalar(b []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value) []byte {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return strconv.AppendBool(b, v.Bool())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return append(b, ev.Name()...)
		}
		return strconv.AppendInt(b, int64(v.Enum()), 10)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return strconv.AppendInt(b, v.Int(), 10)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return strconv.AppendUint(b, v.Uint(), 10)
	case protoreflect.FloatKind:
		return appendFloat(b, v.Float(), 32)
	case protoreflect.DoubleKind:
		return appendFloat(b, v.Float(), 64)
	case protoreflect.StringKind:
		return strconv.AppendQuote(b, v.String())
	case protoreflect.BytesKind:
		return strconv.AppendQuote(b, string(v.Bytes()))
	}
	return b
}

func appendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

// appendMessage renders m; it stops early once b is past max, since the
// result is cut there anyway.
func appendMessage(b []byte, m protoreflect.Message, r *rule, max int) []byte {
	if !m.IsValid() {
		return append(b, "<nil>"...)
	}
	b = append(b, '{')
	first := true
	sep := func() {
		if !first {
			b = append(b, ' ')
		}
		first = false
	}
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len() && len(b) <= max; i++ {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		sep()
		b = append(b, fd.Name()...)
		b = append(b, ':')
		var fr *rule
		if r != nil {
			fr = r.fields[fd.Name()]
		}
		b = appendField(b, fd, m.Get(fd), fr, max)
	}
	if len(b) <= max && m.Descriptor().ExtensionRanges().Len() > 0 {
		var exts []protoreflect.FieldDescriptor
		m.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
			if fd.IsExtension() {
				exts = append(exts, fd)
			}
			return true
		})
		for _, xd := range sortExtensions(exts) {
			sep()
			b = append(b, '(')
			b = append(b, xd.FullName()...)
			b = append(b, "):"...)
			var xr *rule
			if r != nil {
				xr = r.paren[xd.FullName()]
			}
			b = appendField(b, xd, m.Get(xd), xr, max)
		}
	}
	if u := m.GetUnknown(); len(u) > 0 && len(b) <= max {
		sep()
		b = append(b, "<unknown:"...)
		b = strconv.AppendQuote(b, string(u))
		b = append(b, '>')
	}
	return append(b, '}')
}

// appendField renders the whole value of field fd: a list, a map or a
// singular value, or [Redacted].
func appendField(b []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value, r *rule, max int) []byte {
	if (r != nil && r.redact) || isDebugRedact(fd) {
		return append(b, Redacted...)
	}
	switch {
	case fd.IsList():
		l := v.List()
		b = append(b, '[')
		for i := 0; i < l.Len() && len(b) <= max; i++ {
			if i > 0 {
				b = append(b, ' ')
			}
			b = appendSingular(b, fd, l.Get(i), r, max)
		}
		return append(b, ']')
	case fd.IsMap():
		mv := v.Map()
		kfd, vfd := fd.MapKey(), fd.MapValue()
		keys := sortedKeys(kfd, mv, nil)
		b = append(b, '{')
		for i, k := range keys {
			if len(b) > max {
				break
			}
			if i > 0 {
				b = append(b, ' ')
			}
			b = appendKey(b, k.Value())
			b = append(b, ':')
			b = appendSingular(b, vfd, mv.Get(k), r, max)
		}
		return append(b, '}')
	}
	return appendSingular(b, fd, v, r, max)
}

// sortedKeys returns the keys of x and, if y is not nil, those of y that x
// lacks, in order.
func sortedKeys(kfd protoreflect.FieldDescriptor, x, y protoreflect.Map) []protoreflect.MapKey {
	n := x.Len()
	if y != nil {
		n += y.Len()
	}
	keys := make([]protoreflect.MapKey, 0, n)
	x.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		keys = append(keys, k)
		return true
	})
	if y != nil {
		y.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
			if !x.Has(k) {
				keys = append(keys, k)
			}
			return true
		})
	}
	slices.SortFunc(keys, keyCompare(kfd.Kind()))
	return keys
}

// keyCompare orders map keys of one kind.
func keyCompare(kind protoreflect.Kind) func(a, b protoreflect.MapKey) int {
	switch kind {
	case protoreflect.BoolKind:
		return func(a, b protoreflect.MapKey) int {
			switch {
			case a.Bool() == b.Bool():
				return 0
			case b.Bool():
				return -1
			}
			return 1
		}
	case protoreflect.StringKind:
		return func(a, b protoreflect.MapKey) int { return strings.Compare(a.String(), b.String()) }
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
		return func(a, b protoreflect.MapKey) int { return cmp.Compare(a.Uint(), b.Uint()) }
	}
	return func(a, b protoreflect.MapKey) int { return cmp.Compare(a.Int(), b.Int()) }
}

// sortExtensions sorts extension fields by number and drops repeats.
func sortExtensions(exts []protoreflect.FieldDescriptor) []protoreflect.FieldDescriptor {
	slices.SortFunc(exts, func(a, b protoreflect.FieldDescriptor) int { return cmp.Compare(a.Number(), b.Number()) })
	return slices.CompactFunc(exts, func(a, b protoreflect.FieldDescriptor) bool { return a.Number() == b.Number() })
}

// groupUnknown splits raw unknown fields by number, concatenating the
// fields of one number in order (what proto.Equal compares). Bytes that do
// not parse are kept whole under number 0.
func groupUnknown(raw protoreflect.RawFields) map[protowire.Number][]byte {
	g := make(map[protowire.Number][]byte)
	for len(raw) > 0 {
		num, _, n := protowire.ConsumeField(raw)
		if n < 0 {
			g[0] = append(g[0], raw...)
			break
		}
		g[num] = append(g[num], raw[:n]...)
		raw = raw[n:]
	}
	return g
}

func unknownNumbers(gx, gy map[protowire.Number][]byte) []protowire.Number {
	nums := make([]protowire.Number, 0, len(gx)+len(gy))
	for n := range gx {
		nums = append(nums, n)
	}
	for n := range gy {
		if _, ok := gx[n]; !ok {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	return nums
}
