package interceptor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// UnaryClientInterceptor returns the interceptor for unary RPCs, to chain
// with other middleware: grpc.WithChainUnaryInterceptor(pr.UnaryClientInterceptor()).
func (p *ParallelRun) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return p.unary
}

func (p *ParallelRun) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	mode, opts := takeCallOptions(opts)
	c := p.start(ctx, method, req, reply, mode, opts)
	if c == nil {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	start := time.Now()
	err := invoker(ctx, method, req, reply, cc, opts...)
	c.finishLegacy(ctx, reply, err, time.Since(start))
	return err
}

// call is one mirrored unary call, shared by the caller's goroutine (which
// sends the legacy result) and the candidate goroutine.
type call struct {
	p         *ParallelRun
	method    string
	attrs     *methodAttrs
	cfg       *methodConfig
	req       proto.Message            // our own copy
	replyType protoreflect.MessageType // of the caller's reply
	opts      []grpc.CallOption
	legacy    chan legacyResult // buffered: the caller never waits
}

type legacyResult struct {
	reply  proto.Message // a copy, nil on error
	err    error
	dur    time.Duration
	ctxErr error // the caller's context had ended
	panic  any   // copying the reply failed
}

// start decides whether to mirror and, if so, copies the request and
// starts the candidate goroutine. It returns nil when the call is not
// mirrored. Whatever goes wrong here, the caller's call goes on.
func (p *ParallelRun) start(ctx context.Context, method string, req, reply any, mode callMode, opts []grpc.CallOption) (c *call) {
	attrs := p.tel.method(method)
	acquired := false
	defer func() {
		if v := recover(); v != nil {
			if acquired {
				<-p.slots
			}
			p.tel.outcome(ctx, attrs, parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR)
			p.onError(fmt.Errorf("interceptor: %s: panic before the candidate call: %v", method, v))
			c = nil
		}
	}()
	if mode == modeSkip {
		p.tel.skip(ctx, attrs, ReasonSkipOption)
		return nil
	}
	if p.closed.Load() {
		p.tel.skip(ctx, attrs, ReasonClosed)
		return nil
	}
	cfg := p.methods.lookup(method)
	force := mode == modeForce
	switch {
	case cfg == nil && !force:
		p.tel.skip(ctx, attrs, ReasonUnconfigured)
		return nil
	case cfg == nil:
		cfg = p.forced
	case cfg.disabled && !force:
		p.tel.skip(ctx, attrs, ReasonDisabled)
		return nil
	case !force && cfg.sampleRate < 1 && rand.Float64() >= cfg.sampleRate:
		p.tel.skip(ctx, attrs, ReasonSampledOut)
		return nil
	}
	reqMsg, ok1 := req.(proto.Message)
	replyMsg, ok2 := reply.(proto.Message)
	if !ok1 || !ok2 {
		p.tel.skip(ctx, attrs, ReasonNotProto)
		return nil
	}
	select {
	case p.slots <- struct{}{}:
		acquired = true
	default:
		p.tel.outcome(ctx, attrs, parallelrunv1.Outcome_OUTCOME_DROPPED)
		return nil
	}
	c = &call{
		p:      p,
		method: method,
		attrs:  attrs,
		cfg:    cfg,
		req:    proto.Clone(reqMsg),
		// The type is read now: once the legacy call runs, the reply is
		// being written.
		replyType: replyMsg.ProtoReflect().Type(),
		opts:      candidateCallOptions(opts),
		legacy:    make(chan legacyResult, 1),
	}
	go c.run(ctx)
	return c
}

// finishLegacy hands the legacy outcome to the candidate goroutine. The
// reply is copied, since the caller owns it once the call returns.
func (c *call) finishLegacy(ctx context.Context, reply any, err error, dur time.Duration) {
	r := legacyResult{err: err, dur: dur, ctxErr: ctx.Err()}
	func() {
		defer func() { r.panic = recover() }()
		if err == nil {
			r.reply = proto.Clone(reply.(proto.Message))
		}
	}()
	c.legacy <- r
}

// result is what a comparison found.
type result struct {
	outcome     parallelrunv1.Outcome
	diffs       []protodiff.Difference
	truncated   bool
	legacy      legacyResult
	candErr     error
	candDur     time.Duration
	problem     string // for candidate and internal errors
	candStarted bool
	legacyKnown bool
}

