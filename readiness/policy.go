package readiness

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// The defaults of a [parallelrunv1.ReadinessPolicy], as status.proto
// documents them.
const (
	DefaultMinCompared           = 1000
	DefaultMinStreakCalls        = 1000
	DefaultMinStreakDuration     = time.Hour
	DefaultMaxMismatchRate       = 0.0
	DefaultMaxCandidateErrorRate = 0.01
	DefaultMaxP99LatencyRatio    = 0.0 // not checked
	DefaultWindow                = time.Hour
)

// DefaultPolicy returns the documented defaults with every field set:
// min_compared 1000, min_streak_calls 1000, min_streak_duration 1h,
// max_mismatch_rate 0, max_candidate_error_rate 0.01,
// max_p99_latency_ratio 0 (off), window 1h. The message is the caller's.
func DefaultPolicy() *parallelrunv1.ReadinessPolicy {
	return &parallelrunv1.ReadinessPolicy{
		MinCompared:           proto.Int64(DefaultMinCompared),
		MinStreakCalls:        proto.Int64(DefaultMinStreakCalls),
		MinStreakDuration:     durationpb.New(DefaultMinStreakDuration),
		MaxMismatchRate:       proto.Float64(DefaultMaxMismatchRate),
		MaxCandidateErrorRate: proto.Float64(DefaultMaxCandidateErrorRate),
		MaxP99LatencyRatio:    proto.Float64(DefaultMaxP99LatencyRatio),
		Window:                durationpb.New(DefaultWindow),
	}
}

// Merge returns base with every field that over sets replacing base's.
// Either may be nil; the result is a new message that shares nothing with
// them. It is not proto.Merge, which would merge a duration's seconds and
// nanos one by one (a window of 1h over 30m500ns would become 1h500ns).
func Merge(base, over *parallelrunv1.ReadinessPolicy) *parallelrunv1.ReadinessPolicy {
	out := &parallelrunv1.ReadinessPolicy{}
	for _, p := range []*parallelrunv1.ReadinessPolicy{base, over} {
		if p == nil {
			continue
		}
		if p.MinCompared != nil {
			out.MinCompared = proto.Int64(p.GetMinCompared())
		}
		if p.MinStreakCalls != nil {
			out.MinStreakCalls = proto.Int64(p.GetMinStreakCalls())
		}
		if p.MinStreakDuration != nil {
			out.MinStreakDuration = proto.CloneOf(p.MinStreakDuration)
		}
		if p.MaxMismatchRate != nil {
			out.MaxMismatchRate = proto.Float64(p.GetMaxMismatchRate())
		}
		if p.MaxCandidateErrorRate != nil {
			out.MaxCandidateErrorRate = proto.Float64(p.GetMaxCandidateErrorRate())
		}
		if p.MaxP99LatencyRatio != nil {
			out.MaxP99LatencyRatio = proto.Float64(p.GetMaxP99LatencyRatio())
		}
		if p.Window != nil {
			out.Window = proto.CloneOf(p.Window)
		}
	}
	return out
}

// Check validates the fields p sets (nil sets none): counts and durations
// must not be negative, rates must lie in [0, 1], the latency ratio must
// not be negative and the window must be positive. The error names the
// first bad field in the order of status.proto, as in
// "readiness: max_mismatch_rate: 1.5 is outside [0, 1]".
func Check(p *parallelrunv1.ReadinessPolicy) error {
	if err := check(p); err != nil {
		return fmt.Errorf("readiness: %w", err)
	}
	return nil
}

