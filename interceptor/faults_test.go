package interceptor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// hanging is a candidate that never answers a stream, and counts the
// streams that ended (their context was cancelled).
type hanging struct {
	quoteServer
	ended atomic.Int64
}

func newHanging() *hanging {
	h := &hanging{}
	wait := func(ctx context.Context) error {
		<-ctx.Done()
		h.ended.Add(1)
		return ctx.Err()
	}
	h.list = func(_ *pb.ListQuotesRequest, s grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
		return wait(s.Context())
	}
	h.collect = func(s grpc.ClientStreamingServer[pb.CollectQuotesRequest, pb.CollectQuotesResponse]) error {
		return wait(s.Context())
	}
	h.exchange = func(s grpc.BidiStreamingServer[pb.ExchangeQuotesRequest, pb.ExchangeQuotesResponse]) error {
		return wait(s.Context())
	}
	h.get = func(ctx context.Context, _ *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		return nil, wait(ctx)
	}
	return h
}

// slowLister sends a reply every 10 ms, forever.
func slowLister() *quoteServer {
	return &quoteServer{list: func(_ *pb.ListQuotesRequest, s grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
		for i := 0; ; i++ {
			if err := s.Send(&pb.ListQuotesResponse{Quote: quoteN(i, 10)}); err != nil {
				return err
			}
			time.Sleep(10 * time.Millisecond)
		}
	}}
}

// A caller that cancels a stream, or cancels after leaving it undrained,
// ends the candidate's side at once: with one place in flight and a
// candidate that would hold each stream for an hour, every stream after
// the first would otherwise be dropped.
func TestCancelledStreamsEndTheCandidateAtOnce(t *testing.T) {
	legacy := exchanger(func(string) int64 { return 10 })
	legacy.list = slowLister().list
	cand := newHanging()
	e := newEnv(t, envConfig{legacyServer: legacy, candidateServer: &cand.quoteServer, opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: time.Hour}),
		interceptor.WithMaxInFlight(1),
	}})
	kinds := []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"bidi, drained", func(ctx context.Context) error {
			s, err := e.client.ExchangeQuotes(ctx)
			if err != nil {
				return err
			}
			if err := s.Send(&pb.ExchangeQuotesRequest{Sku: "A"}); err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}},
		{"bidi, undrained", func(ctx context.Context) error {
			s, err := e.client.ExchangeQuotes(ctx)
			if err != nil {
				return err
			}
			return s.Send(&pb.ExchangeQuotesRequest{Sku: "A"})
		}},
		{"client stream", func(ctx context.Context) error {
			s, err := e.client.CollectQuotes(ctx)
			if err != nil {
				return err
			}
			return s.Send(&pb.CollectQuotesRequest{Sku: "A"})
		}},
		{"slow server stream", func(ctx context.Context) error {
			s, err := e.client.ListQuotes(ctx, &pb.ListQuotesRequest{})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}},
	}
	const rounds = 5
	n := 0
	for range rounds {
		for _, k := range kinds {
			ctx, cancel := context.WithCancel(context.Background())
			if err := k.run(ctx); err != nil {
				t.Fatalf("%s: %v", k.name, err)
			}
			n++
			// The candidate's stream is open, and will hold for an hour.
			for deadline := time.Now().Add(10 * time.Second); cand.Calls() < n && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			cancel()
			r := e.waitReports(t, n)[n-1]
			if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_CALLER_CANCELED {
				t.Fatalf("%s: report %v", k.name, r)
			}
			// The report comes just before the place is free.
			e.waitIdle(t)
		}
	}
	if got := e.counter(t, "parallelrun.comparisons", map[string]string{"parallelrun.outcome": "dropped"}); got != 0 {
		t.Errorf("%d streams dropped", got)
	}
	e.waitIdle(t)
	deadline := time.Now().Add(10 * time.Second)
	for cand.ended.Load() < int64(n) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if ended, opened := cand.ended.Load(), cand.Calls(); ended != int64(n) || opened != n {
		t.Errorf("the candidate saw %d of %d streams open, %d end", opened, n, ended)
	}
}

