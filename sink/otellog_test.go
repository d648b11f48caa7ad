package sink_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// recordExporter keeps what the SDK exports, as an OTLP exporter would
// send it.
type recordExporter struct {
	mu      sync.Mutex
	records []sdklog.Record
}

func (e *recordExporter) Export(_ context.Context, rs []sdklog.Record) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range rs {
		e.records = append(e.records, r.Clone())
	}
	return nil
}
func (e *recordExporter) Shutdown(context.Context) error   { return nil }
func (e *recordExporter) ForceFlush(context.Context) error { return nil }

// warnAndAbove is a processor that lets only WARN and above through, as a
// deployment that keeps matches out of its log store would configure.
type warnAndAbove struct{ sdklog.Processor }

func (p warnAndAbove) Enabled(ctx context.Context, param sdklog.EnabledParameters) bool {
	return param.Severity >= log.SeverityWarn && p.Processor.Enabled(ctx, param)
}

func newLogProvider(t *testing.T, filter bool) (*sdklog.LoggerProvider, *recordExporter) {
	t.Helper()
	exp := &recordExporter{}
	var proc sdklog.Processor = sdklog.NewSimpleProcessor(exp)
	if filter {
		proc = warnAndAbove{proc}
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(proc))
	t.Cleanup(func() { _ = lp.Shutdown(context.Background()) })
	return lp, exp
}

func TestOTelLogRecords(t *testing.T) {
	lp, exp := newLogProvider(t, false)
	s, err := sink.NewOTelLog(lp)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC)
	mismatch := report(t, parallelrunv1.Outcome_OUTCOME_MISMATCH)
	mismatch.SpanId, mismatch.Signature, mismatch.Time = "00f067aa0ba902b7", "9a1b2c3d4e5f6071", timestamppb.New(at)
	mismatch.LegacyStatus = &parallelrunv1.Status{Code: "OK"}
	mismatch.CandidateStatus = &parallelrunv1.Status{Code: "OK"}
	match := report(t, parallelrunv1.Outcome_OUTCOME_MATCH)
	match.Differences, match.TraceId = nil, ""
	internal := &parallelrunv1.Report{Method: "a.B/C", Outcome: parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR, Error: "boom"}
	for _, r := range []*parallelrunv1.Report{mismatch, match, internal} {
		if err := s.Publish(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if len(exp.records) != 3 {
		t.Fatalf("%d records, want 3", len(exp.records))
	}

	rec := exp.records[0]
	if rec.EventName() != sink.EventName || rec.Severity() != log.SeverityWarn || rec.SeverityText() != "WARN" || !rec.Timestamp().Equal(at) {
		t.Errorf("record %q %v %q at %v", rec.EventName(), rec.Severity(), rec.SeverityText(), rec.Timestamp())
	}
	if rec.TraceID().String() != mismatch.GetTraceId() || rec.SpanID().String() != mismatch.GetSpanId() {
		t.Errorf("trace %s span %s, want the report's", rec.TraceID(), rec.SpanID())
	}
	// The body is the report, as the JSONL sink writes it.
	var back parallelrunv1.Report
	if err := protojson.Unmarshal([]byte(rec.Body().AsString()), &back); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&back, mismatch) {
		t.Errorf("body %v\nwant %v", &back, mismatch)
	}
	want := map[string]string{
		"rpc.system.name": "grpc", "rpc.method": mismatch.GetMethod(), "parallelrun.outcome": "mismatch",
		"parallelrun.mismatch": "true", "parallelrun.signature": "9a1b2c3d4e5f6071", "parallelrun.difference_count": "2",
		"parallelrun.path": "items[0].price.units", "parallelrun.legacy.status_code": "OK", "parallelrun.candidate.status_code": "OK",
	}
	if got := attrs(rec); !maps.Equal(got, want) {
		t.Errorf("attributes %v\nwant %v", got, want)
	}

	if rec := exp.records[1]; rec.Severity() != log.SeverityDebug || rec.TraceID().IsValid() || len(attrs(rec)) != 4 {
		t.Errorf("match: %v, trace %s, attributes %v", rec.Severity(), rec.TraceID(), attrs(rec))
	}
	if rec := exp.records[2]; rec.Severity() != log.SeverityError || rec.SeverityText() != "ERROR" || !rec.Timestamp().IsZero() {
		t.Errorf("internal error: %v %q at %v", rec.Severity(), rec.SeverityText(), rec.Timestamp())
	}
}

