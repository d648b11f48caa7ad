package readiness_test

import (
	"regexp"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

// matches returns n matches, a second apart from start.
func matches(start time.Time, n int, edits ...func(*parallelrunv1.Report)) []*parallelrunv1.Report {
	out := make([]*parallelrunv1.Report, n)
	for i := range out {
		out[i] = match(start.Add(time.Duration(i)*time.Second), edits...)
	}
	return out
}

func TestVerdicts(t *testing.T) {
	const (
		notReady = parallelrunv1.Verdict_VERDICT_NOT_READY
		noData   = parallelrunv1.Verdict_VERDICT_NOT_ENOUGH_DATA
		ready    = parallelrunv1.Verdict_VERDICT_READY
	)
	tests := []struct {
		name    string
		policy  *parallelrunv1.ReadinessPolicy
		reports []*parallelrunv1.Report
		now     time.Time
		verdict parallelrunv1.Verdict
		reasons []string
	}{
		{
			name:    "too few calls compared",
			reports: matches(t0, 3),
			now:     t0.Add(2 * time.Hour),
			verdict: noData,
			reasons: []string{"3 of 1,000 calls compared"},
		},
		{
			name:    "too few calls compared, in thousands",
			policy:  &parallelrunv1.ReadinessPolicy{MinCompared: proto.Int64(10_000)},
			reports: matches(t0, 3120),
			now:     t0.Add(3 * time.Hour),
			verdict: noData,
			reasons: []string{"3,120 of 10,000 calls compared"},
		},
		{
			name:    "no mismatch, for too short a time",
			policy:  &parallelrunv1.ReadinessPolicy{MinCompared: proto.Int64(2), MinStreakCalls: proto.Int64(2)},
			reports: []*parallelrunv1.Report{match(t0), match(t0.Add(time.Minute)), match(t0.Add(2 * time.Minute))},
			now:     t0.Add(20 * time.Minute),
			verdict: noData,
			reasons: []string{"no mismatch in the 20m since the first call compared, 1h needed"},
		},
		{
			name: "no mismatch, in too few calls",
			policy: &parallelrunv1.ReadinessPolicy{MinCompared: proto.Int64(2), MinStreakCalls: proto.Int64(10),
				MinStreakDuration: durationpb.New(0)},
			reports: matches(t0, 3),
			now:     t0.Add(time.Minute),
			verdict: noData,
			reasons: []string{"3 of 10 calls compared without a mismatch"},
		},
		{
			name: "nothing compared",
			policy: &parallelrunv1.ReadinessPolicy{MinCompared: proto.Int64(0), MinStreakCalls: proto.Int64(0),
				MaxCandidateErrorRate: proto.Float64(1)},
			reports: []*parallelrunv1.Report{candidateError(t0)},
			now:     t0.Add(time.Minute),
			verdict: noData,
			reasons: []string{"no calls compared yet, 1h without a mismatch needed"},
		},
		{
			name: "mismatch rate",
			policy: &parallelrunv1.ReadinessPolicy{MinCompared: proto.Int64(1), MinStreakCalls: proto.Int64(0),
				MinStreakDuration: durationpb.New(0)},
			reports: append([]*parallelrunv1.Report{mismatch(t0)}, matches(t0.Add(time.Minute), 9)...),
			now:     t0.Add(30 * time.Minute),
			verdict: notReady,
			reasons: []string{"1 of 10 calls compared in the last 1h mismatched (10%, at most 0%)"},
		},
		{
			name: "too few calls since the last mismatch",
			policy: &parallelrunv1.ReadinessPolicy{MinCompared: proto.Int64(1), MaxMismatchRate: proto.Float64(1),
				MinStreakDuration: durationpb.New(0)},
			reports: append([]*parallelrunv1.Report{mismatch(t0)}, matches(t0.Add(time.Minute), 412)...),
			now:     t0.Add(30 * time.Minute),
			verdict: notReady,
			reasons: []string{"412 of 1,000 calls compared since the last mismatch"},
		},
		{
			name: "too little time since the last mismatch",
			policy: &parallelrunv1.ReadinessPolicy{MinCompared: proto.Int64(1), MaxMismatchRate: proto.Float64(1),
				MinStreakCalls: proto.Int64(0)},
			reports: []*parallelrunv1.Report{mismatch(t0), match(t0.Add(time.Minute))},
			now:     t0.Add(12 * time.Minute),
			verdict: notReady,
			reasons: []string{"last mismatch 12m ago at quote.total.nanos (trace 4bf92f3577b34da6a3ce929d0e0e4736), 1h needed"},
		},
		{
			name:    "every condition of a recent mismatch",
			reports: append(matches(t0.Add(30*time.Minute), 5), mismatch(t0.Add(time.Hour)), match(t0.Add(time.Hour+time.Second))),
			now:     t0.Add(time.Hour + 90*time.Second),
			verdict: notReady,
			reasons: []string{
				"1 of 7 calls compared in the last 1h mismatched (14.29%, at most 0%)",
				"1 of 1,000 calls compared since the last mismatch",
				"last mismatch 1m30s ago at quote.total.nanos (trace 4bf92f3577b34da6a3ce929d0e0e4736), 1h needed",
			},
		},
		{
			name: "a mismatch of status codes",
			policy: &parallelrunv1.ReadinessPolicy{MinCompared: proto.Int64(1), MaxMismatchRate: proto.Float64(1),
				MinStreakCalls: proto.Int64(0)},
			reports: []*parallelrunv1.Report{mismatch(t0, withDiffs(), withTrace(""), func(r *parallelrunv1.Report) {
				r.CandidateStatus = &parallelrunv1.Status{Code: "INTERNAL"}
			})},
			now:     t0.Add(5 * time.Minute),
			verdict: notReady,
			reasons: []string{"last mismatch 5m ago at status: OK != INTERNAL, 1h needed"},
		},
		{
			name:    "candidate errors",
			policy:  permissive,
			reports: append(matches(t0, 98), candidateError(t0.Add(time.Minute)), candidateError(t0.Add(time.Minute))),
			now:     t0.Add(2 * time.Minute),
			verdict: notReady,
			reasons: []string{"candidate errors in 2 of 100 calls in the last 1h (2%, at most 1%)"},
		},
		{
			name: "ready",
			policy: &parallelrunv1.ReadinessPolicy{MinCompared: proto.Int64(10), MinStreakCalls: proto.Int64(5),
				MinStreakDuration: durationpb.New(10 * time.Minute)},
			reports: append([]*parallelrunv1.Report{mismatch(t0)}, matches(t0.Add(70*time.Minute), 10)...),
			now:     t0.Add(2 * time.Hour),
			verdict: ready,
			reasons: []string{
				"11 calls compared, none mismatched in the last 1h",
				"streak of 10 calls over 2h",
				"candidate errors in 0 of 10 calls in the last 1h (0%, at most 1%)",
			},
		},
		{
			name: "ready, with mismatches allowed",
			policy: &parallelrunv1.ReadinessPolicy{MinCompared: proto.Int64(10), MinStreakCalls: proto.Int64(5),
				MinStreakDuration: durationpb.New(10 * time.Minute), MaxMismatchRate: proto.Float64(0.5)},
			reports: append([]*parallelrunv1.Report{mismatch(t0.Add(70 * time.Minute))}, matches(t0.Add(71*time.Minute), 9)...),
			now:     t0.Add(100*time.Minute + 12*time.Second),
			verdict: ready,
			reasons: []string{
				"10 calls compared, 1 of 10 mismatched in the last 1h (10%, at most 50%)",
				"streak of 9 calls over 30m12s",
				"candidate errors in 0 of 10 calls in the last 1h (0%, at most 1%)",
			},
		},
		{
			name: "ready, latencies not known",
			policy: readiness.Merge(permissive, &parallelrunv1.ReadinessPolicy{
				MaxP99LatencyRatio: proto.Float64(1.5), Window: durationpb.New(3 * time.Hour)}),
			reports: matches(t0, 1),
			now:     t0.Add(2 * time.Hour),
			verdict: ready,
			reasons: []string{
				"1 calls compared, none mismatched in the last 3h",
				"streak of 1 calls over 2h",
				"candidate errors in 0 of 1 calls in the last 3h (0%, at most 1%)",
				"p99 latency ratio not checked: no latencies of both sides in the last 3h",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(t, readiness.WithPolicy(tt.policy))
			for _, r := range tt.reports {
				tr.Add(r)
			}
			st := tr.Status(tt.now)
			got := methodStatus(t, st, quote).GetReadiness()
			if got.GetVerdict() != tt.verdict || !slices.Equal(got.GetReasons(), tt.reasons) {
				t.Errorf("got %v %q\nwant %v %q", got.GetVerdict(), got.GetReasons(), tt.verdict, tt.reasons)
			}
			if want := readiness.Merge(readiness.DefaultPolicy(), tt.policy); !proto.Equal(got.GetPolicy(), want) {
				t.Errorf("policy %v, want %v", got.GetPolicy(), want)
			}
			if st.GetReadiness().GetVerdict() != tt.verdict {
				t.Errorf("run verdict %v, want %v as its only method's", st.GetReadiness().GetVerdict(), tt.verdict)
			}
			// Judge, given the status without its verdict, judges alike.
			ms := proto.Clone(methodStatus(t, st, quote)).(*parallelrunv1.MethodStatus)
			ms.Readiness = nil
			if again := readiness.Judge(tt.policy, ms); !proto.Equal(again, got) {
				t.Errorf("Judge: %v, want %v", again, got)
			}
			if run := readiness.JudgeRun(tt.policy, st.GetMethods()); !proto.Equal(run, st.GetReadiness()) {
				t.Errorf("JudgeRun: %v, want %v", run, st.GetReadiness())
			}
		})
	}
}

func TestLatencyRatio(t *testing.T) {
	for _, tt := range []struct {
		name      string
		candidate time.Duration
		verdict   parallelrunv1.Verdict
		reason    string
	}{
		{"too slow", 30 * time.Millisecond, parallelrunv1.Verdict_VERDICT_NOT_READY,
			`^candidate p99 (29|30)\.\d+ms is (2\.9\d|3)x the legacy p99 (9|10)\.\d+ms \(at most 1\.5x\)$`},
		{"fast enough", 12 * time.Millisecond, parallelrunv1.Verdict_VERDICT_READY,
			`^candidate p99 (11|12)\.\d+ms is 1\.[12]\d?x the legacy p99 (9|10)\.\d+ms \(at most 1\.5x\)$`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(t, readiness.WithPolicy(readiness.Merge(permissive,
				&parallelrunv1.ReadinessPolicy{MaxP99LatencyRatio: proto.Float64(1.5)})))
			for _, r := range matches(t0, 100, withLatency(10*time.Millisecond, tt.candidate)) {
				tr.Add(r)
			}
			got := methodStatus(t, tr.Status(time.Time{}), quote).GetReadiness()
			if got.GetVerdict() != tt.verdict {
				t.Errorf("verdict %v, want %v: %q", got.GetVerdict(), tt.verdict, got.GetReasons())
			}
			if !slices.ContainsFunc(got.GetReasons(), regexp.MustCompile(tt.reason).MatchString) {
				t.Errorf("no reason matches %s in %q", tt.reason, got.GetReasons())
			}
		})
	}
}

