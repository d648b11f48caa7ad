package sink_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

func ExampleNewSlog() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		// Drop the time, so the output is the same on every run.
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	s := sink.NewSlog(logger, 3)
	_ = s.Publish(context.Background(), &parallelrunv1.Report{
		Method:          "/pricing.v1.PricingService/Quote",
		Outcome:         parallelrunv1.Outcome_OUTCOME_MISMATCH,
		LegacyStatus:    &parallelrunv1.Status{Code: "OK"},
		CandidateStatus: &parallelrunv1.Status{Code: "OK"},
		Differences: []*parallelrunv1.Difference{{
			Path: "items[0].price.units", Kind: parallelrunv1.DifferenceKind_DIFFERENCE_KIND_CHANGED, Legacy: "10", Candidate: "11",
		}},
	})
	// Output:
	// level=WARN msg="parallel run" method=/pricing.v1.PricingService/Quote outcome=mismatch trace_id="" legacy_status=OK candidate_status=OK differences=1 difference.path=items[0].price.units difference.kind=changed difference.legacy=10 difference.candidate=11
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
