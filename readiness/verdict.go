package readiness

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// status is where m stands at now (nanoseconds since the epoch, 0 when no
// time is known), judged by its policy.
func (m *methodState) status(now int64, topN int) *parallelrunv1.MethodStatus {
	var w window
	if now != 0 {
		m.ring.sum(now, &w)
	}
	var streak time.Duration
	since := m.firstCompared
	if m.mismatched {
		since = m.lastMismatch
	}
	if since != 0 && now != 0 {
		streak = time.Duration(max(0, now-since))
	}
	ms := &parallelrunv1.MethodStatus{
		Method:             m.name,
		Outcomes:           m.outcomes.proto(),
		WindowOutcomes:     w.counts.proto(),
		MismatchRate:       share(w.counts[parallelrunv1.Outcome_OUTCOME_MISMATCH], w.counts.compared()),
		CandidateErrorRate: share(w.counts[parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR], w.counts.reached()),
		Streak:             &parallelrunv1.Streak{Calls: m.streakCalls, Duration: durationpb.New(streak)},
		LegacyLatency:      summary(&w.legacy, w.nLegacy),
		CandidateLatency:   summary(&w.candidate, w.nCand),
		TopFields:          m.fields.top(topN),
		TopSignatures:      m.signatures.top(topN),
		NoiseFields:        m.noise.top(topN),
	}
	if m.mismatched {
		ms.Streak.LastMismatchTime = timestamp(m.lastMismatch)
		ms.Streak.LastMismatchAt = m.lastAt
		ms.Streak.LastMismatchTraceId = m.lastTrace
	}
	ms.Readiness = judge(m.policy, ms, &w.counts, m.outcomes.compared(), m.mismatched)
	return ms
}

