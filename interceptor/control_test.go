package interceptor_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

const quoteService = "/parallelrun.difftest.v1.QuoteService/*"

// twoSides is a legacy and a candidate service that differ in two
// fields of every quote, unary or streamed: the ID and the total. The
// candidate also labels each quote with the timeout it was called with,
// in seconds, where the legacy service writes "none": 7 or 30, told
// apart by what is left of its deadline, which a delay before it answers
// shortens, so that only a delay of 23 s could blur them.
func twoSides() (legacy, candidate *quoteServer) {
	side := func(id string, units int64) *quoteServer {
		q := func(ctx context.Context) *pb.Quote {
			timeout := "none"
			if deadline, ok := ctx.Deadline(); ok && id == "C" {
				timeout = "7"
				if time.Until(deadline) > 7*time.Second {
					timeout = "30"
				}
			}
			return &pb.Quote{QuoteId: id, Total: &pb.Money{CurrencyCode: "EUR", Units: units}, Labels: map[string]string{"timeout": timeout}}
		}
		return &quoteServer{
			get: func(ctx context.Context, _ *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
				return &pb.GetQuoteResponse{Quote: q(ctx)}, nil
			},
			list: func(_ *pb.ListQuotesRequest, stream grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
				for range 2 {
					if err := stream.Send(&pb.ListQuotesResponse{Quote: q(stream.Context())}); err != nil {
						return err
					}
				}
				return nil
			},
		}
	}
	return side("L", 10), side("C", 11)
}

// rulesA and rulesB compare the two sides' quotes each in its own way, so
// that a report tells which rules it was made under: A ignores the ID,
// hides the total and gives the candidate 7 s; B ignores the total, shows
// the ID and gives it 30 s. The timeout is read when the candidate is
// called, the comparison options when the replies are compared: a call
// that mixed the rules would show it.
func rulesA() interceptor.MethodRule {
	return interceptor.MethodRule{Pattern: quoteService, Config: interceptor.MethodConfig{SampleRate: 1, Timeout: 7 * time.Second, Diff: []protodiff.Option{
		protodiff.WithIgnoredPaths("quote.quote_id"), protodiff.WithRedactedPaths("quote.total"),
	}}}
}

func rulesB() interceptor.MethodRule {
	return interceptor.MethodRule{Pattern: quoteService, Config: interceptor.MethodConfig{SampleRate: 1, Timeout: 30 * time.Second, Diff: []protodiff.Option{
		protodiff.WithIgnoredPaths("quote.total"),
	}}}
}

// rulesOf says which rules a report was made under, "A" or "B", or what
// mix of the two it shows.
func rulesOf(r *parallelrunv1.Report) string {
	var a, b, timeoutA, timeoutB, other int
	for _, d := range r.GetDifferences() {
		switch {
		case d.GetField() == "quote.total.units" && d.GetLegacy() == protodiff.Redacted && d.GetCandidate() == protodiff.Redacted:
			a++
		case d.GetField() == "quote.quote_id" && d.GetLegacy() == `"L"` && d.GetCandidate() == `"C"`:
			b++
		case d.GetField() == "quote.labels" && d.GetLegacy() == `"none"` && d.GetCandidate() == `"7"`:
			timeoutA++
		case d.GetField() == "quote.labels" && d.GetLegacy() == `"none"` && d.GetCandidate() == `"30"`:
			timeoutB++
		default:
			other++
		}
	}
	want := 1
	if strings.HasSuffix(r.GetMethod(), "/ListQuotes") {
		want = 2
	}
	switch {
	case r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH || other > 0:
	case a == want && timeoutA == want && b == 0 && timeoutB == 0:
		return "A"
	case b == want && timeoutB == want && a == 0 && timeoutA == 0:
		return "B"
	}
	return fmt.Sprintf("a mix: %v %s", r.GetOutcome(), diffPaths(r))
}

