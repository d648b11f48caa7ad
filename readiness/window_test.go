package readiness_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

// windowed returns the window's outcomes and latency count of quote at
// now.
func windowed(t *testing.T, tr *readiness.Tracker, now time.Time) (*parallelrunv1.OutcomeCounts, int64) {
	t.Helper()
	m := methodStatus(t, tr.Status(now), quote)
	return m.GetWindowOutcomes(), m.GetCandidateLatency().GetCount()
}

// A report counts in the window while its time is within it, to a
// bucket's precision (a minute of an hour), and in outcomes for ever.
func TestWindowExpiry(t *testing.T) {
	tr := newTracker(t)
	tr.Add(mismatch(t0, withLatency(time.Millisecond, 2*time.Millisecond)))
	tr.Add(candidateError(t0.Add(30 * time.Minute)))
	for _, tt := range []struct {
		after                time.Duration
		mismatch, candErrors int64
		mismatchRate         float64
	}{
		{0, 1, 0, 1},
		{29 * time.Minute, 1, 0, 1},
		{59 * time.Minute, 1, 1, 1},                // still within the hour
		{time.Hour + 30*time.Second, 0, 1, 0},      // gone: its bucket left the window
		{89 * time.Minute, 0, 1, 0},                // the error is still within its hour
		{time.Hour + 31*time.Minute, 0, 0, 0},      // both gone
		{-time.Minute, 0, 0, 0},                    // before either: a window does not look ahead
		{365 * 24 * time.Hour, 0, 0, 0},            // long after
		{30*time.Minute + 30*time.Second, 1, 1, 1}, // a report later in now's bucket counts
	} {
		now := t0.Add(tt.after)
		st := methodStatus(t, tr.Status(now), quote)
		w := st.GetWindowOutcomes()
		if w.GetMismatch() != tt.mismatch || w.GetCandidateError() != tt.candErrors || st.GetMismatchRate() != tt.mismatchRate {
			t.Errorf("at +%v: window %v, mismatch rate %v; want %d mismatches, %d candidate errors, rate %v",
				tt.after, w, st.GetMismatchRate(), tt.mismatch, tt.candErrors, tt.mismatchRate)
		}
		if got := st.GetCandidateLatency().GetCount(); got != tt.mismatch {
			t.Errorf("at +%v: %d candidate latencies, want %d", tt.after, got, tt.mismatch)
		}
		if o := st.GetOutcomes(); o.GetMismatch() != 1 || o.GetCandidateError() != 1 {
			t.Errorf("at +%v: outcomes %v, want one mismatch and one candidate error", tt.after, o)
		}
	}
}

// A report older than the window when it is added counts in outcomes but
// never in a window, even one judged at its time.
func TestWindowLateReport(t *testing.T) {
	tr := newTracker(t)
	tr.Add(match(t0.Add(2 * time.Hour)))
	tr.Add(mismatch(t0))
	st := methodStatus(t, tr.Status(time.Time{}), quote)
	if o, w := st.GetOutcomes(), st.GetWindowOutcomes(); o.GetMismatch() != 1 || o.GetMatch() != 1 || w.GetMismatch() != 0 || w.GetMatch() != 1 {
		t.Errorf("outcomes %v, window %v", o, w)
	}
	if w, _ := windowed(t, tr, t0); w.GetMismatch() != 0 {
		t.Errorf("the late mismatch counts in a window at its own time: %v", w)
	}
	// One within the window is counted, late as it is.
	tr.Add(mismatch(t0.Add(90 * time.Minute)))
	if w, _ := windowed(t, tr, time.Time{}); w.GetMismatch() != 1 {
		t.Errorf("window %v, want the mismatch of 30 minutes before", w)
	}
}

// A report without a time takes the newest time seen; while there is none,
// it counts in no window.
func TestWindowReportWithoutTime(t *testing.T) {
	tr := newTracker(t)
	tr.Add(match(t0, func(r *parallelrunv1.Report) { r.Time = nil }))
	st := tr.Status(time.Time{})
	if st.GetTime() != nil || st.GetStart() != nil {
		t.Errorf("time %v, start %v: want none", st.GetTime(), st.GetStart())
	}
	if m := methodStatus(t, st, quote); m.GetOutcomes().GetMatch() != 1 || m.GetWindowOutcomes().GetMatch() != 0 {
		t.Errorf("outcomes %v, window %v", m.GetOutcomes(), m.GetWindowOutcomes())
	}
	tr.Add(match(t0.Add(time.Hour)))
	tr.Add(mismatch(time.Time{}, func(r *parallelrunv1.Report) { r.Time = nil }))
	m := methodStatus(t, tr.Status(time.Time{}), quote)
	if w := m.GetWindowOutcomes(); w.GetMatch() != 1 || w.GetMismatch() != 1 {
		t.Errorf("window %v", w)
	}
	if got := m.GetStreak().GetLastMismatchTime().AsTime(); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("last mismatch at %v, want the newest time, %v", got, t0.Add(time.Hour))
	}
	// An invalid time is no time.
	tr.Add(mismatch(t0, func(r *parallelrunv1.Report) { r.Time.Nanos = -1 }))
	if got := methodStatus(t, tr.Status(time.Time{}), quote).GetStreak().GetLastMismatchTime().AsTime(); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("last mismatch at %v, want the newest time, %v", got, t0.Add(time.Hour))
	}
}

