package interceptor_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
)

type benchCase struct {
	name      string
	candidate func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error)
	opts      []interceptor.Option
	plain     bool
}

func benchCases() []benchCase {
	stalled := func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return []benchCase{
		{name: "plain", candidate: price(10), plain: true},
		{name: "unconfigured", candidate: price(10)},
		{name: "mirrored", candidate: price(10), opts: []interceptor.Option{mirrorAll}},
		{name: "mirrored_stalled_candidate", candidate: stalled, opts: []interceptor.Option{
			interceptor.WithMethod("*", interceptor.MethodConfig{Timeout: 50 * time.Millisecond})}},
	}
}

var benchReq = &pb.GetQuoteRequest{CustomerId: "c1", Skus: []string{"A1", "B2", "C3", "D4", "E5"}}

// BenchmarkUnaryCallerLatency measures what the caller waits for at a
// steady 2,000 calls per second, which leaves CPU to spare on two cores:
// the p50 and p99 of the caller's latency, against a client without the
// parallel run in the same run. (At full speed, the candidate's server and
// the comparison would take CPU from the legacy call on such a small
// machine; that is the next benchmark.)
func BenchmarkUnaryCallerLatency(b *testing.B) {
	for _, bc := range benchCases() {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b, envConfig{legacy: price(10), candidate: bc.candidate, opts: bc.opts})
			client := e.client
			if bc.plain {
				client = e.plain
			}
			ctx := context.Background()
			var lat []time.Duration
			tick := time.NewTicker(500 * time.Microsecond)
			defer tick.Stop()
			for b.Loop() {
				<-tick.C
				start := time.Now()
				if _, err := client.GetQuote(ctx, benchReq); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkUnaryThroughput calls as fast as one caller can: here the
// candidate's server and the comparison share the two cores with the
// legacy call, so this shows the total cost of mirroring, not the wait.
func BenchmarkUnaryThroughput(b *testing.B) {
	for _, bc := range benchCases() {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b, envConfig{legacy: price(10), candidate: bc.candidate, opts: bc.opts})
			client := e.client
			if bc.plain {
				client = e.plain
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.GetQuote(ctx, benchReq); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
