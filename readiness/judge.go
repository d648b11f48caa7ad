package readiness

import parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"

// Judge decides a method's verdict under policy p (merged over
// [DefaultPolicy]) from a status built elsewhere than in a [Tracker]: from
// the metrics of many client instances, for example. It reads the fields
// a Tracker fills and judges them as the Tracker would: outcomes,
// window_outcomes, the streak (a mismatch happened when
// last_mismatch_time is set) and the p99 latencies. It sets ms's
// mismatch_rate and candidate_error_rate from window_outcomes, as the
// Tracker does.
func Judge(p *parallelrunv1.ReadinessPolicy, ms *parallelrunv1.MethodStatus) *parallelrunv1.Readiness {
	w := countsOf(ms.GetWindowOutcomes())
	all := countsOf(ms.GetOutcomes())
	ms.MismatchRate = share(w[parallelrunv1.Outcome_OUTCOME_MISMATCH], w.compared())
	ms.CandidateErrorRate = share(w[parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR], w.reached())
	return judge(Merge(DefaultPolicy(), p), ms, &w, all.compared(), ms.GetStreak().GetLastMismatchTime() != nil)
}

// JudgeRun decides a run's verdict from its methods' (each judged): not
// ready when any is not, not enough data when any lacks it or there is
// none, else ready. The verdict carries the run's policy p, merged over
// [DefaultPolicy].
func JudgeRun(p *parallelrunv1.ReadinessPolicy, methods []*parallelrunv1.MethodStatus) *parallelrunv1.Readiness {
	r := judgeRun(methods)
	r.Policy = Merge(DefaultPolicy(), p)
	return r
}

func countsOf(o *parallelrunv1.OutcomeCounts) counts {
	var c counts
	c[parallelrunv1.Outcome_OUTCOME_MATCH] = o.GetMatch()
	c[parallelrunv1.Outcome_OUTCOME_MISMATCH] = o.GetMismatch()
	c[parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR] = o.GetCandidateError()
	c[parallelrunv1.Outcome_OUTCOME_DROPPED] = o.GetDropped()
	c[parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR] = o.GetInternalError()
	c[parallelrunv1.Outcome_OUTCOME_CALLER_CANCELED] = o.GetCallerCanceled()
	c[parallelrunv1.Outcome_OUTCOME_ABANDONED] = o.GetAbandoned()
	c[parallelrunv1.Outcome_OUTCOME_LEGACY_ERROR] = o.GetLegacyError()
	return c
}
