package readiness_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

// maxRelativeError is the documented bound of the percentiles, for
// latencies from 1µs to 4.4h.
const maxRelativeError = 0.02

// The percentiles are within the stated error of the exact nearest-rank
// percentiles of the same latencies, sorted.
func TestLatencyPercentiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	logUniform := func(lo, hi time.Duration) time.Duration {
		return time.Duration(math.Exp(math.Log(float64(lo)) + rng.Float64()*(math.Log(float64(hi))-math.Log(float64(lo)))))
	}
	for _, tt := range []struct {
		name string
		n    int
		gen  func(i int) time.Duration
	}{
		{"one", 1, func(int) time.Duration { return 42 * time.Millisecond }},
		{"two", 2, func(i int) time.Duration { return time.Duration(i+1) * time.Millisecond }},
		{"ten", 10, func(i int) time.Duration { return time.Duration(i+1) * time.Millisecond }},
		{"log-uniform, 1µs to 4h", 20_000, func(int) time.Duration { return logUniform(time.Microsecond, 4*time.Hour) }},
		{"normal around 20ms", 20_000, func(int) time.Duration {
			return max(time.Microsecond, time.Duration((20+3*rng.NormFloat64())*float64(time.Millisecond)))
		}},
		{"two modes", 10_000, func(i int) time.Duration {
			if i%10 == 0 {
				return logUniform(time.Second, 2*time.Second)
			}
			return logUniform(time.Millisecond, 2*time.Millisecond)
		}},
		{"a long tail", 10_000, func(int) time.Duration {
			return time.Millisecond + time.Duration(rng.ExpFloat64()*float64(50*time.Millisecond))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(t, readiness.WithPolicy(permissive))
			legacy := make([]time.Duration, tt.n)
			candidate := make([]time.Duration, tt.n)
			for i := range tt.n {
				legacy[i], candidate[i] = tt.gen(i), tt.gen(i)
				tr.Add(match(t0.Add(time.Duration(i)*time.Millisecond), withLatency(legacy[i], candidate[i])))
			}
			m := methodStatus(t, tr.Status(time.Time{}), quote)
			for _, side := range []struct {
				name    string
				values  []time.Duration
				summary *parallelrunv1.LatencySummary
			}{{"legacy", legacy, m.GetLegacyLatency()}, {"candidate", candidate, m.GetCandidateLatency()}} {
				if side.summary.GetCount() != int64(tt.n) {
					t.Errorf("%s: count %d, want %d", side.name, side.summary.GetCount(), tt.n)
				}
				slices.Sort(side.values)
				for _, p := range []struct {
					q   int
					got time.Duration
				}{{50, side.summary.GetP50().AsDuration()}, {90, side.summary.GetP90().AsDuration()}, {99, side.summary.GetP99().AsDuration()}} {
					// Nearest rank: the value at rank ceil(q·n/100).
					exact := side.values[(p.q*tt.n+99)/100-1]
					if e := math.Abs(float64(p.got-exact)) / float64(exact); e > maxRelativeError {
						t.Errorf("%s p%d: %v, exact %v: error %.2f%%", side.name, p.q, p.got, exact, 100*e)
					}
				}
			}
		})
	}
}

// No latencies, no percentiles; only the reports that carry one count.
func TestLatencyCount(t *testing.T) {
	tr := newTracker(t)
	tr.Add(match(t0))
	tr.Add(candidateError(t0, func(r *parallelrunv1.Report) { r.LegacyLatency = durationpb.New(time.Millisecond) }))
	m := methodStatus(t, tr.Status(time.Time{}), quote)
	if l := m.GetLegacyLatency(); l.GetCount() != 1 || l.GetP50() == nil {
		t.Errorf("legacy %v", l)
	}
	if c := m.GetCandidateLatency(); c.GetCount() != 0 || c.GetP50() != nil || c.GetP99() != nil {
		t.Errorf("candidate %v", c)
	}
}