// A reload storm: the rules are replaced again and again while eight
// callers make unary and streaming calls. Every call is compared under
// one set of rules or the other, whole.
func TestReloadStorm(t *testing.T) {
	legacy, candidate := twoSides()
	e := newEnv(t, envConfig{legacyServer: legacy, candidateServer: candidate, opts: []interceptor.Option{
		interceptor.WithMethod(quoteService, rulesA().Config),
	}})
	stop := make(chan struct{})
	var swaps atomic.Int64
	var setter sync.WaitGroup
	setter.Go(func() {
		for {
			for _, r := range []interceptor.MethodRule{rulesB(), rulesA()} {
				select {
				case <-stop:
					return
				default:
				}
				if err := e.pr.SetMethods(r); err != nil {
					t.Error(err)
					return
				}
				swaps.Add(1)
			}
		}
	})
	const callers, calls = 8, 40
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range calls {
				var err error
				if (c+i)%2 == 0 {
					_, err = e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{})
				} else {
					_, err = list(t, e.client, ctxTimeout(t), 2)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	setter.Wait()
	seen := map[string]int{}
	for _, r := range e.waitReports(t, callers*calls) {
		seen[rulesOf(r)]++
	}
	if len(seen) != 2 || seen["A"] == 0 || seen["B"] == 0 {
		t.Errorf("%d calls under %d swaps of the rules: %v", callers*calls, swaps.Load(), seen)
	}
	t.Logf("%d calls under %d swaps of the rules: %v", callers*calls, swaps.Load(), seen)
	if errs := e.errs.all(); len(errs) > 0 {
		t.Errorf("error handler got %v", errs)
	}
	e.waitIdle(t)
}

// A call, or a stream, started before SetMethods finishes under the rules
// it started with; the next uses the new ones.
func TestCallsInFlightKeepTheirRules(t *testing.T) {
	legacy, candidate := twoSides()
	entered, release := make(chan struct{}, 1), make(chan struct{})
	get, lister := legacy.get, legacy.list
	legacy.get = func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		entered <- struct{}{}
		<-release
		return get(ctx, req)
	}
	legacy.list = func(req *pb.ListQuotesRequest, stream grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
		entered <- struct{}{}
		<-release
		return lister(req, stream)
	}
	e := newEnv(t, envConfig{legacyServer: legacy, candidateServer: candidate, opts: []interceptor.Option{
		interceptor.WithMethod(quoteService, rulesA().Config),
	}})
	reports := 0
	for _, call := range []struct {
		name string
		do   func() error
	}{
		{"unary", func() error {
			_, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{})
			return err
		}},
		{"stream", func() error {
			_, err := list(t, e.client, ctxTimeout(t), 2)
			return err
		}},
	} {
		t.Run(call.name, func(t *testing.T) {
			if err := e.pr.SetMethods(rulesA()); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- call.do() }()
			<-entered // the legacy service has the call: it is mirrored under A
			if err := e.pr.SetMethods(rulesB()); err != nil {
				t.Fatal(err)
			}
			release <- struct{}{}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			reports++
			e.waitReports(t, reports) // so that the reports come in the calls' order
			go func() { done <- call.do() }()
			<-entered
			release <- struct{}{}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			reports++
			rs := e.waitReports(t, reports)[reports-2:]
			if got := []string{rulesOf(rs[0]), rulesOf(rs[1])}; !slices.Equal(got, []string{"A", "B"}) {
				t.Errorf("rules of the call in flight, then of the next: %v", got)
			}
		})
	}
}

