package interceptor_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

const getQuote = "/parallelrun.difftest.v1.QuoteService/GetQuote"

func price(units int64) func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
	return func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		q := &pb.Quote{QuoteId: "q-" + req.GetCustomerId(), Total: &pb.Money{CurrencyCode: "EUR", Units: units}}
		for _, sku := range req.GetSkus() {
			q.Items = append(q.Items, &pb.Line{Sku: sku, Quantity: 1, Price: &pb.Money{CurrencyCode: "EUR", Units: units}})
		}
		return &pb.GetQuoteResponse{Quote: q}, nil
	}
}

func fail(code codes.Code, msg string) func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
	return func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		return nil, status.Error(code, msg)
	}
}

var mirrorAll = interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1})

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestMatch(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{mirrorAll}})
	resp, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{CustomerId: "c1", Skus: []string{"A"}})
	if err != nil || resp.GetQuote().GetTotal().GetUnits() != 10 {
		t.Fatalf("GetQuote = %v, %v", resp, err)
	}
	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MATCH || len(r.GetDifferences()) != 0 {
		t.Fatalf("report: %v", r)
	}
	if got := e.counter(t, "parallelrun.comparisons", map[string]string{"parallelrun.outcome": "match", "rpc.method": getQuote[1:]}); got != 1 {
		t.Errorf("match count = %d", got)
	}
	if e.candidate.Calls() != 1 {
		t.Errorf("candidate calls = %d", e.candidate.Calls())
	}
}

func TestMismatchReported(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(11), opts: []interceptor.Option{mirrorAll}})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.spans))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, parent := tp.Tracer("test").Start(ctxTimeout(t), "caller")
	req := &pb.GetQuoteRequest{CustomerId: "c1", Skus: []string{"A", "B"}, CardNumber: "4111 1111"}
	resp, err := e.client.GetQuote(ctx, req)
	parent.End()
	if err != nil || resp.GetQuote().GetTotal().GetUnits() != 10 {
		t.Fatalf("the caller must get the legacy reply: %v, %v", resp, err)
	}

	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH || r.GetMethod() != getQuote[1:] {
		t.Fatalf("report: %v", r)
	}
	var paths []string
	for _, d := range r.GetDifferences() {
		paths = append(paths, d.GetPath()+"="+d.GetLegacy()+">"+d.GetCandidate())
	}
	if got, want := strings.Join(paths, " "), "quote.items[0].price.units=10>11 quote.items[1].price.units=10>11 quote.total.units=10>11"; got != want {
		t.Errorf("differences:\n got  %s\n want %s", got, want)
	}
	if r.GetLegacyStatus().GetCode() != "OK" || r.GetCandidateStatus().GetCode() != "OK" || r.GetLegacyLatency() == nil || r.GetCandidateLatency() == nil {
		t.Errorf("statuses and latencies: %v", r)
	}
	// The request is there to reproduce the call, with sensitive fields cleared.
	var got pb.GetQuoteRequest
	if err := r.GetRequest().UnmarshalTo(&got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, &pb.GetQuoteRequest{CustomerId: "c1", Skus: []string{"A", "B"}}) {
		t.Errorf("request in report: %v", &got)
	}

	// One span, child of the caller's, in its trace, with the report's IDs.
	span := onlySpan(t, e, "parallelrun parallelrun.difftest.v1.QuoteService/GetQuote")
	if span.Parent().SpanID() != parent.SpanContext().SpanID() || span.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("span parent %v, want %v", span.Parent(), parent.SpanContext())
	}
	if r.GetTraceId() != span.SpanContext().TraceID().String() || r.GetSpanId() != span.SpanContext().SpanID().String() {
		t.Errorf("report trace %s/%s, span %v", r.GetTraceId(), r.GetSpanId(), span.SpanContext())
	}
	attrs := attrMap(span.Attributes())
	for k, v := range map[string]string{
		"rpc.system.name": "grpc", "rpc.method": "parallelrun.difftest.v1.QuoteService/GetQuote",
		"parallelrun.outcome": "mismatch", "parallelrun.mismatch": "true", "parallelrun.difference_count": "3",
		"parallelrun.legacy.status_code": "OK", "parallelrun.candidate.status_code": "OK",
	} {
		if attrs[k] != v {
			t.Errorf("span attribute %s = %q, want %q", k, attrs[k], v)
		}
	}
	// A mismatch is what a parallel run is for finding, not an error.
	if span.Status().Code != otelcodes.Unset {
		t.Errorf("span status %v", span.Status())
	}
	if n := len(span.Events()); n != 3 {
		t.Fatalf("%d events", n)
	}
	ev := attrMap(span.Events()[2].Attributes)
	if span.Events()[2].Name != interceptor.DifferenceEvent || ev["parallelrun.path"] != "quote.total.units" ||
		ev["parallelrun.kind"] != "changed" || ev["parallelrun.legacy"] != "10" || ev["parallelrun.candidate"] != "11" {
		t.Errorf("event: %v", ev)
	}

	// Metrics: the comparison, the differences by index-free field, latencies.
	method := getQuote[1:]
	if got := e.counter(t, "parallelrun.comparisons", map[string]string{"rpc.method": method, "parallelrun.outcome": "mismatch"}); got != 1 {
		t.Errorf("mismatch count %d", got)
	}
	if got := e.counter(t, "parallelrun.differences", map[string]string{"rpc.method": method, "parallelrun.field": "quote.items.price.units"}); got != 1 {
		t.Errorf("quote.items.price.units: %d calls, want 1 (two items differ there, in one call)", got)
	}
	if got := e.counter(t, "parallelrun.differences", map[string]string{"parallelrun.field": "quote.total.units"}); got != 1 {
		t.Errorf("quote.total.units differences %d", got)
	}
	for _, h := range []string{"parallelrun.legacy.duration", "parallelrun.candidate.duration"} {
		if got := e.histogramCount(t, h, map[string]string{"rpc.method": method}); got != 1 {
			t.Errorf("%s count %d", h, got)
		}
	}
}

