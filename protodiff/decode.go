package protodiff

import (
	"errors"
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// The payload of a google.protobuf.Any is decoded here rather than with
// proto.Unmarshal, which copies every bytes field: the payload of a nested
// Any is such a field, so unpacking a chain of n nested Any with
// proto.Unmarshal copies the rest of the chain at every level, O(n^2)
// bytes. Here bytes fields alias the input, each byte is decoded once
// whatever the nesting, and a payload lives only as long as its comparison.
// The decoding follows proto.Unmarshal's: the same fields end up set,
// unknown fields are kept in order (with their tags encoded anew, as for
// generated messages), and what proto.Unmarshal rejects is rejected.

// extensionResolver finds the extensions set inside a payload.
type extensionResolver interface {
	FindExtensionByNumber(message protoreflect.FullName, field protoreflect.FieldNumber) (protoreflect.ExtensionType, error)
}

// extensionsOf is the resolver for extensions inside the payloads that r
// resolves: r itself when it can, as [*protoregistry.Types] can.
func extensionsOf(r AnyResolver) extensionResolver {
	if x, ok := r.(extensionResolver); ok {
		return x
	}
	return protoregistry.GlobalTypes
}

var (
	errTooDeep = errors.New("nested too deeply")
	errWire    = errors.New("cannot parse invalid wire-format data")
	errUTF8    = errors.New("invalid UTF-8 in a string field")
	// errUnknownField: the field goes to the unknown fields. Never returned
	// from decode.
	errUnknownField = errors.New("unknown field")
)

// decoder decodes wire bytes into reflective messages.
type decoder struct {
	exts   extensionResolver
	depth  int // messages that may still be nested, the current one included
	values int // values decoded, for the work budget
}

// decode decodes b into the empty message m, nesting at most depth
// messages (m included). It returns errTooDeep past that.
func decode(b []byte, m protoreflect.Message, exts extensionResolver, depth int) (values int, err error) {
	d := decoder{exts: exts, depth: depth}
	defer func() {
		// The bytes come from the candidate: should a Set refuse what the
		// decoder made of them, the payload is compared as bytes, and the
		// caller's process goes on.
		if recover() != nil {
			values, err = d.values, errWire
		}
	}()
	err = d.message(b, m)
	return d.values, err
}

func (d *decoder) message(b []byte, m protoreflect.Message) error {
	if d.depth--; d.depth < 0 {
		return errTooDeep
	}
	md := m.Descriptor()
	if opts, ok := md.Options().(*descriptorpb.MessageOptions); ok && opts.GetMessageSetWireFormat() {
		// A legacy format with its own rules: left to proto, copies and all.
		d.values += len(b)
		err := proto.UnmarshalOptions{Merge: true, AllowPartial: true, RecursionLimit: d.depth + 1}.Unmarshal(b, m.Interface())
		d.depth++
		return err
	}
	fields := md.Fields()
	var unknown []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return errWire
		}
		fd := fields.ByNumber(num)
		if fd == nil && md.ExtensionRanges().Has(num) {
			if xt, err := d.exts.FindExtensionByNumber(md.FullName(), num); err == nil {
				fd = xt.TypeDescriptor()
			}
		}
		vn, err := 0, errUnknownField
		if fd != nil {
			switch {
			case fd.IsList():
				vn, err = d.list(b[n:], typ, m, fd)
			case fd.IsMap():
				vn, err = d.mapEntry(b[n:], typ, m, fd)
			default:
				vn, err = d.singular(b[n:], typ, m, fd)
			}
		}
		switch err {
		case nil:
		case errUnknownField:
			if vn = protowire.ConsumeFieldValue(num, typ, b[n:]); vn < 0 {
				return errWire
			}
			// The tag written anew, as proto.Unmarshal does for generated
			// messages: a tag may come in a longer varint than needed.
			unknown = protowire.AppendTag(unknown, num, typ)
			unknown = append(unknown, b[n:n+vn]...)
		default:
			return err
		}
		d.values++
		b = b[n+vn:]
	}
	if len(unknown) > 0 {
		if u := m.GetUnknown(); len(u) > 0 {
			unknown = append(u[:len(u):len(u)], unknown...)
		}
		m.SetUnknown(unknown)
	}
	d.depth++
	return nil
}

