package interceptor

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// StreamClientInterceptor returns the interceptor for streaming RPCs, to
// chain with other middleware: grpc.WithChainStreamInterceptor(pr.StreamClientInterceptor()).
func (p *ParallelRun) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return p.stream
}

func (p *ParallelRun) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	mode, opts := takeCallOptions(opts)
	attrs := p.tel.method(method)
	cfg := p.admitStream(ctx, attrs, method, mode)
	if cfg == nil || !p.acquire(ctx, attrs) {
		return streamer(ctx, desc, cc, method, opts...)
	}
	start := time.Now()
	legacyOpts := opts
	tap := newCodecTap(opts)
	if tap != nil {
		legacyOpts = append(opts[:len(opts):len(opts)], grpc.ForceCodecV2(tap))
	}
	ls, err := streamer(ctx, desc, cc, method, legacyOpts...)
	if err != nil {
		<-p.slots
		p.tel.skip(ctx, attrs, ReasonLegacyStreamFailed)
		return ls, err
	}
	if s := p.newMirrorStream(ctx, ls, desc, method, attrs, cfg, opts, start, tap); s != nil {
		return s, nil
	}
	return ls, nil
}

// admitStream is admit for streams, which also need their message types
// from the registry: the candidate may answer before the legacy service
// shows one.
func (p *ParallelRun) admitStream(ctx context.Context, attrs *methodAttrs, method string, mode callMode) *methodConfig {
	cfg := p.admit(ctx, attrs, method, mode)
	if cfg == nil {
		return nil
	}
	if _, _, err := p.streamTypes(method); err != nil {
		p.tel.skip(ctx, attrs, ReasonNotProto)
		return nil
	}
	return cfg
}

type streamTypes struct {
	req, resp protoreflect.MessageType
	err       error
}

// streamTypes finds a method's request and reply types in the global
// registry, where generated code registers them; the answer is cached.
func (p *ParallelRun) streamTypes(method string) (req, resp protoreflect.MessageType, err error) {
	if v, ok := p.types.Load(method); ok {
		t := v.(streamTypes)
		return t.req, t.resp, t.err
	}
	var t streamTypes
	svc, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err == nil {
		sd, ok := d.(protoreflect.ServiceDescriptor)
		md := protoreflect.MethodDescriptor(nil)
		if ok {
			md = sd.Methods().ByName(protoreflect.Name(name))
		}
		if md == nil {
			err = fmt.Errorf("interceptor: %s: no such method in the registry", method)
		} else if t.req, err = protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName()); err == nil {
			t.resp, err = protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
		}
	}
	t.err = err
	p.types.Store(method, t)
	return t.req, t.resp, t.err
}

// mirrorStream is the stream the caller gets: the legacy stream, with
// every message it sends copied to the candidate and every reply it
// receives copied for the comparison. Copies are handed over through
// bounded buffers without waiting; when one is full, the candidate side is
// abandoned and the legacy stream goes on alone.
type mirrorStream struct {
	grpc.ClientStream // the legacy stream

	p         *ParallelRun
	method    string
	desc      *grpc.StreamDesc
	cfg       *methodConfig
	reqType   protoreflect.MessageType
	respType  protoreflect.MessageType
	opts      []grpc.CallOption
	callerCtx context.Context
	deadline  time.Time
	start     time.Time

	// The candidate's context is cancelled when the comparison is
	// abandoned from the caller's side.
	candBase   context.Context
	cancelCand context.CancelFunc

	sends    chan streamItem // to the candidate
	replies  chan []byte     // legacy replies, encoded
	end      chan legacyEnd  // the legacy stream's end, sent once
	endOnce  sync.Once
	sendsOff atomic.Bool // the candidate takes no more messages
	off      atomic.Bool // nothing more is copied
	reason   atomic.Pointer[string]
	problem  atomic.Pointer[string] // a recovered panic, with reason "internal_error"
	buffered atomic.Int64           // bytes in sends and replies
	received atomic.Int64           // legacy replies the caller got
	firstReq atomic.Pointer[[]byte]

	tap *codecTap // nil: messages are encoded again to be copied

	// Unordered replies: the legacy ones are kept here, encoded, until the
	// end, since the comparison cannot start before.
	mu        sync.Mutex
	unordered [][]byte
}

type streamItem struct {
	b         []byte
	closeSend bool
}