func onlySpan(t *testing.T, e *env, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range e.spans.Ended() {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q", len(found), name)
	}
	return found[0]
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// TestLegacyPassthrough checks every observable of the caller's call
// against the same call without the parallel run, whatever the candidate
// does.
func TestLegacyPassthrough(t *testing.T) {
	legacy := func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		_ = grpc.SetHeader(ctx, metadata.Pairs("who", "legacy"))
		_ = grpc.SetTrailer(ctx, metadata.Pairs("trailer-who", "legacy"))
		if req.GetCustomerId() == "fail" {
			return nil, status.Error(codes.FailedPrecondition, "legacy says no")
		}
		return price(10)(ctx, req)
	}
	candidates := map[string]func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error){
		"same":      legacy,
		"different": price(99),
		"failing":   fail(codes.Internal, "candidate broke"),
		"headers": func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
			_ = grpc.SetHeader(ctx, metadata.Pairs("who", "candidate"))
			_ = grpc.SetTrailer(ctx, metadata.Pairs("trailer-who", "candidate"))
			return price(10)(ctx, req)
		},
	}
	for name, cand := range candidates {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envConfig{legacy: legacy, candidate: cand, opts: []interceptor.Option{mirrorAll}})
			for i, customer := range []string{"ok", "fail"} {
				type observed struct {
					resp            *pb.GetQuoteResponse
					err             error
					header, trailer metadata.MD
					finished        int
				}
				call := func(c pb.QuoteServiceClient) observed {
					var o observed
					var p peer.Peer
					o.resp, o.err = c.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{CustomerId: customer, Skus: []string{"A"}},
						grpc.Header(&o.header), grpc.Trailer(&o.trailer), grpc.Peer(&p),
						grpc.OnFinish(func(error) { o.finished++ }))
					return o
				}
				got, want := call(e.client), call(e.plain)
				if !proto.Equal(got.resp, want.resp) || status.Convert(got.err).String() != status.Convert(want.err).String() {
					t.Errorf("%s: reply %v, %v; want %v, %v", customer, got.resp, got.err, want.resp, want.err)
				}
				if strings.Join(got.header.Get("who"), ",") != "legacy" || strings.Join(got.trailer.Get("trailer-who"), ",") != "legacy" {
					t.Errorf("%s: header %v trailer %v", customer, got.header, got.trailer)
				}
				if got.finished != 1 {
					t.Errorf("%s: OnFinish ran %d times", customer, got.finished)
				}
				e.waitReports(t, i+1)
			}
		})
	}
}

