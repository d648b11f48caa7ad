// Command quickstart runs the parallel run demo: a legacy and a candidate
// pricing service on loopback, a client that mirrors every call from one to
// the other, a few thousand calls of every kind, and a summary of what the
// comparison found. Every report is also written as JSON Lines.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/parallelrun/grpc-parallelrun/examples/pricing"
	"github.com/parallelrun/grpc-parallelrun/interceptor"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

func main() {
	out := flag.String("out", filepath.Join(os.TempDir(), "parallelrun-quickstart.jsonl"), "where to write the reports (JSON Lines)")
	quotes := flag.Int("quotes", pricing.DefaultTraffic.Quotes, "unary Quote calls")
	listings := flag.Int("listings", pricing.DefaultTraffic.Listings, "server-streaming ListPrices calls")
	baskets := flag.Int("baskets", pricing.DefaultTraffic.Baskets, "bidirectional Basket calls")
	flag.Parse()
	traffic := pricing.DefaultTraffic
	traffic.Quotes, traffic.Listings, traffic.Baskets = *quotes, *listings, *baskets
	if err := run(context.Background(), os.Stdout, os.Stderr, *out, traffic); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, stdout, progress io.Writer, out string, traffic pricing.Traffic) error {
	// The summary is read from the parallel run's own metrics, and an
	// example of each difference kept from the reports.
	reader := sdkmetric.NewManualReader()
	meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer meters.Shutdown(ctx)
	jsonl, err := sink.CreateJSONL(out)
	if err != nil {
		return err
	}
	defer jsonl.Close()
	examples := &exampleSink{byField: map[string]*parallelrunv1.Difference{}, calls: map[string]int64{}}

	demo, err := pricing.Start(
		interceptor.WithMeterProvider(meters),
		interceptor.WithSink(jsonl),
		interceptor.WithSink(sink.Func(examples.Publish)),
	)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "legacy service on %s, candidate on %s\n", demo.LegacyAddr, demo.CandidateAddr)

	start := time.Now()
	traffic.Progress = func(done, total int) {
		if done%250 == 0 || done == total {
			fmt.Fprintf(progress, "\r%d/%d calls", done, total)
		}
	}
	runErr := pricing.Run(ctx, demo.Client, traffic)
	fmt.Fprintln(progress)
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := demo.Close(closeCtx); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		return err
	}
	summarize(stdout, rm, examples)
	fmt.Fprintf(stdout, "\n%s in %s; every report is in %s\n", "done", time.Since(start).Round(time.Millisecond), out)
	return nil
}

// exampleSink counts, per method and field, the calls with a difference
// there, and keeps the first such difference as an example.
type exampleSink struct {
	mu      sync.Mutex
	byField map[string]*parallelrunv1.Difference // "method field"
	calls   map[string]int64
}

func (s *exampleSink) Publish(_ context.Context, r *parallelrunv1.Report) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, d := range r.GetDifferences() {
		key := strings.TrimPrefix(r.GetMethod(), "/") + " " + d.GetField()
		if _, ok := s.byField[key]; !ok {
			s.byField[key] = d
		}
		if !seen[key] {
			seen[key] = true
			s.calls[key]++
		}
	}
	return nil
}

type methodCounts struct {
	outcomes map[string]int64
	fields   map[string]int64
}

func summarize(w io.Writer, rm metricdata.ResourceMetrics, ex *exampleSink) {
	methods := map[string]*methodCounts{}
	get := func(m string) *methodCounts {
		if methods[m] == nil {
			methods[m] = &methodCounts{outcomes: map[string]int64{}, fields: map[string]int64{}}
		}
		return methods[m]
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				method, _ := dp.Attributes.Value("rpc.method")
				switch m.Name {
				case "parallelrun.comparisons":
					outcome, _ := dp.Attributes.Value(interceptor.OutcomeKey)
					get(method.AsString()).outcomes[outcome.AsString()] += dp.Value
				case "parallelrun.differences":
					field, _ := dp.Attributes.Value(interceptor.FieldKey)
					get(method.AsString()).fields[field.AsString()] += dp.Value
				}
			}
		}
	}
	names := make([]string, 0, len(methods))
	for m := range methods {
		names = append(names, m)
	}
	slices.Sort(names)

	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "method\tcalls\tmatched\tmismatched\tcandidate errors\tdropped\tother\tmismatch rate\t")
	for _, m := range names {
		c := methods[m].outcomes
		var calls int64
		for _, n := range c {
			calls += n
		}
		compared := c["match"] + c["mismatch"]
		other := calls - compared - c["candidate_error"] - c["dropped"]
		rate := 0.0
		if compared > 0 {
			rate = 100 * float64(c["mismatch"]) / float64(compared)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f%%\t\n", m, calls, c["match"], c["mismatch"], c["candidate_error"], c["dropped"], other, rate)
	}
	tw.Flush()

	fmt.Fprintln(w, "\ntop differing fields (rate: share of compared calls with a difference there)")
	type row struct {
		method, field string
		calls         int64
		rate          float64
	}
	var rows []row
	for _, m := range names {
		compared := methods[m].outcomes["match"] + methods[m].outcomes["mismatch"]
		for f := range methods[m].fields {
			n := ex.calls[m+" "+f]
			rows = append(rows, row{m, f, n, 100 * float64(n) / float64(max(compared, 1))})
		}
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(b.calls, a.calls), cmp.Compare(a.method, b.method), cmp.Compare(a.field, b.field))
	})
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "method\tfield\tcalls\trate\texample")
	for i, r := range rows {
		if i == 10 {
			break
		}
		example := ""
		if d := ex.byField[r.method+" "+r.field]; d != nil {
			example = fmt.Sprintf("%s: %s -> %s", d.GetPath(), d.GetLegacy(), d.GetCandidate())
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f%%\t%s\n", r.method, r.field, r.calls, r.rate, example)
	}
	tw.Flush()
}