// SetMethods checks as New does, with the same errors; on error nothing
// changes.
func TestSetMethodsChecksAsNew(t *testing.T) {
	legacy, candidate := twoSides()
	e := newEnv(t, envConfig{legacyServer: legacy, candidateServer: candidate, opts: []interceptor.Option{
		interceptor.WithMethod(quoteService, rulesA().Config),
	}})
	before := e.pr.Methods()
	for _, tc := range []struct {
		name  string
		rules []interceptor.MethodRule
		want  string
	}{
		{"unknown method", []interceptor.MethodRule{{Pattern: "/parallelrun.difftest.v1.QuoteService/GetQuotes", Config: interceptor.MethodConfig{SampleRate: 1}}},
			`interceptor: SetMethods "/parallelrun.difftest.v1.QuoteService/GetQuotes": service parallelrun.difftest.v1.QuoteService has no method GetQuotes`},
		{"sample rate unset", []interceptor.MethodRule{rulesB(), {Pattern: "*"}},
			`interceptor: SetMethods "*": field SampleRate: not set`},
		{"path typo", []interceptor.MethodRule{{Pattern: getQuote, Config: interceptor.MethodConfig{SampleRate: 1,
			Diff: []protodiff.Option{protodiff.WithIgnoredPaths("quote.quote_idd")}}}},
			`interceptor: SetMethods "/parallelrun.difftest.v1.QuoteService/GetQuote": field Diff: protodiff: WithIgnoredPaths "quote.quote_idd"`},
		{"header key", []interceptor.MethodRule{{Pattern: "*", Config: interceptor.MethodConfig{SampleRate: 1, RedactedHeaders: []string{"ok", "Not-OK"}}}},
			`interceptor: SetMethods "*": field RedactedHeaders: "Not-OK" is not a header key`},
		{"twice", []interceptor.MethodRule{rulesA(), rulesB()},
			`interceptor: SetMethods "/parallelrun.difftest.v1.QuoteService/*": pattern given twice`},
		{"probe of a stream", []interceptor.MethodRule{{Pattern: "/parallelrun.difftest.v1.QuoteService/ListQuotes", Config: interceptor.MethodConfig{SampleRate: 1,
			Noise: interceptor.NoiseConfig{ProbeRate: 1}}}},
			`field Noise: /parallelrun.difftest.v1.QuoteService/ListQuotes is a streaming method`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.pr.SetMethods(tc.rules...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("SetMethods = %v\nwant %s", err, tc.want)
			}
			if got := e.pr.Methods(); len(got) != 1 || got[0].Pattern != before[0].Pattern || len(got[0].Config.Diff) != 2 {
				t.Errorf("Methods after a refused SetMethods: %+v", got)
			}
		})
	}
	// And the rules in force are still A's.
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := rulesOf(e.waitReports(t, 1)[0]); got != "A" {
		t.Errorf("after refused SetMethods, a call compared under %s", got)
	}
}

// Methods returns the rules in force, as copies.
func TestMethodsAreCopies(t *testing.T) {
	legacy, candidate := twoSides()
	e := newEnv(t, envConfig{legacyServer: legacy, candidateServer: candidate})
	if got := e.pr.Methods(); len(got) != 0 {
		t.Errorf("Methods of a run without rules: %+v", got)
	}
	headers := []string{"x-date"}
	rules := []interceptor.MethodRule{
		{Pattern: getQuote, Config: interceptor.MethodConfig{Disabled: true}},
		{Pattern: quoteService, Config: interceptor.MethodConfig{SampleRate: 0.5, IgnoredHeaders: headers}},
	}
	if err := e.pr.SetMethods(rules...); err != nil {
		t.Fatal(err)
	}
	headers[0] = "changed by the caller"
	got := e.pr.Methods()
	got[1].Config.IgnoredHeaders[0] = "changed by a reader"
	got[0].Pattern = "*"
	again := e.pr.Methods()
	if len(again) != 2 || again[0].Pattern != getQuote || !again[0].Config.Disabled ||
		again[1].Config.SampleRate != 0.5 || again[1].Config.IgnoredHeaders[0] != "x-date" {
		t.Errorf("Methods = %+v", again)
	}
	// No rules: nothing mirrored, as for New without WithMethod.
	if err := e.pr.SetMethods(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	closeNow(t, e)
	if n := e.candidate.Calls(); n != 0 {
		t.Errorf("the candidate got %d calls", n)
	}
	if got := e.counter(t, "parallelrun.skipped", map[string]string{"parallelrun.reason": "unconfigured"}); got != 1 {
		t.Errorf("%d calls skipped as unconfigured", got)
	}
}

// What a method has learnt survives a reload that leaves it valid: the
// noise evidence while the comparison options and probes stay the same,
// the signatures always.
func TestSetMethodsCarriesNoiseEvidence(t *testing.T) {
	noisyRule := func(mc interceptor.MethodConfig) interceptor.MethodRule {
		mc.SampleRate = 1
		if mc.Noise.ProbeRate == 0 {
			mc.Noise.ProbeRate = 1
		}
		return interceptor.MethodRule{Pattern: getQuote, Config: mc}
	}
	e := newEnv(t, envConfig{legacy: noisy("a", nil), candidate: noisy("c", nil), opts: []interceptor.Option{
		interceptor.WithNoiseRule(5, interceptor.DefaultNoiseRelative, interceptor.DefaultNoiseAbsolute),
		interceptor.WithMethod(getQuote, noisyRule(interceptor.MethodConfig{}).Config),
	}})
	calls := 0
	call := func(n int) {
		t.Helper()
		for range n {
			if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{Skus: []string{"A"}}); err != nil {
				t.Fatal(err)
			}
			calls++
			e.waitReports(t, calls)
		}
	}
	type state struct {
		compared, probes int64
		quoteIDNoise     bool
		signatures       int64 // mismatches counted by signature
	}
	now := func() state {
		t.Helper()
		ss := e.pr.Signals()
		if len(ss) != 1 {
			t.Fatalf("signals of %d methods", len(ss))
		}
		s := state{compared: ss[0].Compared, probes: ss[0].Probes}
		for _, f := range ss[0].Fields {
			if f.Field == "quote.quote_id" {
				s.quoteIDNoise = f.Noise
			}
		}
		for _, sig := range ss[0].Signatures {
			s.signatures += sig.Count
		}
		return s
	}
	call(10)
	warm := now()
	if warm.compared != 10 || warm.probes != 10 || !warm.quoteIDNoise || warm.signatures == 0 {
		t.Fatalf("after 10 probed calls: %+v", warm)
	}
	for _, tc := range []struct {
		name  string
		rule  interceptor.MethodRule
		keeps bool
	}{
		{"the same rule again", noisyRule(interceptor.MethodConfig{}), true},
		{"a change that compares alike", noisyRule(interceptor.MethodConfig{CompareStatusMessage: true, Timeout: time.Minute}), true},
		{"other comparison options", noisyRule(interceptor.MethodConfig{Diff: []protodiff.Option{protodiff.WithIgnoredPaths("quote.labels")}}), false},
		{"other probes", noisyRule(interceptor.MethodConfig{Noise: interceptor.NoiseConfig{ProbeRate: 0.99}}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call(1) // under the rule before
			before := now()
			if err := e.pr.SetMethods(tc.rule); err != nil {
				t.Fatal(err)
			}
			after := now()
			if after.signatures != before.signatures {
				t.Errorf("signatures counted %d, then %d", before.signatures, after.signatures)
			}
			switch {
			case tc.keeps && (after.compared != before.compared || after.probes != before.probes || !after.quoteIDNoise):
				t.Errorf("evidence lost: %+v, then %+v", before, after)
			case !tc.keeps && (after.compared != 0 || after.probes != 0 || after.quoteIDNoise):
				t.Errorf("evidence kept: %+v, then %+v", before, after)
			}
		})
	}
}

