package interceptor_test

import (
	"cmp"
	"context"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

func TestMain(m *testing.M) {
	if kind := os.Getenv(remoteEnvVar); kind != "" {
		serveRemote(kind)
	}
	goleak.VerifyTestMain(m)
}

// quoteServer is a real QuoteService whose behaviour a test sets.
type quoteServer struct {
	pb.UnimplementedQuoteServiceServer
	get      func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error)
	list     func(*pb.ListQuotesRequest, grpc.ServerStreamingServer[pb.ListQuotesResponse]) error
	collect  func(grpc.ClientStreamingServer[pb.CollectQuotesRequest, pb.CollectQuotesResponse]) error
	exchange func(grpc.BidiStreamingServer[pb.ExchangeQuotesRequest, pb.ExchangeQuotesResponse]) error

	mu    sync.Mutex
	calls int
	mds   []metadata.MD
}

func (s *quoteServer) GetQuote(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	s.calls++
	s.mds = append(s.mds, md)
	s.mu.Unlock()
	return s.get(ctx, req)
}

func (s *quoteServer) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.mds = append(s.mds, md)
}

func (s *quoteServer) ListQuotes(req *pb.ListQuotesRequest, stream grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
	s.record(stream.Context())
	return s.list(req, stream)
}

func (s *quoteServer) CollectQuotes(stream grpc.ClientStreamingServer[pb.CollectQuotesRequest, pb.CollectQuotesResponse]) error {
	s.record(stream.Context())
	return s.collect(stream)
}

func (s *quoteServer) ExchangeQuotes(stream grpc.BidiStreamingServer[pb.ExchangeQuotesRequest, pb.ExchangeQuotesResponse]) error {
	s.record(stream.Context())
	return s.exchange(stream)
}

func (s *quoteServer) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *quoteServer) LastMD() metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mds) == 0 {
		return nil
	}
	return s.mds[len(s.mds)-1]
}

// serve starts a real gRPC server on an in-memory listener and returns a
// dialer for it; both stop when the test ends.
func serve(t testing.TB, s pb.QuoteServiceServer) func(context.Context, string) (net.Conn, error) {
	t.Helper()
	lis := bufconn.Listen(256 << 10)
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
	return func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }
}

func dial(t testing.TB, dialer func(context.Context, string) (net.Conn, error), opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append([]grpc.DialOption{
		grpc.WithContextDialer(dialer),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, opts...)
	conn, err := grpc.NewClient("passthrough:///bufnet", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// env is a legacy and a candidate server, a client of the legacy one with
// the parallel run installed, and in-memory OTel and sink recorders.
type env struct {
	legacy, candidate *quoteServer
	pr                *interceptor.ParallelRun
	client            pb.QuoteServiceClient
	plain             pb.QuoteServiceClient // the legacy server without the parallel run
	candConn          *grpc.ClientConn
	spans             *tracetest.SpanRecorder
	metrics           *sdkmetric.ManualReader
	sink              *sink.Memory
	errs              *errorLog
}

type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) handle(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *errorLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

type envConfig struct {
	legacy, candidate func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error)
	// Streaming behaviours; nil leaves the method unimplemented.
	legacyServer, candidateServer *quoteServer
	opts                          []interceptor.Option
	dialOpts                      []grpc.DialOption // for the legacy client, after the parallel run
	candDialOpts                  []grpc.DialOption
	candidateDialer               func(context.Context, string) (net.Conn, error)
}

func newEnv(t testing.TB, cfg envConfig) *env {
	t.Helper()
	e := &env{
		legacy:    cmp.Or(cfg.legacyServer, &quoteServer{get: cfg.legacy}),
		candidate: cmp.Or(cfg.candidateServer, &quoteServer{get: cfg.candidate}),
		spans:     tracetest.NewSpanRecorder(),
		metrics:   sdkmetric.NewManualReader(),
		sink:      sink.NewMemory(),
		errs:      &errorLog{},
	}
	legacyDialer := serve(t, e.legacy)
	candDialer := cfg.candidateDialer
	if candDialer == nil {
		candDialer = serve(t, e.candidate)
	}
	e.candConn = dial(t, candDialer, cfg.candDialOpts...)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.metrics))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	opts := append([]interceptor.Option{
		interceptor.WithTracerProvider(tp),
		interceptor.WithMeterProvider(mp),
		interceptor.WithSink(e.sink),
		interceptor.WithErrorHandler(e.errs.handle),
	}, cfg.opts...)
	pr, err := interceptor.New(e.candConn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	e.pr = pr
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := pr.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	e.client = pb.NewQuoteServiceClient(dial(t, legacyDialer, append(pr.DialOptions(), cfg.dialOpts...)...))
	e.plain = pb.NewQuoteServiceClient(dial(t, legacyDialer))
	return e
}

// waitReports waits for n reports in the sink.
func (e *env) waitReports(t *testing.T, n int) []*sinkReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, err := e.sink.Wait(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// counter sums a counter's points whose attributes include all of want.
func (e *env) counter(t *testing.T, name string, want map[string]string) int64 {
	t.Helper()
	var total int64
	for _, m := range e.collect(t, name) {
		sum, ok := m.Data.(metricdata.Sum[int64])
		if !ok {
			t.Fatalf("%s is %T, not an int64 sum", name, m.Data)
		}
		for _, dp := range sum.DataPoints {
			if hasAll(dp.Attributes, want) {
				total += dp.Value
			}
		}
	}
	return total
}

// gauge reads the last value of an int64 gauge.
func (e *env) gauge(t *testing.T, name string) int64 {
	t.Helper()
	ms := e.collect(t, name)
	if len(ms) != 1 {
		t.Fatalf("%d metrics %s", len(ms), name)
	}
	g, ok := ms[0].Data.(metricdata.Gauge[int64])
	if !ok || len(g.DataPoints) != 1 {
		t.Fatalf("%s is %T with %v", name, ms[0].Data, ms[0].Data)
	}
	return g.DataPoints[0].Value
}

// waitIdle waits until nothing is in flight and no byte of the memory
// budget is held, as the gauges say.
func (e *env) waitIdle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		inFlight, used := e.gauge(t, "parallelrun.in_flight"), e.gauge(t, "parallelrun.memory.used")
		if inFlight == 0 && used == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d calls in flight and %d bytes held", inFlight, used)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// histogramCount counts the recordings of a histogram whose attributes
// include all of want.
func (e *env) histogramCount(t *testing.T, name string, want map[string]string) uint64 {
	t.Helper()
	var total uint64
	for _, m := range e.collect(t, name) {
		for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
			if hasAll(dp.Attributes, want) {
				total += dp.Count
			}
		}
	}
	return total
}

// collect reads the metrics named name.
func (e *env) collect(t *testing.T, name string) []metricdata.Metrics {
	t.Helper()
	return collectFrom(t, e.metrics, name)
}

// collectFrom reads the metrics named name from a reader.
func collectFrom(t *testing.T, reader *sdkmetric.ManualReader, name string) []metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var out []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				out = append(out, m)
			}
		}
	}
	return out
}

func hasAll(set attribute.Set, want map[string]string) bool {
	for k, v := range want {
		if got, ok := set.Value(attribute.Key(k)); !ok || got.String() != v {
			return false
		}
	}
	return true
}

type sinkReport = parallelrunv1.Report

func waitMemory(t *testing.T, m *sink.Memory, n int) []*parallelrunv1.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, err := m.Wait(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}
