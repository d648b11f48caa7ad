package interceptor

import (
	"time"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// Status returns where the parallel run stands now: per method, how its
// calls ended, the streak of calls compared since the last mismatch, the
// rates and latencies within the readiness window, the fields and
// problems (signatures) that differ most with an example each, the noise,
// and whether the candidate is ready to be promoted, with the reasons in
// plain words ([WithReadiness] sets the policy). Every mirrored call
// counts, whether or not a sink is set. The message is the caller's own;
// statuspage.New(p.Status) serves it as a web page and as JSON. While the
// kill switch is on ([ParallelRun.SetDisabled]), mirroring_disabled says
// so.
func (p *ParallelRun) Status() *parallelrunv1.RunStatus {
	p.eachEntry(p.foldDrops)
	st := p.tracker.Status(time.Now())
	st.MirroringDisabled = p.Disabled()
	return st
}
