package interceptor

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// StreamClientInterceptor returns the interceptor for streaming RPCs, to
// chain with other middleware: grpc.WithChainStreamInterceptor(pr.StreamClientInterceptor()).
func (p *ParallelRun) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return p.stream
}

func (p *ParallelRun) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	mode, opts := takeCallOptions(opts)
	if mode == modeProbe || p.disabled.Load() {
		return streamer(ctx, desc, cc, method, opts...)
	}
	s := p.startStream(ctx, desc, method, mode, opts)
	if s == nil {
		return streamer(ctx, desc, cc, method, opts...)
	}
	returned := false
	defer func() {
		if !returned {
			// The streamer panicked: the panic goes on, the stream is
			// counted as one that did not open.
			s.release()
			p.tel.skip(ctx, s.e.attrs, ReasonLegacyStreamFailed)
		}
	}()
	ls, err := streamer(ctx, desc, cc, method, opts...)
	returned = true
	if err != nil {
		s.release()
		p.tel.skip(ctx, s.e.attrs, ReasonLegacyStreamFailed)
		return ls, err
	}
	s.ClientStream = ls
	s.begin()
	return s, nil
}

// mirrorStream is the stream the caller gets: the legacy stream, with
// every message the caller sends copied to the candidate and every reply
// it receives copied for the comparison: the messages as the caller sees
// them, encoded. Copies are handed over without waiting, through queues of
// bounded length, within the stream's share of the memory budget; when
// either bound is reached, the comparison is abandoned and the legacy
// stream goes on alone.
//
// Who owns what. Up to five goroutines touch a mirrorStream, and each field
// belongs to one of them or is safe for all:
//   - the caller's sending goroutine (SendMsg, CloseSend) owns closeQueued
//     and puts the caller's messages on sends;
//   - the caller's receiving goroutine (RecvMsg) puts the legacy replies on
//     legacy;
//   - the legacy end goes on legacy after the replies, once (ended): from
//     the receiving goroutine when the stream ends, from an AfterFunc
//     goroutine when the caller's context ends first, or from whichever
//     goroutine a panic below the parallel run went through;
//   - the feeder (feed) takes from sends and writes to the candidate
//     stream; what it keeps for the report is read only after it ended;
//   - the run goroutine (run) owns the candidate stream's replies, the
//     pairing, and the facts it decides on.
//
// Everything else is set before the caller gets the stream and only read
// after, or is safe for concurrent use: the queues, the flags, the reason,
// the counts, the allowance, and cancel.
type mirrorStream struct {
	grpc.ClientStream // the legacy stream

	p         *ParallelRun
	e         *methodEntry
	probe     bool // the stream probes a failing candidate
	cfg       *methodConfig
	desc      *grpc.StreamDesc
	method    string // as gRPC names it: /pkg.Service/Method
	opts      []grpc.CallOption
	callerCtx context.Context
	parent    context.Context // the caller's values, without its cancellation
	cancel    context.CancelFunc
	deadline  time.Time
	start     time.Time
	mem       *allowance
	stopAfter func() bool // unregisters the watch on the caller's context

	sends  *queue[streamItem]  // the caller's messages, then a close marker
	legacy *queue[legacyEvent] // the legacy replies, then the end

	stopped  atomic.Bool // nothing more is copied
	sendsOff atomic.Bool // the candidate takes no more of the caller's messages
	ended    atomic.Bool // the legacy end is queued
	// reason is nil while the comparison runs, then why it was abandoned,
	// or finished when run got to the end first.
	reason   atomic.Pointer[string]
	problem  atomic.Pointer[string] // a failure of ours, with reason internal
	received atomic.Int64           // legacy replies the caller got
	sentN    atomic.Int64           // messages the caller sent

	closeQueued bool // sending goroutine: the close marker is queued
}

type streamItem struct {
	b         []byte
	closeSend bool
}

// legacyEvent is a legacy reply's wire bytes, or the legacy end.
type legacyEvent struct {
	reply []byte
	end   *legacyEnd
}

type legacyEnd struct {
	side
	header     metadata.MD
	callerGone bool // the caller's context ended before the stream did
	panicked   bool // a panic below the parallel run
}

var (
	finished       = "finished"
	reasonInternal = "internal"
)

// startStream decides whether to mirror and takes the stream's place in
// flight. It returns nil when the stream is not mirrored.
func (p *ParallelRun) startStream(ctx context.Context, desc *grpc.StreamDesc, method string, mode callMode, opts []grpc.CallOption) (s *mirrorStream) {
	var st starting
	defer func() {
		if v := recover(); v != nil {
			p.recovered(ctx, method, &st, v)
			s = nil
		}
	}()
	if st.e, st.probe = p.admit(ctx, method, mode); st.e == nil {
		return nil
	}
	e := st.e
	if e.req == nil || e.resp == nil {
		// The candidate may answer before the legacy service shows a
		// reply: the types must come from the registry.
		e.breaker.abort(st.probe)
		p.tel.skip(ctx, e.attrs, ReasonNotProto)
		return nil
	}
	if st.mem = p.enter(ctx, e, 0, e.cfg.maxBytes); st.mem == nil {
		e.breaker.abort(st.probe)
		return nil
	}
	mem := st.mem
	s = &mirrorStream{
		p:         p,
		e:         e,
		probe:     st.probe,
		cfg:       e.cfg,
		desc:      desc,
		method:    method,
		opts:      candidateCallOptions(opts),
		callerCtx: ctx,
		start:     time.Now(),
		mem:       mem,
		sends:     newQueue[streamItem](e.cfg.maxMessages),
		legacy:    newQueue[legacyEvent](e.cfg.maxMessages),
	}
	s.deadline, _ = ctx.Deadline()
	s.parent, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	return s
}

