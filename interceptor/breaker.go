package interceptor

import (
	"sync"
	"sync/atomic"
	"time"
)

// breaker stops mirroring a method whose candidate calls keep failing as
// calls (out of time or unreachable), and lets one call through now and
// then to see whether the candidate answers again. A stalled candidate
// then costs the caller's process next to nothing: no call is sent only to
// time out, nothing is held in flight for it, and no comparison reports
// what is already known.
type breaker struct {
	threshold  int           // consecutive failures that open it; 0: never
	minBackoff time.Duration // the first pause
	maxBackoff time.Duration

	// openUntil is 0 while closed: the caller's path reads only it.
	openUntil atomic.Int64 // unix nanoseconds

	mu       sync.Mutex
	failures int
	backoff  time.Duration
	probing  bool // a call is through to see whether the candidate is back
}

func newBreaker(threshold int, backoff time.Duration) *breaker {
	return &breaker{threshold: threshold, minBackoff: backoff, maxBackoff: 64 * backoff, backoff: backoff}
}

// allow says whether a call may be mirrored. When the breaker is open and
// its pause is over, one call is let through as a probe; it must end with
// done, or with abort if it is not mirrored after all.
func (b *breaker) allow() (ok, probe bool) {
	if b == nil || b.openUntil.Load() == 0 {
		return true, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch until := b.openUntil.Load(); {
	case until == 0:
		return true, false
	case b.probing || time.Now().UnixNano() < until:
		return false, false
	}
	b.probing = true
	return true, true
}

// abort ends a probe that was not mirrored after all.
func (b *breaker) abort(probe bool) {
	if b == nil || !probe {
		return
	}
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

// done takes the end of a mirrored call: whether its candidate call failed
// as a call, or answered (any status of the service's logic). Calls that
// ended otherwise (the caller left, a bound was reached) say nothing
// about the candidate: known is false.
func (b *breaker) done(probe, known, failed bool) {
	if b == nil || b.threshold == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	switch {
	case !known:
	case !failed:
		b.failures = 0
		b.backoff = b.minBackoff
		b.openUntil.Store(0)
	default:
		b.failures++
		// Calls sent before it opened fail too: they do not extend the
		// pause, only a failed probe does, twice as long each time.
		if probe || (b.openUntil.Load() == 0 && b.failures >= b.threshold) {
			b.openUntil.Store(time.Now().Add(b.backoff).UnixNano())
			b.backoff = min(2*b.backoff, b.maxBackoff)
		}
	}
}
