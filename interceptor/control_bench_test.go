package interceptor_test

import (
	"context"
	"fmt"
	"strings"
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

// BenchmarkParseConfig parses configurations of growing sizes: valid ones
// with many rules or many paths, checked against the registry, and
// hostile nesting, refused. Time per byte stays flat as they grow.
func BenchmarkParseConfig(b *testing.B) {
	rules := func(n int) string {
		var sb strings.Builder
		sb.WriteString(`{"methods": [`)
		for i := range n {
			if i > 0 {
				sb.WriteString(",\n")
			}
			fmt.Fprintf(&sb, `{"pattern": "/svc%d.Service/*", "sampleRate": 0.5, "timeout": "2s", "ignoredHeaders": ["x-date"]}`, i)
		}
		sb.WriteString("]}")
		return sb.String()
	}
	paths := func(n int) string {
		var sb strings.Builder
		sb.WriteString(`{"methods": [{"pattern": "/parallelrun.difftest.v1.QuoteService/GetQuote", "sampleRate": 1, "diff": {"ignoredPaths": [`)
		for i := range n {
			if i > 0 {
				sb.WriteString(",\n")
			}
			sb.WriteString(`"quote.items.price.units"`)
		}
		sb.WriteString("]}}]}")
		return sb.String()
	}
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, bc := range []struct {
		name  string
		json  string
		valid bool
	}{
		{"rules_100", rules(100), true},
		{"rules_10000", rules(10_000), true},
		{"paths_1000", paths(1000), true},
		{"paths_100000", paths(100_000), true},
		{"nesting_10000", deep(10_000), false},
		{"nesting_1000000", deep(1_000_000), false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			data := []byte(bc.json)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := interceptor.ParseConfig("bench.json", data); (err == nil) != bc.valid {
					b.Fatal(err)
				}
			}
		})
	}
}
