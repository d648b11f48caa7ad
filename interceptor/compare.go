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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// Paths of the differences in gRPC status; '-' cannot occur in a field
// path, so they never clash with a reply's fields.
const (
	StatusCodePath    = "grpc-status"
	StatusMessagePath = "grpc-message"
)

// admit decides, on the caller's path, whether a call is mirrored, and
// counts it when not. It returns the method's config, or nil.
func (p *ParallelRun) admit(ctx context.Context, attrs *methodAttrs, method string, mode callMode) *methodConfig {
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
		return p.forced
	case cfg.disabled && !force:
		p.tel.skip(ctx, attrs, ReasonDisabled)
		return nil
	case !force && cfg.sampleRate < 1 && rand.Float64() >= cfg.sampleRate:
		p.tel.skip(ctx, attrs, ReasonSampledOut)
		return nil
	}
	return cfg
}

// acquire takes a slot for a call in flight without waiting; when none is
// free, the call counts as dropped.
func (p *ParallelRun) acquire(ctx context.Context, attrs *methodAttrs) bool {
	select {
	case p.slots <- struct{}{}:
		return true
	default:
		p.tel.outcome(ctx, attrs, parallelrunv1.Outcome_OUTCOME_DROPPED)
		return false
	}
}

// candidateContext keeps the caller's values (trace, outgoing metadata)
// but not its cancellation, and sets the candidate's own deadline and
// metadata. base must already be detached from the caller's cancellation.
func (p *ParallelRun) candidateContext(base context.Context, callerDeadline time.Time, cfg *methodConfig) (cctx context.Context, cancel context.CancelFunc, err error) {
	timeout := cfg.timeout
	if timeout == 0 {
		timeout = p.maxTimeout
		if !callerDeadline.IsZero() {
			timeout = min(timeout, time.Until(callerDeadline))
		}
	}
	cctx, cancel = context.WithTimeout(base, timeout)
	md := metadata.MD{}
	if out, ok := metadata.FromOutgoingContext(base); ok {
		md = out.Copy()
	}
	md.Set(RoleKey, "candidate")
	if rewrite := p.rewriteMD; rewrite != nil {
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

// result is what a comparison found.
type result struct {
	outcome   parallelrunv1.Outcome
	diffs     []protodiff.Difference
	truncated bool
	problem   string // for candidate and internal errors

	legacyErr   error
	legacyDur   time.Duration
	legacyKnown bool
	candErr     error
	candDur     time.Duration
	candStarted bool

	req           proto.Message // our own copy of the request, to keep in the report
	streaming     bool
	legacyMsgs    int
	candMsgs      int
	abandonReason string
}

// judgeStatus compares the final statuses of both calls, once both are
// known. It reports whether the replies are to be compared too (both OK).
func (res *result) judgeStatus(cfg *methodConfig, callerGaveUp bool) bool {
	lcode, ccode := status.Code(res.legacyErr), status.Code(res.candErr)
	switch {
	case callerGaveUp:
		res.outcome = parallelrunv1.Outcome_OUTCOME_CALLER_CANCELED
	case res.legacyErr != nil && ccode != lcode && candidateFault(lcode):
		res.outcome, res.problem = parallelrunv1.Outcome_OUTCOME_LEGACY_ERROR, res.legacyErr.Error()
	case res.candErr != nil && ccode != lcode && candidateFault(ccode):
		res.outcome, res.problem = parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR, res.candErr.Error()
	case ccode != lcode:
		res.diffs = append(res.diffs, protodiff.Difference{Path: StatusCodePath, Field: StatusCodePath, Kind: protodiff.Changed,
			Legacy: codeName(lcode), Candidate: codeName(ccode)})
	case res.legacyErr != nil:
		lm, cm := status.Convert(res.legacyErr).Message(), status.Convert(res.candErr).Message()
		if cfg.compareMessage && lm != cm {
			res.diffs = append(res.diffs, protodiff.Difference{Path: StatusMessagePath, Field: StatusMessagePath, Kind: protodiff.Changed,
				Legacy: lm, Candidate: cm})
		}
	default:
		return true
	}
	return false
}

// settle sets match or mismatch when nothing else decided the outcome.
func (res *result) settle() {
	if res.outcome == parallelrunv1.Outcome_OUTCOME_UNSPECIFIED {
		res.outcome = parallelrunv1.Outcome_OUTCOME_MATCH
		if len(res.diffs) > 0 {
			res.outcome = parallelrunv1.Outcome_OUTCOME_MISMATCH
		}
	}
}

// candidateFault tells failures of a call itself from answers of the
// service's logic: unreachable, cancelled, or out of time. It serves for
// both sides. A deadline is
// never the candidate's answer: it expires on the candidate's side as soon
// as on ours (gRPC sends the deadline along), so either may report it.
func candidateFault(code codes.Code) bool {
	switch code {
	case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded:
		return true
	}
	return false
}

// callInfo is what the report of one mirrored call needs besides the
// result.
type callInfo struct {
	method string
	attrs  *methodAttrs
}

// runComparison runs compare in a span, recovers its panics, reports the
// result, and frees the call's slot. It is the body of every candidate
// goroutine.
func (p *ParallelRun) runComparison(parent context.Context, ci callInfo, compare func(context.Context) result) {
	defer func() { <-p.slots }()
	ctx, span := p.tel.tracer.Start(parent, "parallelrun "+ci.attrs.name,
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(semconv.RPCSystemNameGRPC, ci.attrs.method))
	defer span.End()
	var res result
	func() {
		defer func() {
			if v := recover(); v != nil {
				res.outcome = parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR
				res.problem = fmt.Sprintf("panic: %v", v)
			}
		}()
		res = compare(ctx)
	}()
	func() {
		defer func() {
			if v := recover(); v != nil {
				p.onError(fmt.Errorf("interceptor: %s: panic while reporting: %v", ci.method, v))
			}
		}()
		p.report(ctx, span, ci, res)
	}()
}

// report records the result on the span, in metrics and in a report.
func (p *ParallelRun) report(ctx context.Context, span trace.Span, ci callInfo, res result) {
	lcode, ccode := "", ""
	if res.legacyKnown {
		lcode = codeName(status.Code(res.legacyErr))
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
		LegacyDurationKey.Float64(float64(res.legacyDur.Microseconds())/1000),
		CandidateDurationKey.Float64(float64(res.candDur.Microseconds())/1000),
	)
	if res.streaming {
		span.SetAttributes(LegacyMessagesKey.Int(res.legacyMsgs), CandidateMessagesKey.Int(res.candMsgs))
		if res.abandonReason != "" {
			span.SetAttributes(AbandonReasonKey.String(res.abandonReason))
		}
	}
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
	case parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR, parallelrunv1.Outcome_OUTCOME_LEGACY_ERROR, parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR:
		span.SetStatus(otelcodes.Error, res.problem)
	case parallelrunv1.Outcome_OUTCOME_ABANDONED:
		span.SetStatus(otelcodes.Error, "comparison abandoned: "+res.abandonReason)
	}

	p.tel.outcome(ctx, ci.attrs, res.outcome)
	for _, d := range res.diffs {
		p.tel.differences.Add(ctx, 1, metric.WithAttributes(semconv.RPCSystemNameGRPC, ci.attrs.method, FieldKey.String(d.Field)))
	}
	if res.legacyKnown {
		p.tel.legacyDur.Record(ctx, res.legacyDur.Seconds(), ci.attrs.opt)
	}
	if res.candStarted {
		p.tel.candDur.Record(ctx, res.candDur.Seconds(), ci.attrs.opt)
	}
	if res.outcome == parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR {
		p.onError(fmt.Errorf("interceptor: %s: %s", ci.method, res.problem))
	}
	// End the span before the report is out, so that whoever reads the
	// report finds the span complete. (The deferred End in run is then a
	// no-op.)
	span.End()
	if p.queue == nil {
		return
	}

	rep := &parallelrunv1.Report{
		Method:               ci.method,
		Outcome:              res.outcome,
		DifferencesTruncated: res.truncated,
		Time:                 timestamppb.Now(),
		Error:                res.problem,
		LegacyMessages:       int64(res.legacyMsgs),
		CandidateMessages:    int64(res.candMsgs),
		AbandonReason:        res.abandonReason,
	}
	if res.legacyKnown {
		rep.LegacyStatus = &parallelrunv1.Status{Code: lcode, Message: status.Convert(res.legacyErr).Message()}
		rep.LegacyLatency = durationpb.New(res.legacyDur)
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
	if req := res.req; p.maxRequestBytes > 0 && req != nil {
		// req is our own copy and the candidate call is over: redact it
		// in place.
		protodiff.Redact(req)
		if proto.Size(req) > p.maxRequestBytes {
			rep.RequestOmitted = true
		} else if a, err := anypb.New(req); err == nil {
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