func TestCandidateHangsCallerDoesNotWait(t *testing.T) {
	release := make(chan struct{})
	hang := func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, ctx.Err()
	}
	e := newEnv(t, envConfig{legacy: price(10), candidate: hang, opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: 200 * time.Millisecond}),
	}})
	// The candidate cannot answer before the caller returns: the caller
	// does not wait for it.
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	r := e.waitReports(t, 1)[0]
	close(release)
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR || r.GetCandidateStatus().GetCode() != "DEADLINE_EXCEEDED" {
		t.Fatalf("report: %v", r)
	}
}

func TestCandidateRefusesConnections(t *testing.T) {
	refused := func(ctx context.Context, _ string) (net.Conn, error) {
		return nil, errors.New("connection refused")
	}
	e := newEnv(t, envConfig{legacy: price(10), candidateDialer: refused, opts: []interceptor.Option{mirrorAll}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR || r.GetCandidateStatus().GetCode() != "UNAVAILABLE" {
		t.Fatalf("report: %v", r)
	}
}

func TestCandidateReturnsEachCode(t *testing.T) {
	for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
		t.Run(c.String(), func(t *testing.T) {
			e := newEnv(t, envConfig{legacy: price(10), candidate: fail(c, "x"), opts: []interceptor.Option{mirrorAll}})
			if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
				t.Fatal(err)
			}
			r := e.waitReports(t, 1)[0]
			want := parallelrunv1.Outcome_OUTCOME_MISMATCH
			if c == codes.Unavailable || c == codes.Canceled || c == codes.DeadlineExceeded {
				want = parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR
			}
			if r.GetOutcome() != want {
				t.Fatalf("outcome %v, want %v", r.GetOutcome(), want)
			}
			if want == parallelrunv1.Outcome_OUTCOME_MISMATCH {
				d := r.GetDifferences()
				if len(d) != 1 || d[0].GetPath() != interceptor.StatusCodePath || d[0].GetLegacy() != "OK" || d[0].GetCandidate() != r.GetCandidateStatus().GetCode() {
					t.Fatalf("differences %v", d)
				}
			}
		})
	}
}

