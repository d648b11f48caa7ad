package interceptor_test

import (
	"context"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
)

// unaryCases are the cases of the unary benchmarks, whose servers run in a
// process of their own (remoteClients): plain is a client without the
// parallel run; unconfigured has it installed for a method that is not
// mirrored; mirrored mirrors every call to a healthy candidate; stalled
// mirrors to a candidate that never answers in time.
var unaryCases = []struct {
	name, candidate string
	plain           bool
	opts            []interceptor.Option
}{
	{name: "plain", candidate: "healthy", plain: true},
	{name: "unconfigured", candidate: "healthy"},
	{name: "mirrored", candidate: "healthy", opts: []interceptor.Option{mirrorAll}},
	{name: "mirrored_noise_probe_every_call", candidate: "healthy", opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Noise: interceptor.NoiseConfig{ProbeRate: 1}})}},
	{name: "mirrored_stalled_candidate", candidate: "stalled", opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: 50 * time.Millisecond})}},
}

var benchReq = &pb.GetQuoteRequest{CustomerId: "c1", Skus: []string{"A1", "B2", "C3", "D4", "E5"}}

// BenchmarkUnaryCallerLatency measures what the caller waits for at a
// steady 2,000 calls per second, which leaves CPU to spare on two cores:
// the p50 and p99 of the caller's latency, against a client without the
// parallel run in the same run. (At full speed, the candidate's server and
// the comparison would take CPU from the legacy call on such a small
// machine; that is the next benchmark.)
func BenchmarkUnaryCallerLatency(b *testing.B) {
	for _, bc := range unaryCases {
		b.Run(bc.name, func(b *testing.B) {
			plain, mirrored := remoteClients(b, bc.candidate, bc.opts...)
			client := mirrored
			if bc.plain {
				client = plain
			}
			pacedLatency(b, 500*time.Microsecond, func() error {
				_, err := client.GetQuote(context.Background(), benchReq)
				return err
			})
		})
	}
}

// pacedLatency makes one call per interval and reports the p50 and p99 of
// their latencies.
func pacedLatency(b *testing.B, interval time.Duration, call func() error) {
	var lat []time.Duration
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for b.Loop() {
		<-tick.C
		start := time.Now()
		if err := call(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkUnaryThroughput calls as fast as one caller can: here the
// candidate's server and the comparison share the two cores with the
// legacy call, so this shows the total cost of mirroring, not the wait.
func BenchmarkUnaryThroughput(b *testing.B) {
	for _, bc := range unaryCases {
		b.Run(bc.name, func(b *testing.B) {
			plain, mirrored := remoteClients(b, bc.candidate, bc.opts...)
			client := mirrored
			if bc.plain {
				client = plain
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

// BenchmarkServerStream reads streams of 1,000 replies through a plain
// client and through a mirrored one, with a healthy and with a stalled
// candidate, and reports the legacy replies per second the caller gets.
func BenchmarkServerStream(b *testing.B) {
	const n = 1000
	for _, bc := range []struct {
		name, candidate string
		plain           bool
	}{
		{"plain", "healthy", true},
		{"mirrored", "healthy", false},
		{"mirrored_stalled_candidate", "stalled", false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			plain, mirrored := remoteClients(b, bc.candidate,
				interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: 100 * time.Millisecond}))
			client := mirrored
			if bc.plain {
				client = plain
			}
			ctx := context.Background()
			start := time.Now()
			for b.Loop() {
				stream, err := client.ListQuotes(ctx, &pb.ListQuotesRequest{Count: n})
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := stream.Recv(); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkUnaryLargeReply measures the caller's latency with replies of
// 2,000 lines (about 90 KB) at a steady 200 calls per second, plain and
// mirrored: the copy of the reply, on the caller's path, is what grows
// with its size.
func BenchmarkUnaryLargeReply(b *testing.B) {
	req := &pb.GetQuoteRequest{CustomerId: "c1"}
	for i := range 2000 {
		req.Skus = append(req.Skus, fmt.Sprint("SKU-", i))
	}
	for _, bc := range []struct {
		name  string
		plain bool
	}{
		{name: "plain", plain: true},
		{name: "mirrored"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			plain, mirrored := remoteClients(b, "healthy", mirrorAll)
			client := mirrored
			if bc.plain {
				client = plain
			}
			pacedLatency(b, 5*time.Millisecond, func() error {
				_, err := client.GetQuote(context.Background(), req)
				return err
			})
		})
	}
}
