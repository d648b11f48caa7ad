package interceptor_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
	"github.com/parallelrun/grpc-parallelrun/readiness"
	"github.com/parallelrun/grpc-parallelrun/sink"
	"github.com/parallelrun/grpc-parallelrun/statuspage"
)

// pricing is a QuoteService that prices every SKU at one amount, with a
// quote ID that differs on every call.
type pricing struct {
	pb.UnimplementedQuoteServiceServer
	units int64
	calls atomic.Int64
}

func (s *pricing) GetQuote(_ context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
	q := &pb.Quote{QuoteId: fmt.Sprint("q-", s.calls.Add(1), "-", s.units)}
	for _, sku := range req.GetSkus() {
		q.Items = append(q.Items, &pb.Line{Sku: sku, Quantity: 1, Price: &pb.Money{CurrencyCode: "EUR", Units: s.units}})
	}
	return &pb.GetQuoteResponse{Quote: q}, nil
}

// ListQuotes streams one quote per SKU.
func (s *pricing) ListQuotes(req *pb.ListQuotesRequest, stream grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
	for i, sku := range req.GetSkus() {
		units := s.units
		if i == 0 {
			units = 10 // the first SKU is priced alike on both sides
		}
		q := &pb.Quote{Items: []*pb.Line{{Sku: sku, Quantity: 1, Price: &pb.Money{CurrencyCode: "EUR", Units: units}}}}
		if err := stream.Send(&pb.ListQuotesResponse{Quote: q}); err != nil {
			return err
		}
	}
	return nil
}

// start serves s in memory and returns a client connection option set.
func start(s pb.QuoteServiceServer) (dial func(opts ...grpc.DialOption) *grpc.ClientConn, stop func()) {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	pb.RegisterQuoteServiceServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	var conns []*grpc.ClientConn
	dial = func(opts ...grpc.DialOption) *grpc.ClientConn {
		opts = append(opts,
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		conn, err := grpc.NewClient("passthrough:///bufnet", opts...)
		if err != nil {
			panic(err)
		}
		conns = append(conns, conn)
		return conn
	}
	return dial, func() {
		for _, c := range conns {
			_ = c.Close()
		}
		srv.Stop()
	}
}

func Example() {
	dialLegacy, stopLegacy := start(&pricing{units: 10})
	defer stopLegacy()
	dialCandidate, stopCandidate := start(&pricing{units: 11})
	defer stopCandidate()

	reports := sink.NewMemory()
	pr, err := interceptor.New(dialCandidate(),
		interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/GetQuote", interceptor.MethodConfig{
			SampleRate: 1,
			Timeout:    time.Second,
			Diff:       []protodiff.Option{protodiff.WithIgnoredPaths("quote.quote_id")},
		}),
		interceptor.WithSink(reports),
	)
	if err != nil {
		panic(err)
	}
	client := pb.NewQuoteServiceClient(dialLegacy(pr.DialOptions()...))

	resp, err := client.GetQuote(context.Background(), &pb.GetQuoteRequest{Skus: []string{"A1"}})
	if err != nil {
		panic(err)
	}
	fmt.Println("caller got", resp.GetQuote().GetItems()[0].GetPrice().GetUnits())

	// Close waits for the comparison and flushes the sinks.
	if err := pr.Close(context.Background()); err != nil {
		panic(err)
	}
	for _, r := range reports.Reports() {
		fmt.Println(r.GetMethod(), sink.OutcomeName(r.GetOutcome()))
		for _, d := range r.GetDifferences() {
			fmt.Printf("  %s: %s -> %s\n", d.GetPath(), d.GetLegacy(), d.GetCandidate())
		}
	}
	// Output:
	// caller got 10
	// parallelrun.difftest.v1.QuoteService/GetQuote mismatch
	//   quote.items[0].price.units: 10 -> 11
}

