package interceptor

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// UnaryClientInterceptor returns the interceptor for unary RPCs, to chain
// with other middleware: grpc.WithChainUnaryInterceptor(pr.UnaryClientInterceptor()).
func (p *ParallelRun) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return p.unary
}

func (p *ParallelRun) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	mode, opts := takeCallOptions(opts)
	c, legacyOpts := p.startUnary(ctx, method, req, reply, mode, opts)
	if c == nil {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	start := time.Now()
	err := invoker(ctx, method, req, reply, cc, legacyOpts...)
	c.finishLegacy(ctx, reply, err, time.Since(start))
	return err
}

// unaryCall is one mirrored unary call, shared by the caller's goroutine
// (which sends the legacy result) and the candidate goroutine.
type unaryCall struct {
	p         *ParallelRun
	method    string
	cfg       *methodConfig
	req       proto.Message // our own copy
	replyType protoreflect.MessageType
	tap       *codecTap // nil: the reply is cloned
	opts      []grpc.CallOption
	deadline  time.Time
	legacy    chan legacyResult // buffered: the caller never waits
}

type legacyResult struct {
	reply      proto.Message // a copy, or
	replyBytes []byte        // the reply's wire bytes, from the tap; both nil on error
	err        error
	dur        time.Duration
	ctxErr     error // the caller's context had ended
	panic      any   // copying the reply failed
}

// startUnary decides whether to mirror and, if so, copies the request and
// starts the candidate goroutine. It returns nil when the call is not
// mirrored. Whatever goes wrong here, the caller's call goes on.
func (p *ParallelRun) startUnary(ctx context.Context, method string, req, reply any, mode callMode, opts []grpc.CallOption) (c *unaryCall, legacyOpts []grpc.CallOption) {
	attrs := p.tel.method(method)
	acquired := false
	defer func() {
		if v := recover(); v != nil {
			if acquired {
				<-p.slots
			}
			p.tel.outcome(ctx, attrs, parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR)
			p.onError(fmt.Errorf("interceptor: %s: panic before the candidate call: %v", method, v))
			c, legacyOpts = nil, nil
		}
	}()
	cfg := p.admit(ctx, attrs, method, mode)
	if cfg == nil {
		return nil, nil
	}
	reqMsg, ok1 := req.(proto.Message)
	replyMsg, ok2 := reply.(proto.Message)
	if !ok1 || !ok2 {
		p.tel.skip(ctx, attrs, ReasonNotProto)
		return nil, nil
	}
	if acquired = p.acquire(ctx, attrs); !acquired {
		return nil, nil
	}
	c = &unaryCall{
		p:      p,
		method: method,
		cfg:    cfg,
		// The types are read now: once the legacy call runs, the reply is
		// being written.
		replyType: replyMsg.ProtoReflect().Type(),
		req:       proto.Clone(reqMsg),
		opts:      candidateCallOptions(opts),
		legacy:    make(chan legacyResult, 1),
	}
	legacyOpts = opts
	if c.tap = newCodecTap(opts); c.tap != nil {
		// The reply's bytes are tapped as gRPC decodes them: no clone on
		// the way back. The request is cloned, not tapped: the candidate
		// call starts at once instead of waiting for gRPC to encode it,
		// which measured better at the tail for small requests.
		c.tap.recvOnly = true
		legacyOpts = append(opts[:len(opts):len(opts)], grpc.ForceCodecV2(c.tap))
	}
	c.deadline, _ = ctx.Deadline()
	go p.runComparison(ctx, callInfo{method: method, attrs: attrs}, c.compare)
	return c, legacyOpts
}

// finishLegacy hands the legacy outcome to the candidate goroutine, with a
// copy of the reply, since the caller owns it once the call returns: the
// tapped wire bytes, or a clone.
func (c *unaryCall) finishLegacy(ctx context.Context, reply any, err error, dur time.Duration) {
	r := legacyResult{err: err, dur: dur, ctxErr: ctx.Err()}
	func() {
		defer func() { r.panic = recover() }()
		if err != nil {
			return
		}
		if c.tap != nil {
			r.replyBytes = c.tap.takeReceived()
		}
		if r.replyBytes == nil {
			r.reply = proto.Clone(reply.(proto.Message))
		}
	}()
	c.legacy <- r
}

func (c *unaryCall) compare(ctx context.Context) (res result) {
	res.req = c.req
	cctx, cancel, err := c.p.candidateContext(context.WithoutCancel(ctx), c.deadline, c.cfg)
	if err != nil {
		c.takeLegacy(&res)
		res.outcome, res.problem = parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR, err.Error()
		return res
	}
	candReply := c.replyType.New().Interface()
	start := time.Now()
	res.candErr = c.p.candidate.Invoke(cctx, c.method, c.req, candReply, c.opts...)
	res.candDur = time.Since(start)
	res.candStarted = true
	cancel()
	l := c.takeLegacy(&res)
	switch {
	case l.panic != nil:
		res.outcome, res.problem = parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR, fmt.Sprintf("panic copying the legacy reply: %v", l.panic)
	case res.judgeStatus(c.cfg, l.err != nil && l.ctxErr != nil):
		legacyReply := l.reply
		if legacyReply == nil {
			legacyReply = c.replyType.New().Interface()
			if err := c.tap.decode(l.replyBytes, legacyReply); err != nil {
				panic(fmt.Sprintf("decoding a copy of the legacy reply: %v", err))
			}
		}
		r := c.cfg.differ.Diff(legacyReply, candReply)
		res.diffs, res.truncated = r.Differences, r.Truncated
	}
	res.settle()
	return res
}

// takeLegacy waits for the legacy result. The caller's goroutine sends it
// exactly once, into a buffer: if this goroutine fails before it reads,
// nobody waits.
func (c *unaryCall) takeLegacy(res *result) legacyResult {
	l := <-c.legacy
	res.legacyErr, res.legacyDur, res.legacyKnown = l.err, l.dur, true
	return l
}
