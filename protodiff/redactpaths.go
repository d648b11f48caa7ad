package protodiff

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Redact clears, in place, what the Differ never shows: every field marked
// debug_redact, as the package's [Redact] does, and every value at a path
// of [WithRedactedPaths], in lists, map values, extensions and Any
// payloads (decoded with the Differ's resolver, and re-encoded) alike;
// unknown fields, when a redacted path names one by number. Use it on a
// copy of a reply before it is stored, so that a stored message holds no
// more than the differences show.
//
// Cost: [Redact]'s, plus a walk of the parts of m that the redacted paths
// lead into, linear in their size; an Any payload on such a path that
// cannot be decoded is cleared, since nobody can tell what it holds.
func (d *Differ) Redact(m proto.Message) {
	Redact(m)
	if d.root == nil || !d.root.redactBelow || m == nil || !m.ProtoReflect().IsValid() {
		return
	}
	d.redactAt(m.ProtoReflect(), d.root, DefaultMaxDepth)
}

// redactAt clears the redacted paths of r in m, which may hold depth
// levels.
func (d *Differ) redactAt(m protoreflect.Message, r *rule, depth int) {
	if depth <= 0 {
		return
	}
	if m.Descriptor().FullName() == anyName {
		if urlFD, valFD := anyFields(m.Descriptor()); urlFD != nil {
			d.redactAnyAt(m, urlFD, valFD, r, depth)
			return
		}
	}
	for _, c := range r.numbers {
		if c.redactBelow {
			// Unknown fields are not decoded: all of them go.
			m.SetUnknown(nil)
			break
		}
	}
	var cleared []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		var c *rule
		if fd.IsExtension() {
			c = r.paren[fd.FullName()]
		} else {
			c = r.fields[fd.Name()]
		}
		switch {
		case c == nil || !c.redactBelow:
		case c.redact:
			cleared = append(cleared, fd)
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					d.redactAt(mv.Message(), c, depth-1)
					return true
				})
			}
		case fd.Message() == nil:
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				d.redactAt(l.Get(i).Message(), c, depth-1)
			}
		default:
			d.redactAt(v.Message(), c, depth-1)
		}
		return true
	})
	for _, fd := range cleared {
		m.Clear(fd)
	}
}

// redactAnyAt redacts an Any's payload along r's paths: decoded, redacted
// and encoded again, or cleared when it cannot be decoded.
func (d *Differ) redactAnyAt(m protoreflect.Message, urlFD, valFD protoreflect.FieldDescriptor, r *rule, depth int) {
	val := m.Get(valFD).Bytes()
	if len(val) == 0 {
		return
	}
	url := m.Get(urlFD).String()
	resolver := d.resolver
	if resolver == nil {
		return // compared raw: no path leads into a payload
	}
	mt, err := resolver.FindMessageByURL(url)
	if err != nil {
		if anyRuleBelow(r) {
			m.Clear(valFD)
		}
		return
	}
	c := r.paren[mt.Descriptor().FullName()]
	if c == nil || !c.redactBelow {
		return
	}
	payload := mt.New()
	if err := proto.Unmarshal(val, payload.Interface()); err != nil {
		m.Clear(valFD)
		return
	}
	if c.redact {
		m.Clear(valFD)
		return
	}
	d.redactAt(payload, c, depth-1)
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(payload.Interface())
	if err != nil {
		m.Clear(valFD)
		return
	}
	m.Set(valFD, protoreflect.ValueOfBytes(out))
}

// anyRuleBelow reports whether a redacted path leads into some payload
// type at r.
func anyRuleBelow(r *rule) bool {
	for _, c := range r.paren {
		if c.redactBelow {
			return true
		}
	}
	return false
}
