package readiness_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

func TestDefaultPolicy(t *testing.T) {
	p := readiness.DefaultPolicy()
	want := &parallelrunv1.ReadinessPolicy{
		MinCompared:           proto.Int64(1000),
		MinStreakCalls:        proto.Int64(1000),
		MinStreakDuration:     durationpb.New(time.Hour),
		MaxMismatchRate:       proto.Float64(0),
		MaxCandidateErrorRate: proto.Float64(0.01),
		MaxP99LatencyRatio:    proto.Float64(0),
		Window:                durationpb.New(time.Hour),
	}
	if !proto.Equal(p, want) {
		t.Errorf("DefaultPolicy() = %v, want %v", p, want)
	}
	// Every field is set: one whose value is the zero value too.
	n := 0
	p.ProtoReflect().Range(func(protoreflect.FieldDescriptor, protoreflect.Value) bool { n++; return true })
	if n != 7 {
		t.Errorf("%d fields set, want 7", n)
	}
	if err := readiness.Check(p); err != nil {
		t.Error(err)
	}
	// Each call returns a message of its own.
	p.Window.Seconds = 1
	if readiness.DefaultPolicy().GetWindow().AsDuration() != time.Hour {
		t.Error("DefaultPolicy returns a shared message")
	}
}

func TestMerge(t *testing.T) {
	base := readiness.DefaultPolicy()
	over := &parallelrunv1.ReadinessPolicy{
		MinCompared:     proto.Int64(0), // set to zero: replaces
		MaxMismatchRate: proto.Float64(0.5),
		// 30m and 500ns: replaces the hour whole, not its nanos only.
		Window: &durationpb.Duration{Seconds: 1800, Nanos: 500},
	}
	got := readiness.Merge(base, over)
	want := readiness.DefaultPolicy()
	want.MinCompared = proto.Int64(0)
	want.MaxMismatchRate = proto.Float64(0.5)
	want.Window = durationpb.New(30*time.Minute + 500)
	if !proto.Equal(got, want) {
		t.Errorf("Merge = %v, want %v", got, want)
	}
	// Nothing is shared with either argument.
	got.Window.Seconds = 1
	got.MinStreakDuration.Seconds = 1
	if over.GetWindow().GetSeconds() != 1800 || base.GetMinStreakDuration().AsDuration() != time.Hour {
		t.Error("Merge shares a duration with its arguments")
	}
	if !proto.Equal(readiness.Merge(base, nil), base) || !proto.Equal(readiness.Merge(nil, over), over) {
		t.Error("Merge with nil changed the other")
	}
	if !proto.Equal(readiness.Merge(nil, nil), &parallelrunv1.ReadinessPolicy{}) {
		t.Error("Merge(nil, nil) is not empty")
	}
}

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		policy *parallelrunv1.ReadinessPolicy
		err    string // "" for none
	}{
		{nil, ""},
		{&parallelrunv1.ReadinessPolicy{}, ""},
		{readiness.DefaultPolicy(), ""},
		{&parallelrunv1.ReadinessPolicy{MaxMismatchRate: proto.Float64(1), MaxCandidateErrorRate: proto.Float64(0)}, ""},
		{&parallelrunv1.ReadinessPolicy{MaxP99LatencyRatio: proto.Float64(math.Inf(1))}, ""},
		{&parallelrunv1.ReadinessPolicy{MinCompared: proto.Int64(-1)}, "readiness: min_compared: -1 is negative"},
		{&parallelrunv1.ReadinessPolicy{MinStreakCalls: proto.Int64(-5)}, "readiness: min_streak_calls: -5 is negative"},
		{&parallelrunv1.ReadinessPolicy{MinStreakDuration: durationpb.New(-time.Second)}, "readiness: min_streak_duration: -1s is negative"},
		{&parallelrunv1.ReadinessPolicy{MinStreakDuration: &durationpb.Duration{Seconds: 1, Nanos: -1}},
			"readiness: min_streak_duration: proto:*"},
		{&parallelrunv1.ReadinessPolicy{MaxMismatchRate: proto.Float64(1.5)}, "readiness: max_mismatch_rate: 1.5 is outside [0, 1]"},
		{&parallelrunv1.ReadinessPolicy{MaxMismatchRate: proto.Float64(-0.1)}, "readiness: max_mismatch_rate: -0.1 is outside [0, 1]"},
		{&parallelrunv1.ReadinessPolicy{MaxMismatchRate: proto.Float64(math.NaN())}, "readiness: max_mismatch_rate: NaN is outside [0, 1]"},
		{&parallelrunv1.ReadinessPolicy{MaxCandidateErrorRate: proto.Float64(2)}, "readiness: max_candidate_error_rate: 2 is outside [0, 1]"},
		{&parallelrunv1.ReadinessPolicy{MaxP99LatencyRatio: proto.Float64(-1)}, "readiness: max_p99_latency_ratio: -1 is negative"},
		{&parallelrunv1.ReadinessPolicy{MaxP99LatencyRatio: proto.Float64(math.NaN())}, "readiness: max_p99_latency_ratio: NaN is not a number"},
		{&parallelrunv1.ReadinessPolicy{Window: durationpb.New(0)}, "readiness: window: 0s is not positive"},
		{&parallelrunv1.ReadinessPolicy{Window: durationpb.New(-time.Minute)}, "readiness: window: -1m0s is not positive"},
		// The first bad field, in the order of status.proto.
		{&parallelrunv1.ReadinessPolicy{Window: durationpb.New(0), MinCompared: proto.Int64(-1)}, "readiness: min_compared: -1 is negative"},
	} {
		got := errString(readiness.Check(tt.policy))
		if prefix, ok := strings.CutSuffix(tt.err, "*"); ok {
			// protobuf's own words are not stable: the start is enough.
			if !strings.HasPrefix(got, prefix) {
				t.Errorf("Check(%v) = %q, want %q", tt.policy, got, tt.err)
			}
		} else if got != tt.err {
			t.Errorf("Check(%v) = %q, want %q", tt.policy, got, tt.err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestNewTrackerErrors(t *testing.T) {
	bad := &parallelrunv1.ReadinessPolicy{MaxMismatchRate: proto.Float64(1.5)}
	for _, tt := range []struct {
		name string
		opts []readiness.Option
		err  string
	}{
		{"run policy", []readiness.Option{readiness.WithPolicy(bad)}, "readiness: max_mismatch_rate: 1.5 is outside [0, 1]"},
		{"method policy", []readiness.Option{readiness.WithMethodPolicy("/pkg.S/M", bad)},
			"readiness: /pkg.S/M: max_mismatch_rate: 1.5 is outside [0, 1]"},
		{"service policy", []readiness.Option{readiness.WithMethodPolicy("/pkg.S/*", &parallelrunv1.ReadinessPolicy{Window: durationpb.New(0)})},
			"readiness: /pkg.S/*: window: 0s is not positive"},
		{"bad pattern", []readiness.Option{readiness.WithMethodPolicy("/pkg.S/M/x", permissive)},
			`readiness: method policy "/pkg.S/M/x": not a method ("/pkg.Service/Method"), a service ("/pkg.Service/*") or "*"`},
		{"empty pattern", []readiness.Option{readiness.WithMethodPolicy("", permissive)},
			`readiness: method policy "": not a method ("/pkg.Service/Method"), a service ("/pkg.Service/*") or "*"`},
		{"wildcard service", []readiness.Option{readiness.WithMethodPolicy("/*/M", permissive)},
			`readiness: method policy "/*/M": not a method ("/pkg.Service/Method"), a service ("/pkg.Service/*") or "*"`},
		{"one method twice", []readiness.Option{readiness.WithMethodPolicy("/pkg.S/M", permissive), readiness.WithMethodPolicy("pkg.S/M", permissive)},
			"readiness: pkg.S/M: a policy for /pkg.S/M is already given"},
		{"top fields", []readiness.Option{readiness.WithTopFields(0)}, "readiness: WithTopFields: 0 is less than 1"},
		{"max methods", []readiness.Option{readiness.WithMaxMethods(-1)}, "readiness: WithMaxMethods: -1 is less than 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := readiness.NewTracker(tt.opts...)
			if got := errString(err); got != tt.err || tr != nil {
				t.Errorf("NewTracker = %v, %q; want nil, %q", tr, got, tt.err)
			}
		})
	}
}

// Overrides layer: the run's policy, then "*", then the service, then the
// method, each replacing only the fields it sets.
func TestMethodPolicies(t *testing.T) {
	tr := newTracker(t,
		readiness.WithPolicy(&parallelrunv1.ReadinessPolicy{MinCompared: proto.Int64(5)}),
		readiness.WithMethodPolicy("*", &parallelrunv1.ReadinessPolicy{MinStreakCalls: proto.Int64(6)}),
		readiness.WithMethodPolicy("/pkg.S/*", &parallelrunv1.ReadinessPolicy{MinCompared: proto.Int64(7)}),
		readiness.WithMethodPolicy("pkg.S/Exact", &parallelrunv1.ReadinessPolicy{MaxMismatchRate: proto.Float64(0.25)}),
	)
	for _, m := range []string{"pkg.S/Exact", "pkg.S/Other", "pkg.T/M"} {
		tr.Add(match(t0, withMethod(m)))
	}
	st := tr.Status(time.Time{})
	for _, tt := range []struct {
		method      string
		minCompared int64
		mismatch    float64
	}{
		{"/pkg.S/Exact", 7, 0.25},
		{"/pkg.S/Other", 7, 0},
		{"/pkg.T/M", 5, 0},
	} {
		p := methodStatus(t, st, tt.method).GetReadiness().GetPolicy()
		want := readiness.DefaultPolicy()
		want.MinCompared, want.MinStreakCalls, want.MaxMismatchRate = proto.Int64(tt.minCompared), proto.Int64(6), proto.Float64(tt.mismatch)
		if !proto.Equal(p, want) {
			t.Errorf("%s: policy %v, want %v", tt.method, p, want)
		}
	}
}

// A per-method override decides that method's verdict: one method may
// mismatch, the other may not.
func TestMethodPolicyVerdict(t *testing.T) {
	const lenient, strict = "/pkg.S/Lenient", "/pkg.S/Strict"
	tr := newTracker(t,
		readiness.WithPolicy(permissive),
		readiness.WithMethodPolicy(lenient, &parallelrunv1.ReadinessPolicy{MaxMismatchRate: proto.Float64(0.5)}),
	)
	for _, m := range []string{lenient, strict} {
		tr.Add(mismatch(t0, withMethod(m)))
		for _, r := range matches(t0.Add(time.Second), 3, withMethod(m)) {
			tr.Add(r)
		}
	}
	st := tr.Status(t0.Add(time.Minute))
	if v := methodStatus(t, st, lenient).GetReadiness().GetVerdict(); v != parallelrunv1.Verdict_VERDICT_READY {
		t.Errorf("%s: %v, want ready", lenient, v)
	}
	if v := methodStatus(t, st, strict).GetReadiness().GetVerdict(); v != parallelrunv1.Verdict_VERDICT_NOT_READY {
		t.Errorf("%s: %v, want not ready", strict, v)
	}
}

func TestSetPolicy(t *testing.T) {
	tr := newTracker(t)
	tr.Add(mismatch(t0))
	for _, r := range matches(t0.Add(time.Second), 3) {
		tr.Add(r)
	}
	now := t0.Add(time.Minute)
	verdict := func() parallelrunv1.Verdict {
		return methodStatus(t, tr.Status(now), quote).GetReadiness().GetVerdict()
	}
	if v := verdict(); v != parallelrunv1.Verdict_VERDICT_NOT_READY {
		t.Fatalf("before: %v", v)
	}
	// A reload that allows mismatches for this method.
	lenient := &parallelrunv1.ReadinessPolicy{MaxMismatchRate: proto.Float64(0.5)}
	if err := tr.SetPolicy(permissive, map[string]*parallelrunv1.ReadinessPolicy{quote: lenient}); err != nil {
		t.Fatal(err)
	}
	if v := verdict(); v != parallelrunv1.Verdict_VERDICT_READY {
		t.Fatalf("after: %v", v)
	}
	// A bad one changes nothing.
	err := tr.SetPolicy(nil, map[string]*parallelrunv1.ReadinessPolicy{quote: {MinCompared: proto.Int64(-1)}})
	if got, want := errString(err), "readiness: "+quote+": min_compared: -1 is negative"; got != want {
		t.Errorf("SetPolicy = %q, want %q", got, want)
	}
	if v := verdict(); v != parallelrunv1.Verdict_VERDICT_READY {
		t.Fatalf("after a bad reload: %v", v)
	}
	// The policy given is copied.
	lenient.MaxMismatchRate = proto.Float64(0)
	if v := verdict(); v != parallelrunv1.Verdict_VERDICT_READY {
		t.Fatalf("after a change of the caller's message: %v", v)
	}
}
