package protodiff

import (
	"bytes"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// DiffCost compares x and y like d.Diff and returns, besides the result,
// the work it did: the units charged to the budget plus the values that
// its proto.Equal checks visited (counted by a traversal that stops at the
// first difference, as proto.Equal does). Not safe for concurrent use.
func DiffCost(d *Differ, x, y proto.Message) (Result, int) {
	visits := 0
	equalObserver = func(mx, my protoreflect.Message) { visits += equalVisits(mx, my) }
	defer func() { equalObserver = nil }()
	w := newWalker(d)
	w.root(x.ProtoReflect(), y.ProtoReflect())
	res := Result{Differences: w.diffs, Truncated: w.truncated, Incomplete: w.incomplete}
	return res, d.maxWork - w.work + visits
}

// Decode is the decoder of Any payloads, for tests against proto.Unmarshal.
func Decode(b []byte, m proto.Message) error {
	_, err := decode(b, m.ProtoReflect(), extensionsOf(defaultOptions.resolver), DefaultMaxDepth)
	return err
}

// equalVisits counts the values proto.Equal visits to compare mx and my:
// messages, fields, elements and entries, until the first difference, and
// a value per 64 bytes of a bytes field (an Any's payload is one).
func equalVisits(mx, my protoreflect.Message) int {
	n := 0
	var msg func(a, b protoreflect.Message) bool
	val := func(fd protoreflect.FieldDescriptor, a, b protoreflect.Value) bool {
		n++
		switch fd.Kind() {
		case protoreflect.MessageKind, protoreflect.GroupKind:
			return msg(a.Message(), b.Message())
		case protoreflect.BytesKind:
			n += len(a.Bytes()) / 64
			return bytes.Equal(a.Bytes(), b.Bytes())
		}
		return a.Equal(b)
	}
	msg = func(a, b protoreflect.Message) bool {
		n++
		eq := true
		a.Range(func(fd protoreflect.FieldDescriptor, va protoreflect.Value) bool {
			if !b.Has(fd) {
				eq = false
				return false
			}
			vb := b.Get(fd)
			switch {
			case fd.IsList():
				la, lb := va.List(), vb.List()
				if la.Len() != lb.Len() {
					eq = false
					break
				}
				for i := 0; i < la.Len() && eq; i++ {
					eq = val(fd, la.Get(i), lb.Get(i))
				}
			case fd.IsMap():
				ma, mb := va.Map(), vb.Map()
				if ma.Len() != mb.Len() {
					eq = false
					break
				}
				ma.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
					w := mb.Get(k)
					eq = w.IsValid() && val(fd.MapValue(), v, w)
					return eq
				})
			default:
				eq = val(fd, va, vb)
			}
			return eq
		})
		if eq {
			b.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
				n++
				eq = a.Has(fd)
				return eq
			})
		}
		return eq && bytes.Equal(a.GetUnknown(), b.GetUnknown())
	}
	msg(mx, my)
	return n
}
