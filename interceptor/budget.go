package interceptor

import (
	"sync/atomic"

	"google.golang.org/protobuf/proto"
)

// admission bounds what the parallel run holds at once: calls in flight and
// bytes of copies. It is counters, not a pool of tokens, so that a bound of
// any size costs nothing and Close can tell at once that nothing is in
// flight.
type admission struct {
	maxInFlight int64
	inFlight    atomic.Int64
	budget      int64
	held        atomic.Int64
	closed      atomic.Bool
	// idle receives a token when the last call in flight leaves after
	// Close; Close re-reads inFlight after each, so a stale token is
	// harmless.
	idle chan struct{}
}

func newAdmission(maxInFlight, budget int) *admission {
	return &admission{maxInFlight: int64(maxInFlight), budget: int64(budget), idle: make(chan struct{}, 1)}
}

// enter takes a place in flight. It fails when none is free, or when the
// parallel run has closed: enter counts itself in before it looks at closed
// and Close sets closed before it looks at the count, so either Close waits
// for this call or this call sees closed.
func (a *admission) enter() (ok, closed bool) {
	if a.inFlight.Add(1) > a.maxInFlight {
		a.leave()
		return false, false
	}
	if a.closed.Load() {
		a.leave()
		return false, true
	}
	return true, false
}

func (a *admission) leave() {
	if a.inFlight.Add(-1) == 0 && a.closed.Load() {
		select {
		case a.idle <- struct{}{}:
		default:
		}
	}
}

// reserve takes n bytes of the budget, or fails without taking any.
func (a *admission) reserve(n int64) bool {
	if a.held.Add(n) > a.budget {
		a.held.Add(-n)
		return false
	}
	return true
}

func (a *admission) release(n int64) { a.held.Add(-n) }

// allowance is one comparison's share of the memory budget: the bytes it
// holds, within a bound of its own, until it closes and gives back at once
// whatever it still holds. Takes and gives may come from any goroutine;
// after close, takes fail and gives do nothing, so a copy made as the
// comparison ends can neither leak budget nor give it back twice.
type allowance struct {
	adm  *admission
	max  int64
	held atomic.Int64 // closedAllowance once closed
}

const closedAllowance = -1 << 62

func (a *allowance) take(n int64) bool {
	if !a.adm.reserve(n) {
		return false
	}
	for {
		cur := a.held.Load()
		if cur < 0 || cur+n > a.max {
			a.adm.release(n)
			return false
		}
		if a.held.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

func (a *allowance) give(n int64) {
	for {
		cur := a.held.Load()
		if cur < 0 {
			return // close gave it back
		}
		if a.held.CompareAndSwap(cur, cur-n) {
			a.adm.release(n)
			return
		}
	}
}

func (a *allowance) close() {
	if cur := a.held.Swap(closedAllowance); cur > 0 {
		a.adm.release(cur)
	}
}

// Copies are encoded with the sizes that proto.Size has just cached, to be
// counted before they are made, and decoded without the checks the caller's
// own decoding already made.
var (
	copyOptions  = proto.MarshalOptions{AllowPartial: true, UseCachedSize: true}
	copyDecoding = proto.UnmarshalOptions{AllowPartial: true}
)

// queuedItemBytes is what a copy queued on a stream holds besides its
// bytes: its place in the queue and its allocation.
const queuedItemBytes = 64

// held is the share of the budget a queued copy holds.
func held(b []byte) int64 { return int64(len(b)) + queuedItemBytes }
