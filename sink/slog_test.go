package sink_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// jsonRecords decodes the records a slog.JSONHandler wrote, without their
// time.
func jsonRecords(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var recs []map[string]any
	dec := json.NewDecoder(buf)
	for dec.More() {
		var rec map[string]any
		if err := dec.Decode(&rec); err != nil {
			t.Fatal(err)
		}
		delete(rec, slog.TimeKey)
		recs = append(recs, rec)
	}
	return recs
}

func keys(rec map[string]any) []string { return slices.Sorted(maps.Keys(rec)) }

func TestSlog(t *testing.T) {
	var buf bytes.Buffer
	s := sink.NewSlog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), 1)
	_ = s.Publish(context.Background(), report(t, parallelrunv1.Outcome_OUTCOME_MATCH))
	_ = s.Publish(context.Background(), report(t, parallelrunv1.Outcome_OUTCOME_MISMATCH))
	out := buf.String()
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("a match is logged at Debug, a mismatch at Warn:\n%s", out)
	}
	for _, want := range []string{"level=WARN", "method=/pricing.v1.PricingService/Quote", "outcome=mismatch",
		`differences="items[0].price.units changed 10 -> 11"`, "differences_omitted=1", "trace_id=4bf92f3577b34da6a3ce929d0e0e4736"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in %s", want, out)
		}
	}
	if strings.Contains(out, "total.units") {
		t.Errorf("more differences than asked for: %s", out)
	}
}

// The differences are one attribute holding a list, not a key repeated
// within the record, of which most log pipelines keep only the last.
func TestSlogDifferencesAsList(t *testing.T) {
	r := report(t, parallelrunv1.Outcome_OUTCOME_MISMATCH)
	r.Differences = append(r.Differences,
		&parallelrunv1.Difference{Path: "note", Kind: parallelrunv1.DifferenceKind_DIFFERENCE_KIND_ADDED, Candidate: `"new"`},
		&parallelrunv1.Difference{Path: "tags[1]", Kind: parallelrunv1.DifferenceKind_DIFFERENCE_KIND_REMOVED, Legacy: `"old"`})

	var buf bytes.Buffer
	_ = sink.NewSlog(slog.New(slog.NewJSONHandler(&buf, nil)), 10).Publish(context.Background(), r)
	recs := jsonRecords(t, &buf)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	want := []any{
		map[string]any{"path": "items[0].price.units", "kind": "changed", "legacy": "10", "candidate": "11"},
		map[string]any{"path": "total.units", "kind": "changed", "legacy": "10", "candidate": "11"},
		map[string]any{"path": "note", "kind": "added", "legacy": "", "candidate": `"new"`},
		map[string]any{"path": "tags[1]", "kind": "removed", "legacy": `"old"`, "candidate": ""},
	}
	got, _ := json.Marshal(recs[0]["differences"])
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(got, wantJSON) {
		t.Errorf("differences = %s, want %s", got, wantJSON)
	}

	// Like slog's own, the list leaves HTML characters as they are.
	buf.Reset()
	lt := &parallelrunv1.Report{Method: "/a.S/M", Outcome: parallelrunv1.Outcome_OUTCOME_MISMATCH, Differences: []*parallelrunv1.Difference{
		{Path: "expr", Kind: parallelrunv1.DifferenceKind_DIFFERENCE_KIND_CHANGED, Legacy: `"a<b"`, Candidate: `"a&b"`},
	}}
	_ = sink.NewSlog(slog.New(slog.NewJSONHandler(&buf, nil)), 10).Publish(context.Background(), lt)
	if want := `"legacy":"\"a<b\"","candidate":"\"a&b\""`; !strings.Contains(buf.String(), want) {
		t.Errorf("JSON record %s, want %s in it", buf.String(), want)
	}

	buf.Reset()
	_ = sink.NewSlog(slog.New(slog.NewTextHandler(&buf, nil)), 10).Publish(context.Background(), r)
	out := buf.String()
	const wantText = `differences="items[0].price.units changed 10 -> 11; total.units changed 10 -> 11; note added \"new\"; tags[1] removed \"old\""`
	if !strings.Contains(out, wantText) || strings.Count(out, "differences") != 1 || strings.Count(out, "\n") != 1 {
		t.Errorf("text record:\n%s\nwant one record with\n%s", out, wantText)
	}
}

