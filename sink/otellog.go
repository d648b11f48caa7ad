package sink

import (
	"context"
	"fmt"
	"reflect"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

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
// A record's body is bounded ([WithMaxRecordBytes], 16 KiB by default),
// and its attributes are cut to 256 bytes each, so that a batch of records
// fits what an OTLP receiver takes: a body that would be
// larger leaves out the request and the legacy replies (counted as
// omitted, as the interceptor marks what it leaves out), then as many
// differences and noise differences as it must (differences_truncated),
// then the error message. Replay needs the requests and replies: keep a
// [JSONL] file for that, and the log store for reading and search.
//
// The LoggerProvider decides what is emitted: a record whose severity its
// logger is not enabled for costs nothing but the question (with the SDK,
// a processor that filters by severity drops the matches, for example).
// OTelLog is safe for concurrent use. Flush does nothing: the provider's
// processors batch and export, and the application flushes the provider
// (ForceFlush or Shutdown) before it exits.
type OTelLog struct {
	logger   log.Logger
	opts     protojson.MarshalOptions
	maxBytes int
}

var _ Sink = (*OTelLog)(nil)

// OTelLogOption configures an [OTelLog].
type OTelLogOption func(*otelLogOptions)

type otelLogOptions struct {
	maxBytes int
}

// DefaultMaxRecordBytes is the default bound on a record's body: 16 KiB,
// so that the OTLP SDK's default batch of 512 records stays within 8 MiB.
const DefaultMaxRecordBytes = 16 << 10

// maxAttrBytes bounds the longer attributes (the method, the first
// difference's path).
const maxAttrBytes = 256

// minRecordBytes is the least bound: room for a report's method, outcome,
// IDs, time and signature.
const minRecordBytes = 1 << 10

// WithMaxRecordBytes bounds a record's body to n bytes (at least 1 KiB).
func WithMaxRecordBytes(n int) OTelLogOption {
	return func(o *otelLogOptions) { o.maxBytes = n }
}

// NewOTelLog emits through a logger of provider, under this package's
// instrumentation scope. A nil provider, typed or not, is an error.
func NewOTelLog(provider log.LoggerProvider, opts ...OTelLogOption) (*OTelLog, error) {
	if isNil(provider) {
		return nil, fmt.Errorf("sink: NewOTelLog: nil LoggerProvider")
	}
	o := otelLogOptions{maxBytes: DefaultMaxRecordBytes}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxBytes < minRecordBytes {
		return nil, fmt.Errorf("sink: NewOTelLog: WithMaxRecordBytes(%d): at least %d", o.maxBytes, minRecordBytes)
	}
	return &OTelLog{logger: provider.Logger(scope), opts: protojson.MarshalOptions{UseProtoNames: true}, maxBytes: o.maxBytes}, nil
}

// isNil says whether v is nil or a nil pointer, map, slice, func, chan or
// interface in an interface.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
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
	body, err := o.body(r)
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
	// The attributes are for filtering: each cut to maxAttrBytes, so that
	// a record is at most the bound and a little over 1 KiB.
	attrs := make([]attribute.KeyValue, 0, 10)
	attrs = append(attrs,
		attribute.String("rpc.system.name", "grpc"),
		attribute.String("rpc.method", cutUTF8(r.GetMethod(), maxAttrBytes)),
		attribute.String("parallelrun.outcome", OutcomeName(r.GetOutcome())),
		attribute.Bool("parallelrun.mismatch", r.GetOutcome() == parallelrunv1.Outcome_OUTCOME_MISMATCH))
	if s := r.GetSignature(); s != "" {
		attrs = append(attrs, attribute.String("parallelrun.signature", cutUTF8(s, 64)))
	}
	if ds := r.GetDifferences(); len(ds) > 0 {
		attrs = append(attrs, attribute.Int("parallelrun.difference_count", len(ds)),
			attribute.String("parallelrun.path", cutUTF8(ds[0].GetPath(), maxAttrBytes)))
	}
	if c := r.GetLegacyStatus().GetCode(); c != "" {
		attrs = append(attrs, attribute.String("parallelrun.legacy.status_code", cutUTF8(c, 64)))
	}
	if c := r.GetCandidateStatus().GetCode(); c != "" {
		attrs = append(attrs, attribute.String("parallelrun.candidate.status_code", cutUTF8(c, 64)))
	}
	rec.AddAttributes(attrs...)
	o.logger.Emit(withReportSpan(ctx, r), rec)
	return nil
}