// run is the candidate goroutine: candidate call, wait for the legacy
// result, compare, report. It holds a slot until the report is queued.
func (c *call) run(parent context.Context) {
	p := c.p
	defer func() { <-p.slots }()
	ctx, span := p.tel.tracer.Start(parent, "parallelrun "+c.attrs.name,
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(semconv.RPCSystemNameGRPC, c.attrs.method))
	defer span.End()
	var res result
	func() {
		defer func() {
			if v := recover(); v != nil {
				res.outcome = parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR
				res.problem = fmt.Sprintf("panic: %v", v)
			}
		}()
		res = c.compare(ctx)
	}()
	func() {
		defer func() {
			if v := recover(); v != nil {
				p.onError(fmt.Errorf("interceptor: %s: panic while reporting: %v", c.method, v))
			}
		}()
		c.report(ctx, span, res)
	}()
}

func (c *call) compare(ctx context.Context) (res result) {
	cctx, cancel, err := c.candidateContext(ctx)
	if err != nil {
		res.legacy, res.legacyKnown = <-c.legacy, true
		res.outcome, res.problem = parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR, err.Error()
		return res
	}
	candReply := c.replyType.New().Interface()
	start := time.Now()
	res.candErr = c.p.candidate.Invoke(cctx, c.method, c.req, candReply, c.opts...)
	res.candDur = time.Since(start)
	res.candStarted = true
	cancel()
	// The caller's goroutine sends exactly once, into a buffer: if this
	// goroutine fails before it reads, nobody waits.
	res.legacy, res.legacyKnown = <-c.legacy, true
	l := res.legacy

	lcode, ccode := status.Code(l.err), status.Code(res.candErr)
	switch {
	case l.panic != nil:
		res.outcome, res.problem = parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR, fmt.Sprintf("panic copying the legacy reply: %v", l.panic)
	case l.err != nil && l.ctxErr != nil:
		res.outcome = parallelrunv1.Outcome_OUTCOME_CALLER_CANCELED
	case res.candErr != nil && ccode != lcode && candidateFault(ccode):
		res.outcome, res.problem = parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR, res.candErr.Error()
	case ccode != lcode:
		res.diffs = []protodiff.Difference{{Path: StatusCodePath, Field: StatusCodePath, Kind: protodiff.Changed,
			Legacy: codeName(lcode), Candidate: codeName(ccode)}}
	case l.err != nil:
		lm, cm := status.Convert(l.err).Message(), status.Convert(res.candErr).Message()
		if c.cfg.compareMessage && lm != cm {
			res.diffs = []protodiff.Difference{{Path: StatusMessagePath, Field: StatusMessagePath, Kind: protodiff.Changed,
				Legacy: lm, Candidate: cm}}
		}
	default:
		r := c.cfg.differ.Diff(l.reply, candReply)
		res.diffs, res.truncated = r.Differences, r.Truncated
	}
	if res.outcome == parallelrunv1.Outcome_OUTCOME_UNSPECIFIED {
		res.outcome = parallelrunv1.Outcome_OUTCOME_MATCH
		if len(res.diffs) > 0 {
			res.outcome = parallelrunv1.Outcome_OUTCOME_MISMATCH
		}
	}
	return res
}

// Paths of the differences in gRPC status; '-' cannot occur in a field
// path, so they never clash with a reply's fields.
const (
	StatusCodePath    = "grpc-status"
	StatusMessagePath = "grpc-message"
)

// candidateFault tells failures of the call itself from answers of the
// candidate's logic: unreachable, cancelled, or out of time. A deadline is
// never the candidate's answer: it expires on the candidate's side as soon
// as on ours (gRPC sends the deadline along), so either may report it.
func candidateFault(code codes.Code) bool {
	switch code {
	case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded:
		return true
	}
	return false
}

// candidateContext keeps the caller's values (trace, outgoing metadata)
// but not its cancellation, and sets the candidate's own deadline and
// metadata.
func (c *call) candidateContext(ctx context.Context) (cctx context.Context, cancel context.CancelFunc, err error) {
	timeout := c.cfg.timeout
	if timeout == 0 {
		timeout = c.p.maxTimeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(dl))
		}
	}
	cctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), timeout)
	md := metadata.MD{}
	if out, ok := metadata.FromOutgoingContext(ctx); ok {
		md = out.Copy()
	}
	md.Set(RoleKey, "candidate")
	if rewrite := c.p.rewriteMD; rewrite != nil {
		defer func() {
			if v := recover(); v != nil {
				cancel()
				cctx, cancel, err = nil, nil, fmt.Errorf("panic in the candidate metadata hook: %v", v)
			}
		}()
		md = rewrite(cctx, md)
	}
	return metadata.NewOutgoingContext(cctx, md), cancel, nil
}