// The same for a unary call: a caller that gives up frees the place at
// once, whatever the candidate's deadline.
func TestCancelledUnaryCallEndsTheCandidateAtOnce(t *testing.T) {
	entered := make(chan struct{}, 1)
	legacy := func(ctx context.Context, _ *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		entered <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	cand := newHanging()
	e := newEnv(t, envConfig{legacy: legacy, candidateServer: &cand.quoteServer, opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: time.Hour}),
		interceptor.WithMaxInFlight(1),
	}})
	for i := range 10 {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-entered
			cancel()
		}()
		if _, err := e.client.GetQuote(ctx, &pb.GetQuoteRequest{}); status.Code(err) != codes.Canceled {
			t.Fatalf("caller got %v", err)
		}
		if r := e.waitReports(t, i+1)[i]; r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_CALLER_CANCELED {
			t.Fatalf("report %v", r)
		}
		e.waitIdle(t)
	}
}

// panicking is an interceptor chained after the parallel run's: a fault
// below it, which the caller recovers from.
func panicking(_ context.Context, _ string, _, _ any, _ *grpc.ClientConn, _ grpc.UnaryInvoker, _ ...grpc.CallOption) error {
	panic("below the parallel run")
}

// panickingStream fails below the parallel run the two ways a stream can:
// when it opens, or in RecvMsg.
func panickingStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if desc.ClientStreams {
		panic("opening the stream")
	}
	s, err := streamer(ctx, desc, cc, method, opts...)
	return panicOnRecv{s}, err
}

type panicOnRecv struct{ grpc.ClientStream }

func (panicOnRecv) RecvMsg(any) error { panic("receiving") }

func recovered(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// A panic below the parallel run reaches the caller as it would without
// it, and strands nothing: every later call is mirrored, and Close
// succeeds.
func TestPanicBelowStrandsNothing(t *testing.T) {
	legacy, cand := lister(flat(10), all, nil), lister(flat(10), all, nil)
	legacy.get, cand.get = price(10), price(10)
	e := newEnv(t, envConfig{legacyServer: legacy, candidateServer: cand,
		opts: []interceptor.Option{
			interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: time.Hour}),
			interceptor.WithMaxInFlight(2),
		},
		dialOpts: []grpc.DialOption{grpc.WithChainUnaryInterceptor(panicking), grpc.WithChainStreamInterceptor(panickingStream)},
	})
	n := 0
	for range 20 {
		for name, call := range map[string]func(){
			"unary":       func() { _, _ = e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}) },
			"stream open": func() { _, _ = e.client.CollectQuotes(ctxTimeout(t)) },
			"stream receive": func() {
				s, err := e.client.ListQuotes(ctxTimeout(t), &pb.ListQuotesRequest{Count: 1})
				if err == nil {
					_, _ = s.Recv()
				}
			},
		} {
			if v := recovered(call); v == nil {
				t.Fatalf("%s: the panic below did not reach the caller", name)
			}
			if name == "stream open" {
				continue // no stream, no comparison
			}
			n++
			if r := e.waitReports(t, n)[n-1]; r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_LEGACY_ERROR || !strings.Contains(r.GetError(), "panicked") {
				t.Fatalf("%s: report %v", name, r)
			}
			e.waitIdle(t)
		}
	}
	e.waitIdle(t)
	if got := e.counter(t, "parallelrun.comparisons", map[string]string{"parallelrun.outcome": "dropped"}); got != 0 {
		t.Errorf("%d calls dropped", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.pr.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// The memory budget bounds what copies hold over all calls: requests that
// do not fit are not mirrored, with a reason, and everything is given
// back.
func TestMemoryBudgetBoundsUnaryCopies(t *testing.T) {
	release := make(chan struct{})
	cand := func(ctx context.Context, _ *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, status.Error(codes.Unavailable, "down")
	}
	const budget = 1 << 20
	e := newEnv(t, envConfig{legacy: price(10), candidate: cand, opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: time.Minute}),
		interceptor.WithMemoryBudget(budget),
	}})
	big := &pb.GetQuoteRequest{CustomerId: strings.Repeat("x", 100<<10)}
	const calls = 30
	for range calls {
		if _, err := e.client.GetQuote(ctxTimeout(t), big); err != nil {
			t.Fatal(err)
		}
	}
	held := e.gauge(t, "parallelrun.memory.used")
	inFlight := e.gauge(t, "parallelrun.in_flight")
	dropped := e.counter(t, "parallelrun.comparisons", map[string]string{"parallelrun.outcome": "dropped", "parallelrun.reason": "memory_budget"})
	if held > budget || held < inFlight*int64(proto.Size(big)) {
		t.Errorf("%d bytes held for %d calls in flight, budget %d", held, inFlight, budget)
	}
	if dropped+inFlight != calls || dropped < calls-budget/int64(proto.Size(big)) {
		t.Errorf("%d mirrored and %d dropped of %d calls", inFlight, dropped, calls)
	}
	close(release)
	e.waitReports(t, int(inFlight))
	e.waitIdle(t)
}