func TestBothFailAlike(t *testing.T) {
	e := newEnv(t, envConfig{legacy: fail(codes.NotFound, "no such customer"), candidate: fail(codes.NotFound, "customer not found"),
		opts: []interceptor.Option{
			interceptor.WithMethod(getQuote, interceptor.MethodConfig{SampleRate: 1}),
			interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/*", interceptor.MethodConfig{SampleRate: 1, CompareStatusMessage: true}),
		}})
	_, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{})
	if status.Code(err) != codes.NotFound || status.Convert(err).Message() != "no such customer" {
		t.Fatalf("caller got %v", err)
	}
	if r := e.waitReports(t, 1)[0]; r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MATCH {
		t.Fatalf("same code, messages not compared: %v", r)
	}

	e = newEnv(t, envConfig{legacy: fail(codes.NotFound, "no such customer"), candidate: fail(codes.NotFound, "customer not found"),
		opts: []interceptor.Option{interceptor.WithMethod(getQuote, interceptor.MethodConfig{SampleRate: 1, CompareStatusMessage: true})}})
	_, _ = e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{})
	r := e.waitReports(t, 1)[0]
	if d := r.GetDifferences(); r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH || len(d) != 1 ||
		d[0].GetPath() != interceptor.StatusMessagePath || d[0].GetLegacy() != "no such customer" || d[0].GetCandidate() != "customer not found" {
		t.Fatalf("report %v", r)
	}
}

func TestCallerCancelsMidCall(t *testing.T) {
	entered := make(chan struct{})
	legacy := func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		close(entered)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	e := newEnv(t, envConfig{legacy: legacy, candidate: price(10), opts: []interceptor.Option{mirrorAll}})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-entered
		cancel()
	}()
	_, err := e.client.GetQuote(ctx, &pb.GetQuoteRequest{})
	if status.Code(err) != codes.Canceled {
		t.Fatalf("caller got %v", err)
	}
	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_CALLER_CANCELED || len(r.GetDifferences()) != 0 {
		t.Fatalf("a canceled call is no mismatch: %v", r)
	}
	// With nothing to compare with, the candidate call is cancelled if it
	// has not answered yet.
	if c := r.GetCandidateStatus().GetCode(); c != "OK" && c != "CANCELLED" {
		t.Errorf("candidate status %v", r.GetCandidateStatus())
	}
}

func TestCallerReusesRequestAndReply(t *testing.T) {
	slow := func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		time.Sleep(20 * time.Millisecond)
		return price(10)(ctx, req)
	}
	e := newEnv(t, envConfig{legacy: price(10), candidate: slow, opts: []interceptor.Option{mirrorAll}})
	req := &pb.GetQuoteRequest{CustomerId: "c", Skus: []string{"A"}}
	const n = 5
	for i := range n {
		resp, err := e.client.GetQuote(ctxTimeout(t), req)
		if err != nil {
			t.Fatal(err)
		}
		// Mutate both while the candidate is still working: the race
		// detector flags any sharing, and the comparison must not see it.
		req.CustomerId = fmt.Sprint("c", i)
		req.Skus = append(req.Skus, "B")
		resp.Quote.Total.Units = 1000
		resp.Quote.Items = nil
		resp.Quote.QuoteId = "changed"
	}
	for _, r := range e.waitReports(t, n) {
		if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MATCH {
			t.Errorf("report %v", r)
		}
	}
}

func TestMethodPatterns(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{
		interceptor.WithMethod("/other.Service/*", interceptor.MethodConfig{SampleRate: 1}),
	}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := e.counter(t, "parallelrun.skipped", map[string]string{"parallelrun.reason": "unconfigured"}); got != 1 || e.candidate.Calls() != 0 {
		t.Fatalf("unconfigured: skipped %d, candidate calls %d", got, e.candidate.Calls())
	}

	// The exact method wins over the service, the service over "*".
	e = newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1}),
		interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/*", interceptor.MethodConfig{Disabled: true}),
		interceptor.WithMethod(getQuote, interceptor.MethodConfig{SampleRate: 1}),
	}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	e.waitReports(t, 1)

	e = newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1}),
		interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/*", interceptor.MethodConfig{Disabled: true}),
	}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := e.counter(t, "parallelrun.skipped", map[string]string{"parallelrun.reason": "disabled"}); got != 1 || e.candidate.Calls() != 0 {
		t.Fatalf("disabled: skipped %d, candidate calls %d", got, e.candidate.Calls())
	}
}

func TestSkipAndForce(t *testing.T) {
	var seen atomic.Int32
	spy := grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		for _, o := range opts {
			if _, ok := o.(interceptor.CallOption); ok {
				seen.Add(1)
			}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	})
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), dialOpts: []grpc.DialOption{spy}, candDialOpts: []grpc.DialOption{spy}})
	// Not configured, but forced: mirrored.
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}, interceptor.Force()); err != nil {
		t.Fatal(err)
	}
	e.waitReports(t, 1)
	// Skip wins over Force.
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}, interceptor.Force(), interceptor.Skip()); err != nil {
		t.Fatal(err)
	}
	if got := e.counter(t, "parallelrun.skipped", map[string]string{"parallelrun.reason": "skip_option"}); got != 1 {
		t.Errorf("skipped by option: %d", got)
	}
	if e.candidate.Calls() != 1 {
		t.Errorf("candidate calls %d", e.candidate.Calls())
	}
	if seen.Load() != 0 {
		t.Errorf("our call options reached %d interceptors downstream", seen.Load())
	}
}

// tokenCreds is per-RPC credentials of the legacy target.
type tokenCreds string

func (c tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": string(c)}, nil
}
func (tokenCreds) RequireTransportSecurity() bool { return false }

func TestCallOptionsOfTheCallerStayWithIt(t *testing.T) {
	var candOpts []grpc.CallOption
	spy := grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		candOpts = opts
		return invoker(ctx, method, req, reply, cc, opts...)
	})
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{mirrorAll}, candDialOpts: []grpc.DialOption{spy}})
	var header, trailer metadata.MD
	var p peer.Peer
	finished := 0
	_, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{},
		grpc.Header(&header), grpc.Trailer(&trailer), grpc.Peer(&p), grpc.OnFinish(func(error) { finished++ }),
		grpc.PerRPCCredentials(tokenCreds("legacy-secret")), grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	e.waitReports(t, 1)
	for _, o := range candOpts {
		switch o.(type) {
		case grpc.HeaderCallOption, grpc.TrailerCallOption, grpc.PeerCallOption, grpc.OnFinishCallOption, grpc.PerRPCCredsCallOption:
			t.Errorf("%T reached the candidate", o)
		}
	}
	if len(candOpts) == 0 {
		t.Error("harmless options such as WaitForReady should reach the candidate")
	}
	if got := e.legacy.LastMD().Get("authorization"); len(got) != 1 || got[0] != "legacy-secret" {
		t.Errorf("legacy authorization %v", got)
	}
	if got := e.candidate.LastMD().Get("authorization"); len(got) != 0 {
		t.Errorf("the legacy credentials reached the candidate: %v", got)
	}
	if finished != 1 {
		t.Errorf("OnFinish ran %d times", finished)
	}
}

func TestCandidateMetadata(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{mirrorAll,
		interceptor.WithCandidateMetadata(func(ctx context.Context, md metadata.MD) metadata.MD {
			md.Delete("tenant-token")
			md.Set("authorization", "candidate-token")
			return md
		})}})
	ctx := metadata.AppendToOutgoingContext(ctxTimeout(t), "tenant-token", "t1", "request-id", "r1")
	if _, err := e.client.GetQuote(ctx, &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	e.waitReports(t, 1)
	md := e.candidate.LastMD()
	for k, want := range map[string]string{interceptor.RoleKey: "candidate", "authorization": "candidate-token", "request-id": "r1", "tenant-token": ""} {
		if got := strings.Join(md.Get(k), ","); got != want {
			t.Errorf("candidate metadata %s = %q, want %q", k, got, want)
		}
	}
	if got := e.legacy.LastMD().Get(interceptor.RoleKey); len(got) != 0 {
		t.Errorf("the legacy call got the role marker: %v", got)
	}
}

func TestPanicsAreContained(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{mirrorAll,
		interceptor.WithCandidateMetadata(func(context.Context, metadata.MD) metadata.MD { panic("hook bug") }),
		interceptor.WithSink(sinkFunc(func() error { panic("sink bug") })),
	}})
	resp, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{})
	if err != nil || resp.GetQuote().GetTotal().GetUnits() != 10 {
		t.Fatalf("GetQuote = %v, %v", resp, err)
	}
	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR || !strings.Contains(r.GetError(), "hook bug") {
		t.Fatalf("report %v", r)
	}
	if e.candidate.Calls() != 0 {
		t.Errorf("candidate called %d times", e.candidate.Calls())
	}
	closeNow(t, e)
	if got := e.counter(t, "parallelrun.sink.errors", nil); got != 1 {
		t.Errorf("sink errors %d", got)
	}
	if errs := fmt.Sprint(e.errs.all()); !strings.Contains(errs, "hook bug") || !strings.Contains(errs, "panicked: sink bug") {
		t.Errorf("error handler got %s", errs)
	}
}

func closeNow(t *testing.T, e *env) {
	t.Helper()
	if err := e.pr.Close(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
}

type sinkFunc func() error

func (f sinkFunc) Publish(context.Context, *parallelrunv1.Report) error { return f() }
func (f sinkFunc) Flush(context.Context) error                          { return nil }

func TestSaturationDropsWithoutBlocking(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, envConfig{legacy: price(10), candidate: func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		<-release
		return price(10)(ctx, req)
	}, opts: []interceptor.Option{mirrorAll, interceptor.WithMaxInFlight(1)}})
	for range 3 {
		if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.counter(t, "parallelrun.comparisons", map[string]string{"parallelrun.outcome": "dropped"}); got != 2 {
		t.Errorf("dropped %d", got)
	}
	close(release)
	if r := e.waitReports(t, 1)[0]; r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MATCH {
		t.Errorf("report %v", r)
	}
}

func TestCloseDrains(t *testing.T) {
	slow := func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		time.Sleep(100 * time.Millisecond)
		return price(10)(ctx, req)
	}
	e := newEnv(t, envConfig{legacy: price(10), candidate: slow, opts: []interceptor.Option{mirrorAll}})
	for range 3 {
		if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	closeNow(t, e)
	if n := len(e.sink.Reports()); n != 3 {
		t.Errorf("Close returned with %d of 3 reports delivered", n)
	}
	if e.sink.Flushes() != 1 {
		t.Errorf("flushed %d times", e.sink.Flushes())
	}
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := e.counter(t, "parallelrun.skipped", map[string]string{"parallelrun.reason": "closed"}); got != 1 {
		t.Errorf("calls after Close skipped: %d", got)
	}
	closeNow(t, e) // again: a no-op
}

func TestCloseIsBoundedByItsContext(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, envConfig{legacy: price(10), candidate: func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		<-release
		return price(10)(ctx, req)
	}, opts: []interceptor.Option{mirrorAll}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.pr.Close(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 calls still in flight") {
		t.Fatalf("Close = %v", err)
	}
	close(release)
	closeNow(t, e) // goes on where the first one stopped
	if n := len(e.sink.Reports()); n != 1 {
		t.Errorf("%d reports", n)
	}
}

func TestSlowAndFailingSinks(t *testing.T) {
	block := make(chan struct{})
	blocked := sinkFunc(func() error {
		<-block
		return errors.New("disk full")
	})
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{mirrorAll,
		interceptor.WithSink(blocked), interceptor.WithReportQueue(1)}})
	for range 6 {
		if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	// The blocked sink (the second: each sink has its queue) holds one
	// report, its queue one: once the six comparisons have ended, at
	// least four reports are dropped. A comparison is counted before its
	// report is queued, so the count of comparisons is no sign of that.
	blockedSink := map[string]string{"parallelrun.sink": "1"}
	deadline := time.Now().Add(10 * time.Second)
	for e.counter(t, "parallelrun.reports.dropped", blockedSink) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d reports dropped by a blocked sink's queue of 1 after 6 calls", e.counter(t, "parallelrun.reports.dropped", blockedSink))
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(block)
	closeNow(t, e)
	dropped := e.counter(t, "parallelrun.reports.dropped", blockedSink)
	failed := e.counter(t, "parallelrun.sink.errors", blockedSink)
	if dropped+failed != 6 {
		t.Errorf("dropped %d, failed %d", dropped, failed)
	}
	if errs := fmt.Sprint(e.errs.all()); !strings.Contains(errs, "disk full") || !strings.Contains(errs, "sink queue is full") {
		t.Errorf("error handler got %s", errs)
	}
}

func TestSampling(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 0.5}),
	}})
	const n = 400
	for range n {
		if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	out := e.counter(t, "parallelrun.skipped", map[string]string{"parallelrun.reason": "sampled_out"})
	// Binomial(400, 0.5): 150..250 is over five standard deviations wide.
	if out < 150 || out > 250 {
		t.Errorf("%d of %d sampled out", out, n)
	}
	e.waitReports(t, n-int(out))
}

func TestIgnoredNoise(t *testing.T) {
	noisy := func(units int64) func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		var n atomic.Int64
		return func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
			r, _ := price(units)(ctx, req)
			r.Quote.QuoteId = fmt.Sprint("q-", n.Add(1), "-", units)
			return r, nil
		}
	}
	e := newEnv(t, envConfig{legacy: noisy(10), candidate: noisy(10), opts: []interceptor.Option{
		interceptor.WithMethod(getQuote, interceptor.MethodConfig{SampleRate: 1, Diff: []protodiff.Option{protodiff.WithIgnoredPaths("quote.quote_id")}}),
	}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{Skus: []string{"A"}}); err != nil {
		t.Fatal(err)
	}
	if r := e.waitReports(t, 1)[0]; r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MATCH {
		t.Fatalf("report %v", r)
	}
}

func TestDifferenceKindsMatchReport(t *testing.T) {
	for _, k := range []protodiff.Kind{protodiff.Changed, protodiff.Added, protodiff.Removed, protodiff.TypeChanged} {
		if got := strings.ToLower(strings.TrimPrefix(parallelrunv1.DifferenceKind(k).String(), "DIFFERENCE_KIND_")); got != k.String() {
			t.Errorf("protodiff.%s is report kind %s", k, got)
		}
	}
}

func TestBadConfig(t *testing.T) {
	conn := &grpc.ClientConn{}
	for _, tc := range []struct {
		opt  interceptor.Option
		want string
	}{
		{interceptor.WithMethod("pkg.Service", interceptor.MethodConfig{SampleRate: 1}), `interceptor: WithMethod "pkg.Service": not a method pattern`},
		{interceptor.WithMethod("/pkg.Service", interceptor.MethodConfig{SampleRate: 1}), `interceptor: WithMethod "/pkg.Service": not a method pattern`},
		{interceptor.WithMethod("/pkg.*/Get", interceptor.MethodConfig{SampleRate: 1}), `interceptor: WithMethod "/pkg.*/Get": "*" stands only for a whole method name or alone`},
		{interceptor.WithMethod("/pkg.S/Get*", interceptor.MethodConfig{SampleRate: 1}), `interceptor: WithMethod "/pkg.S/Get*": "*" stands only`},
		{interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1.5}), `interceptor: WithMethod "*": field SampleRate: 1.5 is not in (0, 1]`},
		{interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: -time.Second}), `interceptor: WithMethod "*": field Timeout: -1s is negative`},
		{interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Diff: []protodiff.Option{protodiff.WithIgnoredPaths("a[0]")}}),
			`interceptor: WithMethod "*": field Diff: protodiff: WithIgnoredPaths "a[0]"`},
		{interceptor.WithMaxInFlight(0), "interceptor: WithMaxInFlight: 0 is less than 1"},
		{interceptor.WithReportQueue(-1), "interceptor: WithReportQueue: -1 is less than 1"},
		{interceptor.WithMaxCandidateTimeout(0), "interceptor: WithMaxCandidateTimeout: 0s is not positive"},
		{interceptor.WithMaxRequestBytes(-1), "interceptor: WithMaxRequestBytes: -1 is negative"},
		{interceptor.WithMaxSpanEvents(-1), "interceptor: WithMaxSpanEvents: -1 is negative"},
	} {
		_, err := interceptor.New(conn, tc.opt)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
	_, err := interceptor.New(conn, interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1}), interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1}))
	if err == nil || err.Error() != `interceptor: WithMethod "*": pattern given twice` {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := interceptor.New(nil); err == nil {
		t.Error("nil candidate accepted")
	}
}