// report records the result on the span, in metrics and in a report.
func (c *call) report(ctx context.Context, span trace.Span, res result) {
	p := c.p
	l := res.legacy
	lcode, ccode := "", ""
	if res.legacyKnown {
		lcode = codeName(status.Code(l.err))
	}
	if res.candStarted {
		ccode = codeName(status.Code(res.candErr))
	}
	mismatch := res.outcome == parallelrunv1.Outcome_OUTCOME_MISMATCH
	span.SetAttributes(
		OutcomeKey.String(sink.OutcomeName(res.outcome)),
		MismatchKey.Bool(mismatch),
		DifferenceCountKey.Int(len(res.diffs)),
		LegacyStatusKey.String(lcode),
		CandidateStatusKey.String(ccode),
		LegacyDurationKey.Float64(float64(l.dur.Microseconds())/1000),
		CandidateDurationKey.Float64(float64(res.candDur.Microseconds())/1000),
	)
	for i, d := range res.diffs {
		if i == p.maxSpanEvents {
			break
		}
		span.AddEvent(DifferenceEvent, trace.WithAttributes(
			PathKey.String(d.Path), FieldKey.String(d.Field), KindKey.String(d.Kind.String()),
			LegacyValueKey.String(d.Legacy), CandidateValueKey.String(d.Candidate)))
	}
	switch res.outcome {
	case parallelrunv1.Outcome_OUTCOME_MISMATCH:
		span.SetStatus(otelcodes.Error, fmt.Sprintf("candidate reply differs in %d places", len(res.diffs)))
	case parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR, parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR:
		span.SetStatus(otelcodes.Error, res.problem)
	}

	p.tel.outcome(ctx, c.attrs, res.outcome)
	for _, d := range res.diffs {
		p.tel.differences.Add(ctx, 1, metric.WithAttributes(semconv.RPCSystemNameGRPC, c.attrs.method, FieldKey.String(d.Field)))
	}
	if res.legacyKnown {
		p.tel.legacyDur.Record(ctx, l.dur.Seconds(), c.attrs.opt)
	}
	if res.candStarted {
		p.tel.candDur.Record(ctx, res.candDur.Seconds(), c.attrs.opt)
	}
	if res.outcome == parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR {
		p.onError(fmt.Errorf("interceptor: %s: %s", c.method, res.problem))
	}
	// End the span before the report is out, so that whoever reads the
	// report finds the span complete. (The deferred End in run is then a
	// no-op.)
	span.End()
	if p.queue == nil {
		return
	}

	rep := &parallelrunv1.Report{
		Method:               c.method,
		Outcome:              res.outcome,
		DifferencesTruncated: res.truncated,
		Time:                 timestamppb.Now(),
		Error:                res.problem,
	}
	if res.legacyKnown {
		rep.LegacyStatus = &parallelrunv1.Status{Code: lcode, Message: status.Convert(l.err).Message()}
		rep.LegacyLatency = durationpb.New(l.dur)
	}
	if res.candStarted {
		rep.CandidateStatus = &parallelrunv1.Status{Code: ccode, Message: status.Convert(res.candErr).Message()}
		rep.CandidateLatency = durationpb.New(res.candDur)
	}
	if sc := span.SpanContext(); sc.IsValid() {
		rep.TraceId, rep.SpanId = sc.TraceID().String(), sc.SpanID().String()
	}
	for _, d := range res.diffs {
		rep.Differences = append(rep.Differences, &parallelrunv1.Difference{
			Path: d.Path, Field: d.Field, Kind: parallelrunv1.DifferenceKind(d.Kind),
			Legacy: d.Legacy, Candidate: d.Candidate,
		})
	}
	if p.maxRequestBytes > 0 {
		// c.req is our own copy and the candidate call is over: redact it
		// in place.
		protodiff.Redact(c.req)
		if proto.Size(c.req) > p.maxRequestBytes {
			rep.RequestOmitted = true
		} else if a, err := anypb.New(c.req); err == nil {
			rep.Request = a
		}
	}
	p.enqueue(ctx, rep)
}

// codeName is a status code's canonical name, as in the gRPC spec and
// OpenTelemetry's rpc.response.status_code: "OK", "NOT_FOUND".
func codeName(c codes.Code) string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return c.String()
}

var codeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}