// A reply that does not fit abandons the comparison, for unary calls and
// streams alike, and the legacy call never notices.
func TestMemoryBudgetBoundsReplies(t *testing.T) {
	bigQuote := func(units int64) func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		return func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
			return &pb.GetQuoteResponse{Quote: &pb.Quote{QuoteId: strings.Repeat("q", 200<<10), Total: &pb.Money{Units: units}}}, nil
		}
	}
	bigLister := &quoteServer{list: func(req *pb.ListQuotesRequest, s grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
		for range req.GetCount() {
			if err := s.Send(&pb.ListQuotesResponse{Quote: &pb.Quote{QuoteId: strings.Repeat("q", 8<<10)}}); err != nil {
				return err
			}
		}
		return nil
	}}
	bigLister.get = bigQuote(10)
	cand := newHanging()
	cand.get = bigQuote(10)
	e := newEnv(t, envConfig{legacyServer: bigLister, candidateServer: &cand.quoteServer, opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: time.Minute}),
		interceptor.WithMemoryBudget(100 << 10),
	}})
	resp, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{})
	if err != nil || resp.GetQuote().GetTotal().GetUnits() != 10 {
		t.Fatalf("GetQuote = %v, %v", resp, err)
	}
	got, err := list(t, e.client, ctxTimeout(t), 50)
	if err != nil || len(got) != 50 {
		t.Fatalf("%d replies, %v", len(got), err)
	}
	for _, r := range e.waitReports(t, 2) {
		if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_ABANDONED || r.GetAbandonReason() != interceptor.AbandonMemoryBound {
			t.Errorf("report %v", r)
		}
	}
	e.waitIdle(t)
}

// Replies one side has and the other has not are rendered with the
// method's options: a redacted path stays redacted.
func TestStreamExtraRepliesUseTheMethodsOptions(t *testing.T) {
	for _, tc := range []struct {
		name          string
		legacy, cand  int
		kind, secret0 string
	}{
		{"the candidate sends more", 1, 3, "DIFFERENCE_KIND_ADDED", "q1"},
		{"the candidate sends fewer", 3, 1, "DIFFERENCE_KIND_REMOVED", "q1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := func(c int) func(int) int { return func(int) int { return c } }
			e := newEnv(t, envConfig{legacyServer: lister(flat(10), n(tc.legacy), nil), candidateServer: lister(flat(10), n(tc.cand), nil),
				opts: []interceptor.Option{interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1,
					Diff: []protodiff.Option{protodiff.WithRedactedPaths("quote.quote_id")}})}})
			if _, err := list(t, e.client, ctxTimeout(t), 5); err != nil {
				t.Fatal(err)
			}
			r := e.waitReports(t, 1)[0]
			if len(r.GetDifferences()) != 2 {
				t.Fatalf("report %v", r)
			}
			for _, d := range r.GetDifferences() {
				if d.GetKind().String() != tc.kind || strings.Contains(d.GetLegacy()+d.GetCandidate(), `"q`) ||
					!strings.Contains(d.GetLegacy()+d.GetCandidate(), protodiff.Redacted) {
					t.Errorf("difference %v", d)
				}
			}
		})
	}
}

// WaitForReady belongs to the caller's call: a candidate that is down
// fails at once instead of holding the call's place until its deadline.
func TestWaitForReadyIsNotForwarded(t *testing.T) {
	refuse := func(context.Context, string) (net.Conn, error) { return nil, errors.New("connection refused") }
	e := newEnv(t, envConfig{legacy: price(10), candidateDialer: refuse, opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: time.Hour}),
	}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR || r.GetCandidateStatus().GetCode() != "UNAVAILABLE" {
		t.Fatalf("report %v", r)
	}
}

