package readiness

import (
	"math"
	"time"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// numBuckets is how many time buckets a window is cut into: a bucket
// spans window/60, a minute of the default hour, whatever the traffic.
const numBuckets = 60

// counts counts calls by outcome, indexed by the Outcome's number.
type counts [parallelrunv1.Outcome_OUTCOME_LEGACY_ERROR + 1]int64

func (c *counts) compared() int64 {
	return c[parallelrunv1.Outcome_OUTCOME_MATCH] + c[parallelrunv1.Outcome_OUTCOME_MISMATCH]
}

// reached counts the calls that reached the candidate.
func (c *counts) reached() int64 {
	return c.compared() + c[parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR]
}

func (c *counts) proto() *parallelrunv1.OutcomeCounts {
	return &parallelrunv1.OutcomeCounts{
		Match:          c[parallelrunv1.Outcome_OUTCOME_MATCH],
		Mismatch:       c[parallelrunv1.Outcome_OUTCOME_MISMATCH],
		CandidateError: c[parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR],
		Dropped:        c[parallelrunv1.Outcome_OUTCOME_DROPPED],
		InternalError:  c[parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR],
		CallerCanceled: c[parallelrunv1.Outcome_OUTCOME_CALLER_CANCELED],
		Abandoned:      c[parallelrunv1.Outcome_OUTCOME_ABANDONED],
		LegacyError:    c[parallelrunv1.Outcome_OUTCOME_LEGACY_ERROR],
	}
}

// bucket holds what was reported in one span of time: the calls by
// outcome and the latencies of both sides.
type bucket struct {
	idx               int64 // the span's number: its start is idx·res after the epoch
	used              bool
	counts            counts
	legacy, candidate hist
}

func (b *bucket) reset(idx int64) {
	*b = bucket{idx: idx, used: true, legacy: b.legacy[:0], candidate: b.candidate[:0]}
}

// ring is a method's window: numBuckets buckets of res nanoseconds each,
// bucket idx in slot idx % numBuckets, so that the newest buckets take
// the places of the oldest and memory does not grow with time or traffic.
type ring struct {
	res     int64
	buckets [numBuckets]bucket
}

func newRing(window time.Duration) *ring {
	// Rounded up, so that the buckets cover the whole window, without
	// overflow for the longest (AsDuration saturates at about 292 years).
	res := int64(window) / numBuckets
	if int64(window)%numBuckets != 0 {
		res++
	}
	return &ring{res: max(1, res)}
}

// add counts a call at time t (nanoseconds since the epoch; times are
// clamped to be positive) once the newest time seen is newest. A call that
// is older than the window ending at newest is not counted: its bucket is
// gone, or will be before anyone reads it. legacy and candidate are
// latencies in nanoseconds, negative when unknown.
func (r *ring) add(t, newest int64, o parallelrunv1.Outcome, legacy, candidate int64) {
	idx := t / r.res
	if idx <= newest/r.res-numBuckets {
		return
	}
	b := &r.buckets[idx%numBuckets]
	switch {
	case !b.used || b.idx < idx:
		b.reset(idx)
	case b.idx > idx:
		// Cannot happen while idx is within the window of newest, which
		// is at least as new as every bucket; kept as the guard of the
		// invariant that a slot only ever holds its own bucket.
		return
	}
	b.counts[o]++
	if legacy >= 0 {
		b.legacy.add(legacy)
	}
	if candidate >= 0 {
		b.candidate.add(candidate)
	}
}

// window is what a ring holds within the window ending at now.
type window struct {
	counts            counts
	legacy, candidate [numBins]uint64
	nLegacy, nCand    uint64
}

// sum adds up the buckets within the window that ends with the bucket of
// now: (now - window, now] to a bucket's precision.
func (r *ring) sum(now int64, w *window) {
	hi := now / r.res
	for i := range r.buckets {
		b := &r.buckets[i]
		if !b.used || b.idx <= hi-numBuckets || b.idx > hi {
			continue
		}
		for o, n := range b.counts {
			w.counts[o] += n
		}
		w.nLegacy += b.legacy.addTo(&w.legacy)
		w.nCand += b.candidate.addTo(&w.candidate)
	}
}

// rebucket moves what r holds to a ring for another window. Each bucket
// goes whole into the new bucket that holds its last instant (or the
// newest time seen, when that is earlier), so that what it held leaves the
// new window no sooner than its own time says: a mismatch is never
// forgotten early, though it may be remembered up to an old bucket longer.
// Buckets older than the new window, as it ends at newest, are let go;
// what the old window had let go cannot come back.
func (r *ring) rebucket(window time.Duration, newest int64) *ring {
	nr := newRing(window)
	if nr.res == r.res {
		return r
	}
	for i := range r.buckets {
		old := &r.buckets[i]
		if !old.used {
			continue
		}
		idx := min(old.idx*r.res+r.res-1, newest) / nr.res
		if idx <= newest/nr.res-numBuckets {
			continue
		}
		b := &nr.buckets[idx%numBuckets]
		if !b.used || b.idx < idx {
			b.reset(idx)
		} else if b.idx > idx {
			continue
		}
		for o, n := range old.counts {
			b.counts[o] += n
		}
		b.legacy = b.legacy.merge(old.legacy)
		b.candidate = b.candidate.merge(old.candidate)
	}
	return nr
}

// merge returns h with the bins of o added.
func (h hist) merge(o hist) hist {
	if len(o) == 0 {
		return h
	}
	var acc [numBins]uint64
	h.addTo(&acc)
	o.addTo(&acc)
	h = h[:0]
	for i, n := range acc {
		for n > 0 {
			c := min(n, math.MaxUint32)
			h = append(h, bin{i: uint16(i), n: uint32(c)})
			n -= c
		}
	}
	return h
}
