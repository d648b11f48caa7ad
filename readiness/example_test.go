package readiness_test

import (
	"fmt"
	"os"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

// A Tracker fed the reports of two methods: one compared cleanly for two
// hours, the other with a mismatch twelve minutes ago.
func Example() {
	tracker, err := readiness.NewTracker(readiness.WithPolicy(&parallelrunv1.ReadinessPolicy{
		MinCompared:    proto.Int64(100),
		MinStreakCalls: proto.Int64(100),
	}))
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	ok := &parallelrunv1.Status{Code: "OK"}
	for i := range 240 {
		at := start.Add(time.Duration(i) * 30 * time.Second)
		for _, method := range []string{"pricing.v1.PricingService/GetQuote", "pricing.v1.PricingService/ListPrices"} {
			r := &parallelrunv1.Report{
				Method:          method,
				Outcome:         parallelrunv1.Outcome_OUTCOME_MATCH,
				Time:            timestamppb.New(at),
				LegacyStatus:    ok,
				CandidateStatus: ok,
			}
			if method == "pricing.v1.PricingService/ListPrices" && i == 216 {
				r.Outcome = parallelrunv1.Outcome_OUTCOME_MISMATCH
				r.TraceId = "4bf92f3577b34da6a3ce929d0e0e4736"
				r.Differences = []*parallelrunv1.Difference{{
					Path: "prices[3].amount.nanos", Field: "prices.amount.nanos",
					Kind: parallelrunv1.DifferenceKind_DIFFERENCE_KIND_CHANGED, Legacy: "500000000", Candidate: "490000000",
				}}
			}
			tracker.Add(r)
		}
	}

	status := tracker.Status(start.Add(2 * time.Hour))
	for _, m := range status.GetMethods() {
		fmt.Println(m.GetMethod(), m.GetReadiness().GetVerdict())
		for _, reason := range m.GetReadiness().GetReasons() {
			fmt.Println("  " + reason)
		}
	}
	fmt.Println("run:", status.GetReadiness().GetVerdict(), status.GetReadiness().GetReasons())
	// Output:
	// /pricing.v1.PricingService/GetQuote VERDICT_READY
	//   240 calls compared, none mismatched in the last 1h
	//   streak of 240 calls over 2h
	//   candidate errors in 0 of 118 calls in the last 1h (0%, at most 1%)
	// /pricing.v1.PricingService/ListPrices VERDICT_NOT_READY
	//   1 of 118 calls compared in the last 1h mismatched (0.85%, at most 0%)
	//   23 of 100 calls compared since the last mismatch
	//   last mismatch 12m ago at prices[3].amount.nanos (trace 4bf92f3577b34da6a3ce929d0e0e4736), 1h needed
	// run: VERDICT_NOT_READY [1 of 2 methods ready not ready: /pricing.v1.PricingService/ListPrices]
}

// Per-method policies override the run's, field by field: here a service
// whose replies carry a float computed differently may mismatch in one
// call in a thousand, and one method of it must also be as fast as the
// legacy one.
func ExampleWithMethodPolicy() {
	tracker, err := readiness.NewTracker(
		readiness.WithPolicy(&parallelrunv1.ReadinessPolicy{MinStreakDuration: durationpb.New(24 * time.Hour)}),
		readiness.WithMethodPolicy("/pricing.v1.PricingService/*", &parallelrunv1.ReadinessPolicy{
			MaxMismatchRate: proto.Float64(0.001),
		}),
		readiness.WithMethodPolicy("/pricing.v1.PricingService/GetQuote", &parallelrunv1.ReadinessPolicy{
			MaxP99LatencyRatio: proto.Float64(1.2),
		}),
	)
	if err != nil {
		panic(err)
	}
	tracker.Add(&parallelrunv1.Report{Method: "pricing.v1.PricingService/GetQuote", Outcome: parallelrunv1.Outcome_OUTCOME_MATCH})
	p := tracker.Status(time.Time{}).GetMethods()[0].GetReadiness().GetPolicy()
	fmt.Println(p.GetMinStreakDuration().AsDuration(), p.GetMaxMismatchRate(), p.GetMaxP99LatencyRatio(), p.GetMinCompared())
	// Output:
	// 24h0m0s 0.001 1.2 1000
}

// An invalid policy is an error naming the method and the field.
func ExampleNewTracker_invalid() {
	_, err := readiness.NewTracker(readiness.WithMethodPolicy("/pricing.v1.PricingService/GetQuote",
		&parallelrunv1.ReadinessPolicy{MaxMismatchRate: proto.Float64(1.5)}))
	fmt.Println(err)
	// Output:
	// readiness: /pricing.v1.PricingService/GetQuote: max_mismatch_rate: 1.5 is outside [0, 1]
}

// A status written for a terminal, as the summary command and the quick
// start print it. Values from the candidate are escaped: one here tries to
// clear the screen.
func ExampleWriteText() {
	tracker, err := readiness.NewTracker(readiness.WithPolicy(&parallelrunv1.ReadinessPolicy{
		MinCompared: proto.Int64(2), MinStreakCalls: proto.Int64(1), MinStreakDuration: durationpb.New(0),
	}))
	if err != nil {
		panic(err)
	}
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tracker.Add(&parallelrunv1.Report{Method: "pricing.v1.PricingService/GetQuote", Outcome: parallelrunv1.Outcome_OUTCOME_MISMATCH,
		Time: timestamppb.New(at), TraceId: "4bf92f3577b34da6a3ce929d0e0e4736", Signature: "2117c9987729cf71",
		LegacyStatus: &parallelrunv1.Status{Code: "OK"}, CandidateStatus: &parallelrunv1.Status{Code: "OK"},
		Differences: []*parallelrunv1.Difference{{Path: "quote.tier", Field: "quote.tier",
			Kind: parallelrunv1.DifferenceKind_DIFFERENCE_KIND_CHANGED, Legacy: `"GOLD"`, Candidate: "\"\x1b[2Jgold\""}}})
	tracker.Add(&parallelrunv1.Report{Method: "pricing.v1.PricingService/GetQuote", Outcome: parallelrunv1.Outcome_OUTCOME_MATCH,
		Time: timestamppb.New(at.Add(time.Second))})
	if err := readiness.WriteText(os.Stdout, tracker.Status(at.Add(time.Minute))); err != nil {
		panic(err)
	}
	// Output:
	// method                               verdict    compared  mismatch rate  candidate error rate  streak      legacy p99  candidate p99
	// /pricing.v1.PricingService/GetQuote  NOT READY  2         50%            0%                    1 call, 1m  -           -
	//
	// /pricing.v1.PricingService/GetQuote: NOT READY
	//   - 1 of 2 calls compared in the last 1h mismatched (50%, at most 0%)
	//   fields that differ most:
	//     field       mismatches  example (legacy -> candidate)                trace
	//     quote.tier  1           quote.tier changed: "GOLD" -> "\x1b[2Jgold"  4bf92f3577b34da6a3ce929d0e0e4736
	//   distinct problems (mismatches by signature):
	//     signature         mismatches  fields              status  first trace
	//     2117c9987729cf71  1           quote.tier:changed  OK      4bf92f3577b34da6a3ce929d0e0e4736
	//
	// overall: NOT READY
	//   - 0 of 1 methods ready
	//   - not ready: /pricing.v1.PricingService/GetQuote
	// judged at 2026-03-02T09:01:00Z, reports from 2026-03-02T09:00:00Z
}