// body is r as protojson, within the bound: what it must leave out to fit
// is left out, largest and least needed first, and said in the report's
// own fields.
func (o *OTelLog) body(r *parallelrunv1.Report) ([]byte, error) {
	b, err := o.opts.Marshal(r)
	if err != nil || len(b) <= o.maxBytes {
		return b, err
	}
	c := proto.Clone(r).(*parallelrunv1.Report)
	if c.Request != nil {
		c.Request, c.RequestOmitted = nil, true
	}
	c.RequestsOmitted += int64(len(c.Requests))
	c.LegacyRepliesOmitted += int64(len(c.LegacyReplies))
	c.Requests, c.LegacyReplies = nil, nil
	if b, err = o.opts.Marshal(c); err != nil || len(b) <= o.maxBytes {
		return b, err
	}
	// Halve the differences until they fit, noise first: each halving
	// costs one marshal, so this is at most logarithmic in their number.
	for len(c.Noise) > 0 || len(c.Differences) > 0 {
		if len(c.Noise) > 0 {
			c.Noise = c.Noise[:len(c.Noise)/2]
		} else {
			c.Differences = c.Differences[:len(c.Differences)/2]
		}
		c.DifferencesTruncated = true
		if b, err = o.opts.Marshal(c); err != nil || len(b) <= o.maxBytes {
			return b, err
		}
	}
	c.Error = cutUTF8(c.Error, o.maxBytes/4)
	c.AbandonReason = cutUTF8(c.AbandonReason, 256)
	c.LegacyStatus = cutStatus(c.LegacyStatus, o.maxBytes/8)
	c.CandidateStatus = cutStatus(c.CandidateStatus, o.maxBytes/8)
	if b, err = o.opts.Marshal(c); err != nil || len(b) <= o.maxBytes {
		return b, err
	}
	// What is left is what names the call; its strings are halved until
	// it fits (JSON may write a byte as six).
	last := &parallelrunv1.Report{Method: cutUTF8(r.GetMethod(), 512), Outcome: r.GetOutcome(),
		TraceId: cutUTF8(r.GetTraceId(), 64), SpanId: cutUTF8(r.GetSpanId(), 64), Time: r.GetTime(),
		Signature: cutUTF8(r.GetSignature(), 64), DifferencesTruncated: true, RequestOmitted: r.GetRequest() != nil}
	for {
		if b, err = o.opts.Marshal(last); err != nil || len(b) <= o.maxBytes {
			return b, err
		}
		if last.Method == "" && last.TraceId == "" && last.SpanId == "" && last.Signature == "" {
			return b, nil // the least report there is: its outcome and time
		}
		last.Method = cutUTF8(last.Method, len(last.Method)/2)
		last.TraceId = cutUTF8(last.TraceId, len(last.TraceId)/2)
		last.SpanId = cutUTF8(last.SpanId, len(last.SpanId)/2)
		last.Signature = cutUTF8(last.Signature, len(last.Signature)/2)
	}
}

// cutUTF8 cuts s to at most n bytes, on a rune boundary.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func cutStatus(s *parallelrunv1.Status, n int) *parallelrunv1.Status {
	if s == nil || len(s.GetMessage()) <= n {
		return s
	}
	return &parallelrunv1.Status{Code: cutUTF8(s.GetCode(), 64), Message: cutUTF8(s.GetMessage(), n)}
}

// Flush does nothing: the LoggerProvider's processors hold what is
// buffered.
func (o *OTelLog) Flush(context.Context) error { return nil }

// withReportSpan returns ctx with the report's span as its span context,
// which the SDK copies into the record; with no span when the report has
// no valid trace ID.
func withReportSpan(ctx context.Context, r *parallelrunv1.Report) context.Context {
	tid, err := trace.TraceIDFromHex(r.GetTraceId())
	if err != nil {
		// None rather than the publisher's own span, which has nothing
		// to do with the comparison.
		return trace.ContextWithSpanContext(ctx, trace.SpanContext{})
	}
	sc := trace.SpanContextConfig{TraceID: tid}
	if sid, err := trace.SpanIDFromHex(r.GetSpanId()); err == nil {
		sc.SpanID = sid
	}
	return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(sc))
}