func (d *decoder) singular(b []byte, typ protowire.Type, m protoreflect.Message, fd protoreflect.FieldDescriptor) (int, error) {
	switch fd.Kind() {
	case protoreflect.MessageKind:
		if typ != protowire.BytesType {
			return 0, errUnknownField
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, errWire
		}
		// A repeated singular message merges, as in proto.Unmarshal.
		return n, d.message(v, m.Mutable(fd).Message())
	case protoreflect.GroupKind:
		if typ != protowire.StartGroupType {
			return 0, errUnknownField
		}
		v, n := protowire.ConsumeGroup(fd.Number(), b)
		if n < 0 {
			return 0, errWire
		}
		return n, d.message(v, m.Mutable(fd).Message())
	}
	v, n, err := scalarValue(b, typ, fd)
	if err != nil {
		return 0, err
	}
	m.Set(fd, v)
	return n, nil
}

func (d *decoder) list(b []byte, typ protowire.Type, m protoreflect.Message, fd protoreflect.FieldDescriptor) (int, error) {
	switch fd.Kind() {
	case protoreflect.MessageKind:
		if typ != protowire.BytesType {
			return 0, errUnknownField
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, errWire
		}
		l := m.Mutable(fd).List()
		e := l.NewElement()
		if err := d.message(v, e.Message()); err != nil {
			return 0, err
		}
		l.Append(e)
		return n, nil
	case protoreflect.GroupKind:
		if typ != protowire.StartGroupType {
			return 0, errUnknownField
		}
		v, n := protowire.ConsumeGroup(fd.Number(), b)
		if n < 0 {
			return 0, errWire
		}
		l := m.Mutable(fd).List()
		e := l.NewElement()
		if err := d.message(v, e.Message()); err != nil {
			return 0, err
		}
		l.Append(e)
		return n, nil
	case protoreflect.StringKind, protoreflect.BytesKind:
	default:
		if typ == protowire.BytesType {
			// Packed: any number of values of the kind's own wire type.
			buf, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, errWire
			}
			l := m.Mutable(fd).List()
			wt := wireType(fd.Kind())
			for len(buf) > 0 {
				v, vn, err := scalarValue(buf, wt, fd)
				if err != nil {
					return 0, err
				}
				l.Append(v)
				d.values++
				buf = buf[vn:]
			}
			return n, nil
		}
	}
	v, n, err := scalarValue(b, typ, fd)
	if err != nil {
		return 0, err
	}
	m.Mutable(fd).List().Append(v)
	return n, nil
}

// mapEntry decodes one entry; a missing key or value is the zero value, and
// a repeated key replaces the earlier entry, as in proto.Unmarshal.
func (d *decoder) mapEntry(b []byte, typ protowire.Type, m protoreflect.Message, fd protoreflect.FieldDescriptor) (int, error) {
	if typ != protowire.BytesType {
		return 0, errUnknownField
	}
	entry, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return 0, errWire
	}
	kfd, vfd := fd.MapKey(), fd.MapValue()
	mp := m.Mutable(fd).Map()
	var key, val protoreflect.Value
	haveKey, haveVal := false, false
	isMsg := vfd.Message() != nil
	if isMsg {
		val = mp.NewValue()
	}
	for len(entry) > 0 {
		num, wt, tn := protowire.ConsumeTag(entry)
		if tn < 0 || num > protowire.MaxValidNumber {
			return 0, errWire
		}
		entry = entry[tn:]
		vn, err := 0, errUnknownField
		switch num {
		case 1:
			// A later key or value replaces an earlier one only if it
			// parses as one: one of another wire type is skipped.
			var k protoreflect.Value
			if k, vn, err = scalarValue(entry, wt, kfd); err == nil {
				key, haveKey = k, true
			}
		case 2:
			if isMsg {
				if wt == protowire.BytesType {
					v, l := protowire.ConsumeBytes(entry)
					if l < 0 {
						return 0, errWire
					}
					vn, err = l, d.message(v, val.Message())
				}
			} else {
				var v protoreflect.Value
				if v, vn, err = scalarValue(entry, wt, vfd); err == nil {
					val = v
				}
			}
			if err == nil {
				haveVal = true
			}
		}
		switch err {
		case nil:
		case errUnknownField:
			if vn = protowire.ConsumeFieldValue(num, wt, entry); vn < 0 {
				return 0, errWire
			}
		default:
			return 0, err
		}
		entry = entry[vn:]
	}
	if !haveKey {
		key = kfd.Default()
	}
	if !haveVal && !isMsg {
		val = vfd.Default()
	}
	mp.Set(key.MapKey(), val)
	d.values++
	return n, nil
}

