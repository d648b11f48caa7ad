package readiness

import (
	"context"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// Times are kept as nanoseconds since the epoch, clamped to
// [minTime, maxTime] (1970 to 2116), so that bucket arithmetic cannot
// overflow; 0 stands for unknown.
const (
	minTime = int64(1)
	maxTime = math.MaxInt64 / 2
)

// Tracker accumulates reports and judges from them, per method, whether
// the candidate is ready. It is safe for concurrent use, and a
// [sink.Sink]: given to the interceptor's WithSink, it is fed every
// report of a live run.
type Tracker struct {
	mu         sync.Mutex
	policies   policies
	topN       int
	maxMethods int
	// byName finds a method by the name its reports give, with or
	// without the leading slash: at most two names per method.
	byName  map[string]*methodState
	methods []*methodState // in the order they appeared; Other included
	calls   uint64         // reports added, to count a field once per call
	newest  int64          // the newest report time seen; 0 before any
	start   int64          // the earliest report time seen; 0 before any
}

var _ sink.Sink = (*Tracker)(nil)

// methodState is what a Tracker knows of one method.
type methodState struct {
	name     string
	policy   *parallelrunv1.ReadinessPolicy // every field set
	window   time.Duration
	outcomes counts
	ring     *ring

	mismatched        bool  // a mismatch was added
	streakCalls       int64 // matches added since the last mismatch added
	lastMismatch      int64 // its time
	lastAt, lastTrace string
	firstCompared     int64 // the time of the first compared call added

	fields, noise fieldTally
	signatures    signatureTally
}

// NewTracker returns an empty Tracker. An invalid policy is an error that
// names the method (for a per-method one) and the field.
func NewTracker(opts ...Option) (*Tracker, error) {
	o := options{topN: DefaultTopFields, maxMethods: DefaultMaxMethods}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	ps, err := newPolicies(o.policy, o.methods)
	if err != nil {
		return nil, err
	}
	return &Tracker{
		policies:   ps,
		topN:       o.topN,
		maxMethods: o.maxMethods,
		byName:     make(map[string]*methodState),
	}, nil
}

// SetPolicy replaces the run's policy and the per-method ones, as a
// reload of the configuration does; perMethod is keyed as
// [WithMethodPolicy] takes methods. It is validated as NewTracker
// validates, and on error nothing changes. What was counted stays; a
// method whose window changes keeps what its old window held, moved to the
// new window's buckets (see the package documentation).
func (t *Tracker) SetPolicy(p *parallelrunv1.ReadinessPolicy, perMethod map[string]*parallelrunv1.ReadinessPolicy) error {
	ps, err := newPolicies(p, perMethod)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.policies = ps
	for _, m := range t.methods {
		m.setPolicy(ps.forMethod(m.name), t.newest)
	}
	return nil
}

func (m *methodState) setPolicy(p *parallelrunv1.ReadinessPolicy, newest int64) {
	m.policy = p
	w := p.GetWindow().AsDuration()
	if m.ring == nil {
		m.ring = newRing(w)
	} else if w != m.window {
		m.ring = m.ring.rebucket(w, newest)
	}
	m.window = w
}

// Publish adds r; it never fails. The interceptor calls it for every
// report.
func (t *Tracker) Publish(_ context.Context, r *parallelrunv1.Report) error {
	t.Add(r)
	return nil
}

// Flush does nothing: a Tracker holds no output.
func (*Tracker) Flush(context.Context) error { return nil }

// Add counts r. It keeps nothing of r but strings, which cannot change,
// so r is the caller's again when Add returns. A nil report, and one whose
// outcome is unspecified or unknown, is ignored.
func (t *Tracker) Add(r *parallelrunv1.Report) {
	o := r.GetOutcome()
	if o <= parallelrunv1.Outcome_OUTCOME_UNSPECIFIED || int(o) >= len(counts{}) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls++
	at := t.newest
	if ts := r.GetTime(); ts != nil && ts.CheckValid() == nil {
		at = clampTime(ts.GetSeconds(), ts.GetNanos())
		t.newest = max(t.newest, at)
		if t.start == 0 || at < t.start {
			t.start = at
		}
	}
	m := t.method(r.GetMethod())
	m.outcomes[o]++
	if at != 0 {
		m.ring.add(at, t.newest, o, latency(r.GetLegacyLatency()), latency(r.GetCandidateLatency()))
	}
	switch o {
	case parallelrunv1.Outcome_OUTCOME_MATCH:
		m.streakCalls++
		if m.firstCompared == 0 {
			m.firstCompared = at
		}
	case parallelrunv1.Outcome_OUTCOME_MISMATCH:
		if m.firstCompared == 0 {
			m.firstCompared = at
		}
		m.mismatched = true
		m.streakCalls = 0
		m.lastMismatch = at
		m.lastAt = mismatchAt(r)
		m.lastTrace = cutTo(r.GetTraceId(), maxID)
		for _, d := range r.GetDifferences() {
			m.fields.add(d, t.calls, r.GetTraceId(), at)
		}
		if r.GetSignature() != "" {
			m.signatures.add(r, at)
		}
	}
	for _, d := range r.GetNoise() {
		m.noise.add(d, t.calls, r.GetTraceId(), at)
	}
}

// method finds or makes the state of the method a report names, or of
// Other past the bounds. It allocates only for a method it has not seen:
// a name counted under Other is not remembered (it could grow the map),
// so it runs for each of its reports.
func (t *Tracker) method(name string) *methodState {
	if m := t.byName[name]; m != nil {
		return m
	}
	slashed := strings.HasPrefix(name, "/")
	if name == "" || name == Other || len(name) > maxName || (!slashed && len(name) == maxName) {
		return t.state(Other)
	}
	if !slashed {
		// The canonical spelling, looked up without allocating.
		var buf [maxName]byte
		if m := t.byName[string(append(append(buf[:0], '/'), name...))]; m != nil && m.name != Other {
			t.byName[name] = m
			return m
		}
	}
	if t.distinct() >= t.maxMethods {
		return t.state(Other)
	}
	m := t.state(canonicalMethod(name))
	// The other spelling too, so that the next report of the method finds
	// it at once.
	t.byName[name] = m
	return m
}

// state finds or makes the state kept under a canonical name.
func (t *Tracker) state(canonical string) *methodState {
	if m := t.byName[canonical]; m != nil {
		return m
	}
	limit := max(4*t.topN, 64)
	m := &methodState{
		name:       canonical,
		fields:     fieldTally{limit: limit},
		noise:      fieldTally{limit: limit},
		signatures: signatureTally{limit: limit},
	}
	m.setPolicy(t.policies.forMethod(canonical), t.newest)
	t.methods = append(t.methods, m)
	t.byName[canonical] = m
	return m
}

// distinct counts the methods kept under their own names.
func (t *Tracker) distinct() int {
	if t.byName[Other] != nil {
		return len(t.methods) - 1
	}
	return len(t.methods)
}

// mismatchAt says where a mismatch differed: its first difference's path,
// or its two status codes.
func mismatchAt(r *parallelrunv1.Report) string {
	if ds := r.GetDifferences(); len(ds) > 0 {
		return cut(ds[0].GetPath())
	}
	return cut("status: " + codeOrUnset(r.GetLegacyStatus()) + " != " + codeOrUnset(r.GetCandidateStatus()))
}

func codeOrUnset(s *parallelrunv1.Status) string {
	if s.GetCode() == "" {
		return "unset"
	}
	return s.GetCode()
}

// clampTime is a valid Timestamp's time in nanoseconds since the epoch,
// clamped to [minTime, maxTime].
func clampTime(sec int64, nanos int32) int64 {
	switch {
	case sec < 0:
		return minTime
	case sec >= maxTime/int64(time.Second):
		return maxTime
	}
	return max(sec*1e9+int64(nanos), minTime)
}

// latency is d in nanoseconds; -1 when d is unset, invalid or negative,
// which is no latency to count.
func latency(d *durationpb.Duration) int64 {
	if d == nil || d.CheckValid() != nil {
		return -1
	}
	ns := d.AsDuration() // saturates, rather than overflow
	if ns < 0 {
		return -1
	}
	return int64(ns)
}

// Status judges every method at time now; a zero now means the time of
// the newest report added. The result is a new message that shares
// nothing with the Tracker.
func (t *Tracker) Status(now time.Time) *parallelrunv1.RunStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	at := t.newest
	if !now.IsZero() {
		at = clampTime(now.Unix(), int32(now.Nanosecond()))
	}
	st := &parallelrunv1.RunStatus{Time: timestamp(at), Start: timestamp(t.start)}
	if !now.IsZero() {
		st.Time = timestamppb.New(now)
	}
	ms := slices.Clone(t.methods)
	slices.SortFunc(ms, func(a, b *methodState) int { return strings.Compare(a.name, b.name) })
	for _, m := range ms {
		st.Methods = append(st.Methods, m.status(at, t.topN))
	}
	st.Readiness = judgeRun(st.Methods)
	// The run's own policy, which methods without one of their own are
	// judged by.
	st.Readiness.Policy = proto.Clone(t.policies.run).(*parallelrunv1.ReadinessPolicy)
	return st
}