// check is Check without the package prefix, so that NewTracker can put
// the method's name between the two.
func check(p *parallelrunv1.ReadinessPolicy) error {
	if p == nil {
		return nil
	}
	if p.MinCompared != nil && p.GetMinCompared() < 0 {
		return fmt.Errorf("min_compared: %d is negative", p.GetMinCompared())
	}
	if p.MinStreakCalls != nil && p.GetMinStreakCalls() < 0 {
		return fmt.Errorf("min_streak_calls: %d is negative", p.GetMinStreakCalls())
	}
	if d := p.MinStreakDuration; d != nil {
		if err := d.CheckValid(); err != nil {
			return fmt.Errorf("min_streak_duration: %w", err)
		}
		if d.AsDuration() < 0 {
			return fmt.Errorf("min_streak_duration: %v is negative", d.AsDuration())
		}
	}
	if p.MaxMismatchRate != nil {
		if err := checkRate(p.GetMaxMismatchRate()); err != nil {
			return fmt.Errorf("max_mismatch_rate: %w", err)
		}
	}
	if p.MaxCandidateErrorRate != nil {
		if err := checkRate(p.GetMaxCandidateErrorRate()); err != nil {
			return fmt.Errorf("max_candidate_error_rate: %w", err)
		}
	}
	if p.MaxP99LatencyRatio != nil {
		switch r := p.GetMaxP99LatencyRatio(); {
		case math.IsNaN(r):
			return errors.New("max_p99_latency_ratio: NaN is not a number")
		case r < 0:
			return fmt.Errorf("max_p99_latency_ratio: %v is negative", r)
		}
	}
	if d := p.Window; d != nil {
		if err := d.CheckValid(); err != nil {
			return fmt.Errorf("window: %w", err)
		}
		if d.AsDuration() <= 0 {
			return fmt.Errorf("window: %v is not positive", d.AsDuration())
		}
	}
	return nil
}

func checkRate(r float64) error {
	if !(r >= 0 && r <= 1) { // NaN too
		return fmt.Errorf("%v is outside [0, 1]", r)
	}
	return nil
}

// policies are the run's policy and the overrides by pattern, resolved
// into one full policy per method.
type policies struct {
	run      *parallelrunv1.ReadinessPolicy
	patterns map[string]*parallelrunv1.ReadinessPolicy // canonical pattern -> override
}

// newPolicies validates and copies a run's policy and its overrides.
func newPolicies(run *parallelrunv1.ReadinessPolicy, perMethod map[string]*parallelrunv1.ReadinessPolicy) (policies, error) {
	if err := check(run); err != nil {
		return policies{}, fmt.Errorf("readiness: %w", err)
	}
	ps := policies{run: Merge(DefaultPolicy(), run), patterns: make(map[string]*parallelrunv1.ReadinessPolicy, len(perMethod))}
	// In order, so that of several bad ones the same is named each time.
	for _, pattern := range slices.Sorted(maps.Keys(perMethod)) {
		p := perMethod[pattern]
		key, err := canonicalPattern(pattern)
		if err != nil {
			return policies{}, err
		}
		if err := check(p); err != nil {
			return policies{}, fmt.Errorf("readiness: %s: %w", pattern, err)
		}
		if _, dup := ps.patterns[key]; dup {
			return policies{}, fmt.Errorf("readiness: %s: a policy for %s is already given", pattern, key)
		}
		ps.patterns[key] = Merge(nil, p)
	}
	return ps, nil
}

// forMethod layers, over the run's policy, the overrides of "*", of the
// method's service and of the method itself, each replacing only the
// fields it sets. The result has every field set and is valid, since
// every layer is.
func (ps policies) forMethod(name string) *parallelrunv1.ReadinessPolicy {
	p := Merge(ps.run, ps.patterns["*"])
	if name == Other {
		return p
	}
	if i := strings.LastIndexByte(name, '/'); i > 0 {
		p = Merge(p, ps.patterns[name[:i+1]+"*"])
	}
	return Merge(p, ps.patterns[name])
}

// canonicalPattern accepts what the interceptor's WithMethod does: "*",
// "/pkg.Service/*" and "/pkg.Service/Method", with the leading slash
// optional, as OpenTelemetry leaves it out.
func canonicalPattern(pattern string) (string, error) {
	if pattern == "*" {
		return pattern, nil
	}
	key := canonicalMethod(pattern)
	svc, m, ok := strings.Cut(key[1:], "/")
	if !ok || svc == "" || m == "" || strings.ContainsAny(m, "/") || strings.Contains(svc, "*") ||
		(strings.Contains(m, "*") && m != "*") {
		return "", fmt.Errorf("readiness: method policy %q: not a method (\"/pkg.Service/Method\"), a service (\"/pkg.Service/*\") or \"*\"", pattern)
	}
	return key, nil
}

// canonicalMethod names a method as gRPC does, "/pkg.Service/Method",
// whether given so or as OpenTelemetry's rpc.method, "pkg.Service/Method".
func canonicalMethod(name string) string {
	if strings.HasPrefix(name, "/") {
		return name
	}
	return "/" + name
}
