package interceptor_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// noisy is a pricing service whose every reply carries a random ID, a
// timestamp and the answering host; bug, if set, says which requests it
// prices one unit too high.
func noisy(host string, bug func(customer string) bool) func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
	return func(_ context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		units := int64(len(req.GetSkus())) * 10
		if bug != nil && bug(req.GetCustomerId()) {
			units++
		}
		return &pb.GetQuoteResponse{Quote: &pb.Quote{
			QuoteId:    fmt.Sprintf("q-%016x", rand.Uint64()),
			ComputedAt: timestamppb.Now(),
			Labels:     map[string]string{"host": host},
			Total:      &pb.Money{CurrencyCode: "EUR", Units: units},
		}}, nil
	}
}

// onePercent picks 1% of customers.
func onePercent(customer string) bool {
	h := fnv.New32a()
	_, _ = h.Write([]byte(customer))
	return h.Sum32()%100 == 0
}

// The workload: every reply has a random ID, a timestamp and a
// host label, a real bug hits 1% of requests, and there is no ignore
// rule. After a warm-up, noise probes to a second legacy instance have
// found the noise: every bug call is a mismatch at the bug's field, and
// fewer than 0.1% of the other calls are mismatches.
func TestNoiseFoundAutomatically(t *testing.T) {
	secondary := dial(t, serve(t, &quoteServer{get: noisy("legacy-b", nil)}))
	e := newEnv(t, envConfig{legacy: noisy("legacy-a", nil), candidate: noisy("candidate-1", onePercent), opts: []interceptor.Option{
		interceptor.WithMethod(getQuote, interceptor.MethodConfig{SampleRate: 1,
			Noise: interceptor.NoiseConfig{ProbeRate: 0.2, Secondary: secondary}}),
	}})
	const workers, perWorker, warmUp = 8, 600, 1000
	var calls atomic.Int64
	customers := make(chan string, workers*perWorker)
	for i := range workers * perWorker {
		customers <- fmt.Sprint("customer-", i)
	}
	close(customers)
	var wg sync.WaitGroup
	order := make([]string, 0, workers*perWorker)
	var mu sync.Mutex
	for range workers {
		wg.Go(func() {
			for c := range customers {
				if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{CustomerId: c, Skus: []string{"A", "B"}}); err != nil {
					t.Error(err)
					return
				}
				calls.Add(1)
				mu.Lock()
				order = append(order, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	reports := e.waitReports(t, workers*perWorker)
	byCustomer := map[string]*parallelrunv1.Report{}
	for _, r := range reports {
		var req pb.GetQuoteRequest
		if err := r.GetRequest().UnmarshalTo(&req); err != nil {
			t.Fatal(err)
		}
		byCustomer[req.GetCustomerId()] = r
	}
	var bugs, others, falseAlarms int
	for _, c := range order[warmUp:] {
		r := byCustomer[c]
		if onePercent(c) {
			bugs++
			if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH || diffFields(r) != "quote.total.units" {
				t.Errorf("bug call %s: %v %s", c, r.GetOutcome(), diffFields(r))
			}
			continue
		}
		others++
		if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MATCH {
			falseAlarms++
			t.Logf("false alarm %s: %v %s", c, r.GetOutcome(), diffFields(r))
		}
	}
	if bugs == 0 || falseAlarms*1000 >= others {
		t.Errorf("after warm-up: %d bug calls; %d of %d other calls are mismatches", bugs, falseAlarms, others)
	}
	t.Logf("after warm-up: %d bug calls all mismatched; %d of %d other calls mismatched", bugs, falseAlarms, others)

	// The noise is kept apart, not lost, and the fields say why.
	var noiseFields []string
	for _, sig := range e.pr.Signals() {
		for _, f := range sig.Fields {
			if f.Noise {
				noiseFields = append(noiseFields, f.Field)
			}
		}
	}
	if got := strings.Join(noiseFields, " "); !strings.Contains(got, "quote.quote_id") || !strings.Contains(got, "quote.labels") ||
		!strings.Contains(got, "quote.computed_at") || strings.Contains(got, "quote.total") {
		t.Errorf("noise fields: %s", got)
	}
	last := byCustomer[order[len(order)-1]]
	if len(last.GetNoise()) == 0 {
		t.Errorf("the last report has no noise: %v", last)
	}
}

// diffFields lists the index-free fields of a report's differences.
func diffFields(r *parallelrunv1.Report) string {
	var fields []string
	for _, d := range r.GetDifferences() {
		fields = append(fields, d.GetField())
	}
	return strings.Join(fields, " ")
}

// Noise never hides without evidence: before enough probes, a field the
// legacy service disagrees with itself on still counts; on a probed call,
// the probe's own finding counts for that call at once.
func TestNoiseNeedsEvidence(t *testing.T) {
	secondary := dial(t, serve(t, &quoteServer{get: noisy("legacy-b", nil)}))
	e := newEnv(t, envConfig{legacy: noisy("legacy-a", nil), candidate: noisy("candidate-1", nil), opts: []interceptor.Option{
		interceptor.WithMethod(getQuote, interceptor.MethodConfig{SampleRate: 1,
			Noise: interceptor.NoiseConfig{ProbeRate: 1, Secondary: secondary}}),
		interceptor.WithNoiseRule(1000, interceptor.DefaultNoiseRelative, interceptor.DefaultNoiseAbsolute),
	}})
	for range 5 {
		if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{Skus: []string{"A"}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range e.waitReports(t, 5) {
		// Every call is probed, and the probe finds the legacy service
		// disagreeing with itself at the ID, the time and the host.
		if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MATCH || !r.GetNoiseProbed() || len(r.GetNoise()) < 3 {
			t.Errorf("report %v", r)
		}
	}
	for _, f := range e.pr.Signals()[0].Fields {
		if f.Noise {
			t.Errorf("%s classified as noise after %d probes", f.Field, e.pr.Signals()[0].Probes)
		}
	}

	// Without probes, the same differences are mismatches.
	e2 := newEnv(t, envConfig{legacy: noisy("legacy-a", nil), candidate: noisy("candidate-1", nil), opts: []interceptor.Option{
		interceptor.WithMethod(getQuote, interceptor.MethodConfig{SampleRate: 1}),
	}})
	if _, err := e2.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	if r := e2.waitReports(t, 1)[0]; r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH || len(r.GetNoise()) != 0 {
		t.Errorf("report %v", r)
	}
}

// A field the legacy service rarely disagrees with itself on, where the
// candidate differs on every call, is no noise: its differences clearly
// outgrow the noise.
func TestNoiseThatIsOutgrownComesBack(t *testing.T) {
	var n atomic.Int64
	// The second instance answers from another host one time in ten.
	secondary := dial(t, serve(t, &quoteServer{get: func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		host := "legacy-a"
		if n.Add(1)%10 == 0 {
			host = "legacy-b"
		}
		return noisy(host, nil)(ctx, req)
	}}))
	e := newEnv(t, envConfig{legacy: noisy("legacy-a", nil), candidate: noisy("candidate-1", nil), opts: []interceptor.Option{
		interceptor.WithMethod(getQuote, interceptor.MethodConfig{SampleRate: 1,
			Noise: interceptor.NoiseConfig{ProbeRate: 1, Secondary: secondary}}),
	}})
	for range 100 {
		if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	e.waitReports(t, 100)
	for _, f := range e.pr.Signals()[0].Fields {
		switch f.Field {
		case "quote.labels":
			if f.Noise || f.NoiseDiffs == 0 {
				t.Errorf("quote.labels: %+v", f)
			}
		case "quote.quote_id":
			if !f.Noise {
				t.Errorf("quote.quote_id: %+v", f)
			}
		}
	}
}

// Noise probes only go where a second legacy call is safe: to configured
// methods declared free of side effects (or allowed writes), never to a
// disabled method nor to calls forced on unconfigured ones.
func TestNoiseProbeSafety(t *testing.T) {
	conn := dial(t, serve(t, &quoteServer{}))
	for _, tc := range []struct {
		name string
		cfg  interceptor.MethodConfig
		want string
	}{
		{"a method that may write", interceptor.MethodConfig{SampleRate: 1, Noise: interceptor.NoiseConfig{ProbeRate: 0.1}},
			"interceptor: WithMethod \"/parallelrun.difftest.v1.QuoteService/CollectQuotes\": field Noise: /parallelrun.difftest.v1.QuoteService/CollectQuotes is a streaming method"},
		{"probe rate", interceptor.MethodConfig{SampleRate: 1, Noise: interceptor.NoiseConfig{ProbeRate: 2}},
			"field Noise.ProbeRate: 2 is not in [0, 1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := interceptor.New(conn, interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/CollectQuotes", tc.cfg))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v\nwant %s", err, tc.want)
			}
		})
	}

	secondary := &quoteServer{get: price(10)}
	secConn := dial(t, serve(t, secondary))
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{
		interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/*", interceptor.MethodConfig{SampleRate: 1,
			Noise: interceptor.NoiseConfig{ProbeRate: 1, Secondary: secConn}}),
		interceptor.WithMethod(getQuote, interceptor.MethodConfig{Disabled: true,
			Noise: interceptor.NoiseConfig{ProbeRate: 1, Secondary: secConn}}),
	}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}, interceptor.Force()); err != nil {
		t.Fatal(err)
	}
	closeNow(t, e)
	if secondary.Calls() != 0 || e.candidate.Calls() != 0 {
		t.Errorf("a disabled method reached the secondary %d times, the candidate %d times", secondary.Calls(), e.candidate.Calls())
	}
}

// A probe through the legacy connection itself carries its own role, so
// that the legacy service can tell it from the caller's call, and the
// parallel run does not mirror it again.
func TestNoiseProbeThroughTheLegacyConnection(t *testing.T) {
	e := newEnv(t, envConfig{legacy: noisy("legacy-a", nil), candidate: noisy("candidate-1", nil), opts: []interceptor.Option{
		interceptor.WithMethod(getQuote, interceptor.MethodConfig{SampleRate: 1, Noise: interceptor.NoiseConfig{ProbeRate: 1}}),
	}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	r := e.waitReports(t, 1)[0]
	closeNow(t, e)
	if !r.GetNoiseProbed() || e.legacy.Calls() != 2 || e.candidate.Calls() != 1 || len(e.sink.Reports()) != 1 {
		t.Fatalf("legacy %d calls, candidate %d, reports %d: %v", e.legacy.Calls(), e.candidate.Calls(), len(e.sink.Reports()), r)
	}
	roles := map[string]bool{}
	e.legacy.mu.Lock()
	for _, md := range e.legacy.mds {
		roles[strings.Join(md.Get(interceptor.RoleKey), ",")] = true
	}
	e.legacy.mu.Unlock()
	if !roles[""] || !roles["noise-probe"] {
		t.Errorf("roles the legacy service saw: %v", roles)
	}
	if got := e.counter(t, "parallelrun.skipped", nil); got != 0 {
		t.Errorf("the probe was counted as %d skipped calls", got)
	}
	// The host is the same on both legacy answers: no noise there; the
	// ID and the time are.
	var noise []string
	for _, d := range r.GetNoise() {
		noise = append(noise, d.GetField())
	}
	if got := strings.Join(noise, " "); strings.Contains(got, "labels") || !strings.Contains(got, "quote_id") {
		t.Errorf("noise %s; differences %s", got, diffFields(r))
	}
}

// Mismatches group into signatures: one per distinct set of fields,
// kinds and status codes, counted, with the first trace IDs as examples,
// in the reports, the span, the metrics and the summary.
func TestMismatchSignatures(t *testing.T) {
	cand := func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		switch req.GetCustomerId()[0] {
		case 'a':
			return price(11)(ctx, req) // every price
		case 'b':
			return nil, status.Error(codes.NotFound, "no such customer")
		}
		return price(10)(ctx, req)
	}
	e := newEnv(t, envConfig{legacy: price(10), candidate: cand, opts: []interceptor.Option{mirrorAll}})
	for i := range 30 {
		customer := []string{"a", "b", "c"}[i%3] + fmt.Sprint(i)
		if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{CustomerId: customer, Skus: []string{"A", "B"}}); err != nil {
			t.Fatal(err)
		}
	}
	reports := e.waitReports(t, 30)
	sigs := map[string]int{}
	for _, r := range reports {
		if r.GetOutcome() == parallelrunv1.Outcome_OUTCOME_MISMATCH {
			sigs[r.GetSignature()]++
		} else if r.GetSignature() != "" {
			t.Errorf("a %v with a signature", r.GetOutcome())
		}
	}
	if len(sigs) != 2 {
		t.Fatalf("signatures %v", sigs)
	}
	signals := e.pr.Signals()
	if len(signals) != 1 || len(signals[0].Signatures) != 2 || signals[0].Compared != 30 {
		t.Fatalf("signals %+v", signals)
	}
	for _, sig := range signals[0].Signatures {
		if sig.Count != 10 || sigs[sig.ID] != 10 || len(sig.Examples) != 3 {
			t.Errorf("signature %+v", sig)
		}
		if got := e.counter(t, "parallelrun.mismatches", map[string]string{"parallelrun.signature": sig.ID}); got != 10 {
			t.Errorf("%d mismatches counted for %s", got, sig.ID)
		}
	}
	if got := strings.Join(signals[0].Signatures[0].FieldKinds, " ") + " / " + strings.Join(signals[0].Signatures[1].FieldKinds, " "); got != "grpc-status:changed / quote.items.price.units:changed quote.total.units:changed" &&
		got != "quote.items.price.units:changed quote.total.units:changed / grpc-status:changed" {
		t.Errorf("field kinds %s", got)
	}
}

// A stream whose replies are the legacy ones in another order is one
// difference that says so, not one per position.
func TestStreamReorderedRepliesAreOneDifference(t *testing.T) {
	reversed := func(change int) *quoteServer {
		return &quoteServer{list: func(req *pb.ListQuotesRequest, stream grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
			for i := int(req.GetCount()) - 1; i >= 0; i-- {
				units := int64(10)
				if i == change {
					units = 11
				}
				if err := stream.Send(&pb.ListQuotesResponse{Quote: quoteN(i, units)}); err != nil {
					return err
				}
			}
			return nil
		}}
	}
	for _, tc := range []struct {
		name   string
		change int
		want   string
	}{
		{"reordered", -1, interceptor.OrderPath},
		{"reordered and changed", 2, "[0].quote.quote_id [1].quote.quote_id [2].quote.total.units [3].quote.quote_id [4].quote.quote_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{legacyServer: lister(flat(10), all, nil), candidateServer: reversed(tc.change), opts: []interceptor.Option{mirrorAll}})
			if _, err := list(t, e.client, ctxTimeout(t), 5); err != nil {
				t.Fatal(err)
			}
			r := e.waitReports(t, 1)[0]
			var paths []string
			for _, d := range r.GetDifferences() {
				paths = append(paths, d.GetPath())
			}
			if got := strings.Join(paths, " "); r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH || got != tc.want {
				t.Errorf("%v: %s\nwant %s", r.GetOutcome(), got, tc.want)
			}
		})
	}
}

// A second instance that fails is no evidence of noise: it would otherwise
// hide the same failure of the candidate's.
func TestFailingSecondaryHidesNothing(t *testing.T) {
	broken := dial(t, serve(t, &quoteServer{get: fail(codes.Internal, "broken")}))
	e := newEnv(t, envConfig{legacy: price(10), candidate: fail(codes.Internal, "broken"), opts: []interceptor.Option{
		interceptor.WithMethod(getQuote, interceptor.MethodConfig{SampleRate: 1,
			Noise: interceptor.NoiseConfig{ProbeRate: 1, Secondary: broken}}),
		interceptor.WithNoiseRule(2, interceptor.DefaultNoiseRelative, interceptor.DefaultNoiseAbsolute),
		interceptor.WithCandidateBreaker(0, 0),
	}})
	for range 30 {
		if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range e.waitReports(t, 30) {
		if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH || r.GetNoiseProbed() || len(r.GetNoise()) != 0 {
			t.Fatalf("report %v", r)
		}
	}
}
