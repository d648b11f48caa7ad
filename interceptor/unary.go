package interceptor

import (
	"context"
	"fmt"
	"math"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// UnaryClientInterceptor returns the interceptor for unary RPCs, to chain
// with other middleware: grpc.WithChainUnaryInterceptor(pr.UnaryClientInterceptor()).
func (p *ParallelRun) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return p.unary
}

func (p *ParallelRun) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	mode, opts := takeCallOptions(opts)
	if mode == modeProbe || p.disabled.Load() {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	c := p.startUnary(ctx, method, req, reply, cc, mode, opts)
	if c == nil {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	returned := false
	defer func() {
		if !returned {
			// A panic below us (an interceptor, the codec, the invoker):
			// it goes on to the caller untouched, and the comparison
			// must not wait for a reply that will never come.
			c.legacyPanicked()
		}
	}()
	err := invoker(ctx, method, req, reply, cc, opts...)
	returned = true
	c.finishLegacy(ctx, reply, err)
	return err
}

// unaryCall is one mirrored unary call. The caller's goroutine builds it
// and sends the legacy result, once, into a buffer; the candidate
// goroutine owns everything else.
type unaryCall struct {
	p         *ParallelRun
	cc        *grpc.ClientConn // the legacy connection, for noise probes
	method    string           // as gRPC names it: /pkg.Service/Method
	e         *methodEntry
	probe     bool // the call probes a failing candidate
	mem       *allowance
	req       proto.Message // our own copy
	replyType protoreflect.MessageType
	opts      []grpc.CallOption
	parent    context.Context // the caller's, without its cancellation
	deadline  time.Time
	start     time.Time
	// cancel ends the candidate call early: when the caller gives up or
	// the legacy call panics, there is nothing left to compare with.
	cancel context.CancelFunc
	legacy chan legacyResult // buffered: the caller never waits
}

type legacyResult struct {
	side
	callerGone bool
	panicked   bool
	overBudget bool   // the reply did not fit in the memory budget
	problem    string // copying the reply failed
	reply      []byte // a copy of the reply, encoded
}

// startUnary decides whether to mirror and, if so, copies the request and
// starts the candidate goroutine. It returns nil when the call is not
// mirrored. Whatever goes wrong here, the caller's call goes on.
func (p *ParallelRun) startUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, mode callMode, opts []grpc.CallOption) (c *unaryCall) {
	var st starting
	defer func() {
		if v := recover(); v != nil {
			p.recovered(ctx, method, &st, v)
			c = nil
		}
	}()
	if st.e, st.probe = p.admit(ctx, method, mode); st.e == nil {
		return nil
	}
	e := st.e
	reqMsg, ok1 := req.(proto.Message)
	replyMsg, ok2 := reply.(proto.Message)
	if !ok1 || !ok2 {
		e.breaker.abort(st.probe)
		p.tel.skip(ctx, e.attrs, ReasonNotProto)
		return nil
	}
	if st.mem = p.enter(ctx, e, int64(proto.Size(reqMsg)), p.adm.budget); st.mem == nil {
		e.breaker.abort(st.probe)
		return nil
	}
	c = &unaryCall{
		p:      p,
		cc:     cc,
		method: method,
		e:      e,
		probe:  st.probe,
		mem:    st.mem,
		// The types are read now: once the legacy call runs, the reply is
		// being written.
		replyType: replyMsg.ProtoReflect().Type(),
		req:       proto.Clone(reqMsg),
		opts:      candidateCallOptions(opts),
		legacy:    make(chan legacyResult, 1),
		start:     time.Now(),
	}
	c.parent, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	c.deadline, _ = ctx.Deadline()
	go c.run()
	return c
}

// finishLegacy hands the legacy result to the candidate goroutine, with a
// copy of the reply, since the caller owns it once the call returns: the
// reply as the caller got it, encoded (about the cost of a clone, in a
// third of the memory, counted exactly against the budget).
func (c *unaryCall) finishLegacy(ctx context.Context, reply any, err error) {
	r := legacyResult{side: side{done: true, err: err, dur: time.Since(c.start)}}
	r.callerGone = err != nil && ctx.Err() != nil
	if err == nil {
		func() {
			defer func() {
				if v := recover(); v != nil {
					r.problem = fmt.Sprintf("panic copying the legacy reply: %v", v)
				}
			}()
			m := reply.(proto.Message)
			size := proto.Size(m)
			if !c.mem.take(int64(size)) {
				r.overBudget = true
				return
			}
			b, err := copyOptions.Marshal(m)
			if err != nil {
				r.problem = fmt.Sprintf("copying the legacy reply: %v", err)
				return
			}
			if b == nil {
				b = []byte{}
			}
			r.reply = b
		}()
	}
	if r.callerGone || r.overBudget {
		c.cancel()
	}
	c.legacy <- r
}

func (c *unaryCall) legacyPanicked() {
	c.cancel()
	c.legacy <- legacyResult{panicked: true}
}

