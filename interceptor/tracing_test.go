package interceptor_test

import (
	"context"
	"testing"
	"time"

	otelcodes "go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// tracedEnv is an env whose spans go through sampler, with a tracer for the
// caller's spans.
func tracedEnv(t *testing.T, sampler sdktrace.Sampler, cand func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error), opts ...interceptor.Option) (*env, *tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e := newEnv(t, envConfig{legacy: price(10), candidate: cand, opts: append([]interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1}), interceptor.WithTracerProvider(tp)}, opts...)})
	return e, spans, tp
}

// The comparison span starts with its outcome, so that a sampler can keep
// every mismatch although the caller's trace is not sampled.
func TestSamplerSeesTheOutcome(t *testing.T) {
	sampler := sdktrace.ParentBased(sdktrace.NeverSample(),
		sdktrace.WithLocalParentNotSampled(mismatchSampler{sdktrace.NeverSample()}))
	calls := 0
	alternate := func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		calls++
		return price(int64(10+calls%2))(ctx, req) // 11 (a mismatch), then 10
	}
	e, spans, tp := tracedEnv(t, sampler, alternate)
	for i := range 2 {
		ctx, caller := tp.Tracer("test").Start(ctxTimeout(t), "caller")
		if caller.SpanContext().IsSampled() {
			t.Fatal("the caller's span is sampled")
		}
		if _, err := e.client.GetQuote(ctx, &pb.GetQuoteRequest{}); err != nil {
			t.Fatal(err)
		}
		caller.End()
		e.waitReports(t, i+1)
	}
	ended := spans.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans recorded, want the mismatch's: %v", len(ended), spanNames(ended))
	}
	if attrs := attrMap(ended[0].Attributes()); attrs["parallelrun.outcome"] != "mismatch" {
		t.Errorf("recorded %v", attrs)
	}
}

// With WithRootSpans, a comparison is a trace of its own, linked to the
// caller's span.
func TestRootSpans(t *testing.T) {
	e, spans, tp := tracedEnv(t, sdktrace.AlwaysSample(), price(11), interceptor.WithRootSpans())
	ctx, caller := tp.Tracer("test").Start(ctxTimeout(t), "caller")
	if _, err := e.client.GetQuote(ctx, &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	caller.End()
	r := e.waitReports(t, 1)[0]
	for _, s := range spans.Ended() {
		if s.Name() == "caller" {
			continue
		}
		if s.Parent().IsValid() || s.SpanContext().TraceID() == caller.SpanContext().TraceID() {
			t.Errorf("span %s has parent %v in trace %v", s.Name(), s.Parent(), s.SpanContext().TraceID())
		}
		if len(s.Links()) != 1 || s.Links()[0].SpanContext.SpanID() != caller.SpanContext().SpanID() {
			t.Errorf("links %v", s.Links())
		}
		if r.GetTraceId() != s.SpanContext().TraceID().String() {
			t.Errorf("report trace %s, span trace %s", r.GetTraceId(), s.SpanContext().TraceID())
		}
	}
}

// The span covers the comparison from the call's start, although it is
// started at the end, and it is an error only for failures of ours unless
// asked.
func TestSpanTimesAndStatus(t *testing.T) {
	slow := func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		time.Sleep(20 * time.Millisecond)
		return price(11)(ctx, req)
	}
	for _, tc := range []struct {
		name string
		opts []interceptor.Option
		want otelcodes.Code
	}{
		{"default", nil, otelcodes.Unset},
		{"mismatch as error", []interceptor.Option{interceptor.WithErrorStatus(parallelrunv1.Outcome_OUTCOME_MISMATCH)}, otelcodes.Error},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, spans, _ := tracedEnv(t, sdktrace.AlwaysSample(), slow, tc.opts...)
			before := time.Now()
			if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
				t.Fatal(err)
			}
			r := e.waitReports(t, 1)[0]
			s := spans.Ended()[0]
			if s.StartTime().Before(before) || s.EndTime().Sub(s.StartTime()) < r.GetCandidateLatency().AsDuration() {
				t.Errorf("span from %v to %v, call from %v, candidate took %v", s.StartTime(), s.EndTime(), before, r.GetCandidateLatency().AsDuration())
			}
			if s.Status().Code != tc.want {
				t.Errorf("status %v", s.Status())
			}
		})
	}
}

// One name for a method everywhere: OpenTelemetry's rpc.method, in spans,
// metrics and reports; calls to unconfigured methods are counted under
// _OTHER, since their names are not bounded.
func TestOneMethodName(t *testing.T) {
	legacy := lister(flat(10), all, nil)
	legacy.get = price(10)
	e := newEnv(t, envConfig{legacyServer: legacy, candidate: price(11), opts: []interceptor.Option{
		interceptor.WithMethod(getQuote, interceptor.MethodConfig{SampleRate: 1}),
	}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := list(t, e.client, ctxTimeout(t), 1); err != nil {
		t.Fatal(err)
	}
	r := e.waitReports(t, 1)[0]
	const name = "parallelrun.difftest.v1.QuoteService/GetQuote"
	span := onlySpan(t, e, "parallelrun "+name)
	if r.GetMethod() != name || attrMap(span.Attributes())["rpc.method"] != name {
		t.Errorf("report %q, span %v", r.GetMethod(), span.Attributes())
	}
	if got := e.counter(t, "parallelrun.comparisons", map[string]string{"rpc.method": name}); got != 1 {
		t.Errorf("%d comparisons of %s", got, name)
	}
	if got := e.counter(t, "parallelrun.skipped", map[string]string{"rpc.method": interceptor.OtherMethod, "parallelrun.reason": "unconfigured"}); got != 1 {
		t.Errorf("%d unconfigured calls under _OTHER", got)
	}
}
