package interceptor

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
)

// Calls to 100,000 different methods leave no trace in memory but for
// configured ones: unconfigured names are counted under _OTHER, and names
// only "*" matches are cached up to a bound.
func TestMethodEntriesAreBounded(t *testing.T) {
	conn, err := grpc.NewClient("passthrough:///unused", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ok := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	for _, tc := range []struct {
		name string
		opts []Option
		max  int64
	}{
		{"unconfigured", []Option{WithMethod("/parallelrun.difftest.v1.QuoteService/GetQuote", MethodConfig{SampleRate: 1})}, 0},
		{"everything, disabled", []Option{WithMethod("*", MethodConfig{Disabled: true})}, maxCachedMethods},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(conn, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(context.Background())
			for i := range 100_000 {
				method := fmt.Sprintf("/pkg.Service%d/Method", i)
				if err := p.unary(context.Background(), method, &pb.GetQuoteRequest{}, &pb.GetQuoteResponse{}, nil, ok); err != nil {
					t.Fatal(err)
				}
			}
			entries := int64(0)
			p.methods.Load().cache.Range(func(any, any) bool { entries++; return true })
			if entries > tc.max || p.methods.Load().cached.Load() != entries {
				t.Errorf("%d entries cached (counted %d), want at most %d", entries, p.methods.Load().cached.Load(), tc.max)
			}
		})
	}
}