// run is the candidate goroutine: it calls the candidate (and, for a
// noise probe, the second legacy instance), waits for the legacy result,
// compares, and records the outcome.
func (c *unaryCall) run() {
	p := c.p
	defer p.adm.leave()
	defer c.mem.close()
	defer c.cancel()
	var f facts
	var candReply, legacyReply proto.Message
	var probe *noiseProbe
	guard(&f, func() { probe = c.startProbe() })
	if probe != nil {
		defer func() { <-probe.done }() // before the allowance closes
	}
	// The legacy result is waited for until the candidate's deadline, as
	// a stream's end is: a legacy call without a deadline of its own may
	// never end.
	until := time.Now().Add(p.maxTimeout)
	guard(&f, func() { candReply, until = c.compare(&f, until) })
	l, ok := c.awaitLegacy(until)
	switch {
	case !ok && f.internal == "" && f.abandoned == "" && !(f.candidate.err != nil && callFailure(status.Code(f.candidate.err))):
		f.abandoned = AbandonLegacyUnfinished
	case ok:
		f.legacy, f.callerGone, f.legacyPanicked = l.side, l.callerGone, l.panicked
	}
	switch {
	case !ok || f.internal != "":
	case l.problem != "":
		f.internal = l.problem
	case l.overBudget:
		f.abandoned = AbandonMemoryBound
	case l.done && l.err == nil && (probe != nil || (f.candidate.done && f.candidate.err == nil && f.abandoned == "")):
		guard(&f, func() { legacyReply = c.decodeLegacy(&f, l) })
		if legacyReply != nil && f.candidate.done && f.candidate.err == nil && f.abandoned == "" {
			guard(&f, func() { c.diff(&f, legacyReply, candReply) })
		}
	}
	var probeDiffs []protodiff.Difference
	var probed bool
	guard(&f, func() { probeDiffs, probed = c.probeDiffs(&f, legacyReply, probe) })
	f.probed = probed
	// Replies are compared only when both calls succeeded, so a status
	// difference is never one too many.
	v := decide(&f, c.e.cfg.compareMessage, math.MaxInt, func(d []protodiff.Difference) ([]protodiff.Difference, []protodiff.Difference) {
		return c.e.signals.observe(d, probed, probeDiffs)
	})
	known, failed := candidateHealth(&f)
	c.e.breaker.done(c.probe, known, failed)
	if v.outcome == parallelrunv1.Outcome_OUTCOME_MISMATCH && legacyReply == nil && ok && l.done && l.err == nil && l.reply != nil {
		// A mismatch of statuses: the legacy reply was not needed to
		// decide, but the report keeps it for a replay. A failure to
		// decode it now changes nothing.
		var later facts
		guard(&later, func() { legacyReply = c.decodeLegacy(&later, l) })
	}
	in := sent{request: c.req}
	if legacyReply != nil {
		in.replies = []proto.Message{legacyReply}
	}
	p.record(c.parent, c.e, c.start, false, &f, v, in)
}

// guard runs f, turning a panic into a failure of ours.
func guard(f *facts, fn func()) {
	defer func() {
		if v := recover(); v != nil {
			f.internal = fmt.Sprintf("panic: %v", v)
		}
	}()
	fn()
}

// awaitLegacy waits for the legacy result until the deadline.
func (c *unaryCall) awaitLegacy(deadline time.Time) (legacyResult, bool) {
	select {
	case l := <-c.legacy:
		return l, true
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case l := <-c.legacy:
		return l, true
	case <-t.C:
		return legacyResult{}, false
	}
}

// compare calls the candidate and records its side; it returns the reply
// and the candidate's deadline.
func (c *unaryCall) compare(f *facts, deadline time.Time) (proto.Message, time.Time) {
	cctx, cancel, err := c.p.candidateContext(c.parent, c.deadline, c.e.cfg)
	if err != nil {
		f.internal = err.Error()
		return nil, deadline
	}
	defer cancel()
	deadline, _ = cctx.Deadline()
	reply := c.replyType.New().Interface()
	start := time.Now()
	err = c.p.candidate.Invoke(cctx, c.method, c.req, reply, c.opts...)
	f.candidate = side{done: true, err: err, dur: time.Since(start)}
	// The reply is held until the legacy one is there: it counts too. It
	// is decoded before it can be counted, so for a moment a call holds up
	// to the candidate connection's largest message outside the budget.
	if err == nil && !c.mem.take(int64(proto.Size(reply))) {
		f.abandoned = AbandonMemoryBound
		reply = nil
	}
	return reply, deadline
}

// decodeLegacy decodes the copy of the legacy reply.
func (c *unaryCall) decodeLegacy(f *facts, l legacyResult) proto.Message {
	m := c.replyType.New().Interface()
	if err := copyDecoding.Unmarshal(l.reply, m); err != nil {
		f.internal = fmt.Sprintf("decoding a copy of the legacy reply: %v", err)
		return nil
	}
	return m
}

// diff compares the two replies, both calls having succeeded.
func (c *unaryCall) diff(f *facts, legacyReply, candReply proto.Message) {
	r := c.e.cfg.differ.Diff(legacyReply, candReply)
	f.diffs, f.truncated, f.incomplete = r.Differences, r.Truncated, r.Incomplete
}