func ExampleNew() {
	candidate, err := grpc.NewClient("dns:///pricing-v2.internal:443", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer candidate.Close()

	pr, err := interceptor.New(candidate,
		// Every read of the service, a tenth of the traffic, compared
		// without the per-call noise.
		interceptor.WithMethod("/pricing.v1.PricingService/*", interceptor.MethodConfig{
			SampleRate: 0.1,
			Diff: []protodiff.Option{
				protodiff.WithIgnoredPaths("quote.quote_id", "quote.computed_at"),
				protodiff.WithListKey("quote.items", "sku"),
			},
		}),
		// ...but not the one that writes.
		interceptor.WithMethod("/pricing.v1.PricingService/AcceptQuote", interceptor.MethodConfig{Disabled: true}),
		interceptor.WithSink(sink.NewSlog(nil, 5)),
	)
	if err != nil {
		panic(err)
	}
	defer pr.Close(context.Background())

	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	legacy, err := grpc.NewClient("dns:///pricing.internal:443", append(opts, pr.DialOptions()...)...)
	if err != nil {
		panic(err)
	}
	defer legacy.Close()
	fmt.Println("ready")
	// Output: ready
}

func ExampleSkip() {
	dialLegacy, stopLegacy := start(&pricing{units: 10})
	defer stopLegacy()
	dialCandidate, stopCandidate := start(&pricing{units: 10})
	defer stopCandidate()
	pr, err := interceptor.New(dialCandidate(), interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1}))
	if err != nil {
		panic(err)
	}
	defer pr.Close(context.Background())
	client := pb.NewQuoteServiceClient(dialLegacy(pr.DialOptions()...))

	// A call that must not reach the candidate, say a replay.
	_, err = client.GetQuote(context.Background(), &pb.GetQuoteRequest{}, interceptor.Skip())
	fmt.Println(err)
	// Output: <nil>
}

func Example_serverStream() {
	dialLegacy, stopLegacy := start(&pricing{units: 10})
	defer stopLegacy()
	dialCandidate, stopCandidate := start(&pricing{units: 12})
	defer stopCandidate()

	reports := sink.NewMemory()
	pr, err := interceptor.New(dialCandidate(),
		interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/ListQuotes", interceptor.MethodConfig{
			SampleRate:        1,
			Timeout:           time.Second,
			MaxStreamMessages: 256, // buffered per direction; past it the candidate is abandoned
		}),
		interceptor.WithSink(reports),
	)
	if err != nil {
		panic(err)
	}
	client := pb.NewQuoteServiceClient(dialLegacy(pr.DialOptions()...))

	stream, err := client.ListQuotes(context.Background(), &pb.ListQuotesRequest{Skus: []string{"A1", "B2", "C3"}})
	if err != nil {
		panic(err)
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			break // io.EOF
		}
		fmt.Println("caller got", resp.GetQuote().GetItems()[0].GetSku(), resp.GetQuote().GetItems()[0].GetPrice().GetUnits())
	}
	if err := pr.Close(context.Background()); err != nil {
		panic(err)
	}
	r := reports.Reports()[0]
	fmt.Println(sink.OutcomeName(r.GetOutcome()), r.GetLegacyMessages(), "messages each side")
	for _, d := range r.GetDifferences() {
		fmt.Printf("  %s: %s -> %s\n", d.GetPath(), d.GetLegacy(), d.GetCandidate())
	}
	// Output:
	// caller got A1 10
	// caller got B2 10
	// caller got C3 10
	// mismatch 3 messages each side
	//   [1].quote.items[0].price.units: 10 -> 12
	//   [2].quote.items[0].price.units: 10 -> 12
}

// mismatchSampler samples every span that starts with
// parallelrun.mismatch=true, and leaves the others to its base sampler.
type mismatchSampler struct{ base sdktrace.Sampler }

func (s mismatchSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	for _, a := range p.Attributes {
		if a.Key == interceptor.MismatchKey && a.Value.AsBool() {
			return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample}
		}
	}
	return s.base.ShouldSample(p)
}

func (s mismatchSampler) Description() string { return "mismatchSampler{" + s.base.Description() + "}" }