// share is n/of, or 0 when of is 0.
func share(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

// judge decides a method's verdict from its status, with a reason for
// each condition that decides it.
func judge(p *parallelrunv1.ReadinessPolicy, ms *parallelrunv1.MethodStatus, w *counts, compared int64, mismatched bool) *parallelrunv1.Readiness {
	window := duration(p.GetWindow().AsDuration())
	minDur := p.GetMinStreakDuration().AsDuration()
	streak := ms.GetStreak()
	streakDur := streak.GetDuration().AsDuration()
	wMismatch, wCompared := w[parallelrunv1.Outcome_OUTCOME_MISMATCH], w.compared()
	wErrors, wReached := w[parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR], w.reached()

	lp99, cp99 := ms.GetLegacyLatency().GetP99(), ms.GetCandidateLatency().GetP99()
	latencyKnown := lp99 != nil && cp99 != nil && lp99.AsDuration() > 0
	latencyRatio := 0.0
	if latencyKnown {
		latencyRatio = float64(cp99.AsDuration()) / float64(lp99.AsDuration())
	}
	latencyChecked := p.GetMaxP99LatencyRatio() > 0 && latencyKnown
	latencyReason := func() string {
		return fmt.Sprintf("candidate p99 %s is %s the legacy p99 %s (at most %s)", duration(cp99.AsDuration()),
			ratio(latencyRatio), duration(lp99.AsDuration()), ratio(p.GetMaxP99LatencyRatio()))
	}

	var notReady []string
	if ms.GetMismatchRate() > p.GetMaxMismatchRate() {
		notReady = append(notReady, fmt.Sprintf("%s of %s calls compared in the last %s mismatched (%s, at most %s)",
			count(wMismatch), count(wCompared), window, percent(ms.GetMismatchRate()), percent(p.GetMaxMismatchRate())))
	}
	if ms.GetCandidateErrorRate() > p.GetMaxCandidateErrorRate() {
		notReady = append(notReady, fmt.Sprintf("candidate errors in %s of %s calls in the last %s (%s, at most %s)",
			count(wErrors), count(wReached), window, percent(ms.GetCandidateErrorRate()), percent(p.GetMaxCandidateErrorRate())))
	}
	if latencyChecked && latencyRatio > p.GetMaxP99LatencyRatio() {
		notReady = append(notReady, latencyReason())
	}
	if mismatched {
		if streak.GetCalls() < p.GetMinStreakCalls() {
			notReady = append(notReady, fmt.Sprintf("%s of %s calls compared since the last mismatch",
				count(streak.GetCalls()), count(p.GetMinStreakCalls())))
		}
		if streakDur < minDur {
			trace := ""
			if streak.GetLastMismatchTraceId() != "" {
				trace = " (trace " + streak.GetLastMismatchTraceId() + ")"
			}
			at := ""
			if a := streak.GetLastMismatchAt(); a != "" {
				at = " at " + a
			}
			notReady = append(notReady, fmt.Sprintf("last mismatch %s ago%s%s, %s needed",
				duration(streakDur), at, trace, duration(minDur)))
		}
	}
	r := &parallelrunv1.Readiness{Policy: Merge(nil, p)}
	if len(notReady) > 0 {
		r.Verdict, r.Reasons = parallelrunv1.Verdict_VERDICT_NOT_READY, notReady
		return r
	}

	var missing []string
	if compared < p.GetMinCompared() {
		missing = append(missing, fmt.Sprintf("%s of %s calls compared", count(compared), count(p.GetMinCompared())))
	}
	if !mismatched {
		// Without a mismatch the streak is every call compared: say so only
		// when min_compared has not said it already.
		if streak.GetCalls() < p.GetMinStreakCalls() && (compared >= p.GetMinCompared() || p.GetMinStreakCalls() > p.GetMinCompared()) {
			missing = append(missing, fmt.Sprintf("%s of %s calls compared without a mismatch",
				count(streak.GetCalls()), count(p.GetMinStreakCalls())))
		}
		if streakDur < minDur {
			if compared == 0 {
				missing = append(missing, fmt.Sprintf("no calls compared yet, %s without a mismatch needed", duration(minDur)))
			} else {
				missing = append(missing, fmt.Sprintf("no mismatch in the %s since the first call compared, %s needed",
					duration(streakDur), duration(minDur)))
			}
		}
	}
	if len(missing) > 0 {
		r.Verdict, r.Reasons = parallelrunv1.Verdict_VERDICT_NOT_ENOUGH_DATA, missing
		return r
	}

	r.Verdict = parallelrunv1.Verdict_VERDICT_READY
	if wMismatch == 0 {
		r.Reasons = append(r.Reasons, fmt.Sprintf("%s calls compared, none mismatched in the last %s", count(compared), window))
	} else {
		r.Reasons = append(r.Reasons, fmt.Sprintf("%s calls compared, %s of %s mismatched in the last %s (%s, at most %s)",
			count(compared), count(wMismatch), count(wCompared), window, percent(ms.GetMismatchRate()), percent(p.GetMaxMismatchRate())))
	}
	r.Reasons = append(r.Reasons, fmt.Sprintf("streak of %s calls over %s", count(streak.GetCalls()), duration(streakDur)))
	r.Reasons = append(r.Reasons, fmt.Sprintf("candidate errors in %s of %s calls in the last %s (%s, at most %s)",
		count(wErrors), count(wReached), window, percent(ms.GetCandidateErrorRate()), percent(p.GetMaxCandidateErrorRate())))
	switch {
	case latencyChecked:
		r.Reasons = append(r.Reasons, latencyReason())
	case p.GetMaxP99LatencyRatio() > 0:
		r.Reasons = append(r.Reasons, fmt.Sprintf("p99 latency ratio not checked: no latencies of both sides in the last %s", window))
	}
	return r
}

// maxListed bounds the methods a run's reason names.
const maxListed = 10

// judgeRun decides the run's verdict from its methods': not ready when any
// is not, not enough data when any lacks it (or there are none), else
// ready.
func judgeRun(methods []*parallelrunv1.MethodStatus) *parallelrunv1.Readiness {
	if len(methods) == 0 {
		return &parallelrunv1.Readiness{
			Verdict: parallelrunv1.Verdict_VERDICT_NOT_ENOUGH_DATA,
			Reasons: []string{"no calls compared yet"},
		}
	}
	var ready int
	var notReady, missing []string
	for _, m := range methods {
		switch m.GetReadiness().GetVerdict() {
		case parallelrunv1.Verdict_VERDICT_READY:
			ready++
		case parallelrunv1.Verdict_VERDICT_NOT_READY:
			notReady = append(notReady, m.GetMethod())
		default:
			missing = append(missing, m.GetMethod())
		}
	}
	r := &parallelrunv1.Readiness{Reasons: []string{fmt.Sprintf("%s of %s methods ready", count(int64(ready)), count(int64(len(methods))))}}
	switch {
	case len(notReady) > 0:
		r.Verdict = parallelrunv1.Verdict_VERDICT_NOT_READY
	case len(missing) > 0:
		r.Verdict = parallelrunv1.Verdict_VERDICT_NOT_ENOUGH_DATA
	default:
		r.Verdict = parallelrunv1.Verdict_VERDICT_READY
	}
	if len(notReady) > 0 {
		r.Reasons = append(r.Reasons, "not ready: "+list(notReady))
	}
	if len(missing) > 0 {
		r.Reasons = append(r.Reasons, "not enough data: "+list(missing))
	}
	return r
}

// list joins names, naming at most maxListed of them.
func list(names []string) string {
	if len(names) <= maxListed {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:maxListed], ", ") + fmt.Sprintf(" and %s more", count(int64(len(names)-maxListed)))
}