func TestSpanEventsCapped(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(11), opts: []interceptor.Option{mirrorAll, interceptor.WithMaxSpanEvents(2)}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{Skus: []string{"A", "B", "C"}}); err != nil {
		t.Fatal(err)
	}
	r := e.waitReports(t, 1)[0]
	span := onlySpan(t, e, "parallelrun parallelrun.difftest.v1.QuoteService/GetQuote")
	if len(span.Events()) != 2 || len(r.GetDifferences()) != 4 || attrMap(span.Attributes())["parallelrun.difference_count"] != "4" {
		t.Fatalf("%d events, %d differences", len(span.Events()), len(r.GetDifferences()))
	}
}

func TestRequestLeftOutPastTheLimit(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{mirrorAll, interceptor.WithMaxRequestBytes(8)}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{CustomerId: "a customer id longer than eight bytes"}); err != nil {
		t.Fatal(err)
	}
	if r := e.waitReports(t, 1)[0]; !r.GetRequestOmitted() || r.GetRequest() != nil {
		t.Fatalf("report %v", r)
	}
}

// TestUnaryCopiesThroughTheCodec checks the two ways a unary call's reply
// reaches the comparison: tapped from the wire (the content-type the legacy
// service sees stays the same), and cloned when the caller chose a codec.
func TestUnaryCopiesThroughTheCodec(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(11), opts: []interceptor.Option{mirrorAll}})
	req := &pb.GetQuoteRequest{CustomerId: "c1", Skus: []string{"A"}}
	if _, err := e.client.GetQuote(ctxTimeout(t), req); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.GetQuote(ctxTimeout(t), req, grpc.CallContentSubtype("proto")); err != nil {
		t.Fatal(err)
	}
	for i, r := range e.waitReports(t, 2) {
		var got pb.GetQuoteRequest
		if err := r.GetRequest().UnmarshalTo(&got); err != nil || !proto.Equal(&got, req) {
			t.Errorf("report %d: request %v, %v", i, &got, err)
		}
		if diffPaths(r) != "quote.items[0].price.units=10>11 quote.total.units=10>11" {
			t.Errorf("report %d: %s", i, diffPaths(r))
		}
	}
	cts := []string{}
	e.legacy.mu.Lock()
	for _, md := range e.legacy.mds {
		cts = append(cts, strings.Join(md.Get("content-type"), ","))
	}
	e.legacy.mu.Unlock()
	if strings.Join(cts, " ") != "application/grpc application/grpc+proto" {
		t.Errorf("content-types the legacy service saw: %v", cts)
	}
}

