package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// quotes is a real QuoteService, one version of the pricing: the legacy
// one, a buggy candidate, a fixed one.
type quotes struct {
	pb.UnimplementedQuoteServiceServer
	units    int64      // the price of every item
	currency string     // "EUR" when empty
	email    string     // the quote's customer_email, a debug_redact field
	notFound string     // a SKU answered with NOT_FOUND
	fail     codes.Code // every call fails with it, when set
	reverse  bool       // streams answer in reverse order
	extra    bool       // streams answer one reply more
	detail   *anypb.Any // the quote's detail

	mu  sync.Mutex
	mds []metadata.MD
}

func (q *quotes) quote(skus ...string) (*pb.Quote, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != codes.OK {
		return nil, status.Error(q.fail, "failed on purpose")
	}
	cur := q.currency
	if cur == "" {
		cur = "EUR"
	}
	out := &pb.Quote{QuoteId: "q", Total: &pb.Money{CurrencyCode: cur}, CustomerEmail: q.email, Detail: q.detail}
	for _, sku := range skus {
		if sku == q.notFound {
			return nil, status.Errorf(codes.NotFound, "sku %s not found", sku)
		}
		out.Items = append(out.Items, &pb.Line{Sku: sku, Quantity: 1, Price: &pb.Money{CurrencyCode: cur, Units: q.units}})
		out.Total.Units += q.units
	}
	return out, nil
}

func (q *quotes) seen(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.mds = append(q.mds, md)
}

func (q *quotes) lastMD() metadata.MD {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.mds) == 0 {
		return nil
	}
	return q.mds[len(q.mds)-1]
}

func (q *quotes) GetQuote(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
	q.seen(ctx)
	quote, err := q.quote(req.GetSkus()...)
	if err != nil {
		return nil, err
	}
	return &pb.GetQuoteResponse{Quote: quote}, nil
}

func (q *quotes) ListQuotes(req *pb.ListQuotesRequest, stream grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
	q.seen(stream.Context())
	skus := append([]string(nil), req.GetSkus()...)
	if q.extra {
		skus = append(skus, "EXTRA")
	}
	if q.reverse {
		for i, j := 0, len(skus)-1; i < j; i, j = i+1, j-1 {
			skus[i], skus[j] = skus[j], skus[i]
		}
	}
	for _, sku := range skus {
		quote, err := q.quote(sku)
		if err != nil {
			return err
		}
		if err := stream.Send(&pb.ListQuotesResponse{Quote: quote}); err != nil {
			return err
		}
	}
	return nil
}

func (q *quotes) CollectQuotes(stream grpc.ClientStreamingServer[pb.CollectQuotesRequest, pb.CollectQuotesResponse]) error {
	q.seen(stream.Context())
	var skus []string
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		skus = append(skus, req.GetSku())
	}
	quote, err := q.quote(skus...)
	if err != nil {
		return err
	}
	return stream.SendAndClose(&pb.CollectQuotesResponse{Quote: quote})
}

func (q *quotes) ExchangeQuotes(stream grpc.BidiStreamingServer[pb.ExchangeQuotesRequest, pb.ExchangeQuotesResponse]) error {
	q.seen(stream.Context())
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		quote, err := q.quote(req.GetSku())
		if err != nil {
			return err
		}
		if err := stream.Send(&pb.ExchangeQuotesResponse{Quote: quote}); err != nil {
			return err
		}
	}
}

// serve starts a real gRPC server on a loopback port, with server
// reflection if asked, and returns its address; it stops with the test.
func serve(t testing.TB, q *quotes, withReflection bool) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterQuoteServiceServer(srv, q)
	if withReflection {
		reflection.Register(srv)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

func dial(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// recordRun runs a parallel run of legacy against candidate, with the real
// interceptor writing its reports with sink.JSONL to a file, makes the
// calls, and returns the file.
func recordRun(t testing.TB, legacy, candidate *quotes, calls func(ctx context.Context, c pb.QuoteServiceClient), opts ...interceptor.Option) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "reports.jsonl")
	jsonl, err := sink.CreateJSONL(file)
	if err != nil {
		t.Fatal(err)
	}
	candConn := dial(t, serve(t, candidate, false))
	defer candConn.Close()
	// A real tracer, so that reports carry trace IDs.
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	pr, err := interceptor.New(candConn, append([]interceptor.Option{
		interceptor.WithTracerProvider(tp),
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1}),
		interceptor.WithSink(jsonl),
		interceptor.WithErrorHandler(func(err error) { t.Errorf("parallel run: %v", err) }),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	legacyConn := dial(t, serve(t, legacy, false), pr.DialOptions()...)
	defer legacyConn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	calls(ctx, pb.NewQuoteServiceClient(legacyConn))
	if err := pr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := jsonl.Close(); err != nil {
		t.Fatal(err)
	}
	return file
}

// protoSet writes the descriptor set of the difftest service, with its
// imports, as `buf build -o` would, and returns its path.
func protoSet(t testing.TB) string {
	t.Helper()
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		for i := 0; i < fd.Imports().Len(); i++ {
			add(fd.Imports().Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	add(pb.File_parallelrun_difftest_v1_service_proto)
	b, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "set.binpb")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