// A comparison span carries its outcome from its start, so a sampler can
// keep every mismatch while it keeps a small share of everything else;
// WithRootSpans makes each comparison a trace of its own, so that the
// caller's sampling decision does not hide it.
func Example_sampling() {
	dialLegacy, stopLegacy := start(&pricing{units: 10})
	defer stopLegacy()
	dialCandidate, stopCandidate := start(&pricing{units: 11})
	defer stopCandidate()

	spans := tracetest.NewSpanRecorder()
	// In production the base would keep a share of traces, as
	// sdktrace.TraceIDRatioBased(0.01) does; here it keeps none, so
	// that the output is the same on every run.
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(mismatchSampler{sdktrace.ParentBased(sdktrace.NeverSample())}),
		sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())
	pr, err := interceptor.New(dialCandidate(),
		interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/GetQuote", interceptor.MethodConfig{
			SampleRate: 1,
			Diff:       []protodiff.Option{protodiff.WithIgnoredPaths("quote.quote_id")},
		}),
		interceptor.WithTracerProvider(tp),
		interceptor.WithRootSpans(),
	)
	if err != nil {
		panic(err)
	}
	client := pb.NewQuoteServiceClient(dialLegacy(pr.DialOptions()...))
	for _, skus := range [][]string{{"A1"}, nil, {"B2"}, nil} {
		// No SKU, no price: the replies match.
		if _, err := client.GetQuote(context.Background(), &pb.GetQuoteRequest{Skus: skus}); err != nil {
			panic(err)
		}
	}
	if err := pr.Close(context.Background()); err != nil {
		panic(err)
	}
	for _, s := range spans.Ended() {
		for _, a := range s.Attributes() {
			if a.Key == interceptor.OutcomeKey {
				fmt.Println(s.Name(), a.Value.AsString())
			}
		}
	}
	// Output:
	// parallelrun parallelrun.difftest.v1.QuoteService/GetQuote mismatch
	// parallelrun parallelrun.difftest.v1.QuoteService/GetQuote mismatch
}

// authSeen is a QuoteService that says which credentials it was called
// with.
type authSeen struct {
	pb.UnimplementedQuoteServiceServer
}

func (authSeen) GetQuote(ctx context.Context, _ *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	fmt.Printf("%s called with authorization %q\n", md.Get(interceptor.RoleKey), md.Get("authorization"))
	return &pb.GetQuoteResponse{}, nil
}

// The candidate gets all of the caller's outgoing metadata, authorization
// included, unless WithCandidateMetadata replaces it.
func ExampleWithCandidateMetadata() {
	dialLegacy, stopLegacy := start(&pricing{units: 10})
	defer stopLegacy()
	dialCandidate, stopCandidate := start(authSeen{})
	defer stopCandidate()

	pr, err := interceptor.New(dialCandidate(),
		interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/GetQuote", interceptor.MethodConfig{SampleRate: 1}),
		// The candidate has credentials of its own: the caller's never
		// reach it.
		interceptor.WithCandidateMetadata(func(_ context.Context, md metadata.MD) metadata.MD {
			md.Set("authorization", "Bearer candidate-token")
			return md
		}),
	)
	if err != nil {
		panic(err)
	}
	client := pb.NewQuoteServiceClient(dialLegacy(pr.DialOptions()...))
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer caller-token")
	if _, err := client.GetQuote(ctx, &pb.GetQuoteRequest{}); err != nil {
		panic(err)
	}
	if err := pr.Close(context.Background()); err != nil {
		panic(err)
	}
	// Output:
	// [candidate] called with authorization ["Bearer candidate-token"]
}

// Noise probes find the fields that differ on every call: here the quote
// ID, which the legacy service makes up anew each time. A tenth of the
// calls go to it twice; until enough have, a probed call knows its own
// noise, and afterwards every call does.
func ExampleNoiseConfig() {
	dialLegacy, stopLegacy := start(&pricing{units: 10})
	defer stopLegacy()
	dialCandidate, stopCandidate := start(&pricing{units: 10})
	defer stopCandidate()

	reports := sink.NewMemory()
	pr, err := interceptor.New(dialCandidate(),
		interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/GetQuote", interceptor.MethodConfig{
			SampleRate: 1,
			// A tenth of the calls go to the legacy service twice: what it
			// disagrees with itself on is noise.
			Noise: interceptor.NoiseConfig{ProbeRate: 0.1},
		}),
		interceptor.WithSink(reports),
		// Noise once two probes agree, for a short example.
		interceptor.WithNoiseRule(2, interceptor.DefaultNoiseRelative, interceptor.DefaultNoiseAbsolute),
	)
	if err != nil {
		panic(err)
	}
	client := pb.NewQuoteServiceClient(dialLegacy(pr.DialOptions()...))
	for i := range 200 {
		if i == 199 {
			// Comparisons end in any order: the last call's report is
			// the last one once all the others are in.
			if _, err := reports.Wait(context.Background(), i); err != nil {
				panic(err)
			}
		}
		if _, err := client.GetQuote(context.Background(), &pb.GetQuoteRequest{Skus: []string{"A1"}}); err != nil {
			panic(err)
		}
	}
	if err := pr.Close(context.Background()); err != nil {
		panic(err)
	}
	last := reports.Reports()[199]
	fmt.Println("last call:", sink.OutcomeName(last.GetOutcome()), "with noise at", last.GetNoise()[0].GetField())
	for _, f := range pr.Signals()[0].Fields {
		fmt.Println(f.Field, "noise:", f.Noise)
	}
	// Output:
	// last call: match with noise at quote.quote_id
	// quote.quote_id noise: true
}

