package sink_test

// Attacks on sink.OTelLog, with the real OpenTelemetry log SDK.

import (
	"context"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/log/noop"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// callerSpan is a context with a span of the caller's, unrelated to any
// report.
func callerSpan(t *testing.T) (context.Context, trace.SpanContext) {
	t.Helper()
	tid, err := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex("b7ad6b7169203331")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	return trace.ContextWithSpanContext(context.Background(), sc), sc
}

// Fixed, found by a review: "its trace and span IDs are the report's, so that a backend links
// the record to the comparison's span". When the report has no trace ID,
// or one that TraceIDFromHex rejects (upper case, as some tools write it),
// withReportSpan leaves ctx as it is, and the SDK copies ctx's span into
// the record: the log store links the report to whatever span the
// publisher happened to be in, a trace that has nothing to do with the
// comparison (a service that re-publishes report files from a traced
// handler, a Multi sink called with the request's context). The record's
// IDs must be the report's or none: put an empty span context in ctx.
func TestAttackOTelLogRecordNotLinkedToTheCallersSpan(t *testing.T) {
	lp, exp := newLogProvider(t, false)
	s, err := sink.NewOTelLog(lp)
	if err != nil {
		t.Fatal(err)
	}
	ctx, caller := callerSpan(t)
	for _, id := range []string{"", "4BF92F3577B34DA6A3CE929D0E0E4736", "not hex", "00000000000000000000000000000000"} {
		r := report(t, parallelrunv1.Outcome_OUTCOME_MISMATCH)
		r.TraceId = id
		if err := s.Publish(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for i, rec := range exp.records {
		if rec.TraceID() == caller.TraceID() || rec.SpanID() == caller.SpanID() {
			var back parallelrunv1.Report
			_ = protojson.Unmarshal([]byte(rec.Body().AsString()), &back)
			t.Errorf("record %d: report with trace_id %q is linked to the caller's trace %s span %s", i, back.GetTraceId(), rec.TraceID(), rec.SpanID())
		}
	}
}

// Fixed, found by a review: NewOTelLog says a nil provider is an error, but a typed nil (a
// *sdklog.LoggerProvider left nil by a configuration branch, the classic
// Go interface trap) passes the check and the constructor panics in the
// SDK's Logger. It must be the same error.
func TestAttackOTelLogTypedNilProvider(t *testing.T) {
	var lp *sdklog.LoggerProvider
	var err error
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Errorf("NewOTelLog((*sdklog.LoggerProvider)(nil)) panicked: %v", v)
			}
		}()
		_, err = sink.NewOTelLog(lp)
	}()
	if err == nil && !t.Failed() {
		t.Error("NewOTelLog((*sdklog.LoggerProvider)(nil)): no error")
	}
}

// batchSizes is an exporter that keeps, per export the SDK's batch
// processor makes, the bytes of the records' bodies.
type batchSizes struct {
	mu      sync.Mutex
	batches []int
}

func (b *batchSizes) Export(_ context.Context, rs []sdklog.Record) error {
	n := 0
	for _, r := range rs {
		n += len(r.Body().AsString())
	}
	b.mu.Lock()
	b.batches = append(b.batches, n)
	b.mu.Unlock()
	return nil
}
func (b *batchSizes) Shutdown(context.Context) error   { return nil }
func (b *batchSizes) ForceFlush(context.Context) error { return nil }

