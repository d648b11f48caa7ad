package readiness_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

// pricer is a QuoteService that prices every SKU at units, except the
// SKUs in wrong, which it prices one unit more: a planted bug.
type pricer struct {
	pb.UnimplementedQuoteServiceServer
	units int64
	wrong []string
}

func (s *pricer) GetQuote(_ context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
	q := &pb.Quote{}
	for _, sku := range req.GetSkus() {
		units := s.units
		if slices.Contains(s.wrong, sku) {
			units++
		}
		q.Items = append(q.Items, &pb.Line{Sku: sku, Quantity: 1, Price: &pb.Money{CurrencyCode: "EUR", Units: units}})
	}
	return &pb.GetQuoteResponse{Quote: q}, nil
}

// serve runs s on a real gRPC server over an in-memory listener and
// returns a connection to it, with opts; all stop when the test ends.
func serve(t *testing.T, s pb.QuoteServiceServer, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	pb.RegisterQuoteServiceServer(srv, s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	conn, err := grpc.NewClient("passthrough:///bufnet", append(opts,
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// run sends calls through a real parallel run between a legacy and a
// candidate QuoteService, with a Tracker as its sink, and returns the
// Tracker's status once the parallel run is closed, and the spans.
func run(t *testing.T, candidate *pricer, policy *parallelrunv1.ReadinessPolicy, calls [][]string) (*parallelrunv1.RunStatus, []sdktrace.ReadOnlySpan) {
	t.Helper()
	tr := newTracker(t, readiness.WithPolicy(policy))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	pr, err := interceptor.New(serve(t, candidate),
		interceptor.WithMethod(quote, interceptor.MethodConfig{SampleRate: 1}),
		interceptor.WithSink(tr),
		interceptor.WithTracerProvider(tp),
		interceptor.WithMeterProvider(mp),
		interceptor.WithErrorHandler(func(err error) { t.Errorf("parallel run: %v", err) }),
	)
	if err != nil {
		t.Fatal(err)
	}
	client := pb.NewQuoteServiceClient(serve(t, &pricer{units: 10}, pr.DialOptions()...))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, skus := range calls {
		if _, err := client.GetQuote(ctx, &pb.GetQuoteRequest{CustomerId: "c1", Skus: skus}); err != nil {
			t.Fatal(err)
		}
		// Comparisons end in their own goroutines, in any order: waiting
		// for each report keeps the arrival order the calls' order.
		waitAdded(t, tr, int64(i+1))
	}
	// Close waits for the comparisons and hands every report to the sinks.
	if err := pr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return tr.Status(time.Time{}), spans.Ended()
}

// waitAdded waits until tr has counted n reports.
func waitAdded(t *testing.T, tr *readiness.Tracker, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var added int64
		for _, m := range tr.Status(time.Time{}).GetMethods() {
			o := m.GetOutcomes()
			added += o.GetMatch() + o.GetMismatch() + o.GetCandidateError() + o.GetDropped() + o.GetInternalError() +
				o.GetCallerCanceled() + o.GetAbandoned() + o.GetLegacyError()
		}
		if added >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reports after 10s, want %d", added, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func basket(n int) [][]string {
	calls := make([][]string, n)
	for i := range calls {
		calls[i] = []string{fmt.Sprint("SKU-", i%7), "SKU-X"}
	}
	return calls
}

// The Tracker as the sink of a real parallel run: a planted bug makes the
// method not ready, pointing at the field and the trace of the mismatch.
func TestInterceptorPlantedMismatch(t *testing.T) {
	policy := &parallelrunv1.ReadinessPolicy{MinCompared: proto.Int64(10), MinStreakCalls: proto.Int64(10),
		MinStreakDuration: durationpb.New(0)}
	calls := basket(40)
	calls[30] = []string{"SKU-X", "BAD"} // the candidate prices BAD wrong
	st, spans := run(t, &pricer{units: 10, wrong: []string{"BAD"}}, policy, calls)

	m := methodStatus(t, st, quote)
	if o := m.GetOutcomes(); o.GetMatch() != 39 || o.GetMismatch() != 1 {
		t.Fatalf("outcomes %v", o)
	}
	r := m.GetReadiness()
	want := []string{
		"1 of 40 calls compared in the last 1h mismatched (2.5%, at most 0%)",
		"9 of 10 calls compared since the last mismatch",
	}
	if r.GetVerdict() != parallelrunv1.Verdict_VERDICT_NOT_READY || !slices.Equal(r.GetReasons(), want) {
		t.Errorf("%v %q, want not ready %q", r.GetVerdict(), r.GetReasons(), want)
	}
	if st.GetReadiness().GetVerdict() != parallelrunv1.Verdict_VERDICT_NOT_READY {
		t.Errorf("run: %v", st.GetReadiness())
	}
	s := m.GetStreak()
	if s.GetCalls() != 9 || s.GetLastMismatchAt() != "quote.items[1].price.units" {
		t.Errorf("streak %v", s)
	}
	// The trace ID is the mismatch's comparison span.
	var mismatchTraces []string
	for _, sp := range spans {
		for _, a := range sp.Attributes() {
			if a.Key == interceptor.MismatchKey && a.Value == attribute.BoolValue(true) {
				mismatchTraces = append(mismatchTraces, sp.SpanContext().TraceID().String())
			}
		}
	}
	if len(mismatchTraces) != 1 || s.GetLastMismatchTraceId() != mismatchTraces[0] {
		t.Errorf("last mismatch trace %q, mismatch spans %q", s.GetLastMismatchTraceId(), mismatchTraces)
	}
	fields := m.GetTopFields()
	if len(fields) != 1 || fields[0].GetField() != "quote.items.price.units" || fields[0].GetCount() != 1 ||
		fields[0].GetExample().GetLegacy() != "10" || fields[0].GetExample().GetCandidate() != "11" {
		t.Errorf("top fields %v", fields)
	}
	sigs := m.GetTopSignatures()
	if len(sigs) != 1 || !slices.Equal(sigs[0].GetFields(), []string{"quote.items.price.units:changed"}) ||
		sigs[0].GetLegacyCode() != "OK" || sigs[0].GetCandidateCode() != "OK" || !slices.Equal(sigs[0].GetTraceIds(), mismatchTraces) {
		t.Errorf("top signatures %v", sigs)
	}
	if l := m.GetCandidateLatency(); l.GetCount() != 40 || l.GetP50().AsDuration() <= 0 {
		t.Errorf("candidate latency %v", l)
	}
}

// A clean run with a policy its numbers meet is ready.
func TestInterceptorClean(t *testing.T) {
	policy := &parallelrunv1.ReadinessPolicy{MinCompared: proto.Int64(30), MinStreakCalls: proto.Int64(30),
		MinStreakDuration: durationpb.New(0)}
	st, _ := run(t, &pricer{units: 10}, policy, basket(40))
	m := methodStatus(t, st, quote)
	r := m.GetReadiness()
	if r.GetVerdict() != parallelrunv1.Verdict_VERDICT_READY || len(r.GetReasons()) < 2 ||
		r.GetReasons()[0] != "40 calls compared, none mismatched in the last 1h" ||
		!strings.HasPrefix(r.GetReasons()[1], "streak of 40 calls over ") {
		t.Errorf("%v %q", r.GetVerdict(), r.GetReasons())
	}
	if st.GetReadiness().GetVerdict() != parallelrunv1.Verdict_VERDICT_READY ||
		!slices.Equal(st.GetReadiness().GetReasons(), []string{"1 of 1 methods ready"}) {
		t.Errorf("run: %v", st.GetReadiness())
	}
	// With the default policy, 40 calls are not enough.
	st, _ = run(t, &pricer{units: 10}, nil, basket(40))
	if r := methodStatus(t, st, quote).GetReadiness(); r.GetVerdict() != parallelrunv1.Verdict_VERDICT_NOT_ENOUGH_DATA ||
		r.GetReasons()[0] != "40 of 1,000 calls compared" {
		t.Errorf("default policy: %v %q", r.GetVerdict(), r.GetReasons())
	}
}
