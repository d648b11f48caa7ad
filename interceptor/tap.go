package interceptor

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// codecTap is the connection's proto codec with a tap: it keeps a copy of
// the wire bytes of each message the legacy stream sends or receives. A
// stream copies its messages for the candidate and for the comparison on
// the caller's path, and copying bytes that are already encoded costs a
// fraction of encoding them again.
//
// Its Name is empty, so gRPC sets no content-subtype: the legacy service
// sees the same content-type as without it.
type codecTap struct {
	inner encoding.CodecV2
	s     *mirrorStream // set before the caller gets the stream
	// Written and read on the sending goroutine, and on the receiving
	// one; an empty message is a non-nil empty slice.
	sent, recvd []byte
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
	if err == nil && t.s != nil && !t.s.sendsOff.Load() {
		t.sent = materialize(out)
	}
	return out, err
}

func (t *codecTap) Unmarshal(data mem.BufferSlice, v any) error {
	if t.s != nil && !t.s.off.Load() {
		t.recvd = materialize(data)
	}
	return t.inner.Unmarshal(data, v)
}

// Name is empty on purpose; see the type's comment.
func (t *codecTap) Name() string { return "" }

// materialize copies b, keeping an empty message apart from none.
func materialize(b mem.BufferSlice) []byte {
	if out := b.Materialize(); out != nil {
		return out
	}
	return []byte{}
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
