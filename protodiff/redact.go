package protodiff

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Redact clears, in place, every field of m marked with the debug_redact
// field option, at any depth, inside google.protobuf.Any payloads too. Use
// it on a copy of a message before it is logged or stored.
//
// It is bounded like a comparison: what lies deeper than [DefaultMaxDepth]
// levels (Any payloads count) is cleared, and so is the payload of an Any
// whose type the global registry does not know or whose bytes do not
// parse, since nobody can tell what they hold. Payloads are rewritten on
// the wire, only where something is cleared, in time linear in their size
// however deeply Any are nested: decoding and re-encoding each level would
// copy the rest of a chain of Any at every level.
func Redact(m proto.Message) {
	if m != nil && m.ProtoReflect().IsValid() {
		redactMessage(m.ProtoReflect(), DefaultMaxDepth)
	}
}

// redactMessage redacts m, which may hold depth levels, itself included.
func redactMessage(m protoreflect.Message, depth int) {
	if m.Descriptor().FullName() == anyName {
		if urlFD, valFD := anyFields(m.Descriptor()); urlFD != nil {
			redactAny(m, urlFD, valFD, depth)
			return
		}
	}
	var cleared []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case isDebugRedact(fd):
			cleared = append(cleared, fd)
		case fd.IsMap():
			if fd.MapValue().Message() == nil {
				break
			}
			if depth <= 1 {
				cleared = append(cleared, fd)
				break
			}
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				redactMessage(mv.Message(), depth-1)
				return true
			})
		case fd.Message() == nil:
		case depth <= 1:
			cleared = append(cleared, fd)
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				redactMessage(l.Get(i).Message(), depth-1)
			}
		default:
			redactMessage(v.Message(), depth-1)
		}
		return true
	})
	for _, fd := range cleared {
		m.Clear(fd)
	}
}

// redactAny redacts the payload of an Any (at depth levels left for the
// Any itself), clearing it when it cannot be inspected.
func redactAny(m protoreflect.Message, urlFD, valFD protoreflect.FieldDescriptor, depth int) {
	val := m.Get(valFD).Bytes()
	if len(val) == 0 {
		return
	}
	out, ok := redactPayload(m.Get(urlFD).String(), val, depth-1)
	switch {
	case !ok:
		m.Clear(valFD)
	case out != nil:
		m.Set(valFD, protoreflect.ValueOfBytes(out))
	}
}

// redactPayload returns the payload b of type url with its sensitive fields
// removed: nil if there were none, ok false if b cannot be inspected within
// depth levels.
func redactPayload(url string, b []byte, depth int) (out []byte, ok bool) {
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(url)
	if err != nil {
		return nil, false
	}
	var e editor
	n, err := e.message(b, 0, mt.Descriptor(), depth)
	if err != nil {
		return nil, false
	}
	if len(e.edits) == 0 {
		return nil, true
	}
	return e.apply(b, n), true
}

// edit replaces the input bytes [start, end): with nothing (a removed
// field, n < 0) or with the varint n (the length of a shortened message).
type edit struct {
	start, end, n int
}

// editor plans the removal of sensitive fields from an encoded message as
// a list of edits in input order, then applies them in one pass. Every
// edit shortens the message, so a message is unchanged exactly when its
// length is.
type editor struct {
	edits []edit
}

