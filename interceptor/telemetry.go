package interceptor

import (
	"context"
	"strings"
	"sync/atomic"

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
	IncompleteKey        = attribute.Key("parallelrun.incomplete")
	SinkKey              = attribute.Key("parallelrun.sink") // the sink's index among WithSink's
	SignatureKey         = attribute.Key("parallelrun.signature")
	NoiseCountKey        = attribute.Key("parallelrun.noise_count")
	NoiseProbedKey       = attribute.Key("parallelrun.noise_probed")
)

// Reasons a call is not mirrored, the values of [ReasonKey] on
// parallelrun.skipped.
const (
	ReasonUnconfigured       = "unconfigured"
	ReasonDisabled           = "disabled"
	ReasonSampledOut         = "sampled_out"
	ReasonSkipOption         = "skip_option"
	ReasonClosed             = "closed"
	ReasonNotProto           = "not_proto"
	ReasonLegacyStreamFailed = "legacy_stream_failed" // the legacy stream did not open
	ReasonCandidateFailing   = "candidate_failing"    // see WithCandidateBreaker
)

// Reasons a call is dropped, the values of [ReasonKey] on
// parallelrun.comparisons with outcome dropped.
const (
	ReasonMaxInFlight  = "max_in_flight"
	ReasonMemoryBudget = "memory_budget"
)

// Reasons a comparison is abandoned, the values of [AbandonReasonKey].
const (
	AbandonCandidateBehind  = "candidate_behind"
	AbandonMemoryBound      = "memory_bound"
	AbandonLegacyUnfinished = "legacy_unfinished"
)

// DifferenceEvent is the name of the span event of one difference, and
// NoiseEvent of one difference explained by noise.
const (
	DifferenceEvent = "parallelrun.difference"
	NoiseEvent      = "parallelrun.noise"
)

// OtherMethod is the rpc.method of calls to methods that are not
// configured, as OpenTelemetry's conventions name methods an
// instrumentation does not recognise: the names of such calls are not
// bounded, and neither would the metrics be.
const OtherMethod = "_OTHER"

type telemetry struct {
	tracer      trace.Tracer
	meter       metric.Meter
	comparisons metric.Int64Counter
	differences metric.Int64Counter
	noise       metric.Int64Counter
	mismatches  metric.Int64Counter
	incomplete  metric.Int64Counter
	skipped     metric.Int64Counter
	legacyDur   metric.Float64Histogram
	candDur     metric.Float64Histogram
	sinkErrors  metric.Int64Counter
	reportsLost metric.Int64Counter

	// other counts the calls to methods that are not configured.
	other   *methodAttrs
	streaks *streaks
}

// methodAttrs are a method's attribute sets, built once per configured
// method, so that counting on the caller's path (skipped and dropped
// calls) allocates nothing.
type methodAttrs struct {
	name     string // pkg.Service/Method, rpc.method
	method   attribute.KeyValue
	skipped  map[string]metric.MeasurementOption
	dropped  map[string]metric.MeasurementOption
	outcomes map[parallelrunv1.Outcome]metric.MeasurementOption
	opt      metric.MeasurementOption
	streak   atomic.Pointer[streak] // set on the first call compared
}

