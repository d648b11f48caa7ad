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
				if n := s.ranks.rank(s.index); n > 1 {
					b = append(b, '#')
					b = strconv.AppendInt(b, int64(n), 10)
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
// fields replaced by [Redacted], and the payload of an Any unpacked (and
// redacted) or, when it cannot be, shown by its size only. fd describes v;
// v may be a whole list or map of fd.
func (w *walker) render(fd protoreflect.FieldDescriptor, v protoreflect.Value, r *rule) string {
	if !v.IsValid() {
		return ""
	}
	d := w.d
	// Rendering nests no deeper than a walk may: the length limit stops
	// it long before, unless that limit was raised very high.
	depth := d.maxDepth
	var b []byte
	switch x := v.Interface().(type) {
	case protoreflect.Message:
		b = d.appendMessage(b, x, r, depth)
	case protoreflect.List, protoreflect.Map:
		b = d.appendField(b, fd, v, r, depth)
	default:
		if fd == nil {
			// Unknown fields, raw.
			b = strconv.AppendQuote(b, string(v.Bytes()))
		} else {
			b = d.appendSingular(b, fd, v, r, depth)
		}
	}
	return cut(b, d.maxValueLen)
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

// full reports whether b is long enough to be cut anyway.
func (d *Differ) full(b []byte) bool { return len(b) > d.maxValueLen }

func (d *Differ) appendSingular(b []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value, r *rule, depth int) []byte {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return d.appendMessage(b, v.Message(), r, depth)
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
		if isAnyValue(fd) {
			// Encoded payload: nothing in it could be redacted.
			return appendSize(b, len(v.Bytes()))
		}
		return strconv.AppendQuote(b, string(v.Bytes()))
	}
	return b
}

// isAnyValue reports whether fd is the value field of an Any.
func isAnyValue(fd protoreflect.FieldDescriptor) bool {
	if fd.Name() != "value" || fd.IsExtension() {
		return false
	}
	md := fd.ContainingMessage()
	return md.FullName() == anyName
}

func appendSize(b []byte, n int) []byte {
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, " bytes>"...)
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

// appendMessage renders m; it stops early once b is past the maximum
// length, since the result is cut there anyway, and past depth levels.
func (d *Differ) appendMessage(b []byte, m protoreflect.Message, r *rule, depth int) []byte {
	if !m.IsValid() {
		return append(b, "<nil>"...)
	}
	if depth <= 0 {
		return append(b, "{…}"...)
	}
	md := m.Descriptor()
	if md.FullName() == anyName {
		if urlFD, valFD := anyFields(md); urlFD != nil && (m.Has(urlFD) || m.Has(valFD)) {
			return d.appendAny(b, m, urlFD, valFD, r, depth)
		}
	}
	b = append(b, '{')
	first := true
	sep := func() {
		if !first {
			b = append(b, ' ')
		}
		first = false
	}
	fields := md.Fields()
	for i := 0; i < fields.Len() && !d.full(b); i++ {
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
		b = d.appendField(b, fd, m.Get(fd), fr, depth-1)
	}
	if !d.full(b) && md.ExtensionRanges().Len() > 0 {
		var exts []protoreflect.FieldDescriptor
		m.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
			if fd.IsExtension() {
				exts = append(exts, fd)
			}
			return true
		})
		for _, xd := range sortExtensions(exts) {
			if d.full(b) {
				break
			}
			sep()
			b = append(b, '(')
			b = append(b, xd.FullName()...)
			b = append(b, "):"...)
			var xr *rule
			if r != nil {
				xr = r.paren[xd.FullName()]
			}
			b = d.appendField(b, xd, m.Get(xd), xr, depth-1)
		}
	}
	if u := m.GetUnknown(); len(u) > 0 && !d.full(b) {
		sep()
		b = appendUnknown(b, u)
	}
	return append(b, '}')
}

func appendUnknown(b []byte, u protoreflect.RawFields) []byte {
	b = append(b, "<unknown:"...)
	b = strconv.AppendQuote(b, string(u))
	return append(b, '>')
}

// appendAny renders an Any as its type URL and its payload, unpacked and
// redacted like any message, or by its size when it cannot be unpacked
// (WithRawAny, an unknown type, bytes that do not decode, or too deep).
func (d *Differ) appendAny(b []byte, m protoreflect.Message, urlFD, valFD protoreflect.FieldDescriptor, r *rule, depth int) []byte {
	url, val := m.Get(urlFD).String(), m.Get(valFD).Bytes()
	b = append(b, "{type_url:"...)
	b = strconv.AppendQuote(b, url)
	b = append(b, " value:"...)
	var p protoreflect.Message
	if d.resolver != nil {
		if mt, err := d.resolver.FindMessageByURL(url); err == nil {
			p = mt.New()
			if _, err := decode(val, p, d.exts, depth-1); err != nil {
				p = nil
			}
		}
	}
	if p != nil {
		var pr *rule
		if r != nil {
			pr = r.paren[p.Descriptor().FullName()]
		}
		if pr != nil && pr.redact {
			b = append(b, Redacted...)
		} else {
			b = d.appendMessage(b, p, pr, depth-1)
		}
	} else {
		b = appendSize(b, len(val))
	}
	if u := m.GetUnknown(); len(u) > 0 && !d.full(b) {
		b = append(b, ' ')
		b = appendUnknown(b, u)
	}
	return append(b, '}')
}

// appendField renders the whole value of field fd: a list, a map or a
// singular value, or [Redacted].
func (d *Differ) appendField(b []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value, r *rule, depth int) []byte {
	if (r != nil && r.redact) || isDebugRedact(fd) {
		return append(b, Redacted...)
	}
	switch {
	case fd.IsList():
		l := v.List()
		b = append(b, '[')
		for i := 0; i < l.Len() && !d.full(b); i++ {
			if i > 0 {
				b = append(b, ' ')
			}
			b = d.appendSingular(b, fd, l.Get(i), r, depth)
		}
		return append(b, ']')
	case fd.IsMap():
		mv := v.Map()
		kfd, vfd := fd.MapKey(), fd.MapValue()
		keys := sortedKeys(kfd, mv, nil)
		b = append(b, '{')
		for i, k := range keys {
			if d.full(b) {
				break
			}
			if i > 0 {
				b = append(b, ' ')
			}
			b = appendKey(b, k.Value())
			b = append(b, ':')
			b = d.appendSingular(b, vfd, mv.Get(k), r, depth)
		}
		return append(b, '}')
	}
	return d.appendSingular(b, fd, v, r, depth)
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