// message plans the edits of the message md encoded in b, at offset off of
// the whole input, holding depth levels; it returns the new length.
func (e *editor) message(b []byte, off int, md protoreflect.MessageDescriptor, depth int) (int, error) {
	if depth <= 0 {
		return 0, errTooDeep
	}
	if md.FullName() == anyName {
		if urlFD, valFD := anyFields(md); urlFD != nil {
			return e.any(b, off, urlFD.Number(), valFD.Number(), depth)
		}
	}
	fields := md.Fields()
	size := len(b)
	for pos := 0; pos < len(b); {
		num, typ, tn := protowire.ConsumeTag(b[pos:])
		if tn < 0 {
			return 0, errWire
		}
		vn := protowire.ConsumeFieldValue(num, typ, b[pos+tn:])
		if vn < 0 {
			return 0, errWire
		}
		fd := fields.ByNumber(num)
		if fd == nil && md.ExtensionRanges().Has(num) {
			if xt, err := protoregistry.GlobalTypes.FindExtensionByNumber(md.FullName(), num); err == nil {
				fd = xt.TypeDescriptor()
			}
		}
		switch {
		case fd == nil:
		case isDebugRedact(fd):
			// Whatever its wire type: a value that does not parse as the
			// field would still hold the secret.
			e.edits = append(e.edits, edit{off + pos, off + pos + tn + vn, -1})
			size -= tn + vn
		case fd.Message() == nil:
		case typ == protowire.BytesType && fd.Kind() == protoreflect.MessageKind:
			// Messages, list elements and map entries alike.
			d, err := e.nested(b[pos+tn:pos+tn+vn], off+pos+tn, fd.Message(), depth-1)
			if err != nil {
				return 0, err
			}
			size += d
		case typ == protowire.StartGroupType && fd.Kind() == protoreflect.GroupKind:
			content, _ := protowire.ConsumeGroup(num, b[pos+tn:])
			n, err := e.message(content, off+pos+tn, fd.Message(), depth-1)
			if err != nil {
				return 0, err
			}
			size += n - len(content)
		}
		pos += tn + vn
	}
	return size, nil
}

// nested plans a length-prefixed message (b is the prefix and the content,
// at offset off) and returns by how much it shrinks.
func (e *editor) nested(b []byte, off int, md protoreflect.MessageDescriptor, depth int) (int, error) {
	content, _ := protowire.ConsumeBytes(b)
	prefix := len(b) - len(content)
	slot := len(e.edits)
	e.edits = append(e.edits, edit{off, off + prefix, 0}) // filled in below
	n, err := e.message(content, off+prefix, md, depth)
	if err != nil {
		return 0, err
	}
	if n == len(content) {
		e.edits = e.edits[:slot]
		return 0, nil
	}
	e.edits[slot].n = n
	return n - len(content) + protowire.SizeVarint(uint64(n)) - prefix, nil
}

// any plans the edits of an encoded Any: its payloads are redacted as
// their type, or removed when they cannot be inspected (unknown type, bad
// bytes, too deep), so that nothing unchecked stays.
func (e *editor) any(b []byte, off int, urlNum, valNum protowire.Number, depth int) (int, error) {
	var url string
	for pos := 0; pos < len(b); {
		num, typ, tn := protowire.ConsumeTag(b[pos:])
		if tn < 0 {
			return 0, errWire
		}
		vn := protowire.ConsumeFieldValue(num, typ, b[pos+tn:])
		if vn < 0 {
			return 0, errWire
		}
		if num == urlNum && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b[pos+tn:])
			url = string(v) // the last one counts, as in decoding
		}
		pos += tn + vn
	}
	var md protoreflect.MessageDescriptor
	if mt, err := protoregistry.GlobalTypes.FindMessageByURL(url); err == nil {
		md = mt.Descriptor()
	}
	size := len(b)
	for pos := 0; pos < len(b); {
		num, typ, tn := protowire.ConsumeTag(b[pos:])
		vn := protowire.ConsumeFieldValue(num, typ, b[pos+tn:])
		if num == valNum && typ == protowire.BytesType {
			slot := len(e.edits)
			d, err := 0, errTooDeep
			if md != nil {
				d, err = e.nested(b[pos+tn:pos+tn+vn], off+pos+tn, md, depth-1)
			}
			if err == nil {
				size += d
			} else {
				e.edits = append(e.edits[:slot], edit{off + pos, off + pos + tn + vn, -1})
				size -= tn + vn
			}
		}
		pos += tn + vn
	}
	return size, nil
}

// apply writes b with the edits applied; n is the resulting length.
func (e *editor) apply(b []byte, n int) []byte {
	out := make([]byte, 0, n)
	pos := 0
	for _, ed := range e.edits {
		out = append(out, b[pos:ed.start]...)
		if ed.n >= 0 {
			out = protowire.AppendVarint(out, uint64(ed.n))
		}
		pos = ed.end
	}
	return append(out, b[pos:]...)
}
