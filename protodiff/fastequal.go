package protodiff

import (
	"math"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/runtime/protoiface"
	"google.golang.org/protobuf/types/known/structpb"
)

// equalObserver, when set (by tests only), sees every proto.Equal check of
// the walk, so that tests can count the work it does.
var equalObserver func(mx, my protoreflect.Message)

// equalChecked is equalFast as the walk uses it.
func equalChecked(mx, my protoreflect.Message) bool {
	if equalObserver != nil {
		equalObserver(mx, my)
	}
	return equalFast(mx, my)
}

// equalFast reports whether proto.Equal holds, as fast as it can be told.
// google.protobuf.Struct, the usual carrier of JSON-like payloads, is
// compared on its Go types directly: proto.Equal reaches its maps through
// reflection, at about one allocation per entry. Anything unusual in a
// Struct (unknown fields, nil entries) goes to proto.Equal.
func equalFast(mx, my protoreflect.Message) bool {
	// Interface() costs a reflection call on generated messages: only a
	// name match pays it.
	switch mx.Descriptor().FullName() {
	case "google.protobuf.Struct":
		x, okx := mx.Interface().(*structpb.Struct)
		y, oky := my.Interface().(*structpb.Struct)
		if okx && oky {
			if eq, sure := structEqual(x, y); sure {
				return eq
			}
		}
	case "google.protobuf.Value":
		x, okx := mx.Interface().(*structpb.Value)
		y, oky := my.Interface().(*structpb.Value)
		if okx && oky {
			if eq, sure := valueEqual(x, y); sure {
				return eq
			}
		}
	case "google.protobuf.ListValue":
		x, okx := mx.Interface().(*structpb.ListValue)
		y, oky := my.Interface().(*structpb.ListValue)
		if okx && oky {
			if eq, sure := listValueEqual(x, y); sure {
				return eq
			}
		}
	}
	return protoEqual(mx, my)
}

// protoEqual is proto.Equal on reflective messages: it calls the generated
// fast path directly, as proto.Equal does, without converting back to
// proto.Message. It is made safe, too: proto.Equal panics on unknown fields
// that do not parse (when both sides have as many bytes), and then the
// walk, which handles them, has the last word.
func protoEqual(mx, my protoreflect.Message) (eq bool) {
	defer func() {
		if recover() != nil {
			eq = false
		}
	}()
	if mx.IsValid() != my.IsValid() {
		return false
	}
	if mmx, mmy := mx.ProtoMethods(), my.ProtoMethods(); mmx != nil && mmy != nil && mmx.Equal != nil && mmy.Equal != nil {
		return mmx.Equal(protoiface.EqualInput{MessageA: mx, MessageB: my}).Equal
	}
	return proto.Equal(mx.Interface(), my.Interface())
}

// plain reports whether m has nothing that only reflection sees.
func plain(m proto.Message) bool {
	return len(m.ProtoReflect().GetUnknown()) == 0
}

func structEqual(x, y *structpb.Struct) (eq, sure bool) {
	if x == nil || y == nil || !plain(x) || !plain(y) {
		return false, false
	}
	if len(x.Fields) != len(y.Fields) {
		return false, true
	}
	for k, vx := range x.Fields {
		vy, ok := y.Fields[k]
		if !ok {
			return false, true
		}
		if eq, sure := valueEqual(vx, vy); !eq || !sure {
			return eq, sure
		}
	}
	return true, true
}

func listValueEqual(x, y *structpb.ListValue) (eq, sure bool) {
	if x == nil || y == nil || !plain(x) || !plain(y) {
		return false, false
	}
	if len(x.Values) != len(y.Values) {
		return false, true
	}
	for i := range x.Values {
		if eq, sure := valueEqual(x.Values[i], y.Values[i]); !eq || !sure {
			return eq, sure
		}
	}
	return true, true
}

func valueEqual(x, y *structpb.Value) (eq, sure bool) {
	if x == nil || y == nil || !plain(x) || !plain(y) {
		return false, false
	}
	switch kx := x.Kind.(type) {
	case nil:
		return y.Kind == nil, true
	case *structpb.Value_NullValue:
		ky, ok := y.Kind.(*structpb.Value_NullValue)
		return ok && kx.NullValue == ky.NullValue, true
	case *structpb.Value_NumberValue:
		ky, ok := y.Kind.(*structpb.Value_NumberValue)
		if !ok {
			return false, true
		}
		a, b := kx.NumberValue, ky.NumberValue
		if math.IsNaN(a) || math.IsNaN(b) {
			return math.IsNaN(a) && math.IsNaN(b), true
		}
		return a == b, true
	case *structpb.Value_StringValue:
		ky, ok := y.Kind.(*structpb.Value_StringValue)
		return ok && kx.StringValue == ky.StringValue, true
	case *structpb.Value_BoolValue:
		ky, ok := y.Kind.(*structpb.Value_BoolValue)
		return ok && kx.BoolValue == ky.BoolValue, true
	case *structpb.Value_StructValue:
		ky, ok := y.Kind.(*structpb.Value_StructValue)
		if !ok {
			return false, true
		}
		return structEqual(kx.StructValue, ky.StructValue)
	case *structpb.Value_ListValue:
		ky, ok := y.Kind.(*structpb.Value_ListValue)
		if !ok {
			return false, true
		}
		return listValueEqual(kx.ListValue, ky.ListValue)
	}
	return false, false
}