type legacyEnd struct {
	err      error
	dur      time.Duration
	header   metadata.MD
	canceled bool // by the caller
}

// newMirrorStream wraps the legacy stream and starts the candidate
// goroutine, which owns the slot the caller took. It returns nil if that
// fails, having freed the slot.
func (p *ParallelRun) newMirrorStream(ctx context.Context, ls grpc.ClientStream, desc *grpc.StreamDesc, method string,
	attrs *methodAttrs, cfg *methodConfig, opts []grpc.CallOption, start time.Time, tap *codecTap) (s *mirrorStream) {
	defer func() {
		if v := recover(); v != nil {
			<-p.slots
			p.tel.outcome(ctx, attrs, parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR)
			p.onError(fmt.Errorf("interceptor: %s: panic before the candidate stream: %v", method, v))
			s = nil
		}
	}()
	req, resp, _ := p.streamTypes(method)
	s = &mirrorStream{
		ClientStream: ls,
		p:            p,
		method:       method,
		desc:         desc,
		cfg:          cfg,
		reqType:      req,
		respType:     resp,
		opts:         candidateCallOptions(opts),
		callerCtx:    ctx,
		start:        start,
		sends:        make(chan streamItem, cfg.maxMessages),
		replies:      make(chan []byte, cfg.maxMessages),
		end:          make(chan legacyEnd, 1),
		tap:          tap,
	}
	s.deadline, _ = ctx.Deadline()
	s.candBase, s.cancelCand = context.WithCancel(context.WithoutCancel(ctx))
	go p.runComparison(ctx, callInfo{method: method, attrs: attrs}, s.compare)
	if tap != nil {
		tap.sendsOff, tap.recvOff, tap.slabs = &s.sendsOff, &s.off, true
	}
	return s
}

// SendMsg sends to the legacy stream, then hands a copy to the candidate.
func (s *mirrorStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	if err == nil && !s.sendsOff.Load() {
		s.guard(func() { s.copySend(m) })
	}
	return err
}

func (s *mirrorStream) copySend(m any) {
	b, ok := s.encoded(m, (*codecTap).takeSent)
	if !ok {
		return
	}
	if !s.desc.ClientStreams {
		s.firstReq.CompareAndSwap(nil, &b)
	}
	if !s.reserve(len(b)) {
		return
	}
	select {
	case s.sends <- streamItem{b: b}:
	default:
		s.buffered.Add(-int64(len(b)))
		s.abandon(AbandonCandidateBehind)
	}
}

// CloseSend closes the legacy stream's sending side, then the candidate's
// once it has taken what was sent before.
func (s *mirrorStream) CloseSend() error {
	err := s.ClientStream.CloseSend()
	if !s.sendsOff.Load() {
		select {
		case s.sends <- streamItem{closeSend: true}:
		default:
			s.abandon(AbandonCandidateBehind)
		}
	}
	return err
}

// RecvMsg receives from the legacy stream and keeps a copy of the reply
// for the comparison.
func (s *mirrorStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	switch {
	case err == nil:
		s.received.Add(1)
		if !s.off.Load() {
			s.guard(func() { s.copyReply(m) })
		}
		if !s.desc.ServerStreams {
			// gRPC has read the status already: the stream is over.
			s.finish(nil)
		}
	case err == io.EOF:
		s.finish(nil)
	default:
		s.finish(err)
	}
	return err
}

func (s *mirrorStream) copyReply(m any) {
	b, ok := s.encoded(m, (*codecTap).takeReceived)
	if !ok {
		return
	}
	if !s.reserve(len(b)) {
		return
	}
	if s.cfg.unordered {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.unordered) >= s.cfg.maxMessages {
			s.abandon(AbandonMemoryBound)
			return
		}
		s.unordered = append(s.unordered, b)
		return
	}
	select {
	case s.replies <- b:
	default:
		s.buffered.Add(-int64(len(b)))
		s.abandon(AbandonCandidateBehind)
	}
}

// encoded returns the wire bytes of the message just sent or received:
// from the tap when there is one, else encoded again.
func (s *mirrorStream) encoded(m any, take func(*codecTap) []byte) ([]byte, bool) {
	if s.tap != nil {
		b := take(s.tap)
		return b, b != nil
	}
	b, err := proto.Marshal(m.(proto.Message))
	if err != nil {
		panic(err)
	}
	return b, true
}

