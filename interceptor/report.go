package interceptor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// sent is what the caller sent, for the report: copies that the parallel
// run owns, decoded.
type sent struct {
	request        proto.Message   // a unary or server-streaming call's request
	requestOmitted bool            // the request was left out for its size
	requests       []proto.Message // a client or bidirectional stream's first messages
	omitted        int             // messages of the stream left out for their size
	replies        []proto.Message // the legacy replies kept, in order
	repliesOmitted int             // legacy replies not kept
}

// record records a mirrored call once its outcome is known: the span
// (started now, with the call's real start time, so that a sampler sees
// the outcome), the metrics, and the report for the sinks. parent carries
// the caller's span.
func (p *ParallelRun) record(parent context.Context, e *methodEntry, start time.Time, streaming bool, f *facts, v verdict, in sent) {
	lcode, ccode := "", ""
	if f.legacy.done {
		lcode = codeName(status.Code(f.legacy.err))
	}
	if f.candidate.done {
		ccode = codeName(status.Code(f.candidate.err))
	}
	outcome := sink.OutcomeName(v.outcome)
	attrs := []attribute.KeyValue{
		semconv.RPCSystemNameGRPC, e.attrs.method,
		OutcomeKey.String(outcome),
		MismatchKey.Bool(v.outcome == parallelrunv1.Outcome_OUTCOME_MISMATCH),
		DifferenceCountKey.Int(len(v.diffs)),
		LegacyStatusKey.String(lcode),
		CandidateStatusKey.String(ccode),
		LegacyDurationKey.Float64(float64(f.legacy.dur.Microseconds()) / 1000),
		CandidateDurationKey.Float64(float64(f.candidate.dur.Microseconds()) / 1000),
	}
	if e.attrs.name != e.name {
		// Counted under OtherMethod: the span still says which method.
		attrs = append(attrs, semconv.RPCMethodOriginal(e.name))
	}
	if streaming {
		attrs = append(attrs, LegacyMessagesKey.Int(f.legacy.msgs), CandidateMessagesKey.Int(f.candidate.msgs))
	}
	if f.abandoned != "" && v.outcome == parallelrunv1.Outcome_OUTCOME_ABANDONED {
		attrs = append(attrs, AbandonReasonKey.String(f.abandoned))
	}
	if f.incomplete != "" {
		attrs = append(attrs, IncompleteKey.String(f.incomplete))
	}
	if len(v.noise) > 0 || f.probed {
		attrs = append(attrs, NoiseCountKey.Int(len(v.noise)), NoiseProbedKey.Bool(f.probed))
	}
	mismatch := v.outcome == parallelrunv1.Outcome_OUTCOME_MISMATCH
	var sig string
	if mismatch {
		sig, _, _ = signatureOf(v.diffs, lcode, ccode)
		attrs = append(attrs, SignatureKey.String(sig))
	}
	opts := []trace.SpanStartOption{trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...)}
	if p.rootSpans {
		opts = append(opts, trace.WithNewRoot())
		if link := trace.LinkFromContext(parent); link.SpanContext.IsValid() {
			opts = append(opts, trace.WithLinks(link))
		}
	}
	_, span := p.tel.tracer.Start(parent, "parallelrun "+e.name, opts...)
	for _, list := range []struct {
		name  string
		diffs []protodiff.Difference
	}{{DifferenceEvent, v.diffs}, {NoiseEvent, v.noise}} {
		for i, d := range list.diffs {
			if i == p.maxSpanEvents {
				break
			}
			span.AddEvent(list.name, trace.WithAttributes(
				PathKey.String(d.Path), FieldKey.String(d.Field), KindKey.String(d.Kind.String()),
				LegacyValueKey.String(d.Legacy), CandidateValueKey.String(d.Candidate)))
		}
	}
	if p.errorStatus[v.outcome] {
		span.SetStatus(otelcodes.Error, describe(v, f))
	}
	sc := span.SpanContext()
	// The span ends before the report is out, so that whoever reads the
	// report finds the span complete.
	span.End()

	ctx := context.WithoutCancel(parent)
	now := time.Now()
	p.tel.outcome(ctx, e.attrs, v.outcome)
	st := p.tel.streaks.of(e.attrs)
	if mismatch || v.outcome == parallelrunv1.Outcome_OUTCOME_MATCH {
		st.compared(now, mismatch)
	}
	for _, field := range distinctFields(v.diffs) {
		p.tel.differences.Add(ctx, 1, metric.WithAttributes(semconv.RPCSystemNameGRPC, e.attrs.method, FieldKey.String(st.fieldLabel(field))))
	}
	for _, field := range distinctFields(v.noise) {
		p.tel.noise.Add(ctx, 1, metric.WithAttributes(semconv.RPCSystemNameGRPC, e.attrs.method, FieldKey.String(st.fieldLabel(field))))
	}
	if mismatch {
		traceID := ""
		if sc.IsValid() {
			traceID = sc.TraceID().String()
		}
		// Counted under the signature the method's bound allows.
		counted := e.signals.mismatch(v.diffs, lcode, ccode, traceID)
		p.tel.mismatches.Add(ctx, 1, metric.WithAttributes(semconv.RPCSystemNameGRPC, e.attrs.method, SignatureKey.String(counted)))
	}
	if f.incomplete != "" {
		p.tel.incomplete.Add(ctx, 1, metric.WithAttributes(semconv.RPCSystemNameGRPC, e.attrs.method, ReasonKey.String(f.incomplete)))
	}
	if f.legacy.done {
		p.tel.legacyDur.Record(ctx, f.legacy.dur.Seconds(), e.attrs.opt)
	}
	if f.candidate.done {
		p.tel.candDur.Record(ctx, f.candidate.dur.Seconds(), e.attrs.opt)
	}
	if v.outcome == parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR {
		p.onError(fmt.Errorf("interceptor: %s: %s", e.name, v.problem))
	}
	rep := &parallelrunv1.Report{
		Method:               e.name,
		Outcome:              v.outcome,
		DifferencesTruncated: v.truncated,
		Time:                 timestamppb.New(now),
		Error:                strings.ToValidUTF8(v.problem, "\uFFFD"),
		Incomplete:           f.incomplete,
		NoiseProbed:          f.probed,
		Signature:            sig,
	}
	if streaming {
		rep.LegacyMessages, rep.CandidateMessages = int64(f.legacy.msgs), int64(f.candidate.msgs)
	}
	if v.outcome == parallelrunv1.Outcome_OUTCOME_ABANDONED {
		rep.AbandonReason = f.abandoned
	}
	if f.legacy.done {
		rep.LegacyStatus = &parallelrunv1.Status{Code: lcode, Message: statusMessage(f.legacy.err)}
		rep.LegacyLatency = durationpb.New(f.legacy.dur)
	}
	if f.candidate.done {
		rep.CandidateStatus = &parallelrunv1.Status{Code: ccode, Message: statusMessage(f.candidate.err)}
		rep.CandidateLatency = durationpb.New(f.candidate.dur)
	}
	if sc.IsValid() {
		rep.TraceId, rep.SpanId = sc.TraceID().String(), sc.SpanID().String()
	}
	rep.Differences = reportDiffs(v.diffs)
	rep.Noise = reportDiffs(v.noise)
	// The tracker keeps copies of what it needs; the rest is for sinks.
	p.foldDrops(e)
	p.tracker.Add(rep)
	if len(p.reports) == 0 {
		return
	}
	p.addRequests(rep, in)
	if mismatch {
		p.addReplies(rep, in, e.cfg.differ)
	}
	p.publish(ctx, rep)
}

