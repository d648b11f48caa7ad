package interceptor_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

// permissive judges on a handful of calls, as a test can make.
var permissive = &parallelrunv1.ReadinessPolicy{
	MinCompared: proto.Int64(5), MinStreakCalls: proto.Int64(5), MinStreakDuration: durationpb.New(0),
}

func TestStatusOfACleanRunIsReady(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{mirrorAll,
		interceptor.WithReadiness(readiness.WithPolicy(permissive))}})
	if got := e.pr.Status().GetReadiness().GetVerdict(); got != parallelrunv1.Verdict_VERDICT_NOT_ENOUGH_DATA {
		t.Errorf("before any call: %v", got)
	}
	for range 5 {
		if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	e.waitReports(t, 5)
	st := e.pr.Status()
	if st.GetReadiness().GetVerdict() != parallelrunv1.Verdict_VERDICT_READY || len(st.GetMethods()) != 1 {
		t.Fatalf("status %v", st)
	}
	m := st.GetMethods()[0]
	if m.GetMethod() != getQuote || m.GetOutcomes().GetMatch() != 5 || m.GetStreak().GetCalls() != 5 || m.GetLegacyLatency().GetCount() != 5 {
		t.Errorf("method status %v", m)
	}
}

func TestStatusNamesTheLastMismatch(t *testing.T) {
	// No sink but the memory one of the harness: the status counts every
	// call whether or not sinks are set, so take one without.
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(11), opts: []interceptor.Option{mirrorAll,
		interceptor.WithReadiness(readiness.WithPolicy(permissive))}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{Skus: []string{"A"}}); err != nil {
		t.Fatal(err)
	}
	r := e.waitReports(t, 1)[0]
	st := e.pr.Status()
	m := st.GetMethods()[0]
	if st.GetReadiness().GetVerdict() != parallelrunv1.Verdict_VERDICT_NOT_READY || m.GetStreak().GetLastMismatchTraceId() != r.GetTraceId() {
		t.Fatalf("status %v", st)
	}
	if at := m.GetStreak().GetLastMismatchAt(); at != "quote.items[0].price.units" {
		t.Errorf("last mismatch at %q", at)
	}
	if why := strings.Join(m.GetReadiness().GetReasons(), "; "); !strings.Contains(why, "0 of 5 calls compared since the last mismatch") {
		t.Errorf("reasons %q", why)
	}
	if len(m.GetTopFields()) == 0 || m.GetTopFields()[0].GetTraceId() != r.GetTraceId() || len(m.GetTopSignatures()) != 1 {
		t.Errorf("top fields %v, signatures %v", m.GetTopFields(), m.GetTopSignatures())
	}
}

// Calls dropped for want of room reach no sink but count in the status.
func TestStatusCountsDroppedCalls(t *testing.T) {
	// The candidate holds the one place until the three calls are made
	// (a deadline could free it before), then fails as a call.
	release := make(chan struct{})
	down := func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		<-release
		return nil, status.Error(codes.Unavailable, "down")
	}
	e := newEnv(t, envConfig{legacy: price(10), candidate: down, opts: []interceptor.Option{mirrorAll, interceptor.WithMaxInFlight(1)}})
	for range 3 {
		if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	e.waitReports(t, 1)
	e.waitIdle(t)
	o := e.pr.Status().GetMethods()[0].GetOutcomes()
	if o.GetDropped() != 2 || o.GetCandidateError() != 1 {
		t.Errorf("outcomes %v", o)
	}
	if n := len(e.sink.Reports()); n != 1 {
		t.Errorf("%d reports in the sink", n)
	}
}

func TestWithReadinessChecksThePolicy(t *testing.T) {
	_, err := interceptor.New(dial(t, serve(t, &quoteServer{})), mirrorAll,
		interceptor.WithReadiness(readiness.WithPolicy(&parallelrunv1.ReadinessPolicy{MaxMismatchRate: proto.Float64(2)})))
	if err == nil || !strings.Contains(err.Error(), "WithReadiness") || !strings.Contains(err.Error(), "max_mismatch_rate") {
		t.Errorf("New = %v", err)
	}
}

func TestStatusSaysMirroringStopped(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{mirrorAll}})
	e.pr.SetDisabled(true)
	if !e.pr.Status().GetMirroringDisabled() {
		t.Error("the kill switch is on and the status does not say so")
	}
	e.pr.SetDisabled(false)
	if e.pr.Status().GetMirroringDisabled() {
		t.Error("the kill switch is off and the status says it is on")
	}
}

// A configuration file's readiness policies replace the policy in force
// when it is applied, and a bad one is refused with its key and line.
func TestConfigReadiness(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{mirrorAll}})
	cfg, err := interceptor.ParseConfig("cfg.json", []byte(`{
  "methods": [
    {"pattern": "/parallelrun.difftest.v1.QuoteService/GetQuote", "sampleRate": 1,
     "readiness": {"minCompared": 2}}
  ],
  "readiness": {"minStreakCalls": 3, "minStreakDuration": "0s"}
}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.pr.ApplyConfig(cfg, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	e.waitReports(t, 1)
	p := e.pr.Status().GetMethods()[0].GetReadiness().GetPolicy()
	if p.GetMinCompared() != 2 || p.GetMinStreakCalls() != 3 || p.GetMinStreakDuration().AsDuration() != 0 || p.GetMaxCandidateErrorRate() != readiness.DefaultPolicy().GetMaxCandidateErrorRate() {
		t.Errorf("policy in force %v", p)
	}

	_, err = interceptor.ParseConfig("bad.json", []byte(`{
  "methods": [{"pattern": "*", "sampleRate": 1}],
  "readiness": {
    "maxMismatchRate": 1.5
  }
}`))
	if want := "bad.json:3: readiness: max_mismatch_rate: 1.5 is outside [0, 1]"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ParseConfig = %v, want %q", err, want)
	}
}