// A client or bidirectional stream's report keeps the first messages the
// caller sent, as many as fit in WithMaxRequestBytes, and counts the rest.
func TestStreamReportKeepsWhatTheCallerSent(t *testing.T) {
	ex := exchanger(func(string) int64 { return 10 })
	one := proto.Size(&pb.ExchangeQuotesRequest{Sku: "SKU-0"})
	e := newEnv(t, envConfig{legacyServer: ex, candidateServer: exchanger(func(string) int64 { return 10 }), opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1}),
		// Room for three messages in their Any.
		interceptor.WithMaxRequestBytes(3 * (one + 70)),
	}})
	s, err := e.client.ExchangeQuotes(ctxTimeout(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.Send(&pb.ExchangeQuotesRequest{Sku: "SKU-" + string(rune('0'+i))}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Fatal(err)
	}
	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MATCH || len(r.GetRequests()) != 3 || r.GetRequestsOmitted() != 2 || r.GetRequest() != nil {
		t.Fatalf("report %v", r)
	}
	for i, a := range r.GetRequests() {
		var m pb.ExchangeQuotesRequest
		if err := a.UnmarshalTo(&m); err != nil || m.GetSku() != "SKU-"+string(rune('0'+i)) {
			t.Errorf("request %d: %v, %v", i, &m, err)
		}
	}
}

// A flood of calls, with every behaviour of the candidate and callers
// that give up, is accounted for exactly: every call is counted once, as
// skipped or in one outcome, every outcome but dropped has its report, the
// caller always gets what the legacy service said, and nothing is left
// in flight.
func TestFloodIsAccountedExactly(t *testing.T) {
	legacy := func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		if req.GetCustomerId() == "slow-legacy" {
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return price(10)(ctx, req)
	}
	cand := func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		switch req.GetCustomerId() {
		case "mismatch":
			return price(11)(ctx, req)
		case "hang":
			<-ctx.Done()
			return nil, ctx.Err()
		case "error":
			return nil, status.Error(codes.Internal, "boom")
		case "down":
			return nil, status.Error(codes.Unavailable, "down")
		}
		return price(10)(ctx, req)
	}
	e := newEnv(t, envConfig{legacy: legacy, candidate: cand, opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: 50 * time.Millisecond}),
		interceptor.WithMaxInFlight(32),
	}})
	kinds := []string{"match", "mismatch", "hang", "error", "down", "slow-legacy", "skip", "cancel"}
	const workers, perWorker = 16, 60
	var calls, skipped atomic.Int64
	errc := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range perWorker {
				kind := kinds[(w+i)%len(kinds)]
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				var opts []grpc.CallOption
				req := &pb.GetQuoteRequest{CustomerId: kind, Skus: []string{"A"}}
				switch kind {
				case "skip":
					opts = append(opts, interceptor.Skip())
					skipped.Add(1)
				case "cancel":
					req.CustomerId = "slow-legacy"
					time.AfterFunc(2*time.Millisecond, cancel)
				}
				calls.Add(1)
				resp, err := e.client.GetQuote(ctx, req, opts...)
				cancel()
				switch {
				case kind == "cancel" && status.Code(err) != codes.Canceled && err != nil:
					errc <- fmt.Errorf("cancelled call got %v", err)
					return
				case kind != "cancel" && (err != nil || resp.GetQuote().GetTotal().GetUnits() != 10):
					errc <- fmt.Errorf("%s: caller got %v, %v", kind, resp, err)
					return
				}
			}
			errc <- nil
		}()
	}
	for range workers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	closeNow(t, e)
	outcomes := map[string]int64{}
	var total int64
	for _, o := range []string{"match", "mismatch", "candidate_error", "legacy_error", "caller_canceled", "dropped", "internal_error", "abandoned"} {
		outcomes[o] = e.counter(t, "parallelrun.comparisons", map[string]string{"parallelrun.outcome": o})
		total += outcomes[o]
	}
	if got := e.counter(t, "parallelrun.skipped", map[string]string{"parallelrun.reason": "skip_option"}); got != skipped.Load() {
		t.Errorf("%d skipped by option, want %d", got, skipped.Load())
	}
	// Runs of failing candidate calls may pause mirroring (the breaker).
	allSkipped := e.counter(t, "parallelrun.skipped", nil)
	if other := allSkipped - skipped.Load() - e.counter(t, "parallelrun.skipped", map[string]string{"parallelrun.reason": "candidate_failing"}); other != 0 {
		t.Errorf("%d calls skipped for other reasons", other)
	}
	if total+allSkipped != calls.Load() {
		t.Errorf("%d outcomes + %d skipped != %d calls: %v", total, allSkipped, calls.Load(), outcomes)
	}
	reports := map[string]int64{}
	for _, r := range e.sink.Reports() {
		reports[strings.TrimPrefix(strings.ToLower(r.GetOutcome().String()), "outcome_")]++
	}
	for o, n := range outcomes {
		if o != "dropped" && reports[o] != n {
			t.Errorf("%s: %d reports, %d counted", o, reports[o], n)
		}
	}
	if outcomes["internal_error"] != 0 || outcomes["match"] == 0 || outcomes["mismatch"] == 0 || outcomes["candidate_error"] == 0 {
		t.Errorf("outcomes %v", outcomes)
	}
}