// finish hands the legacy stream's end to the comparison, once.
func (s *mirrorStream) finish(err error) {
	s.endOnce.Do(func() {
		e := legacyEnd{err: err, dur: time.Since(s.start), canceled: err != nil && s.callerCtx.Err() != nil}
		if s.cfg.compareHeader {
			s.guard(func() { e.header, _ = s.ClientStream.Header() })
		}
		s.end <- e
	})
}

// reserve counts n more buffered bytes, or abandons the comparison when
// that passes the bound.
func (s *mirrorStream) reserve(n int) bool {
	if s.buffered.Add(int64(n)) > s.cfg.maxBytes {
		s.buffered.Add(-int64(n))
		s.abandon(AbandonMemoryBound)
		return false
	}
	return true
}

// abandon gives up the comparison: nothing more is copied, and the
// candidate stream is cancelled. The first reason stays.
func (s *mirrorStream) abandon(reason string) {
	if s.reason.CompareAndSwap(nil, &reason) {
		s.off.Store(true)
		s.sendsOff.Store(true)
		s.cancelCand()
	}
}

// guard runs f on the caller's path: a panic in it ends the comparison as
// an internal error instead of reaching the caller.
func (s *mirrorStream) guard(f func()) {
	defer func() {
		if v := recover(); v != nil {
			problem := fmt.Sprintf("panic on the caller's path: %v", v)
			s.problem.CompareAndSwap(nil, &problem)
			s.abandon("internal_error")
		}
	}()
	f()
}

// compare is the candidate goroutine of a stream: it opens the candidate
// stream, feeds it, and compares its replies with the legacy ones as both
// arrive, keeping only what one side has and the other not yet.
func (s *mirrorStream) compare(ctx context.Context) (res result) {
	res.streaming = true
	defer func() {
		s.off.Store(true)
		s.sendsOff.Store(true)
		res.legacyMsgs = int(s.received.Load())
		if b := s.firstReq.Load(); b != nil {
			req := s.reqType.New().Interface()
			if proto.Unmarshal(*b, req) == nil {
				res.req = req
			}
		}
		if r := s.reason.Load(); r != nil {
			res.diffs, res.truncated = nil, false
			if p := s.problem.Load(); p != nil {
				res.outcome, res.problem = parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR, *p
			} else {
				res.outcome, res.abandonReason = parallelrunv1.Outcome_OUTCOME_ABANDONED, *r
			}
		}
	}()
	defer s.cancelCand()
	base := trace.ContextWithSpan(s.candBase, trace.SpanFromContext(ctx))
	cctx, cancel, err := s.p.candidateContext(base, s.deadline, s.cfg)
	if err != nil {
		res.outcome, res.problem = parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR, err.Error()
		return res
	}
	defer cancel()

	c := streamComparer{s: s}
	start := time.Now()
	cs, err := s.p.candidate.NewStream(cctx, s.desc, s.method, s.opts...)
	res.candStarted = true
	if err != nil {
		s.sendsOff.Store(true)
		res.candErr = err
	} else {
		sent := make(chan struct{})
		go s.feed(cctx, cs, sent)
		defer func() {
			cancel()
			<-sent
		}()
		res.candErr = c.receive(cctx, cs)
	}
	res.candDur = time.Since(start)
	res.candMsgs = c.candCount

	// The candidate is done; the rest of the legacy stream is compared
	// with nothing, until its end. When the candidate failed as a call
	// (unreachable, out of time), the outcome will say so and the rest is
	// only counted.
	c.countOnly = res.candErr != nil && candidateFault(status.Code(res.candErr))
	e, ok := c.legacyRest(cctx)
	if !ok {
		if s.reason.Load() == nil && s.callerCtx.Err() == nil {
			s.abandon(AbandonLegacyUnfinished)
		}
		if s.reason.Load() == nil {
			res.outcome = parallelrunv1.Outcome_OUTCOME_CALLER_CANCELED
		}
		return res
	}
	res.legacyErr, res.legacyDur, res.legacyKnown = e.err, e.dur, true
	res.judgeStatus(s.cfg, e.canceled)
	if res.outcome == parallelrunv1.Outcome_OUTCOME_UNSPECIFIED {
		// A match or a mismatch: the replies count, and any difference of
		// status comes after theirs.
		c.finishUnordered()
		if s.cfg.compareHeader {
			c.compareHeader(e.header, cs)
		}
		for _, d := range res.diffs {
			c.appendDiff(d)
		}
		res.diffs, res.truncated = c.diffs, c.truncated
	}
	res.settle()
	return res
}

