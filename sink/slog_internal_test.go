package sink

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// clock is a time the test moves by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func failure(method string, outcome parallelrunv1.Outcome) *parallelrunv1.Report {
	return &parallelrunv1.Report{
		Method:          method,
		Outcome:         outcome,
		LegacyStatus:    &parallelrunv1.Status{Code: "UNAVAILABLE"},
		CandidateStatus: &parallelrunv1.Status{Code: "UNAVAILABLE"},
	}
}

func TestSlogErrorInterval(t *testing.T) {
	var buf bytes.Buffer
	s := NewSlog(slog.New(slog.NewTextHandler(&buf, nil)), 1)
	c := &clock{t: time.Unix(1000, 0)}
	s.now = c.now
	ctx := context.Background()
	lines := func() []string {
		out := strings.Split(strings.TrimSpace(buf.String()), "\n")
		buf.Reset()
		return out
	}

	for range 3 {
		_ = s.Publish(ctx, failure("/a.S/M", parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR))
		_ = s.Publish(ctx, failure("/a.S/M", parallelrunv1.Outcome_OUTCOME_LEGACY_ERROR))
		c.t = c.t.Add(time.Second)
	}
	if got := lines(); len(got) != 2 || strings.Contains(got[0], "suppressed") {
		t.Fatalf("first records within the interval: %q", got)
	}
	// The default interval is 10 s: the first record after it tells how
	// many were left out.
	c.t = time.Unix(1000, 0).Add(DefaultErrorInterval)
	_ = s.Publish(ctx, failure("/a.S/M", parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR))
	got := lines()
	if len(got) != 1 || !strings.Contains(got[0], `msg="parallel run" `) || !strings.Contains(got[0], "suppressed=2") {
		t.Fatalf("first record after the interval: %q", got)
	}
	_ = s.Flush(ctx)
	got = lines()
	if len(got) != 1 || !strings.Contains(got[0], "outcome=legacy_error legacy_status=UNAVAILABLE suppressed=2") {
		t.Fatalf("Flush: %q", got)
	}
}

// The windows of methods that stopped failing are let go of: a flood of
// method names does not grow the sink without bound, and nothing they left
// out is lost.
func TestSlogErrorWindowsBounded(t *testing.T) {
	var buf bytes.Buffer
	s := NewSlog(slog.New(slog.NewTextHandler(&buf, nil)), 1)
	c := &clock{t: time.Unix(1000, 0)}
	s.now = c.now
	const methods = 10000
	for i := range methods {
		m := fmt.Sprintf("/a.S/M%d", i)
		_ = s.Publish(context.Background(), failure(m, parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR))
		_ = s.Publish(context.Background(), failure(m, parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR))
		c.t = c.t.Add(time.Second)
	}
	s.mu.Lock()
	n := len(s.windows)
	s.mu.Unlock()
	if n > 1000 {
		t.Errorf("%d error windows kept for %d methods, each failing for one second", n, methods)
	}
	_ = s.Flush(context.Background())
	if got := strings.Count(buf.String(), "suppressed=1"); got != methods {
		t.Errorf("%d of %d suppressed records told", got, methods)
	}
}
