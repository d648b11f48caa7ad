package interceptor

import (
	"context"
	"strings"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

const scope = "github.com/parallelrun/grpc-parallelrun/interceptor"

// Attribute keys of spans and metrics, besides the semantic conventions'
// rpc.system.name and rpc.method.
const (
	OutcomeKey           = attribute.Key("parallelrun.outcome")
	MismatchKey          = attribute.Key("parallelrun.mismatch")
	DifferenceCountKey   = attribute.Key("parallelrun.difference_count")
	LegacyStatusKey      = attribute.Key("parallelrun.legacy.status_code")
	CandidateStatusKey   = attribute.Key("parallelrun.candidate.status_code")
	LegacyDurationKey    = attribute.Key("parallelrun.legacy.duration_ms")
	CandidateDurationKey = attribute.Key("parallelrun.candidate.duration_ms")
	FieldKey             = attribute.Key("parallelrun.field")
	PathKey              = attribute.Key("parallelrun.path")
	KindKey              = attribute.Key("parallelrun.kind")
	LegacyValueKey       = attribute.Key("parallelrun.legacy")
	CandidateValueKey    = attribute.Key("parallelrun.candidate")
	ReasonKey            = attribute.Key("parallelrun.reason")
	LegacyMessagesKey    = attribute.Key("parallelrun.legacy.messages")
	CandidateMessagesKey = attribute.Key("parallelrun.candidate.messages")
	AbandonReasonKey     = attribute.Key("parallelrun.abandon_reason")
)

// Reasons a call is not mirrored, the values of [ReasonKey].
const (
	ReasonUnconfigured       = "unconfigured"
	ReasonDisabled           = "disabled"
	ReasonSampledOut         = "sampled_out"
	ReasonSkipOption         = "skip_option"
	ReasonClosed             = "closed"
	ReasonNotProto           = "not_proto"
	ReasonLegacyStreamFailed = "legacy_stream_failed" // the legacy stream did not open
)

// Reasons a stream comparison is abandoned, the values of
// [AbandonReasonKey].
const (
	AbandonCandidateBehind  = "candidate_behind"
	AbandonMemoryBound      = "memory_bound"
	AbandonLegacyUnfinished = "legacy_unfinished"
)

// DifferenceEvent is the name of the span event of one difference.
const DifferenceEvent = "parallelrun.difference"

type telemetry struct {
	tracer      trace.Tracer
	comparisons metric.Int64Counter
	differences metric.Int64Counter
	skipped     metric.Int64Counter
	legacyDur   metric.Float64Histogram
	candDur     metric.Float64Histogram
	sinkErrors  metric.Int64Counter
	reportsLost metric.Int64Counter

	// Attribute sets per method, built once: metrics on the caller's path
	// (skipped and dropped calls) then cost no allocation.
	methods sync.Map // string -> *methodAttrs
}

type methodAttrs struct {
	name     string // pkg.Service/Method
	method   attribute.KeyValue
	skipped  map[string]metric.MeasurementOption
	outcomes map[parallelrunv1.Outcome]metric.MeasurementOption
	opt      metric.MeasurementOption
}

func newTelemetry(tp trace.TracerProvider, mp metric.MeterProvider) (*telemetry, error) {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(scope)
	t := &telemetry{tracer: tp.Tracer(scope)}
	var err error
	if t.comparisons, err = m.Int64Counter("parallelrun.comparisons",
		metric.WithDescription("Mirrored calls by outcome."), metric.WithUnit("{call}")); err != nil {
		return nil, err
	}
	if t.differences, err = m.Int64Counter("parallelrun.differences",
		metric.WithDescription("Field differences between legacy and candidate replies, by index-free field path."),
		metric.WithUnit("{difference}")); err != nil {
		return nil, err
	}
	if t.skipped, err = m.Int64Counter("parallelrun.skipped",
		metric.WithDescription("Calls not mirrored, by reason."), metric.WithUnit("{call}")); err != nil {
		return nil, err
	}
	buckets := metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
	if t.legacyDur, err = m.Float64Histogram("parallelrun.legacy.duration",
		metric.WithDescription("Latency of legacy calls that were mirrored."), metric.WithUnit("s"), buckets); err != nil {
		return nil, err
	}
	if t.candDur, err = m.Float64Histogram("parallelrun.candidate.duration",
		metric.WithDescription("Latency of candidate calls."), metric.WithUnit("s"), buckets); err != nil {
		return nil, err
	}
	if t.sinkErrors, err = m.Int64Counter("parallelrun.sink.errors",
		metric.WithDescription("Reports a sink failed to publish."), metric.WithUnit("{report}")); err != nil {
		return nil, err
	}
	if t.reportsLost, err = m.Int64Counter("parallelrun.reports.dropped",
		metric.WithDescription("Reports dropped because the sink queue was full."), metric.WithUnit("{report}")); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *telemetry) method(fullMethod string) *methodAttrs {
	if a, ok := t.methods.Load(fullMethod); ok {
		return a.(*methodAttrs)
	}
	name := strings.TrimPrefix(fullMethod, "/")
	a := &methodAttrs{name: name, method: semconv.RPCMethod(name),
		skipped: map[string]metric.MeasurementOption{}, outcomes: map[parallelrunv1.Outcome]metric.MeasurementOption{}}
	a.opt = metric.WithAttributeSet(attribute.NewSet(semconv.RPCSystemNameGRPC, a.method))
	for _, r := range []string{ReasonUnconfigured, ReasonDisabled, ReasonSampledOut, ReasonSkipOption, ReasonClosed, ReasonNotProto, ReasonLegacyStreamFailed} {
		a.skipped[r] = metric.WithAttributeSet(attribute.NewSet(semconv.RPCSystemNameGRPC, a.method, ReasonKey.String(r)))
	}
	for o := range parallelrunv1.Outcome_name {
		outcome := parallelrunv1.Outcome(o)
		a.outcomes[outcome] = metric.WithAttributeSet(attribute.NewSet(semconv.RPCSystemNameGRPC, a.method, OutcomeKey.String(sink.OutcomeName(outcome))))
	}
	actual, _ := t.methods.LoadOrStore(fullMethod, a)
	return actual.(*methodAttrs)
}

func (t *telemetry) skip(ctx context.Context, a *methodAttrs, reason string) {
	t.skipped.Add(ctx, 1, a.skipped[reason])
}

func (t *telemetry) outcome(ctx context.Context, a *methodAttrs, o parallelrunv1.Outcome) {
	t.comparisons.Add(ctx, 1, a.outcomes[o])
}