// A parallel run's rules replaced while it runs: calls that start after
// SetMethods are compared under the new rules.
func ExampleParallelRun_SetMethods() {
	dialLegacy, stopLegacy := start(&pricing{units: 10})
	defer stopLegacy()
	dialCandidate, stopCandidate := start(&pricing{units: 11})
	defer stopCandidate()
	reports := sink.NewMemory()
	pr, err := interceptor.New(dialCandidate(), interceptor.WithSink(reports),
		interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/GetQuote", interceptor.MethodConfig{SampleRate: 1}))
	if err != nil {
		panic(err)
	}
	client := pb.NewQuoteServiceClient(dialLegacy(pr.DialOptions()...))
	call := func() {
		if _, err := client.GetQuote(context.Background(), &pb.GetQuoteRequest{Skus: []string{"A1"}}); err != nil {
			panic(err)
		}
	}
	call()
	// The comparison ends after the call: its report, before the next.
	if _, err := reports.Wait(context.Background(), 1); err != nil {
		panic(err)
	}

	// The quote ID differs on every call: from now on it is not compared.
	err = pr.SetMethods(interceptor.MethodRule{
		Pattern: "/parallelrun.difftest.v1.QuoteService/GetQuote",
		Config: interceptor.MethodConfig{
			SampleRate: 1,
			Diff:       []protodiff.Option{protodiff.WithIgnoredPaths("quote.quote_id")},
		},
	})
	if err != nil {
		panic(err)
	}
	call()

	if err := pr.Close(context.Background()); err != nil {
		panic(err)
	}
	for _, r := range reports.Reports() {
		var fields []string
		for _, d := range r.GetDifferences() {
			fields = append(fields, d.GetField())
		}
		fmt.Println(strings.Join(fields, " "))
	}
	// Output:
	// quote.quote_id quote.items.price.units
	// quote.items.price.units
}

// The kill switch stops all mirroring at once; the configuration stays
// for when it is cleared.
func ExampleParallelRun_SetDisabled() {
	dialCandidate, stopCandidate := start(&pricing{units: 11})
	defer stopCandidate()
	pr, err := interceptor.New(dialCandidate(), interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1}))
	if err != nil {
		panic(err)
	}
	defer pr.Close(context.Background())

	pr.SetDisabled(true)
	fmt.Println(pr.Disabled(), len(pr.Methods()))
	pr.SetDisabled(false)
	fmt.Println(pr.Disabled())
	// Output:
	// true 1
	// false
}

// A configuration file with a mistake: the error says where.
func ExampleParseConfig() {
	_, err := interceptor.ParseConfig("quote.json", []byte(`{
  "methods": [{
    "pattern": "/parallelrun.difftest.v1.QuoteService/GetQuote",
    "sampleRate": 1,
    "diff": {"ignoredPaths": ["quote.quote_idd"]}
  }]
}`))
	fmt.Println(err)
	// Output:
	// interceptor: quote.json:5: methods[0].diff.ignoredPaths[0]: "quote.quote_idd": parallelrun.difftest.v1.GetQuoteResponse: no field "quote_idd" in parallelrun.difftest.v1.Quote
}

