package readiness_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

func TestStreak(t *testing.T) {
	tr := newTracker(t)
	streak := func(now time.Time) *parallelrunv1.Streak {
		t.Helper()
		return methodStatus(t, tr.Status(now), quote).GetStreak()
	}
	// Without a mismatch: every compared call, since the first.
	tr.Add(candidateError(t0.Add(-time.Hour))) // not compared: does not start the streak
	for _, r := range matches(t0, 3) {
		tr.Add(r)
	}
	want := &parallelrunv1.Streak{Calls: 3, Duration: durationpb.New(10 * time.Minute)}
	if got := streak(t0.Add(10 * time.Minute)); !proto.Equal(got, want) {
		t.Errorf("before a mismatch: %v, want %v", got, want)
	}
	// A mismatch starts it again, and is described.
	tr.Add(mismatch(t0.Add(time.Hour), withDiffs(diff("quote.items[1].price.units", "quote.items.price.units", "1", "2"),
		diff("quote.total.units", "quote.total.units", "1", "2"))))
	tr.Add(candidateError(t0.Add(time.Hour + time.Second)))
	tr.Add(report(quote, parallelrunv1.Outcome_OUTCOME_DROPPED, t0.Add(time.Hour+time.Second)))
	for _, r := range matches(t0.Add(time.Hour+time.Second), 5) {
		tr.Add(r)
	}
	want = &parallelrunv1.Streak{
		Calls:               5,
		Duration:            durationpb.New(30 * time.Minute),
		LastMismatchTime:    timestamppb.New(t0.Add(time.Hour)),
		LastMismatchAt:      "quote.items[1].price.units",
		LastMismatchTraceId: "4bf92f3577b34da6a3ce929d0e0e4736",
	}
	if got := streak(t0.Add(90 * time.Minute)); !proto.Equal(got, want) {
		t.Errorf("after a mismatch: %v, want %v", got, want)
	}
	// Judged before the mismatch: no negative duration.
	if got := streak(t0).GetDuration().AsDuration(); got != 0 {
		t.Errorf("before the mismatch: duration %v", got)
	}
}

// Reports are taken in the order they are added: the last mismatch is the
// last one added, and the streak the matches added after it, whatever
// their times.
func TestReportOrder(t *testing.T) {
	tr := newTracker(t)
	tr.Add(mismatch(t0.Add(time.Hour), withTrace("a")))
	tr.Add(mismatch(t0, withTrace("b"))) // earlier, but added later: the last mismatch
	tr.Add(match(t0.Add(-time.Minute)))  // before both, but added after: in the streak
	got := methodStatus(t, tr.Status(t0.Add(2*time.Hour)), quote).GetStreak()
	want := &parallelrunv1.Streak{
		Calls:               1,
		Duration:            durationpb.New(2 * time.Hour),
		LastMismatchTime:    timestamppb.New(t0),
		LastMismatchAt:      "quote.total.nanos",
		LastMismatchTraceId: "b",
	}
	if !proto.Equal(got, want) {
		t.Errorf("streak %v, want %v", got, want)
	}
	// The first compared call is the first added, not the earliest.
	tr = newTracker(t)
	tr.Add(match(t0.Add(time.Hour)))
	tr.Add(match(t0))
	if got := methodStatus(t, tr.Status(t0.Add(2*time.Hour)), quote).GetStreak().GetDuration().AsDuration(); got != time.Hour {
		t.Errorf("streak of %v, want 1h, from the first call added", got)
	}
}