// The run's time and start: now as given, or the newest report's time, and
// the earliest report's time.
func TestRunTimes(t *testing.T) {
	tr := newTracker(t)
	tr.Add(match(t0.Add(time.Minute)))
	tr.Add(match(t0))
	tr.Add(match(t0.Add(2 * time.Minute)))
	st := tr.Status(time.Time{})
	if !st.GetTime().AsTime().Equal(t0.Add(2*time.Minute)) || !st.GetStart().AsTime().Equal(t0) {
		t.Errorf("time %v, start %v", st.GetTime().AsTime(), st.GetStart().AsTime())
	}
	now := t0.Add(time.Hour + 123*time.Millisecond)
	if got := tr.Status(now).GetTime().AsTime(); !got.Equal(now) {
		t.Errorf("time %v, want %v", got, now)
	}
}

// A window of another length has buckets of another size: a day's window
// keeps what an hour's lets go.
func TestWindowLength(t *testing.T) {
	day := &parallelrunv1.ReadinessPolicy{Window: durationpb.New(24 * time.Hour)}
	tr := newTracker(t, readiness.WithPolicy(day))
	tr.Add(mismatch(t0))
	if w, _ := windowed(t, tr, t0.Add(23*time.Hour)); w.GetMismatch() != 1 {
		t.Errorf("after 23h, window %v", w)
	}
	if w, _ := windowed(t, tr, t0.Add(25*time.Hour)); w.GetMismatch() != 0 {
		t.Errorf("after 25h, window %v", w)
	}
	// The longest window there is: durations saturate at about 292 years.
	tr = newTracker(t, readiness.WithPolicy(&parallelrunv1.ReadinessPolicy{Window: &durationpb.Duration{Seconds: 315_576_000_000}}))
	tr.Add(mismatch(t0))
	if w, _ := windowed(t, tr, t0.Add(100*365*24*time.Hour)); w.GetMismatch() != 1 {
		t.Errorf("after a century, window %v", w)
	}
	// A window of a second: buckets of 1/60 s.
	tr = newTracker(t, readiness.WithPolicy(&parallelrunv1.ReadinessPolicy{Window: durationpb.New(time.Second)}))
	tr.Add(mismatch(t0))
	if w, _ := windowed(t, tr, t0.Add(900*time.Millisecond)); w.GetMismatch() != 1 {
		t.Errorf("after 900ms, window %v", w)
	}
	if w, _ := windowed(t, tr, t0.Add(1100*time.Millisecond)); w.GetMismatch() != 0 {
		t.Errorf("after 1.1s, window %v", w)
	}
}

// A reload that changes the window keeps what the old one held, within the
// new one.
func TestWindowChange(t *testing.T) {
	tr := newTracker(t)
	tr.Add(mismatch(t0, withLatency(time.Millisecond, time.Millisecond)))
	tr.Add(match(t0.Add(50*time.Minute), withLatency(time.Millisecond, time.Millisecond)))
	now := t0.Add(55 * time.Minute)
	set := func(w time.Duration) {
		t.Helper()
		if err := tr.SetPolicy(&parallelrunv1.ReadinessPolicy{Window: durationpb.New(w)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	set(24 * time.Hour)
	if w, n := windowed(t, tr, now); w.GetMismatch() != 1 || w.GetMatch() != 1 || n != 2 {
		t.Errorf("a day: window %v, %d latencies", w, n)
	}
	set(10 * time.Minute) // lets the mismatch go
	if w, n := windowed(t, tr, now); w.GetMismatch() != 0 || w.GetMatch() != 1 || n != 1 {
		t.Errorf("10m: window %v, %d latencies", w, n)
	}
	set(time.Hour) // it does not come back
	if w, n := windowed(t, tr, now); w.GetMismatch() != 0 || w.GetMatch() != 1 || n != 1 {
		t.Errorf("back to an hour: window %v, %d latencies", w, n)
	}
	tr.Add(mismatch(t0.Add(56 * time.Minute)))
	if w, _ := windowed(t, tr, t0.Add(56*time.Minute)); w.GetMismatch() != 1 || w.GetMatch() != 1 {
		t.Errorf("after a new mismatch: window %v", w)
	}
	if got := methodStatus(t, tr.Status(now), quote).GetReadiness().GetPolicy().GetWindow().AsDuration(); got != time.Hour {
		t.Errorf("policy window %v", got)
	}
}

// Times far from now are clamped, not overflowed.
func TestExtremeTimes(t *testing.T) {
	tr := newTracker(t, readiness.WithPolicy(&parallelrunv1.ReadinessPolicy{Window: durationpb.New(time.Nanosecond)}))
	for _, at := range []time.Time{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), t0} {
		tr.Add(mismatch(at, withLatency(-time.Second, 1000*time.Hour)))
	}
	tr.Add(match(t0, func(r *parallelrunv1.Report) { r.LegacyLatency = &durationpb.Duration{Seconds: 1, Nanos: -5} }))
	st := tr.Status(time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))
	m := methodStatus(t, st, quote)
	if m.GetOutcomes().GetMismatch() != 3 || m.GetStreak().GetDuration().AsDuration() < 0 {
		t.Errorf("%v", m)
	}
	if m.GetLegacyLatency().GetCount() != 0 {
		t.Errorf("a negative or invalid latency was counted: %v", m.GetLegacyLatency())
	}
	// Now before the last report: durations are never negative.
	m = methodStatus(t, tr.Status(t0.Add(-time.Hour)), quote)
	if d := m.GetStreak().GetDuration().AsDuration(); d != 0 {
		t.Errorf("streak duration %v, want 0", d)
	}
	if !proto.Equal(m.GetWindowOutcomes(), &parallelrunv1.OutcomeCounts{}) {
		t.Errorf("window %v, want nothing", m.GetWindowOutcomes())
	}
}