// The candidate breaker stays open across a reload that keeps the
// method's timeout, and a new timeout gives the candidate a new chance.
func TestSetMethodsCarriesTheBreaker(t *testing.T) {
	rule := func(mc interceptor.MethodConfig) interceptor.MethodRule {
		mc.SampleRate = 1
		return interceptor.MethodRule{Pattern: getQuote, Config: mc}
	}
	e := newEnv(t, envConfig{legacy: price(10), candidate: fail(codes.Unavailable, "down"), opts: []interceptor.Option{
		interceptor.WithCandidateBreaker(2, time.Hour),
		interceptor.WithMethod(getQuote, rule(interceptor.MethodConfig{}).Config),
	}})
	call := func() {
		t.Helper()
		if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
			t.Fatal(err)
		}
		e.waitIdle(t) // the comparison, if any, has told the breaker
	}
	call()
	call()
	call() // the breaker is open: not mirrored
	if n := e.candidate.Calls(); n != 2 {
		t.Fatalf("the candidate got %d calls, want 2 before the breaker opened", n)
	}
	if err := e.pr.SetMethods(rule(interceptor.MethodConfig{CompareStatusMessage: true})); err != nil {
		t.Fatal(err)
	}
	call()
	if n := e.candidate.Calls(); n != 2 {
		t.Errorf("after a reload that keeps the timeout, the candidate got %d calls, want still 2", n)
	}
	if err := e.pr.SetMethods(rule(interceptor.MethodConfig{Timeout: 5 * time.Second})); err != nil {
		t.Fatal(err)
	}
	call()
	if n := e.candidate.Calls(); n != 3 {
		t.Errorf("after a new timeout, the candidate got %d calls, want 3", n)
	}
	if got := e.counter(t, "parallelrun.skipped", map[string]string{"parallelrun.reason": "candidate_failing"}); got != 2 {
		t.Errorf("%d calls skipped as candidate_failing, want 2", got)
	}
}