// release gives back the place of a stream that never started.
func (s *mirrorStream) release() {
	s.e.breaker.abort(s.probe)
	s.cancel()
	s.mem.close()
	s.p.adm.leave()
}

// begin starts the candidate side, once the legacy stream is open.
func (s *mirrorStream) begin() {
	s.stopAfter = context.AfterFunc(s.callerCtx, func() {
		s.pushEnd(legacyEnd{callerGone: true})
	})
	go s.run()
}

// SendMsg sends to the legacy stream, then hands a copy to the candidate.
func (s *mirrorStream) SendMsg(m any) error {
	returned := false
	defer func() {
		if !returned {
			s.pushEnd(legacyEnd{panicked: true})
		}
	}()
	err := s.ClientStream.SendMsg(m)
	returned = true
	if err == nil {
		s.sentN.Add(1)
		if !s.sendsOff.Load() {
			s.guard(func() { s.copySend(m) })
		}
	}
	return err
}

func (s *mirrorStream) copySend(m any) {
	b, ok := s.encoded(m)
	if !ok {
		return
	}
	if !s.sends.push(streamItem{b: b}, false) {
		s.mem.give(held(b))
		s.abandon(AbandonCandidateBehind)
	}
}

// CloseSend closes the legacy stream's sending side, then the candidate's
// once it has taken what was sent before.
func (s *mirrorStream) CloseSend() error {
	returned := false
	defer func() {
		if !returned {
			s.pushEnd(legacyEnd{panicked: true})
		}
	}()
	err := s.ClientStream.CloseSend()
	returned = true
	if !s.sendsOff.Load() && !s.closeQueued {
		s.closeQueued = true
		s.sends.push(streamItem{closeSend: true}, true)
	}
	return err
}

// RecvMsg receives from the legacy stream and keeps a copy of the reply
// for the comparison.
func (s *mirrorStream) RecvMsg(m any) error {
	returned := false
	defer func() {
		if !returned {
			s.pushEnd(legacyEnd{panicked: true})
		}
	}()
	err := s.ClientStream.RecvMsg(m)
	returned = true
	s.guard(func() { s.received1(m, err) })
	return err
}

func (s *mirrorStream) received1(m any, err error) {
	switch {
	case err == nil:
		s.received.Add(1)
		if !s.stopped.Load() {
			s.copyReply(m)
		}
		if !s.desc.ServerStreams {
			// gRPC has read the status already: the stream is over.
			s.endLegacy(nil)
		}
	case err == io.EOF:
		s.endLegacy(nil)
	default:
		s.endLegacy(err)
	}
}

func (s *mirrorStream) copyReply(m any) {
	b, ok := s.encoded(m)
	if !ok {
		return
	}
	if !s.legacy.push(legacyEvent{reply: b}, false) {
		s.mem.give(held(b))
		s.abandon(AbandonCandidateBehind)
	}
}

// encoded copies the message the caller just sent or received, as the
// caller sees it, within the stream's share of the memory budget.
func (s *mirrorStream) encoded(m any) ([]byte, bool) {
	pm, ok := m.(proto.Message)
	if !ok {
		s.fail(fmt.Sprintf("a %T is not a protobuf message", m))
		return nil, false
	}
	size := proto.Size(pm)
	if !s.take(int64(size) + queuedItemBytes) {
		return nil, false
	}
	b, err := copyOptions.Marshal(pm)
	if err != nil {
		s.mem.give(int64(size) + queuedItemBytes)
		s.fail(fmt.Sprintf("encoding a copy: %v", err))
		return nil, false
	}
	if b == nil {
		b = []byte{} // an empty message stands apart from none
	}
	return b, true
}

// take reserves n bytes of the stream's share of the memory budget, or
// abandons the comparison.
func (s *mirrorStream) take(n int64) bool {
	if s.mem.take(n) {
		return true
	}
	s.abandon(AbandonMemoryBound)
	return false
}

// endLegacy queues the legacy stream's end.
func (s *mirrorStream) endLegacy(err error) {
	e := legacyEnd{side: side{done: true, err: err, dur: time.Since(s.start)}}
	e.callerGone = err != nil && s.callerCtx.Err() != nil
	if s.cfg.compareHeader && !e.callerGone && !s.ended.Load() {
		// The stream is over: Header does not wait.
		e.header, _ = s.ClientStream.Header()
	}
	s.pushEnd(e)
}

// pushEnd queues the legacy end, once, after the replies. When the caller
// left or the call panicked there is nothing to compare with, and the
// candidate is stopped at once.
func (s *mirrorStream) pushEnd(e legacyEnd) {
	if !s.ended.CompareAndSwap(false, true) {
		return
	}
	s.legacy.push(legacyEvent{end: &e}, true)
	if e.callerGone || e.panicked {
		// After the end is queued, so that whoever sees the
		// cancellation finds it.
		s.stopped.Store(true)
		s.sendsOff.Store(true)
		s.cancel()
	}
}

// abandon gives up the comparison, unless it has ended: nothing more is
// copied, and the candidate stream is cancelled. The first reason stays.
func (s *mirrorStream) abandon(reason string) {
	if s.reason.CompareAndSwap(nil, &reason) {
		s.stopped.Store(true)
		s.sendsOff.Store(true)
		s.cancel()
	}
}

// fail abandons the comparison for a failure of ours.
func (s *mirrorStream) fail(problem string) {
	s.problem.CompareAndSwap(nil, &problem)
	s.abandon(reasonInternal)
}

// guard runs f on the caller's path: a panic in it ends the comparison as
// an internal error instead of reaching the caller.
func (s *mirrorStream) guard(f func()) {
	defer func() {
		if v := recover(); v != nil {
			s.fail(fmt.Sprintf("panic on the caller's path: %v", v))
		}
	}()
	f()
}