// wireType is the wire type of a packable scalar kind.
func wireType(k protoreflect.Kind) protowire.Type {
	switch k {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	}
	return protowire.VarintType
}

// scalarValue decodes one scalar of field fd. Bytes alias b.
func scalarValue(b []byte, typ protowire.Type, fd protoreflect.FieldDescriptor) (protoreflect.Value, int, error) {
	var none protoreflect.Value
	kind := fd.Kind()
	switch kind {
	case protoreflect.StringKind, protoreflect.BytesKind:
		if typ != protowire.BytesType {
			return none, 0, errUnknownField
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return none, 0, errWire
		}
		if kind == protoreflect.BytesKind {
			if v == nil {
				v = []byte{}
			}
			return protoreflect.ValueOfBytes(v), n, nil
		}
		if enforceUTF8(fd) && !utf8.Valid(v) {
			return none, 0, errUTF8
		}
		return protoreflect.ValueOfString(string(v)), n, nil
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return none, 0, errUnknownField
	}
	if typ != wireType(kind) {
		return none, 0, errUnknownField
	}
	switch typ {
	case protowire.Fixed32Type:
		v, n := protowire.ConsumeFixed32(b)
		if n < 0 {
			return none, 0, errWire
		}
		switch kind {
		case protoreflect.FloatKind:
			return protoreflect.ValueOfFloat32(math.Float32frombits(v)), n, nil
		case protoreflect.Sfixed32Kind:
			return protoreflect.ValueOfInt32(int32(v)), n, nil
		}
		return protoreflect.ValueOfUint32(v), n, nil
	case protowire.Fixed64Type:
		v, n := protowire.ConsumeFixed64(b)
		if n < 0 {
			return none, 0, errWire
		}
		switch kind {
		case protoreflect.DoubleKind:
			return protoreflect.ValueOfFloat64(math.Float64frombits(v)), n, nil
		case protoreflect.Sfixed64Kind:
			return protoreflect.ValueOfInt64(int64(v)), n, nil
		}
		return protoreflect.ValueOfUint64(v), n, nil
	}
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return none, 0, errWire
	}
	switch kind {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(protowire.DecodeBool(v)), n, nil
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(v)), n, nil
	case protoreflect.Int32Kind:
		return protoreflect.ValueOfInt32(int32(v)), n, nil
	case protoreflect.Sint32Kind:
		return protoreflect.ValueOfInt32(int32(protowire.DecodeZigZag(v & math.MaxUint32))), n, nil
	case protoreflect.Uint32Kind:
		return protoreflect.ValueOfUint32(uint32(v)), n, nil
	case protoreflect.Int64Kind:
		return protoreflect.ValueOfInt64(int64(v)), n, nil
	case protoreflect.Sint64Kind:
		return protoreflect.ValueOfInt64(protowire.DecodeZigZag(v)), n, nil
	}
	return protoreflect.ValueOfUint64(v), n, nil
}

// enforceUTF8 reports whether proto.Unmarshal rejects invalid UTF-8 in the
// string field fd: in proto3, and in editions where the field's features
// say so (protobuf-go exposes that through an optional method).
func enforceUTF8(fd protoreflect.FieldDescriptor) bool {
	if fd.Syntax() == protoreflect.Editions {
		if f, ok := fd.(interface{ EnforceUTF8() bool }); ok {
			return f.EnforceUTF8()
		}
	}
	return fd.Syntax() == protoreflect.Proto3
}