func TestUnaryLegacyUnreachable(t *testing.T) {
	candidate := &quoteServer{get: price(10)}
	candConn := dial(t, serve(t, candidate))
	mem := sink.NewMemory()
	pr, err := interceptor.New(candConn, mirrorAll, interceptor.WithSink(mem))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pr.Close(context.Background()) })
	refused := func(context.Context, string) (net.Conn, error) { return nil, errors.New("connection refused") }
	client := pb.NewQuoteServiceClient(dial(t, refused, pr.DialOptions()...))
	req := &pb.GetQuoteRequest{CustomerId: "c1"}
	if _, err := client.GetQuote(ctxTimeout(t), req); status.Code(err) != codes.Unavailable {
		t.Fatalf("legacy call: %v", err)
	}
	// The legacy call failed at once; the candidate still got the request,
	// cloned before the call returned.
	req.CustomerId = "changed"
	r := waitMemory(t, mem, 1)[0]
	var got pb.GetQuoteRequest
	if err := r.GetRequest().UnmarshalTo(&got); err != nil || got.GetCustomerId() != "c1" {
		t.Fatalf("request in report: %v, %v", &got, err)
	}
	// A legacy outage is no mismatch of the candidate's.
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_LEGACY_ERROR || len(r.GetDifferences()) != 0 ||
		r.GetLegacyStatus().GetCode() != "UNAVAILABLE" || r.GetCandidateStatus().GetCode() != "OK" || candidate.Calls() != 1 {
		t.Fatalf("report %v", r)
	}
}
