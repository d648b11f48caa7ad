package interceptor_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
)

// BenchmarkKillSwitch measures the interceptor's own path, with an
// invoker that does nothing: while the kill switch is set, for a method
// that is not configured, and without the interceptor at all.
func BenchmarkKillSwitch(b *testing.B) {
	conn, err := grpc.NewClient("passthrough:///unused", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	req, reply := &pb.GetQuoteRequest{}, &pb.GetQuoteResponse{}
	for _, bc := range []struct {
		name string
		opts []interceptor.Option
		off  bool
	}{
		{name: "no_interceptor"},
		{name: "unconfigured"},
		{name: "disabled", opts: []interceptor.Option{mirrorAll}, off: true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			pr, err := interceptor.New(conn, bc.opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer pr.Close(context.Background())
			pr.SetDisabled(bc.off)
			call := pr.UnaryClientInterceptor()
			if bc.name == "no_interceptor" {
				call = func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
					return invoker(ctx, method, req, reply, cc, opts...)
				}
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := call(ctx, getQuote, req, reply, nil, invoker); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
