package readiness_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

// t0 is the start of the runs of the tests, on a minute, so that the
// buckets of an hour's window start with it.
var t0 = time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC)

const quote = "/parallelrun.difftest.v1.QuoteService/GetQuote"

// report is a report of method with outcome at time at, changed by edits.
func report(method string, outcome parallelrunv1.Outcome, at time.Time, edits ...func(*parallelrunv1.Report)) *parallelrunv1.Report {
	r := &parallelrunv1.Report{
		Method:          method,
		Outcome:         outcome,
		Time:            timestamppb.New(at),
		LegacyStatus:    &parallelrunv1.Status{Code: "OK"},
		CandidateStatus: &parallelrunv1.Status{Code: "OK"},
	}
	for _, e := range edits {
		e(r)
	}
	return r
}

func match(at time.Time, edits ...func(*parallelrunv1.Report)) *parallelrunv1.Report {
	return report(quote, parallelrunv1.Outcome_OUTCOME_MATCH, at, edits...)
}

// mismatch is a mismatch at quote.total.nanos, with a trace ID.
func mismatch(at time.Time, edits ...func(*parallelrunv1.Report)) *parallelrunv1.Report {
	return report(quote, parallelrunv1.Outcome_OUTCOME_MISMATCH, at, append([]func(*parallelrunv1.Report){
		withDiffs(diff("quote.total.nanos", "quote.total.nanos", "500", "501")),
		withTrace("4bf92f3577b34da6a3ce929d0e0e4736"),
		withSignature("sig-nanos"),
	}, edits...)...)
}

func candidateError(at time.Time, edits ...func(*parallelrunv1.Report)) *parallelrunv1.Report {
	return report(quote, parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR, at, append([]func(*parallelrunv1.Report){
		func(r *parallelrunv1.Report) { r.CandidateStatus = &parallelrunv1.Status{Code: "UNAVAILABLE"} },
	}, edits...)...)
}

func diff(path, field, legacy, candidate string) *parallelrunv1.Difference {
	return &parallelrunv1.Difference{Path: path, Field: field, Kind: parallelrunv1.DifferenceKind_DIFFERENCE_KIND_CHANGED,
		Legacy: legacy, Candidate: candidate}
}

func withDiffs(ds ...*parallelrunv1.Difference) func(*parallelrunv1.Report) {
	return func(r *parallelrunv1.Report) { r.Differences = ds }
}

func withNoise(ds ...*parallelrunv1.Difference) func(*parallelrunv1.Report) {
	return func(r *parallelrunv1.Report) { r.Noise = ds }
}

func withTrace(id string) func(*parallelrunv1.Report) {
	return func(r *parallelrunv1.Report) { r.TraceId = id }
}

func withSignature(sig string) func(*parallelrunv1.Report) {
	return func(r *parallelrunv1.Report) { r.Signature = sig }
}

func withMethod(m string) func(*parallelrunv1.Report) {
	return func(r *parallelrunv1.Report) { r.Method = m }
}

func withLatency(legacy, candidate time.Duration) func(*parallelrunv1.Report) {
	return func(r *parallelrunv1.Report) {
		r.LegacyLatency, r.CandidateLatency = durationpb.New(legacy), durationpb.New(candidate)
	}
}

// permissive asks for little: a few calls, no time.
var permissive = &parallelrunv1.ReadinessPolicy{
	MinCompared:       proto.Int64(1),
	MinStreakCalls:    proto.Int64(1),
	MinStreakDuration: durationpb.New(0),
}

func newTracker(t testing.TB, opts ...readiness.Option) *readiness.Tracker {
	t.Helper()
	tr, err := readiness.NewTracker(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// methodStatus returns the status of method, failing the test if there is
// none.
func methodStatus(t testing.TB, st *parallelrunv1.RunStatus, method string) *parallelrunv1.MethodStatus {
	t.Helper()
	for _, m := range st.GetMethods() {
		if m.GetMethod() == method {
			return m
		}
	}
	t.Fatalf("no method %s in %v", method, st)
	return nil
}
