package interceptor_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// pricing is a QuoteService that prices every SKU at one amount, with a
// quote ID that differs on every call.
type pricing struct {
	pb.UnimplementedQuoteServiceServer
	units int64
	calls int
}

func (s *pricing) GetQuote(_ context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
	s.calls++
	q := &pb.Quote{QuoteId: fmt.Sprint("q-", s.calls, "-", s.units)}
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