// distinctFields are the index-free fields of diffs, each once, in order
// of appearance: a call counts once at a field however many elements of a
// list differ there, as the readiness package counts it, and a reply with
// a long list that differs costs one metric update, not one per element.
func distinctFields(diffs []protodiff.Difference) []string {
	if len(diffs) == 0 {
		return nil
	}
	out := make([]string, 0, min(len(diffs), 16))
	var seen map[string]bool // past a few fields, where a scan would cost more
	for _, d := range diffs {
		switch {
		case seen != nil:
			if seen[d.Field] {
				continue
			}
			seen[d.Field] = true
		case slices.Contains(out, d.Field):
			continue
		case len(out) == 8:
			seen = make(map[string]bool, 16)
			for _, f := range out {
				seen[f] = true
			}
			seen[d.Field] = true
		}
		out = append(out, d.Field)
	}
	return out
}

func reportDiffs(diffs []protodiff.Difference) []*parallelrunv1.Difference {
	if len(diffs) == 0 {
		return nil
	}
	out := make([]*parallelrunv1.Difference, len(diffs))
	for i, d := range diffs {
		out[i] = &parallelrunv1.Difference{Path: d.Path, Field: d.Field, Kind: parallelrunv1.DifferenceKind(d.Kind),
			Legacy: d.Legacy, Candidate: d.Candidate}
	}
	return out
}

// addRequests puts what the caller sent into the report, redacted (the
// copies are the parallel run's own and the candidate is done with them),
// within the size limit.
func (p *ParallelRun) addRequests(rep *parallelrunv1.Report, in sent) {
	if p.maxRequestBytes == 0 {
		return
	}
	rep.RequestOmitted = in.requestOmitted
	if in.request != nil {
		protodiff.Redact(in.request)
		if proto.Size(in.request) > p.maxRequestBytes {
			rep.RequestOmitted = true
		} else if a, err := anypb.New(in.request); err == nil {
			rep.Request = a
		}
	}
	room := p.maxRequestBytes
	for i, m := range in.requests {
		protodiff.Redact(m)
		a, err := anypb.New(m)
		if err != nil || proto.Size(a) > room {
			rep.RequestsOmitted = int64(len(in.requests) - i + in.omitted)
			return
		}
		room -= proto.Size(a)
		rep.Requests = append(rep.Requests, a)
	}
	rep.RequestsOmitted = int64(in.omitted)
}

// addReplies puts the legacy replies into the report of a mismatch,
// redacted as the method's differences are, within the size limit, so that the call can be replayed against
// a fixed candidate without the legacy service.
func (p *ParallelRun) addReplies(rep *parallelrunv1.Report, in sent, d *protodiff.Differ) {
	if p.maxRequestBytes == 0 {
		return
	}
	room := p.maxRequestBytes
	for i, m := range in.replies {
		// What the method's differences never show (its redacted paths,
		// debug_redact fields), its stored replies do not hold either.
		d.Redact(m)
		a, err := anypb.New(m)
		if err != nil || proto.Size(a) > room {
			rep.LegacyRepliesOmitted = int64(len(in.replies) - i + in.repliesOmitted)
			return
		}
		room -= proto.Size(a)
		rep.LegacyReplies = append(rep.LegacyReplies, a)
	}
	rep.LegacyRepliesOmitted = int64(in.repliesOmitted)
}

// describe says in a few words why a span's status is Error.
func describe(v verdict, f *facts) string {
	switch v.outcome {
	case parallelrunv1.Outcome_OUTCOME_MISMATCH:
		return fmt.Sprintf("candidate reply differs in %d places", len(v.diffs))
	case parallelrunv1.Outcome_OUTCOME_ABANDONED:
		return "comparison abandoned: " + f.abandoned
	case parallelrunv1.Outcome_OUTCOME_CALLER_CANCELED:
		return "the caller gave up"
	}
	return v.problem
}
