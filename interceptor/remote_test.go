package interceptor_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
)

// The servers of the caller-latency benchmarks run in a process of their
// own, as they would in production: what the benchmark measures is what
// the caller's process pays, not what an in-process candidate server takes
// from it on a small machine.
const remoteEnvVar = "PARALLELRUN_BENCH_SERVERS"

// serveRemote is the server process: a legacy and a candidate
// QuoteService on loopback, the candidate healthy or stalled as named by
// the environment. It writes its two ports and serves until its standard
// input closes, that is until the benchmark process ends.
func serveRemote(kind string) {
	legacy, cand := lister(flat(10), all, nil), lister(flat(10), all, nil)
	legacy.get, cand.get = price(10), price(10)
	if kind == "stalled" {
		cand.get = func(ctx context.Context, _ *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		cand.list = func(_ *pb.ListQuotesRequest, s grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
			<-s.Context().Done()
			return s.Context().Err()
		}
	}
	var ports []int
	for _, s := range []*quoteServer{legacy, cand} {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		srv := grpc.NewServer()
		pb.RegisterQuoteServiceServer(srv, s)
		go func() { _ = srv.Serve(lis) }()
		ports = append(ports, lis.Addr().(*net.TCPAddr).Port)
	}
	fmt.Println(ports[0], ports[1])
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// remoteClients starts the server process and returns a plain client and
// a client with the parallel run (its candidate healthy or stalled, as
// kind says), both to the legacy server over loopback TCP.
func remoteClients(b *testing.B, kind string, opts ...interceptor.Option) (plain, mirrored pb.QuoteServiceClient) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), remoteEnvVar+"="+kind)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	var legacyPort, candPort int
	if _, err := fmt.Fscan(bufio.NewReader(stdout), &legacyPort, &candPort); err != nil {
		b.Fatal(err)
	}
	conn := func(port int, opts ...grpc.DialOption) *grpc.ClientConn {
		c, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port), append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		return c
	}
	// Providers that keep nothing: a recorder that kept every span would
	// make the heap, and the collector's work, grow with the run.
	tp := sdktrace.NewTracerProvider()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	pr, err := interceptor.New(conn(candPort), append([]interceptor.Option{
		interceptor.WithTracerProvider(tp), interceptor.WithMeterProvider(mp)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = pr.Close(ctx)
	})
	plain = pb.NewQuoteServiceClient(conn(legacyPort))
	mirrored = pb.NewQuoteServiceClient(conn(legacyPort, pr.DialOptions()...))
	// Connections up before the clock starts.
	for _, c := range []pb.QuoteServiceClient{plain, mirrored} {
		if _, err := c.GetQuote(context.Background(), benchReq, interceptor.Skip()); err != nil {
			b.Fatal(err)
		}
	}
	return plain, mirrored
}
