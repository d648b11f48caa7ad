package readiness_test

import (
	"testing"
	"time"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

// BenchmarkAdd measures the cost of a report to a live run's Tracker, as
// the interceptor feeds it: reports of a few methods, a few fields and
// signatures, with both latencies, a millisecond apart.
func BenchmarkAdd(b *testing.B) {
	for _, bc := range []struct {
		name string
		make func(at time.Time) *parallelrunv1.Report
	}{
		{"match", func(at time.Time) *parallelrunv1.Report {
			return match(at, withMethod("parallelrun.difftest.v1.QuoteService/GetQuote"), withLatency(3*time.Millisecond, 4*time.Millisecond))
		}},
		{"mismatch", func(at time.Time) *parallelrunv1.Report {
			return mismatch(at, withMethod("parallelrun.difftest.v1.QuoteService/GetQuote"), withLatency(3*time.Millisecond, 4*time.Millisecond),
				withDiffs(diff("quote.items[0].price.units", "quote.items.price.units", "1", "2"), diff("quote.total.units", "quote.total.units", "1", "2")),
				withNoise(diff("quote.quote_id", "quote.quote_id", `"a"`, `"b"`)))
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tr, err := readiness.NewTracker()
			if err != nil {
				b.Fatal(err)
			}
			// Reports made beforehand, with times spread over two windows,
			// so that buckets are reused as in a long run.
			reports := make([]*parallelrunv1.Report, 4096)
			for i := range reports {
				reports[i] = bc.make(t0.Add(time.Duration(i) * 2 * time.Second))
			}
			for _, r := range reports {
				tr.Add(r)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := reports[i%len(reports)]
				// Forward in time, as a live run goes.
				r.Time.Seconds += int64(len(reports)) * 2
				tr.Add(r)
				i++
			}
		})
	}
}
