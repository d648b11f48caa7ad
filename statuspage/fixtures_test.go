package statuspage_test

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// Trace IDs as OpenTelemetry writes them.
const (
	traceA = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceB = "0af7651916cd43dd8448eb211c80319c"
	traceC = "7d1f2c3b4a5968778695a4b3c2d1e0f1"
)

// Values a candidate under test could send back, to be shown as text.
const (
	hostileImg    = `<img src=x onerror=alert(1)>`
	hostileScript = `"><script>alert(2)</script>`
)

var statusTime = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func at(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(statusTime.Add(d)) }

func policy() *parallelrunv1.ReadinessPolicy {
	return &parallelrunv1.ReadinessPolicy{
		MinCompared:           proto.Int64(1000),
		MinStreakCalls:        proto.Int64(1000),
		MinStreakDuration:     durationpb.New(time.Hour),
		MaxMismatchRate:       proto.Float64(0),
		MaxCandidateErrorRate: proto.Float64(0.01),
		MaxP99LatencyRatio:    proto.Float64(1.5),
		Window:                durationpb.New(time.Hour),
	}
}

func latency(n int64, p50, p99 time.Duration) *parallelrunv1.LatencySummary {
	return &parallelrunv1.LatencySummary{Count: n, P50: durationpb.New(p50), P90: durationpb.New((p50 + p99) / 2), P99: durationpb.New(p99)}
}