// A legacy call without a deadline that does not end holds nothing past
// the candidate's deadline: the comparison is abandoned, as a stream's is.
func TestUnaryLegacyOutlivesTheCandidate(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hang := func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return price(10)(ctx, req)
	}
	for _, tc := range []struct {
		name    string
		cand    func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error)
		outcome parallelrunv1.Outcome
	}{
		{"candidate answers", price(10), parallelrunv1.Outcome_OUTCOME_ABANDONED},
		{"candidate down", fail(codes.Unavailable, "down"), parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The candidate must answer within its deadline, which the
			// comparison then waits out for the legacy reply: a busy
			// machine can take longer than a short one to answer, and the
			// run then shows nothing of the legacy call. It is made again
			// with a longer deadline.
			for timeout := 50 * time.Millisecond; ; timeout *= 2 {
				r := outlivedRun(t, hang, tc.cand, timeout)
				if r.GetCandidateStatus().GetCode() == "DEADLINE_EXCEEDED" && timeout < 3*time.Second {
					t.Logf("the candidate did not answer within %v: again with twice the deadline", timeout)
					continue
				}
				if r.GetOutcome() != tc.outcome || (tc.outcome == parallelrunv1.Outcome_OUTCOME_ABANDONED && r.GetAbandonReason() != interceptor.AbandonLegacyUnfinished) {
					t.Errorf("report %v", r)
				}
				return
			}
		})
	}
}

// outlivedRun makes one call of TestUnaryLegacyOutlivesTheCandidate, whose
// legacy call hangs until the test ends, and returns its report.
func outlivedRun(t *testing.T, legacy, cand func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error), timeout time.Duration) *parallelrunv1.Report {
	t.Helper()
	e := newEnv(t, envConfig{legacy: legacy, candidate: cand, opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: timeout}),
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = e.client.GetQuote(ctx, &pb.GetQuoteRequest{})
	}()
	r := e.waitReports(t, 1)[0]
	e.waitIdle(t)
	cancel()
	<-done
	return r
}

// A comparison cut short by one of protodiff's limits says so on the span,
// in the report and in a metric.
func TestIncompleteComparisonIsVisible(t *testing.T) {
	nested := func(units int64) func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		return func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
			q := &pb.Quote{Total: &pb.Money{Units: units}}
			for range 8 {
				a, err := anypb.New(q)
				if err != nil {
					return nil, err
				}
				q = &pb.Quote{Detail: a}
			}
			return &pb.GetQuoteResponse{Quote: q}, nil
		}
	}
	e := newEnv(t, envConfig{legacy: nested(10), candidate: nested(11), opts: []interceptor.Option{
		interceptor.WithMethod(getQuote, interceptor.MethodConfig{SampleRate: 1, Diff: []protodiff.Option{protodiff.WithMaxDepth(4)}}),
	}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH || r.GetIncomplete() != protodiff.IncompleteMaxDepth || len(r.GetDifferences()) == 0 {
		t.Fatalf("report %v", r)
	}
	span := onlySpan(t, e, "parallelrun "+getQuote[1:])
	if got := attrMap(span.Attributes())["parallelrun.incomplete"]; got != protodiff.IncompleteMaxDepth {
		t.Errorf("span attribute %q", got)
	}
	if got := e.counter(t, "parallelrun.incomplete", map[string]string{"parallelrun.reason": protodiff.IncompleteMaxDepth}); got != 1 {
		t.Errorf("%d incomplete comparisons counted", got)
	}
}

// A candidate that keeps failing as a call is given a pause instead of
// every call: after three failures in a row, calls are not mirrored for
// the backoff; then one call probes it; a failed probe doubles the pause;
// an answer ends it.
//
// What happens within a pause depends on the clock: on a machine too slow
// to make its calls within one, the run shows nothing and is made again
// with a longer backoff.
func TestFailingCandidateIsPaused(t *testing.T) {
	for backoff := 200 * time.Millisecond; ; backoff *= 2 {
		if breakerRun(t, backoff) || t.Failed() {
			return
		}
		if backoff >= 3*time.Second {
			t.Fatalf("the calls of a pause took longer than a pause of %v, every time", backoff)
		}
		t.Logf("the calls took longer than a pause of %v: again with twice the backoff", backoff)
	}
}

// A stalled candidate, whose calls run out of time, is paused as one that
// is down: a deadline is a failure of the call.
func TestStalledCandidateIsPaused(t *testing.T) {
	cand := newHanging()
	e := newEnv(t, envConfig{legacy: price(10), candidateServer: &cand.quoteServer, opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: 20 * time.Millisecond}),
		interceptor.WithCandidateBreaker(3, time.Hour),
	}})
	for i := range 4 {
		if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
			t.Fatal(err)
		}
		if i < 3 {
			if r := e.waitReports(t, i+1)[i]; r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR || r.GetCandidateStatus().GetCode() != "DEADLINE_EXCEEDED" {
				t.Fatalf("report %v", r)
			}
		}
	}
	if got := e.counter(t, "parallelrun.skipped", map[string]string{"parallelrun.reason": "candidate_failing"}); got != 1 {
		t.Errorf("%d calls paused after three that ran out of time, want 1", got)
	}
}