func newTelemetry(tp trace.TracerProvider, mp metric.MeterProvider) (*telemetry, error) {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(scope)
	t := &telemetry{tracer: tp.Tracer(scope), meter: m, other: newMethodAttrs(OtherMethod)}
	var err error
	if t.comparisons, err = m.Int64Counter("parallelrun.comparisons",
		metric.WithDescription("Mirrored calls by outcome."), metric.WithUnit("{call}")); err != nil {
		return nil, err
	}
	if t.differences, err = m.Int64Counter("parallelrun.differences",
		metric.WithDescription("Calls whose legacy and candidate replies differ at a field, by index-free field path: once per call and field."),
		metric.WithUnit("{call}")); err != nil {
		return nil, err
	}
	if t.noise, err = m.Int64Counter("parallelrun.noise",
		metric.WithDescription("Calls with differences at a field explained by noise (where the legacy service disagrees with itself), by index-free field path: once per call and field."),
		metric.WithUnit("{call}")); err != nil {
		return nil, err
	}
	if t.mismatches, err = m.Int64Counter("parallelrun.mismatches",
		metric.WithDescription("Mismatched calls by signature: the distinct problems."),
		metric.WithUnit("{call}")); err != nil {
		return nil, err
	}
	if t.incomplete, err = m.Int64Counter("parallelrun.incomplete",
		metric.WithDescription("Comparisons of replies that stopped at a limit of protodiff before comparing everything, by limit."),
		metric.WithUnit("{call}")); err != nil {
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
	if t.streaks, err = streaksFor(mp, t); err != nil {
		return nil, err
	}
	return t, nil
}

// observe reports what the admission holds (calls in flight and bytes of
// the memory budget in use) and whether the kill switch is off. It returns
// the registration, to end at Close.
func (t *telemetry) observe(a *admission, disabled *atomic.Bool) (metric.Registration, error) {
	inFlight, err := t.meter.Int64ObservableGauge("parallelrun.in_flight",
		metric.WithDescription("Mirrored calls whose candidate call or comparison is not over."), metric.WithUnit("{call}"))
	if err != nil {
		return nil, err
	}
	memory, err := t.meter.Int64ObservableGauge("parallelrun.memory.used",
		metric.WithDescription("Bytes of the memory budget held by copies for comparisons."), metric.WithUnit("By"))
	if err != nil {
		return nil, err
	}
	enabled, err := t.meter.Int64ObservableGauge("parallelrun.mirroring.enabled",
		metric.WithDescription("1 while calls are mirrored as configured, 0 while the kill switch stops all mirroring."), metric.WithUnit("1"))
	if err != nil {
		return nil, err
	}
	return t.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(inFlight, a.inFlight.Load())
		o.ObserveInt64(memory, a.held.Load())
		on := int64(1)
		if disabled.Load() {
			on = 0
		}
		o.ObserveInt64(enabled, on)
		return nil
	}, inFlight, memory, enabled)
}

// methodName is a gRPC full method name ("/pkg.Service/Method") in
// OpenTelemetry's form, rpc.method ("pkg.Service/Method"), which every
// span, metric and report uses.
func methodName(fullMethod string) string { return strings.TrimPrefix(fullMethod, "/") }

func newMethodAttrs(name string) *methodAttrs {
	a := &methodAttrs{name: name, method: semconv.RPCMethod(name),
		skipped:  map[string]metric.MeasurementOption{},
		dropped:  map[string]metric.MeasurementOption{},
		outcomes: map[parallelrunv1.Outcome]metric.MeasurementOption{}}
	a.opt = metric.WithAttributeSet(attribute.NewSet(semconv.RPCSystemNameGRPC, a.method))
	for _, r := range []string{ReasonUnconfigured, ReasonDisabled, ReasonSampledOut, ReasonSkipOption, ReasonClosed, ReasonNotProto, ReasonLegacyStreamFailed, ReasonCandidateFailing} {
		a.skipped[r] = metric.WithAttributeSet(attribute.NewSet(semconv.RPCSystemNameGRPC, a.method, ReasonKey.String(r)))
	}
	dropped := OutcomeKey.String(sink.OutcomeName(parallelrunv1.Outcome_OUTCOME_DROPPED))
	for _, r := range []string{ReasonMaxInFlight, ReasonMemoryBudget} {
		a.dropped[r] = metric.WithAttributeSet(attribute.NewSet(semconv.RPCSystemNameGRPC, a.method, dropped, ReasonKey.String(r)))
	}
	for o := range parallelrunv1.Outcome_name {
		outcome := parallelrunv1.Outcome(o)
		a.outcomes[outcome] = metric.WithAttributeSet(attribute.NewSet(semconv.RPCSystemNameGRPC, a.method, OutcomeKey.String(sink.OutcomeName(outcome))))
	}
	return a
}

func (t *telemetry) skip(ctx context.Context, a *methodAttrs, reason string) {
	t.skipped.Add(ctx, 1, a.skipped[reason])
}

func (t *telemetry) drop(ctx context.Context, a *methodAttrs, reason string) {
	t.comparisons.Add(ctx, 1, a.dropped[reason])
}

func (t *telemetry) outcome(ctx context.Context, a *methodAttrs, o parallelrunv1.Outcome) {
	t.comparisons.Add(ctx, 1, a.outcomes[o])
}