// A configuration file read again and put in force, as a program does on
// SIGHUP (examples/reload does). A file that does not validate leaves the
// configuration in force as it was.
func ExampleParallelRun_ApplyConfig() {
	dir, err := os.MkdirTemp("", "parallelrun")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "quote.json")
	dialCandidate, stopCandidate := start(&pricing{units: 11})
	defer stopCandidate()
	dialSecondary, stopSecondary := start(&pricing{units: 10})
	defer stopSecondary()
	// The connections a configuration may name as noise.secondary.
	conns := map[string]grpc.ClientConnInterface{"quotes-b": dialSecondary()}
	pr, err := interceptor.New(dialCandidate())
	if err != nil {
		panic(err)
	}
	defer pr.Close(context.Background())

	// The program's logger; here, one that leaves the temporary
	// directory out.
	logf := func(format string, args ...any) {
		fmt.Println(strings.ReplaceAll(fmt.Sprintf(format, args...), dir+string(filepath.Separator), ""))
	}

	reload := func() {
		cfg, err := interceptor.ReadConfig(path)
		if err == nil {
			err = pr.ApplyConfig(cfg, conns)
		}
		if err != nil {
			logf("configuration not reloaded, the old one stays: %v", err)
			return
		}
		logf("configuration reloaded: %d rules, disabled: %v", len(pr.Methods()), pr.Disabled())
	}

	for _, file := range []string{
		`{"methods": [{"pattern": "/parallelrun.difftest.v1.QuoteService/*", "sampleRate": 0.5}]}`,
		`{"methods": [{"pattern": "/parallelrun.difftest.v1.QuoteService/GetQuote", "sampleRate": 1,
		  "noise": {"probeRate": 0.1, "secondary": "quotes-c"}}]}`,
		`{"disabled": true, "methods": [{"pattern": "/parallelrun.difftest.v1.QuoteService/*", "sampleRate": 0.5}]}`,
	} {
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			panic(err)
		}
		reload()
	}
	// Output:
	// configuration reloaded: 1 rules, disabled: false
	// configuration not reloaded, the old one stays: interceptor: ApplyConfig: quote.json:2: methods[0].noise.secondary: no connection named "quotes-c"; the program has quotes-b
	// configuration reloaded: 1 rules, disabled: true
}

func ExampleParallelRun_Status() {
	dialLegacy, stopLegacy := start(&pricing{units: 10})
	defer stopLegacy()
	dialCandidate, stopCandidate := start(&pricing{units: 11})
	defer stopCandidate()

	pr, err := interceptor.New(dialCandidate(),
		interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/*", interceptor.MethodConfig{
			SampleRate: 1,
			Diff:       []protodiff.Option{protodiff.WithIgnoredPaths("quote.quote_id")},
		}),
		// Ready after 10,000 calls compared and a day without a mismatch.
		interceptor.WithReadiness(readiness.WithPolicy(&parallelrunv1.ReadinessPolicy{
			MinCompared:       proto.Int64(10_000),
			MinStreakDuration: durationpb.New(24 * time.Hour),
		})),
	)
	if err != nil {
		panic(err)
	}
	client := pb.NewQuoteServiceClient(dialLegacy(pr.DialOptions()...))
	for range 3 {
		if _, err := client.GetQuote(context.Background(), &pb.GetQuoteRequest{Skus: []string{"A1"}}); err != nil {
			panic(err)
		}
	}
	if err := pr.Close(context.Background()); err != nil {
		panic(err)
	}

	// A person reads it on a page, a machine as JSON.
	page, err := statuspage.New(pr.Status, statuspage.WithTraceURL("http://localhost:16686/trace/{trace_id}"))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux() // the program's own
	mux.Handle("/parallelrun/", http.StripPrefix("/parallelrun", page))

	st := pr.Status()
	fmt.Println(st.GetReadiness().GetVerdict())
	for _, m := range st.GetMethods() {
		fmt.Println(m.GetMethod(), m.GetOutcomes().GetMismatch(), "of", m.GetOutcomes().GetMatch()+m.GetOutcomes().GetMismatch(), "mismatched")
		fmt.Println("  last mismatch at", m.GetStreak().GetLastMismatchAt())
	}
	// Output:
	// VERDICT_NOT_READY
	// /parallelrun.difftest.v1.QuoteService/GetQuote 3 of 3 mismatched
	//   last mismatch at quote.items[0].price.units
}
