package interceptor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// admit decides, on the caller's path, whether a call is mirrored, and
// counts it when not. It returns the method's entry, or nil, and whether
// the call probes a failing candidate (see breaker; a probe that is not
// mirrored after all must be aborted). A call that admit lets through has
// not yet taken its place in flight: see enter.
func (p *ParallelRun) admit(ctx context.Context, method string, mode callMode) (*methodEntry, bool) {
	t := p.methods.Load()
	e := t.lookup(method)
	attrs := p.tel.other
	if e != nil {
		attrs = e.attrs
	}
	force := mode == modeForce
	switch {
	case mode == modeSkip:
		p.tel.skip(ctx, attrs, ReasonSkipOption)
		return nil, false
	case p.adm.closed.Load():
		p.tel.skip(ctx, attrs, ReasonClosed)
		return nil, false
	case e == nil && !force:
		p.tel.skip(ctx, attrs, ReasonUnconfigured)
		return nil, false
	case e == nil:
		e = t.entry(method, t.forced)
	case e.cfg.disabled:
		// Even when forced: Disabled is how writes are kept from being
		// duplicated.
		p.tel.skip(ctx, attrs, ReasonDisabled)
		return nil, false
	case !force && e.cfg.sampleRate < 1 && rand.Float64() >= e.cfg.sampleRate:
		p.tel.skip(ctx, attrs, ReasonSampledOut)
		return nil, false
	}
	ok, probe := e.breaker.allow()
	if !ok {
		p.tel.skip(ctx, e.attrs, ReasonCandidateFailing)
		return nil, false
	}
	return e, probe
}

// starting is what a call has taken so far while its comparison starts,
// to give back if starting panics.
type starting struct {
	e     *methodEntry
	mem   *allowance
	probe bool
}

// recovered gives back what a call took when starting its comparison
// panicked, and counts it; the caller's call goes on, not mirrored.
func (p *ParallelRun) recovered(ctx context.Context, method string, st *starting, v any) {
	if st.mem != nil {
		st.mem.close()
		p.adm.leave()
	}
	attrs := p.tel.other
	if st.e != nil {
		attrs = st.e.attrs
		st.e.breaker.abort(st.probe)
	}
	p.tel.outcome(ctx, attrs, parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR)
	p.onError(fmt.Errorf("interceptor: %s: panic before the candidate call: %v", methodName(method), v))
}

// enter takes the call's place in flight and its request's share of the
// memory budget; when either is full, the call is not mirrored and counts
// as dropped. The allowance it returns is the comparison's, to close when
// it is over.
func (p *ParallelRun) enter(ctx context.Context, e *methodEntry, requestBytes int64, maxBytes int64) *allowance {
	ok, closed := p.adm.enter()
	switch {
	case closed:
		p.tel.skip(ctx, e.attrs, ReasonClosed)
		return nil
	case !ok:
		p.dropped(ctx, e, ReasonMaxInFlight)
		return nil
	}
	a := &allowance{adm: p.adm, max: maxBytes}
	if !a.take(requestBytes) {
		a.close()
		p.adm.leave()
		p.dropped(ctx, e, ReasonMemoryBudget)
		return nil
	}
	return a
}

// dropped counts a call that was not mirrored for want of room, in the
// metrics and, through foldDrops, in the status; sinks get no report of it
// (see OUTCOME_DROPPED). Drops come in floods, on the caller's path: one
// atomic add, no lock and no allocation. A method past the bound of those
// built on first use (maxCachedMethods) has no lasting entry: its drops
// count in the metrics only.
func (p *ParallelRun) dropped(ctx context.Context, e *methodEntry, reason string) {
	p.tel.drop(ctx, e.attrs, reason)
	e.dropped.Add(1)
}

// foldDrops gives the status the drops of e it has not had yet, as made
// now. It runs off the caller's path: in the comparison goroutines, and in
// Status.
func (p *ParallelRun) foldDrops(e *methodEntry) {
	n := e.dropped.Swap(0)
	if n == 0 {
		return
	}
	// The tracker keeps nothing of a report: one serves them all.
	r := &parallelrunv1.Report{Method: e.name, Outcome: parallelrunv1.Outcome_OUTCOME_DROPPED, Time: timestamppb.Now()}
	for range n {
		p.tracker.Add(r)
	}
}

// candidateContext keeps the caller's values (trace, outgoing metadata)
// but not its cancellation, and sets the candidate's own deadline and
// metadata. base must already be detached from the caller's cancellation.
// An error means the metadata hook panicked.
func (p *ParallelRun) candidateContext(base context.Context, callerDeadline time.Time, cfg *methodConfig) (cctx context.Context, cancel context.CancelFunc, err error) {
	timeout := cfg.timeout
	if timeout == 0 {
		timeout = p.maxTimeout
		if !callerDeadline.IsZero() {
			timeout = min(timeout, time.Until(callerDeadline))
		}
	}
	cctx, cancel = context.WithTimeout(base, timeout)
	md := metadata.MD{}
	if out, ok := metadata.FromOutgoingContext(base); ok {
		md = out.Copy()
	}
	md.Set(RoleKey, "candidate")
	if rewrite := p.rewriteMD; rewrite != nil {
		defer func() {
			if v := recover(); v != nil {
				cancel()
				cctx, cancel, err = nil, nil, fmt.Errorf("panic in the candidate metadata hook: %v", v)
			}
		}()
		if md = rewrite(cctx, md); md == nil {
			md = metadata.MD{}
		}
		// Whatever the hook returns, the candidate knows it is one: it is
		// how it suppresses side effects.
		md.Set(RoleKey, "candidate")
	}
	return metadata.NewOutgoingContext(cctx, md), cancel, nil
}