// sampleStatus is a run of three methods, one of each verdict, as a
// pricing service's rewrite could have after a few hours.
func sampleStatus() *parallelrunv1.RunStatus {
	quote := &parallelrunv1.MethodStatus{
		Method:             "/pricing.v1.PricingService/GetQuote",
		Outcomes:           &parallelrunv1.OutcomeCounts{Match: 48210, Mismatch: 312, CandidateError: 14, Dropped: 3, CallerCanceled: 20},
		WindowOutcomes:     &parallelrunv1.OutcomeCounts{Match: 9870, Mismatch: 41, CandidateError: 2},
		MismatchRate:       41.0 / 9911,
		CandidateErrorRate: 2.0 / 9913,
		Streak: &parallelrunv1.Streak{
			Calls:               57,
			Duration:            durationpb.New(4*time.Minute + 12*time.Second),
			LastMismatchTime:    at(-(4*time.Minute + 12*time.Second)),
			LastMismatchAt:      "quote.total.nanos",
			LastMismatchTraceId: traceA,
		},
		LegacyLatency:    latency(9913, 12300*time.Microsecond, 48*time.Millisecond),
		CandidateLatency: latency(9913, 9800*time.Microsecond, 81*time.Millisecond),
		TopFields: []*parallelrunv1.FieldSummary{{
			Field: "quote.total.nanos",
			Count: 298,
			Example: &parallelrunv1.Difference{
				Path: "quote.total.nanos", Field: "quote.total.nanos",
				Kind: parallelrunv1.DifferenceKind_DIFFERENCE_KIND_CHANGED, Legacy: "250000000", Candidate: "240000000",
			},
			TraceId:  traceA,
			LastSeen: at(-4 * time.Minute),
		}, {
			Field: "quote.items.discount",
			Count: 14,
			Example: &parallelrunv1.Difference{
				Path: `quote.items[sku="B2"].discount`, Field: "quote.items.discount",
				Kind: parallelrunv1.DifferenceKind_DIFFERENCE_KIND_ADDED, Candidate: `{percent:5}`,
			},
			TraceId:  traceB,
			LastSeen: at(-2 * time.Hour),
		}},
		TopSignatures: []*parallelrunv1.SignatureSummary{{
			Signature: "9f86d081884c7d65",
			Count:     298,
			Fields:    []string{"quote.total.nanos:changed"},
			TraceIds:  []string{traceA, traceB, traceC},
			FirstSeen: at(-3 * time.Hour),
			LastSeen:  at(-4 * time.Minute),
		}, {
			Signature:     "60303ae22b998861",
			Count:         14,
			Fields:        []string{"grpc-status:changed"},
			LegacyCode:    "OK",
			CandidateCode: "INTERNAL",
			TraceIds:      []string{traceC},
			FirstSeen:     at(-5 * time.Hour),
			LastSeen:      at(-2 * time.Hour),
		}},
		NoiseFields: []*parallelrunv1.FieldSummary{{
			Field: "quote.quote_id",
			Count: 9911,
			Example: &parallelrunv1.Difference{
				Path: "quote.quote_id", Field: "quote.quote_id",
				Kind: parallelrunv1.DifferenceKind_DIFFERENCE_KIND_CHANGED, Legacy: `"q-81723"`, Candidate: `"q-99120"`,
			},
			TraceId:  traceC,
			LastSeen: at(-time.Second),
		}},
		Readiness: &parallelrunv1.Readiness{
			Verdict: parallelrunv1.Verdict_VERDICT_NOT_READY,
			Reasons: []string{
				"last mismatch 4m12s ago at quote.total.nanos",
				"mismatch rate 0.41% within 1h, above 0%",
			},
			Policy: policy(),
		},
	}
	list := &parallelrunv1.MethodStatus{
		Method:         "/pricing.v1.PricingService/ListPrices",
		Outcomes:       &parallelrunv1.OutcomeCounts{Match: 120400},
		WindowOutcomes: &parallelrunv1.OutcomeCounts{Match: 20110},
		Streak: &parallelrunv1.Streak{
			Calls:    120400,
			Duration: durationpb.New(6*time.Hour + 30*time.Minute),
		},
		LegacyLatency:    latency(20110, 3*time.Millisecond, 11*time.Millisecond),
		CandidateLatency: latency(20110, 2500*time.Microsecond, 9*time.Millisecond),
		Readiness: &parallelrunv1.Readiness{
			Verdict: parallelrunv1.Verdict_VERDICT_READY,
			Reasons: []string{"120,400 calls compared, none mismatched for 6h30m"},
			Policy:  policy(),
		},
	}
	stream := &parallelrunv1.MethodStatus{
		Method:         "/pricing.v1.PricingService/WatchPrices",
		Outcomes:       &parallelrunv1.OutcomeCounts{Match: 212, Abandoned: 3},
		WindowOutcomes: &parallelrunv1.OutcomeCounts{Match: 212, Abandoned: 3},
		Streak: &parallelrunv1.Streak{
			Calls:    212,
			Duration: durationpb.New(50 * time.Minute),
		},
		LegacyLatency:    latency(212, 2*time.Second, 5*time.Second),
		CandidateLatency: latency(212, 2*time.Second, 5200*time.Millisecond),
		Readiness: &parallelrunv1.Readiness{
			Verdict: parallelrunv1.Verdict_VERDICT_NOT_ENOUGH_DATA,
			Reasons: []string{"212 of 1,000 calls compared"},
			Policy:  policy(),
		},
	}
	return &parallelrunv1.RunStatus{
		Time:    timestamppb.New(statusTime),
		Start:   at(-(6*time.Hour + 30*time.Minute)),
		Methods: []*parallelrunv1.MethodStatus{quote, list, stream},
		Readiness: &parallelrunv1.Readiness{
			Verdict: parallelrunv1.Verdict_VERDICT_NOT_READY,
			Reasons: []string{
				"pricing.v1.PricingService/GetQuote: last mismatch 4m12s ago at quote.total.nanos",
				"pricing.v1.PricingService/WatchPrices: 212 of 1,000 calls compared",
			},
			Policy: policy(),
		},
	}
}

// hostileStatus is sampleStatus with replies' values that try to become
// markup or a link, wherever the status holds a string.
func hostileStatus() *parallelrunv1.RunStatus {
	st := sampleStatus()
	q := st.Methods[0]
	st.Readiness.Reasons = append(st.Readiness.Reasons, "last mismatch at "+hostileScript)
	q.Streak.LastMismatchAt = hostileImg
	q.TopFields[0].Example.Legacy = hostileImg
	q.TopFields[0].Example.Candidate = hostileScript
	q.TopFields[1].Field = hostileScript
	q.TopFields[1].TraceId = `javascript:alert(3)`
	q.TopSignatures[0].Fields = append(q.TopSignatures[0].Fields, hostileImg+":changed")
	q.TopSignatures[1].TraceIds = []string{`"><script>alert(4)</script>`, "4BF92F3577B34DA6A3CE929D0E0E4736"}
	q.NoiseFields[0].Example.Path = hostileScript
	return st
}