// Fixed, found by a review (sink.OTelLog with the deployment guide's pipeline): the body of a
// record is the whole report, with the request and the legacy replies the
// interceptor keeps for replay (64 KiB each by default,
// WithMaxRequestBytes), base64 in JSON: about 175 KB for a mismatch. The
// guide's client batches with sdklog.NewBatchProcessor's defaults (512
// records an export) into the Collector of deploy/collector/config.yaml,
// whose OTLP gRPC receiver takes 4 MiB a message (the default). Two dozen
// such reports fill an export; the Collector answers ResourceExhausted and
// the SDK drops the whole batch, matches and mismatches alike. Reproduced
// against the real Collector (.bin/otelcol, the repository's config) and
// the real otlploggrpc exporter: 600 reports with a 12 KiB request each,
// "export of 512 records: rpc error: code = ResourceExhausted desc = grpc:
// received message larger than max (6454524 vs. 4194304)", 88 of 600
// delivered. Here, with the real SDK batch processor, one export carries
// far more than 4 MiB of bodies. OTelLog should bound a record (leave out
// requests and replies, or cut the body) and the guide and the Collector's
// config should set batch sizes and max_recv_msg_size_mib that fit.
func TestAttackOTelLogBatchesFitAnOTLPReceiver(t *testing.T) {
	exp := &batchSizes{}
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)))
	s, err := sink.NewOTelLog(lp)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("S", 60<<10)
	req, err := anypb.New(&pb.GetQuoteRequest{CustomerId: "c", Skus: []string{big}})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := anypb.New(&pb.GetQuoteResponse{Quote: &pb.Quote{QuoteId: big}})
	if err != nil {
		t.Fatal(err)
	}
	for range 600 {
		r := report(t, parallelrunv1.Outcome_OUTCOME_MISMATCH)
		r.Request, r.LegacyReplies = req, []*anypb.Any{reply}
		if err := s.Publish(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := lp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// deploy/collector/config.yaml's receiver takes 16 MiB a message: the
	// SDK's default batch of 512 records of at most 16 KiB each fits it,
	// with room for the attributes.
	const receiverLimit = 16 << 20
	for i, n := range exp.batches {
		if n > receiverLimit/2 {
			t.Errorf("export %d: %d MiB of record bodies alone, more than half the 16 MiB the guide's Collector takes", i, n>>20)
		}
	}
}

// GUARD (passes, also under -race): odd and hostile reports never panic
// and never make a record that is not the report: nil, empty, times out of
// range (an error that says so), trace and span IDs of every wrong shape,
// a 256 KiB error string of escape sequences,
// from many goroutines at once through the real batch processor; and a
// provider that is not enabled (the noop one) costs no record.
func TestAttackOTelLogOddReportsGuard(t *testing.T) {
	exp := &recordExporter{}
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)))
	s, err := sink.NewOTelLog(lp)
	if err != nil {
		t.Fatal(err)
	}
	odd := []*parallelrunv1.Report{
		nil,
		{},
		{Time: &timestamppb.Timestamp{Seconds: 253402300799}, Outcome: parallelrunv1.Outcome(1 << 20)},
		{TraceId: "4bf92f3577b34da6a3ce929d0e0e4736", SpanId: "zz"},
		{TraceId: "4bf92f3577b34da6a3ce929d0e0e473", SpanId: "00f067aa0ba902b7"},
		{TraceId: "4bf92f3577b34da6a3ce929d0e0e4736", SpanId: "0000000000000000"},
		{Error: strings.Repeat("\x1b[2J", 64<<10), Differences: []*parallelrunv1.Difference{{}}},
	}
	const workers = 8
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, r := range odd {
				if err := s.Publish(context.Background(), r); err != nil {
					t.Errorf("Publish(%v): %v", r, err)
				}
			}
		}()
	}
	wg.Wait()
	outOfRange := &parallelrunv1.Report{Time: &timestamppb.Timestamp{Seconds: -1 << 60}}
	if err := s.Publish(context.Background(), outOfRange); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("a time out of range: %v", err)
	}
	if err := lp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(exp.records) != workers*len(odd) {
		t.Fatalf("%d records, want %d", len(exp.records), workers*len(odd))
	}
	for _, rec := range exp.records {
		var back parallelrunv1.Report
		if err := protojson.Unmarshal([]byte(rec.Body().AsString()), &back); err != nil {
			t.Fatalf("body: %v", err)
		}
		matched := false
		for _, r := range odd {
			// A report past the bound is cut (its error here), and says so.
			cut := len(r.GetError()) > len(back.GetError()) && strings.HasPrefix(r.GetError(), back.GetError()) &&
				back.GetDifferencesTruncated() && len(rec.Body().AsString()) <= sink.DefaultMaxRecordBytes
			if proto.Equal(&back, r) || (r == nil && proto.Equal(&back, &parallelrunv1.Report{})) || cut {
				matched = true
			}
		}
		if !matched {
			t.Errorf("a record of %d bytes that is none of the reports, nor one cut to the bound", len(rec.Body().AsString()))
		}
		if back.GetTraceId() == "4bf92f3577b34da6a3ce929d0e0e4736" && rec.TraceID().String() != back.GetTraceId() {
			t.Errorf("record of trace %s: %s", back.GetTraceId(), rec.TraceID())
		}
	}
	quiet, err := sink.NewOTelLog(noop.NewLoggerProvider())
	if err != nil {
		t.Fatal(err)
	}
	if err := quiet.Publish(context.Background(), report(t, parallelrunv1.Outcome_OUTCOME_MISMATCH)); err != nil {
		t.Error(err)
	}
	var _ log.LoggerProvider = noop.NewLoggerProvider()
}
