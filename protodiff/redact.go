package protodiff

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Redact clears, in place, every field of m marked with the debug_redact
// field option, at any depth, inside google.protobuf.Any payloads too (when
// the global registry knows their type). Use it on a copy of a message
// before it is logged or stored.
func Redact(m proto.Message) {
	if m != nil && m.ProtoReflect().IsValid() {
		redact(m.ProtoReflect())
	}
}

func redact(m protoreflect.Message) {
	if m.Descriptor().FullName() == anyName {
		redactAny(m)
		return
	}
	var sensitive []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case isDebugRedact(fd):
			sensitive = append(sensitive, fd)
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				redact(l.Get(i).Message())
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				redact(mv.Message())
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			redact(v.Message())
		}
		return true
	})
	for _, fd := range sensitive {
		m.Clear(fd)
	}
}

// redactAny redacts an Any's payload; one that cannot be decoded is
// dropped, since nobody can tell what it holds.
func redactAny(m protoreflect.Message) {
	fields := m.Descriptor().Fields()
	urlFD, valFD := fields.ByName("type_url"), fields.ByName("value")
	if urlFD == nil || valFD == nil {
		return
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(m.Get(urlFD).String())
	if err != nil {
		m.Clear(valFD)
		return
	}
	p := mt.New()
	if proto.Unmarshal(m.Get(valFD).Bytes(), p.Interface()) != nil {
		m.Clear(valFD)
		return
	}
	redact(p)
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(p.Interface())
	if err != nil {
		m.Clear(valFD)
		return
	}
	m.Set(valFD, protoreflect.ValueOfBytes(b))
}