// feed sends the caller's messages to the candidate, in order, until the
// caller closes its side or the candidate stream ends.
func (s *mirrorStream) feed(ctx context.Context, cs grpc.ClientStream, done chan<- struct{}) {
	defer close(done)
	defer s.sendsOff.Store(true)
	for {
		select {
		case it := <-s.sends:
			if it.closeSend {
				_ = cs.CloseSend()
				return
			}
			s.buffered.Add(-int64(len(it.b)))
			m := s.reqType.New().Interface()
			if proto.Unmarshal(it.b, m) != nil {
				continue
			}
			if cs.SendMsg(m) != nil {
				return // the stream is over; RecvMsg tells how
			}
		case <-ctx.Done():
			return
		}
	}
}

// streamComparer pairs the candidate's replies with the legacy ones by
// position (or keeps them all, for unordered replies) and collects the
// differences.
type streamComparer struct {
	s         *mirrorStream
	candCount int
	legacyPos int // legacy replies taken from the buffer
	legacyEnd *legacyEnd
	diffs     []protodiff.Difference
	truncated bool
	// Unordered candidate replies, kept until the end.
	candAll []proto.Message
	// countOnly: extra legacy replies are counted, not rendered.
	countOnly bool
}

// receive reads the candidate's replies until its stream ends, comparing
// each with the legacy reply at the same position. It returns the
// candidate's final error (nil for OK).
func (c *streamComparer) receive(ctx context.Context, cs grpc.ClientStream) error {
	s := c.s
	for {
		m := s.respType.New().Interface()
		if err := cs.RecvMsg(m); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		c.candCount++
		if s.cfg.unordered {
			if !c.keep(m) {
				return ctx.Err()
			}
		} else if legacy, ok := c.nextLegacy(ctx); ok {
			c.add(c.candCount-1, s.cfg.differ.Diff(legacy, m))
		} else if c.legacyEnd != nil {
			c.add(c.candCount-1, protodiff.Diff(nil, m))
		} else {
			return ctx.Err() // stopped: abandoned, or out of time
		}
		if !s.desc.ServerStreams {
			// gRPC has read the status along with the one reply.
			return nil
		}
	}
}

// nextLegacy waits for the next legacy reply. It returns false when the
// legacy stream has ended without one (c.legacyEnd is then set), or when
// ctx ends.
func (c *streamComparer) nextLegacy(ctx context.Context) (proto.Message, bool) {
	s := c.s
	if c.legacyEnd != nil {
		return c.takeBuffered()
	}
	select {
	case b := <-s.replies:
		return c.decode(b), true
	case e := <-s.end:
		c.legacyEnd = &e
		return c.takeBuffered()
	case <-ctx.Done():
	case <-s.callerCtx.Done():
	}
	// Stopped; what had arrived still counts.
	select {
	case b := <-s.replies:
		return c.decode(b), true
	default:
		return nil, false
	}
}

// takeBuffered takes a reply left in the buffer after the legacy end: the
// caller's goroutine queues every reply before it sends the end.
func (c *streamComparer) takeBuffered() (proto.Message, bool) {
	select {
	case b := <-c.s.replies:
		return c.decode(b), true
	default:
		return nil, false
	}
}

func (c *streamComparer) decode(b []byte) proto.Message {
	c.s.buffered.Add(-int64(len(b)))
	c.legacyPos++
	m := c.s.respType.New().Interface()
	if err := proto.Unmarshal(b, m); err != nil {
		panic(fmt.Sprintf("decoding a copy of legacy reply %d: %v", c.legacyPos-1, err))
	}
	return m
}

// legacyRest takes the legacy replies the candidate did not match, up to
// the legacy end. It returns false if the end does not come before ctx
// ends or the caller gives up.
func (c *streamComparer) legacyRest(ctx context.Context) (legacyEnd, bool) {
	s := c.s
	for {
		if c.legacyEnd != nil {
			for {
				select {
				case b := <-s.replies:
					c.extraLegacy(b)
				default:
					return *c.legacyEnd, true
				}
			}
		}
		// What has arrived is taken before any reason to stop is heard:
		// the candidate's deadline may well have passed already.
		select {
		case b := <-s.replies:
			c.extraLegacy(b)
			continue
		case e := <-s.end:
			c.legacyEnd = &e
			continue
		default:
		}
		select {
		case b := <-s.replies:
			c.extraLegacy(b)
		case e := <-s.end:
			c.legacyEnd = &e
		case <-s.callerCtx.Done():
			// The caller gave up; its end may be queued already.
			select {
			case e := <-s.end:
				c.legacyEnd = &e
			default:
				return legacyEnd{}, false
			}
		case <-ctx.Done():
			return legacyEnd{}, false
		}
	}
}