// What the provider is not enabled for is not built.
func TestOTelLogAsksTheProvider(t *testing.T) {
	lp, exp := newLogProvider(t, true)
	s, err := sink.NewOTelLog(lp)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []parallelrunv1.Outcome{parallelrunv1.Outcome_OUTCOME_MATCH, parallelrunv1.Outcome_OUTCOME_MISMATCH, parallelrunv1.Outcome_OUTCOME_CALLER_CANCELED} {
		if err := s.Publish(context.Background(), report(t, o)); err != nil {
			t.Fatal(err)
		}
	}
	if len(exp.records) != 1 || attrs(exp.records[0])["parallelrun.outcome"] != "mismatch" {
		t.Fatalf("records %v, want the mismatch alone", exp.records)
	}
	if _, err := sink.NewOTelLog(nil); err == nil {
		t.Error("NewOTelLog(nil): no error")
	}
}

func attrs(r sdklog.Record) map[string]string {
	m := map[string]string{}
	r.WalkAttributes(func(kv attribute.KeyValue) bool {
		m[string(kv.Key)] = kv.Value.String()
		return true
	})
	return m
}

// A report past the bound leaves out what it must, and says so in its own
// fields: the request and legacy replies first, then differences.
func TestOTelLogBoundsARecord(t *testing.T) {
	lp, exp := newLogProvider(t, false)
	s, err := sink.NewOTelLog(lp, sink.WithMaxRecordBytes(4<<10))
	if err != nil {
		t.Fatal(err)
	}
	big := report(t, parallelrunv1.Outcome_OUTCOME_MISMATCH)
	var err2 error
	if big.Request, err2 = anypb.New(&pb.GetQuoteRequest{CustomerId: strings.Repeat("c", 64<<10)}); err2 != nil {
		t.Fatal(err2)
	}
	reply, err := anypb.New(&pb.GetQuoteResponse{Quote: &pb.Quote{QuoteId: strings.Repeat("q", 64<<10)}})
	if err != nil {
		t.Fatal(err)
	}
	big.LegacyReplies = []*anypb.Any{reply}
	many := report(t, parallelrunv1.Outcome_OUTCOME_MISMATCH)
	for i := range 10_000 {
		many.Differences = append(many.Differences, &parallelrunv1.Difference{Path: fmt.Sprintf("items[%d].sku", i), Field: "items.sku"})
	}
	small := report(t, parallelrunv1.Outcome_OUTCOME_MATCH)
	for _, r := range []*parallelrunv1.Report{big, many, small} {
		if err := s.Publish(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	var got []*parallelrunv1.Report
	for _, rec := range exp.records {
		if n := len(rec.Body().AsString()); n > 4<<10 {
			t.Errorf("a body of %d bytes, bound 4 KiB", n)
		}
		var r parallelrunv1.Report
		if err := protojson.Unmarshal([]byte(rec.Body().AsString()), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, &r)
	}
	if r := got[0]; r.GetRequest() != nil || !r.GetRequestOmitted() || r.GetLegacyRepliesOmitted() != 1 || len(r.GetDifferences()) != 2 || r.GetDifferencesTruncated() {
		t.Errorf("large request and reply: %v", r)
	}
	if r := got[1]; len(r.GetDifferences()) == 0 || len(r.GetDifferences()) >= 10_000 || !r.GetDifferencesTruncated() || r.GetRequest() != nil {
		t.Errorf("10,000 differences: %d kept, truncated %v", len(r.GetDifferences()), r.GetDifferencesTruncated())
	}
	if !proto.Equal(got[2], small) {
		t.Errorf("a small report changed: %v", got[2])
	}
	if _, err := sink.NewOTelLog(lp, sink.WithMaxRecordBytes(100)); err == nil || !strings.Contains(err.Error(), "WithMaxRecordBytes(100)") {
		t.Errorf("WithMaxRecordBytes(100): %v", err)
	}
}