func TestRunVerdict(t *testing.T) {
	const a, b, c = "/pkg.S/A", "/pkg.S/B", "/pkg.S/C"
	tests := []struct {
		name    string
		reports []*parallelrunv1.Report
		verdict parallelrunv1.Verdict
		reasons []string
	}{
		{"no methods", nil, parallelrunv1.Verdict_VERDICT_NOT_ENOUGH_DATA, []string{"no calls compared yet"}},
		{
			"all ready",
			[]*parallelrunv1.Report{match(t0, withMethod(a)), match(t0, withMethod(b))},
			parallelrunv1.Verdict_VERDICT_READY,
			[]string{"2 of 2 methods ready"},
		},
		{
			"one without enough data",
			[]*parallelrunv1.Report{match(t0, withMethod(a)), report(c, parallelrunv1.Outcome_OUTCOME_DROPPED, t0)},
			parallelrunv1.Verdict_VERDICT_NOT_ENOUGH_DATA,
			[]string{"1 of 2 methods ready", "not enough data: " + c},
		},
		{
			"one not ready",
			[]*parallelrunv1.Report{
				match(t0, withMethod(a)),
				mismatch(t0, withMethod(b)),
				report(c, parallelrunv1.Outcome_OUTCOME_DROPPED, t0),
			},
			parallelrunv1.Verdict_VERDICT_NOT_READY,
			[]string{"1 of 3 methods ready", "not ready: " + b, "not enough data: " + c},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(t, readiness.WithPolicy(permissive))
			for _, r := range tt.reports {
				tr.Add(r)
			}
			got := tr.Status(t0.Add(time.Minute)).GetReadiness()
			if got.GetVerdict() != tt.verdict || !slices.Equal(got.GetReasons(), tt.reasons) {
				t.Errorf("got %v %q, want %v %q", got.GetVerdict(), got.GetReasons(), tt.verdict, tt.reasons)
			}
		})
	}
}

// A run names at most ten methods that are not ready, and counts the rest.
func TestRunVerdictManyMethods(t *testing.T) {
	tr := newTracker(t, readiness.WithPolicy(permissive))
	for i := range 12 {
		tr.Add(mismatch(t0, withMethod(string(rune('a'+i))+".S/M")))
	}
	got := tr.Status(time.Time{}).GetReadiness().GetReasons()
	want := []string{"0 of 12 methods ready",
		"not ready: /a.S/M, /b.S/M, /c.S/M, /d.S/M, /e.S/M, /f.S/M, /g.S/M, /h.S/M, /i.S/M, /j.S/M and 2 more"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
