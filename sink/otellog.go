package sink

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protojson"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// EventName is the event name of the log records [OTelLog] emits.
const EventName = "parallelrun.report"

// scope is the instrumentation scope of OTelLog's logger.
const scope = "github.com/parallelrun/grpc-parallelrun/sink"

// OTelLog emits each report as an OpenTelemetry log record, through a
// LoggerProvider of the user's (the SDK's, exporting over OTLP to a
// Collector), so that the reports of every client instance reach one
// store without a pipeline of the user's own.
//
// A record is the event [EventName]. Its body is the report as one line of
// protojson, exactly what [JSONL] writes, so that records taken from a log
// store feed the parallelrun command as they are. Its timestamp is the
// report's time; its trace and span IDs are the report's, so that a
// backend links the record to the comparison's span; its severity is
// DEBUG for matches and calls the caller canceled, ERROR for internal
// errors, WARN for the rest. Its attributes are those a log query filters
// on, named as the interceptor's span attributes: rpc.system.name,
// rpc.method, parallelrun.outcome, parallelrun.mismatch,
// parallelrun.signature, parallelrun.difference_count, parallelrun.path
// (the first difference's), parallelrun.legacy.status_code and
// parallelrun.candidate.status_code, each only when it has a value.
//
// The LoggerProvider decides what is emitted: a record whose severity its
// logger is not enabled for costs nothing but the question (with the SDK,
// a processor that filters by severity drops the matches, for example).
// OTelLog is safe for concurrent use. Flush does nothing: the provider's
// processors batch and export, and the application flushes the provider
// (ForceFlush or Shutdown) before it exits.
type OTelLog struct {
	logger log.Logger
	opts   protojson.MarshalOptions
}

var _ Sink = (*OTelLog)(nil)

// NewOTelLog emits through a logger of provider, under this package's
// instrumentation scope. A nil provider is an error.
func NewOTelLog(provider log.LoggerProvider) (*OTelLog, error) {
	if provider == nil {
		return nil, fmt.Errorf("sink: NewOTelLog: nil LoggerProvider")
	}
	return &OTelLog{logger: provider.Logger(scope), opts: protojson.MarshalOptions{UseProtoNames: true}}, nil
}

// Publish emits r as one log record, unless the logger is not enabled for
// its severity.
func (o *OTelLog) Publish(ctx context.Context, r *parallelrunv1.Report) error {
	sev, text := log.SeverityWarn, "WARN"
	switch r.GetOutcome() {
	case parallelrunv1.Outcome_OUTCOME_MATCH, parallelrunv1.Outcome_OUTCOME_CALLER_CANCELED:
		sev, text = log.SeverityDebug, "DEBUG"
	case parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR:
		sev, text = log.SeverityError, "ERROR"
	}
	if !o.logger.Enabled(ctx, log.EnabledParameters{Severity: sev, EventName: EventName}) {
		return nil
	}
	body, err := o.opts.Marshal(r)
	if err != nil {
		return fmt.Errorf("sink: OTelLog: %w", err)
	}
	var rec log.Record
	rec.SetEventName(EventName)
	if t := r.GetTime(); t.IsValid() {
		rec.SetTimestamp(t.AsTime())
	}
	rec.SetObservedTimestamp(time.Now())
	rec.SetSeverity(sev)
	rec.SetSeverityText(text)
	rec.SetBody(attribute.StringValue(string(body)))
	attrs := make([]attribute.KeyValue, 0, 10)
	attrs = append(attrs,
		attribute.String("rpc.system.name", "grpc"),
		attribute.String("rpc.method", r.GetMethod()),
		attribute.String("parallelrun.outcome", OutcomeName(r.GetOutcome())),
		attribute.Bool("parallelrun.mismatch", r.GetOutcome() == parallelrunv1.Outcome_OUTCOME_MISMATCH))
	if s := r.GetSignature(); s != "" {
		attrs = append(attrs, attribute.String("parallelrun.signature", s))
	}
	if ds := r.GetDifferences(); len(ds) > 0 {
		attrs = append(attrs, attribute.Int("parallelrun.difference_count", len(ds)),
			attribute.String("parallelrun.path", ds[0].GetPath()))
	}
	if c := r.GetLegacyStatus().GetCode(); c != "" {
		attrs = append(attrs, attribute.String("parallelrun.legacy.status_code", c))
	}
	if c := r.GetCandidateStatus().GetCode(); c != "" {
		attrs = append(attrs, attribute.String("parallelrun.candidate.status_code", c))
	}
	rec.AddAttributes(attrs...)
	o.logger.Emit(withReportSpan(ctx, r), rec)
	return nil
}

// Flush does nothing: the LoggerProvider's processors hold what is
// buffered.
func (o *OTelLog) Flush(context.Context) error { return nil }

// withReportSpan returns ctx with the report's span as its span context,
// which the SDK copies into the record; ctx unchanged when the report has
// no valid IDs.
func withReportSpan(ctx context.Context, r *parallelrunv1.Report) context.Context {
	tid, err := trace.TraceIDFromHex(r.GetTraceId())
	if err != nil {
		return ctx
	}
	sc := trace.SpanContextConfig{TraceID: tid}
	if sid, err := trace.SpanIDFromHex(r.GetSpanId()); err == nil {
		sc.SpanID = sid
	}
	return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(sc))
}