// The kill switch under load: once it is set and the calls in flight are
// over, the candidate gets nothing more and nothing is counted, whatever
// the callers do; the gauge says mirroring is off; cleared, mirroring
// goes on.
func TestKillSwitchUnderLoad(t *testing.T) {
	legacy, candidate := twoSides()
	e := newEnv(t, envConfig{legacyServer: legacy, candidateServer: candidate, opts: []interceptor.Option{
		interceptor.WithMethod(quoteService, rulesA().Config),
	}})
	if g := e.gauge(t, "parallelrun.mirroring.enabled"); g != 1 || e.pr.Disabled() {
		t.Fatalf("gauge %d, Disabled %v at start", g, e.pr.Disabled())
	}
	const callers = 8
	var done [callers]atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				if i%2 == 0 {
					_, err = e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{})
				} else {
					_, err = list(t, e.client, ctxTimeout(t), 2)
				}
				if err != nil {
					t.Error(err)
					return
				}
				done[c].Add(1)
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	// waitCalls waits until every caller has finished n calls more.
	waitCalls := func(n int64) {
		t.Helper()
		var want [callers]int64
		for c := range callers {
			want[c] = done[c].Load() + n
		}
		deadline := time.Now().Add(10 * time.Second)
		for c := range callers {
			for done[c].Load() < want[c] {
				if time.Now().After(deadline) || t.Failed() {
					t.Fatalf("caller %d is stuck", c)
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	waitCalls(5)
	e.pr.SetDisabled(true)
	// A call that read the switch before it was set may still be
	// mirrored; every call after the next ones started after it.
	waitCalls(2)
	e.waitIdle(t)
	candidateCalls := e.candidate.Calls()
	comparisons := e.counter(t, "parallelrun.comparisons", nil)
	skipped := e.counter(t, "parallelrun.skipped", nil)
	waitCalls(20)
	if n := e.candidate.Calls(); n != candidateCalls {
		t.Errorf("while disabled, the candidate got %d more calls", n-candidateCalls)
	}
	if c, s := e.counter(t, "parallelrun.comparisons", nil), e.counter(t, "parallelrun.skipped", nil); c != comparisons || s != skipped {
		t.Errorf("while disabled, counted %d comparisons and %d skipped calls more", c-comparisons, s-skipped)
	}
	if g := e.gauge(t, "parallelrun.mirroring.enabled"); g != 0 || !e.pr.Disabled() {
		t.Errorf("gauge %d, Disabled %v while disabled", g, e.pr.Disabled())
	}
	e.pr.SetDisabled(false)
	waitCalls(2)
	if n := e.candidate.Calls(); n <= candidateCalls {
		t.Error("mirroring did not go on once enabled again")
	}
	if g := e.gauge(t, "parallelrun.mirroring.enabled"); g != 1 || e.pr.Disabled() {
		t.Errorf("gauge %d, Disabled %v once enabled again", g, e.pr.Disabled())
	}
}

// Force does not get past the kill switch, and neither do noise probes.
func TestKillSwitchWinsOverForce(t *testing.T) {
	legacy, candidate := twoSides()
	e := newEnv(t, envConfig{legacyServer: legacy, candidateServer: candidate, opts: []interceptor.Option{
		interceptor.WithMethod(getQuote, interceptor.MethodConfig{SampleRate: 1, Noise: interceptor.NoiseConfig{ProbeRate: 1}}),
	}})
	e.pr.SetDisabled(true)
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}, interceptor.Force()); err != nil {
		t.Fatal(err)
	}
	stream, err := e.client.ListQuotes(ctxTimeout(t), &pb.ListQuotesRequest{}, interceptor.Force())
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = stream.Recv()
	}
	if l, c := e.legacy.Calls(), e.candidate.Calls(); l != 2 || c != 0 {
		t.Errorf("disabled, forced: the legacy service got %d calls (want 2, no probe), the candidate %d", l, c)
	}
	e.pr.SetDisabled(false)
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	closeNow(t, e)
	if l, c := e.legacy.Calls(), e.candidate.Calls(); l != 4 || c != 1 {
		t.Errorf("enabled: the legacy service got %d calls (want 4: the call and its probe), the candidate %d", l, c)
	}
	if n := len(e.sink.Reports()); n != 1 {
		t.Errorf("%d reports, want 1", n)
	}
}
