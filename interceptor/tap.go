package interceptor

import (
	"errors"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// codecTap is the connection's proto codec with a tap: it keeps a copy of
// the wire bytes of each message the legacy call sends or receives. A
// mirrored call copies its messages for the candidate and for the
// comparison on the caller's path, and copying bytes that are already
// encoded costs a fraction of encoding (or cloning) them again.
//
// Its Name is empty, so gRPC sets no content-subtype: the legacy service
// sees the same content-type as without it.
type codecTap struct {
	inner encoding.CodecV2
	// take reserves the budget for a copy of n bytes before it is made; a
	// copy it refuses is not made (and denied is set). nil: no bound.
	take   func(n int64) bool
	denied bool
	// Switches that turn the copies off; nil means on. Set before the
	// call sends or receives anything.
	sendsOff, recvOff *atomic.Bool
	// Written and read on the sending goroutine, and on the receiving
	// one; an empty message is a non-nil empty slice.
	sent, recvd []byte
	// Streams cut small copies from slabs, one per direction, so that a
	// long stream does not cost an allocation per message; a unary call
	// copies its one reply exactly.
	slabs              bool
	sendSlab, recvSlab []byte
	// recvOnly: copy what is received only (a unary call's reply).
	recvOnly bool
}

var _ encoding.CodecV2 = (*codecTap)(nil)

// newCodecTap returns a tap on the registered proto codec, or nil when the
// call chose a codec of its own, which the tap must not replace.
func newCodecTap(opts []grpc.CallOption) *codecTap {
	for _, o := range opts {
		switch o.(type) {
		case grpc.ForceCodecCallOption, grpc.ForceCodecV2CallOption, grpc.ContentSubtypeCallOption, grpc.CustomCodecCallOption:
			return nil
		}
	}
	inner := encoding.GetCodecV2(grpcproto.Name)
	if inner == nil {
		return nil
	}
	return &codecTap{inner: inner}
}

func (t *codecTap) Marshal(v any) (mem.BufferSlice, error) {
	out, err := t.inner.Marshal(v)
	if err == nil && !t.recvOnly && on(t.sendsOff) && t.allowed(out.Len()) {
		t.sent = t.copyOut(out, &t.sendSlab)
	}
	return out, err
}

func (t *codecTap) Unmarshal(data mem.BufferSlice, v any) error {
	if on(t.recvOff) && t.allowed(data.Len()) {
		t.recvd = t.copyOut(data, &t.recvSlab)
	}
	return t.inner.Unmarshal(data, v)
}

func (t *codecTap) allowed(n int) bool {
	if t.take == nil || t.take(int64(n)) {
		return true
	}
	t.denied = true
	return false
}

func on(off *atomic.Bool) bool { return off == nil || !off.Load() }

// decode decodes a copy with the codec it was tapped from.
func (t *codecTap) decode(b []byte, m proto.Message) error {
	return t.inner.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, m)
}

// Name is empty on purpose; see the type's comment.
func (t *codecTap) Name() string { return "" }

// boundedCodec is the connection's proto codec with a bound: a message it
// receives is decoded only if its size fits in the comparison's share of
// the memory budget. It stands on candidate calls, whose replies are held
// until the legacy reply is there to compare with.
type boundedCodec struct {
	inner encoding.CodecV2
	take  func(n int64) bool
	over  bool // a reply did not fit
}

var _ encoding.CodecV2 = (*boundedCodec)(nil)

var errOverBudget = errors.New("interceptor: the reply does not fit in the memory budget")

// newBoundedCodec returns nil when the call chose a codec of its own.
func newBoundedCodec(opts []grpc.CallOption, take func(n int64) bool) *boundedCodec {
	t := newCodecTap(opts)
	if t == nil {
		return nil
	}
	return &boundedCodec{inner: t.inner, take: take}
}

func (c *boundedCodec) Marshal(v any) (mem.BufferSlice, error) { return c.inner.Marshal(v) }

func (c *boundedCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if !c.take(int64(data.Len())) {
		c.over = true
		return errOverBudget
	}
	return c.inner.Unmarshal(data, v)
}

// Name is empty on purpose, as the tap's.
func (c *boundedCodec) Name() string { return "" }

// Slab sizes: copies up to slabMax bytes are cut from slabs of slabSize.
const (
	slabSize = 32 << 10
	slabMax  = 2 << 10
)

// copyOut copies b, small copies into *slab if the tap uses slabs. The
// result is never nil, so that an empty message stands apart from none.
func (t *codecTap) copyOut(b mem.BufferSlice, slab *[]byte) []byte {
	n := b.Len()
	switch {
	case n == 0:
		return []byte{}
	case n > slabMax || !t.slabs:
		return b.Materialize()
	}
	if cap(*slab)-len(*slab) < n {
		*slab = make([]byte, 0, slabSize)
	}
	start := len(*slab)
	*slab = (*slab)[:start+n]
	out := (*slab)[start : start+n : start+n]
	b.CopyTo(out)
	return out
}

// takeSent and takeReceived hand over the bytes of the message just sent
// or received, once.
func (t *codecTap) takeSent() []byte {
	b := t.sent
	t.sent = nil
	return b
}

func (t *codecTap) takeReceived() []byte {
	b := t.recvd
	t.recvd = nil
	return b
}
