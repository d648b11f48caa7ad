package sink_test

// Second review of sink.OTelLog's bound on a record.

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// recordBytes is what a record carries in strings: its body and its
// attributes' keys and values.
func recordBytes(r sdklog.Record) int {
	n := len(r.Body().AsString())
	r.WalkAttributes(func(kv attribute.KeyValue) bool {
		n += len(kv.Key) + len(kv.Value.String())
		return true
	})
	return n
}

// Fixed, found by a review (sink/otellog.go, Publish; docs/deployment.md "A record is at most
// 16 KiB"; deploy/collector/config.yaml sizes its receiver as 512 records
// of at most 16 KiB): only the body is bounded. The attribute
// parallelrun.path is the first difference's path, as it is, and a path
// holds the map keys on the way in full (protodiff's appendKey quotes the
// whole key): a candidate that answers with one long map key (here 64 KiB,
// what protodiff made of two real messages) makes a record of 64 KiB past
// any bound: the body drops the difference to fit, the attribute keeps
// it. 512 such records in a batch are 32 MiB, past the Collector's 16 MiB,
// and the whole batch (every other report in it) is rejected. Bound the
// attributes too (cut the path as the body cuts its values, or leave it
// out past a few hundred bytes), and count them in the bound.
func TestAttack2OTelLogRecordBoundIncludesAttributes(t *testing.T) {
	d, err := protodiff.New()
	if err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("k", 64<<10)
	res := d.Diff(&pb.Kitchen{MStringString: map[string]string{key: "1"}}, &pb.Kitchen{MStringString: map[string]string{key: "2"}})
	if len(res.Differences) != 1 {
		t.Fatalf("differences: %v", res.Differences)
	}
	r := report(t, parallelrunv1.Outcome_OUTCOME_MISMATCH)
	r.Differences = []*parallelrunv1.Difference{{Path: res.Differences[0].Path, Field: res.Differences[0].Field,
		Kind: parallelrunv1.DifferenceKind_DIFFERENCE_KIND_CHANGED, Legacy: res.Differences[0].Legacy, Candidate: res.Differences[0].Candidate}}
	lp, exp := newLogProvider(t, false)
	s, err := sink.NewOTelLog(lp)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if len(exp.records) != 1 {
		t.Fatalf("%d records", len(exp.records))
	}
	rec := exp.records[0]
	if n := len(rec.Body().AsString()); n > sink.DefaultMaxRecordBytes {
		t.Fatalf("body %d bytes", n)
	}
	if n := recordBytes(rec); n > sink.DefaultMaxRecordBytes+1024 {
		t.Errorf("a record of %d bytes (body %d, parallelrun.path %d), bound %d", n, len(rec.Body().AsString()),
			len(attrs(rec)["parallelrun.path"]), sink.DefaultMaxRecordBytes)
	}
}

// Fixed, found by a review (sink/otellog.go, body's last resort): the report that "names the
// call" cuts the method to 512 bytes and the IDs to 64, counted before
// JSON escaping: a control character is 6 bytes of JSON, so at the least
// bound (WithMaxRecordBytes(1024), which NewOTelLog accepts) a method of
// 512 such bytes gives a body of over 3 KiB, three times the bound. The
// comment's "which the interceptor never makes" holds for the
// interceptor's methods, not for every Report a sink is handed (reports
// read back from files and republished). Cut by marshalled size, or drop
// the field when it does not fit.
func TestAttack2OTelLogLastResortWithinBound(t *testing.T) {
	lp, exp := newLogProvider(t, false)
	s, err := sink.NewOTelLog(lp, sink.WithMaxRecordBytes(1024))
	if err != nil {
		t.Fatal(err)
	}
	r := &parallelrunv1.Report{Method: strings.Repeat("\x01", 4096), Outcome: parallelrunv1.Outcome_OUTCOME_MISMATCH,
		TraceId: "4bf92f3577b34da6a3ce929d0e0e4736"}
	if err := s.Publish(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	body := exp.records[0].Body().AsString()
	var back parallelrunv1.Report
	if err := protojson.Unmarshal([]byte(body), &back); err != nil {
		t.Fatalf("body: %v", err)
	}
	if len(body) > 1024 {
		t.Errorf("a body of %d bytes, bound 1,024", len(body))
	}
}

// GUARD (passes): a report of 20,000 differences of which the first is
// larger than the bound ends, after O(log n) marshals, as a valid report
// within the bound that says it was cut, with its outcome, method,
// signature, time and trace kept.
func TestAttack2OTelLogCutReportStaysAReportGuard(t *testing.T) {
	lp, exp := newLogProvider(t, false)
	s, err := sink.NewOTelLog(lp)
	if err != nil {
		t.Fatal(err)
	}
	r := report(t, parallelrunv1.Outcome_OUTCOME_MISMATCH)
	r.Signature = "abc123"
	r.Differences = []*parallelrunv1.Difference{{Path: strings.Repeat("p", 20<<10), Field: "p"}}
	for range 20_000 {
		r.Differences = append(r.Differences, &parallelrunv1.Difference{Path: "a.b", Field: "a.b"})
	}
	r.Noise = append(r.Noise, r.Differences[1:100]...)
	if err := s.Publish(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	body := exp.records[0].Body().AsString()
	var back parallelrunv1.Report
	if err := protojson.Unmarshal([]byte(body), &back); err != nil {
		t.Fatal(err)
	}
	if len(body) > sink.DefaultMaxRecordBytes || !back.GetDifferencesTruncated() || back.GetMethod() != r.GetMethod() ||
		back.GetSignature() != "abc123" || back.GetTraceId() != r.GetTraceId() || back.GetOutcome() != r.GetOutcome() || !back.GetRequestOmitted() {
		t.Errorf("cut report of %d bytes: %v", len(body), &back)
	}
}
