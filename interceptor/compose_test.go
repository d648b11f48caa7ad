package interceptor_test

import (
	"context"
	"sync"
	"testing"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// TestComposesWithMiddleware chains the parallel run behind
// go-grpc-middleware's selector and logging, on a connection that also has
// an otelgrpc stats handler, as a production client would.
func TestComposesWithMiddleware(t *testing.T) {
	var mu sync.Mutex
	var logged []string
	logger := logging.LoggerFunc(func(_ context.Context, _ logging.Level, msg string, fields ...any) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, msg)
	})
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	legacy, candidate := &quoteServer{get: price(10)}, &quoteServer{get: price(12)}
	candConn := dial(t, serve(t, candidate), grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(tp))))
	mem := sink.NewMemory()
	pr, err := interceptor.New(candConn, mirrorAll, interceptor.WithSink(mem), interceptor.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pr.Close(context.Background()) })

	onlyGetQuote := selector.MatchFunc(func(_ context.Context, cm interceptors.CallMeta) bool { return cm.Method == "GetQuote" })
	conn := dial(t, serve(t, legacy),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(tp))),
		grpc.WithChainUnaryInterceptor(
			logging.UnaryClientInterceptor(logger, logging.WithLogOnEvents(logging.FinishCall)),
			selector.UnaryClientInterceptor(pr.UnaryClientInterceptor(), onlyGetQuote),
		))
	ctx, caller := tp.Tracer("test").Start(ctxTimeout(t), "caller")
	resp, err := pb.NewQuoteServiceClient(conn).GetQuote(ctx, &pb.GetQuoteRequest{Skus: []string{"A"}})
	caller.End()
	if err != nil || resp.GetQuote().GetTotal().GetUnits() != 10 {
		t.Fatalf("GetQuote = %v, %v", resp, err)
	}
	r := waitMemory(t, mem, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH {
		t.Fatalf("report %v", r)
	}
	mu.Lock()
	if len(logged) != 1 {
		t.Errorf("logging saw %d calls: %v", len(logged), logged)
	}
	mu.Unlock()

	// otelgrpc traces both calls: the legacy and the candidate client
	// spans and the comparison span are all children of the caller's span.
	// (The comparison span starts once its outcome is known, after the
	// candidate call, so that a sampler can see the outcome.)
	var clients, comparisons int
	for _, s := range spans.Ended() {
		if s.Name() == "caller" {
			continue
		}
		if s.Parent().SpanID() != caller.SpanContext().SpanID() {
			t.Errorf("span %s/%s is not a child of the caller's span", s.Name(), s.SpanKind())
		}
		switch {
		case s.SpanKind().String() == "client":
			clients++
		case s.Name() == "parallelrun parallelrun.difftest.v1.QuoteService/GetQuote":
			comparisons++
		}
	}
	if clients != 2 || comparisons != 1 {
		t.Errorf("%d client spans, %d comparison spans among %v", clients, comparisons, spanNames(spans.Ended()))
	}
}

func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	var names []string
	for _, s := range spans {
		names = append(names, s.Name()+"/"+s.SpanKind().String())
	}
	return names
}
