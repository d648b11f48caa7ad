package sink_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// dropTime drops the time of a record, so the output is the same on every
// run.
func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// mismatch is a report with two differences.
var mismatch = &parallelrunv1.Report{
	Method:          "/pricing.v1.PricingService/Quote",
	Outcome:         parallelrunv1.Outcome_OUTCOME_MISMATCH,
	TraceId:         "4bf92f3577b34da6a3ce929d0e0e4736",
	LegacyStatus:    &parallelrunv1.Status{Code: "OK"},
	CandidateStatus: &parallelrunv1.Status{Code: "OK"},
	Differences: []*parallelrunv1.Difference{
		{Path: "items[0].price.units", Kind: parallelrunv1.DifferenceKind_DIFFERENCE_KIND_CHANGED, Legacy: "10", Candidate: "11"},
		{Path: "items[1]", Kind: parallelrunv1.DifferenceKind_DIFFERENCE_KIND_ADDED, Candidate: `{sku:"B2"}`},
	},
}

func ExampleNewSlog() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: dropTime}))
	s := sink.NewSlog(logger, 3)
	_ = s.Publish(context.Background(), mismatch)
	// Output:
	// level=WARN msg="parallel run" method=/pricing.v1.PricingService/Quote outcome=mismatch trace_id=4bf92f3577b34da6a3ce929d0e0e4736 legacy_status=OK candidate_status=OK differences="items[0].price.units changed 10 -> 11; items[1] added {sku:\"B2\"}"
}

// With a JSON handler, the differences are one array of objects, for a log
// pipeline to query.
func ExampleNewSlog_json() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: dropTime}))
	s := sink.NewSlog(logger, 3)
	_ = s.Publish(context.Background(), mismatch)
	// Output:
	// {"level":"WARN","msg":"parallel run","method":"/pricing.v1.PricingService/Quote","outcome":"mismatch","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","legacy_status":"OK","candidate_status":"OK","differences":[{"path":"items[0].price.units","kind":"changed","legacy":"10","candidate":"11"},{"path":"items[1]","kind":"added","legacy":"","candidate":"{sku:\"B2\"}"}]}
}

// While the candidate is down, its errors are logged once per interval for
// each method and status code; Flush tells how many were left out.
func ExampleWithErrorInterval() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: dropTime}))
	s := sink.NewSlog(logger, 3, sink.WithErrorInterval(time.Minute))
	for range 100 {
		_ = s.Publish(context.Background(), &parallelrunv1.Report{
			Method:          "/pricing.v1.PricingService/Quote",
			Outcome:         parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR,
			LegacyStatus:    &parallelrunv1.Status{Code: "OK"},
			CandidateStatus: &parallelrunv1.Status{Code: "UNAVAILABLE", Message: "connection refused"},
			Error:           "rpc error: code = Unavailable desc = connection refused",
		})
	}
	_ = s.Flush(context.Background())
	// Output:
	// level=WARN msg="parallel run" method=/pricing.v1.PricingService/Quote outcome=candidate_error legacy_status=OK candidate_status=UNAVAILABLE error="rpc error: code = Unavailable desc = connection refused"
	// level=WARN msg="parallel run: suppressed" method=/pricing.v1.PricingService/Quote outcome=candidate_error candidate_status=UNAVAILABLE suppressed=99
}

// A sink that fails or panics keeps no other from its reports.
func ExampleMulti() {
	published := 0
	counter := sink.Func(func(context.Context, *parallelrunv1.Report) error {
		published++
		return nil
	})
	broken := sink.Func(func(context.Context, *parallelrunv1.Report) error { panic("broken") })
	full := sink.Func(func(context.Context, *parallelrunv1.Report) error { return errors.New("disk full") })

	err := sink.Multi(broken, full, counter).Publish(context.Background(), mismatch)
	fmt.Println(err)
	fmt.Println("published:", published)
	// Output:
	// sink: Multi: sink 0 (sink.Func) panicked: broken
	// sink: Multi: sink 1 (sink.Func): disk full
	// published: 1
}

func ExampleFunc() {
	// Count mismatches per method, for a dashboard of your own.
	mismatches := map[string]int{}
	count := sink.Func(func(_ context.Context, r *parallelrunv1.Report) error {
		if r.GetOutcome() == parallelrunv1.Outcome_OUTCOME_MISMATCH {
			mismatches[r.GetMethod()]++
		}
		return nil
	})
	_ = count.Publish(context.Background(), &parallelrunv1.Report{Method: "/a.S/M", Outcome: parallelrunv1.Outcome_OUTCOME_MISMATCH})
	_ = count.Publish(context.Background(), &parallelrunv1.Report{Method: "/a.S/M", Outcome: parallelrunv1.Outcome_OUTCOME_MATCH})
	fmt.Println(mismatches)
	// Output: map[/a.S/M:1]
}