// A record has no empty fields: what a report leaves unset is left out.
func TestSlogNoEmptyFields(t *testing.T) {
	var buf bytes.Buffer
	s := sink.NewSlog(slog.New(slog.NewJSONHandler(&buf, nil)), 3)
	_ = s.Publish(context.Background(), &parallelrunv1.Report{
		Method:  "/a.S/M",
		Outcome: parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR,
		Error:   "comparison panicked",
	})
	full := &parallelrunv1.Report{
		Method:               "/a.S/M",
		Outcome:              parallelrunv1.Outcome_OUTCOME_MISMATCH,
		TraceId:              "4bf92f3577b34da6a3ce929d0e0e4736",
		SpanId:               "00f067aa0ba902b7",
		LegacyStatus:         &parallelrunv1.Status{Code: "OK"},
		CandidateStatus:      &parallelrunv1.Status{Code: "OK"},
		LegacyLatency:        durationpb.New(3 * time.Millisecond),
		CandidateLatency:     durationpb.New(5 * time.Millisecond),
		Differences:          report(t, parallelrunv1.Outcome_OUTCOME_MISMATCH).GetDifferences(),
		DifferencesTruncated: true,
	}
	_ = s.Publish(context.Background(), full)
	recs := jsonRecords(t, &buf)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	if got, want := keys(recs[0]), []string{"error", "level", "method", "msg", "outcome"}; !slices.Equal(got, want) {
		t.Errorf("fields of a bare report = %v, want %v", got, want)
	}
	want := []string{"candidate_latency", "candidate_status", "differences", "differences_truncated", "legacy_latency",
		"legacy_status", "level", "method", "msg", "outcome", "span_id", "trace_id"}
	if got := keys(recs[1]); !slices.Equal(got, want) {
		t.Errorf("fields of a full report = %v, want %v", got, want)
	}
	if recs[1]["legacy_status"] != "OK" || recs[1]["span_id"] != "00f067aa0ba902b7" || recs[1]["differences_truncated"] != true {
		t.Errorf("full report logged as %v", recs[1])
	}
}

// Streams: the messages each side sent and why a comparison was abandoned.
func TestSlogStreamFields(t *testing.T) {
	var buf bytes.Buffer
	s := sink.NewSlog(slog.New(slog.NewTextHandler(&buf, nil)), 3)
	_ = s.Publish(context.Background(), &parallelrunv1.Report{
		Method:            "/a.S/Watch",
		Outcome:           parallelrunv1.Outcome_OUTCOME_ABANDONED,
		LegacyMessages:    0,
		CandidateMessages: 3,
		AbandonReason:     "candidate_behind",
	})
	out := buf.String()
	for _, want := range []string{"legacy_messages=0", "candidate_messages=3", "abandon_reason=candidate_behind"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in %s", want, out)
		}
	}
}

func candidateError(method, code string) *parallelrunv1.Report {
	return &parallelrunv1.Report{
		Method:          method,
		Outcome:         parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR,
		LegacyStatus:    &parallelrunv1.Status{Code: "OK"},
		CandidateStatus: &parallelrunv1.Status{Code: code},
		Error:           "rpc error: code = " + code,
	}
}

// When the candidate is down, every call fails alike: one record per method
// and status code, not one per call, and the count of the others is not
// lost.
func TestSlogCandidateErrorsLimited(t *testing.T) {
	var buf bytes.Buffer
	s := sink.NewSlog(slog.New(slog.NewJSONHandler(&buf, nil)), 3, sink.WithErrorInterval(time.Hour))
	ctx := context.Background()
	for range 5 {
		_ = s.Publish(ctx, candidateError("/a.S/M", "UNAVAILABLE"))
	}
	_ = s.Publish(ctx, candidateError("/a.S/M", "DEADLINE_EXCEEDED"))
	_ = s.Publish(ctx, candidateError("/a.S/N", "UNAVAILABLE"))
	_ = s.Publish(ctx, candidateError("/a.S/N", "UNAVAILABLE"))
	// Mismatches are findings: every one is logged.
	for range 2 {
		_ = s.Publish(ctx, report(t, parallelrunv1.Outcome_OUTCOME_MISMATCH))
	}
	recs := jsonRecords(t, &buf)
	if len(recs) != 5 {
		t.Fatalf("%d records, want 5: %v", len(recs), recs)
	}
	for _, rec := range recs {
		if _, ok := rec["suppressed"]; ok {
			t.Errorf("suppressed in a first record: %v", rec)
		}
	}

	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recs = jsonRecords(t, &buf)
	if len(recs) != 2 {
		t.Fatalf("Flush logged %d records, want 2: %v", len(recs), recs)
	}
	slices.SortFunc(recs, func(a, b map[string]any) int { return strings.Compare(a["method"].(string), b["method"].(string)) })
	for i, want := range []map[string]any{
		{"level": "WARN", "msg": "parallel run: suppressed", "method": "/a.S/M", "outcome": "candidate_error", "candidate_status": "UNAVAILABLE", "suppressed": 4.0},
		{"level": "WARN", "msg": "parallel run: suppressed", "method": "/a.S/N", "outcome": "candidate_error", "candidate_status": "UNAVAILABLE", "suppressed": 1.0},
	} {
		if !maps.Equal(recs[i], want) {
			t.Errorf("Flush logged %v, want %v", recs[i], want)
		}
	}
	// Told once.
	if err := s.Flush(ctx); err != nil || buf.Len() != 0 {
		t.Fatalf("second Flush = %v, logged %s", err, buf.String())
	}
}

func TestSlogErrorIntervalOff(t *testing.T) {
	var buf bytes.Buffer
	s := sink.NewSlog(slog.New(slog.NewTextHandler(&buf, nil)), 3, sink.WithErrorInterval(0))
	for range 5 {
		_ = s.Publish(context.Background(), candidateError("/a.S/M", "UNAVAILABLE"))
	}
	if got := strings.Count(buf.String(), "\n"); got != 5 {
		t.Fatalf("%d records, want 5", got)
	}
}