// breakerRun is one run of TestFailingCandidateIsPaused; it says false
// when the calls that must fall within a pause did not.
func breakerRun(t *testing.T, backoff time.Duration) bool {
	t.Helper()
	// Calls made during a pause say so in their request: none may reach
	// the candidate.
	const pausedTag = "sent during a pause"
	var healthy atomic.Bool
	var leaked atomic.Int64
	cand := func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		if req.GetCustomerId() == pausedTag {
			leaked.Add(1)
		}
		if healthy.Load() {
			return price(10)(ctx, req)
		}
		// Down: a failure of the call, as a deadline is, but one that
		// comes at once. A short deadline would fail a healthy
		// candidate too on a busy machine.
		return nil, status.Error(codes.Unavailable, "down")
	}
	e := newEnv(t, envConfig{legacy: price(10), candidate: cand, opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: 10 * time.Second}),
		interceptor.WithCandidateBreaker(3, backoff),
	}})
	call := func(tag string) {
		t.Helper()
		if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{CustomerId: tag}); err != nil {
			t.Fatal(err)
		}
	}
	paused := func() int64 {
		return e.counter(t, "parallelrun.skipped", map[string]string{"parallelrun.reason": "candidate_failing"})
	}
	// pauseCalls makes n calls that must all fall within the pause that
	// started after since, and says whether they did.
	pauseCalls := func(n int, since time.Time, pause time.Duration) bool {
		t.Helper()
		before := paused()
		for range n {
			call(pausedTag)
		}
		if time.Since(since) >= pause {
			return false
		}
		if got := paused() - before; got != int64(n) {
			t.Fatalf("%d of %d calls paused", got, n)
		}
		return true
	}
	var start time.Time
	for i := range 3 {
		if i == 2 {
			// The pause starts once the third comparison ends.
			start = time.Now()
		}
		call("")
		e.waitReports(t, i+1)
	}
	opened := time.Now() // the pause started before
	if !pauseCalls(10, start, backoff) {
		return false
	}
	// After the pause, one call probes; it fails, and the next pause is
	// twice as long.
	time.Sleep(time.Until(opened.Add(backoff)))
	start = time.Now()
	call("probe")
	if r := e.waitReports(t, 4)[3]; r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR {
		t.Fatalf("failed probe report %v", r)
	}
	opened = time.Now()
	if !pauseCalls(3, start, 2*backoff) {
		return false
	}
	// The candidate is back: the next probe ends the pause.
	healthy.Store(true)
	time.Sleep(time.Until(opened.Add(2 * backoff)))
	call("probe")
	if r := e.waitReports(t, 5)[4]; r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MATCH {
		t.Fatalf("probe report %v", r)
	}
	for i := range 5 {
		call("")
		if r := e.waitReports(t, 6+i)[5+i]; r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MATCH {
			t.Fatalf("report after the pause %v", r)
		}
	}
	closeNow(t, e)
	if n := leaked.Load(); n != 0 {
		t.Errorf("the candidate got %d calls sent during a pause", n)
	}
	return true
}