// extraLegacy records a legacy reply the candidate has no counterpart
// for. Past the limit of differences it is only counted: rendering it would
// be thrown away.
func (c *streamComparer) extraLegacy(b []byte) {
	if c.countOnly || len(c.diffs) >= MaxStreamDifferences {
		c.s.buffered.Add(-int64(len(b)))
		c.legacyPos++
		c.truncated = true
		return
	}
	m := c.decode(b)
	c.add(c.legacyPos-1, protodiff.Diff(m, nil))
}

// keep holds a candidate reply for an unordered comparison, within the
// bounds.
func (c *streamComparer) keep(m proto.Message) bool {
	if len(c.candAll) >= c.s.cfg.maxMessages || !c.s.reserve(proto.Size(m)) {
		c.s.abandon(AbandonMemoryBound)
		return false
	}
	c.candAll = append(c.candAll, m)
	return true
}

// finishUnordered matches the kept replies as multisets.
func (c *streamComparer) finishUnordered() {
	if !c.s.cfg.unordered {
		return
	}
	c.s.mu.Lock()
	kept := c.s.unordered
	c.s.mu.Unlock()
	used := make([]bool, len(c.candAll))
	for i, b := range kept {
		lm := c.s.respType.New().Interface()
		if err := proto.Unmarshal(b, lm); err != nil {
			panic(fmt.Sprintf("decoding a copy of legacy reply %d: %v", i, err))
		}
		found := false
		for j, cm := range c.candAll {
			if !used[j] && c.s.cfg.differ.Diff(lm, cm).Equal() {
				used[j], found = true, true
				break
			}
		}
		if !found {
			c.add(i, protodiff.Diff(lm, nil))
		}
	}
	for j, cm := range c.candAll {
		if !used[j] {
			c.add(j, protodiff.Diff(nil, cm))
		}
	}
}

// compareHeader compares the response headers, but for the keys that
// differ by nature.
func (c *streamComparer) compareHeader(legacy metadata.MD, cs grpc.ClientStream) {
	if cs == nil {
		return
	}
	cand, err := cs.Header()
	if err != nil {
		return
	}
	keys := map[string]bool{}
	for k := range legacy {
		keys[k] = true
	}
	for k := range cand {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		if k != "content-type" && !strings.HasPrefix(k, "grpc-") {
			sorted = append(sorted, k)
		}
	}
	slices.Sort(sorted)
	for _, k := range sorted {
		l, r := strings.Join(legacy.Get(k), ","), strings.Join(cand.Get(k), ",")
		if l == r {
			continue
		}
		kind := protodiff.Changed
		switch {
		case len(legacy.Get(k)) == 0:
			kind = protodiff.Added
		case len(cand.Get(k)) == 0:
			kind = protodiff.Removed
		}
		c.appendDiff(protodiff.Difference{Path: HeaderPath + "[" + strconv.Quote(k) + "]", Field: HeaderPath, Kind: kind, Legacy: l, Candidate: r})
	}
}

// HeaderPath is the path of differences in response header metadata, as
// in `grpc-header["x-pricing-version"]`.
const HeaderPath = "grpc-header"

// add records the differences of the replies at position i, their paths
// prefixed with it: `[3].price.units`.
func (c *streamComparer) add(i int, r protodiff.Result) {
	prefix := "[" + strconv.Itoa(i) + "]"
	for _, d := range r.Differences {
		if d.Path == "" {
			d.Path = prefix
		} else {
			d.Path = prefix + "." + d.Path
		}
		c.appendDiff(d)
	}
	c.truncated = c.truncated || r.Truncated
}

func (c *streamComparer) appendDiff(d protodiff.Difference) {
	if len(c.diffs) >= MaxStreamDifferences {
		c.truncated = true
		return
	}
	c.diffs = append(c.diffs, d)
}
