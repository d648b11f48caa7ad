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
	"maps"
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
	examples := &exampleSink{sig: map[string]*parallelrunv1.Report{}}

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
	summarize(stdout, rm, demo.ParallelRun.Signals(), examples)
	fmt.Fprintf(stdout, "\n%s in %s; every report is in %s\n", "done", time.Since(start).Round(time.Millisecond), out)
	return nil
}

// exampleSink keeps, per signature, the differences of the first
// mismatch that had it.
type exampleSink struct {
	mu  sync.Mutex
	sig map[string]*parallelrunv1.Report
}

func (s *exampleSink) Publish(_ context.Context, r *parallelrunv1.Report) error {
	if r.GetSignature() == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sig[r.GetSignature()]; !ok {
		s.sig[r.GetSignature()] = r
	}
	return nil
}

func summarize(w io.Writer, rm metricdata.ResourceMetrics, signals []interceptor.MethodSignals, ex *exampleSink) {
	outcomes := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || m.Name != "parallelrun.comparisons" {
				continue
			}
			for _, dp := range sum.DataPoints {
				method, _ := dp.Attributes.Value("rpc.method")
				outcome, _ := dp.Attributes.Value(interceptor.OutcomeKey)
				if outcomes[method.AsString()] == nil {
					outcomes[method.AsString()] = map[string]int64{}
				}
				outcomes[method.AsString()][outcome.AsString()] += dp.Value
			}
		}
	}
	names := make([]string, 0, len(outcomes))
	for m := range outcomes {
		names = append(names, m)
	}
	slices.Sort(names)

	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "method\tcalls\tmatched\tmismatched\tcandidate errors\tdropped\tother\tmismatch rate\t")
	for _, m := range names {
		c := outcomes[m]
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

	// The mismatches, grouped into the few problems they are.
	fmt.Fprintln(w, "\ndistinct problems (mismatches with the same fields, kinds and status codes)")
	type problem struct {
		method string
		sig    interceptor.Signature
	}
	// Mismatches that involve a field now known to be noise came before
	// enough probes had shown it: the warm-up.
	var problems []problem
	warmUp := map[string]int64{}
	for _, ms := range signals {
		var noise []string
		for _, f := range ms.Fields {
			if f.Noise {
				noise = append(noise, f.Field)
			}
		}
		for _, sig := range ms.Signatures {
			if involves(sig, noise) {
				warmUp[ms.Method] += sig.Count
				continue
			}
			problems = append(problems, problem{ms.Method, sig})
		}
	}
	slices.SortFunc(problems, func(a, b problem) int {
		return cmp.Or(cmp.Compare(b.sig.Count, a.sig.Count), cmp.Compare(a.method, b.method), cmp.Compare(a.sig.ID, b.sig.ID))
	})
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "method\tcalls\tdiffering fields\texample")
	for i, p := range problems {
		if i == 10 {
			fmt.Fprintf(tw, "... and %d more\n", len(problems)-i)
			break
		}
		example := ""
		if r := ex.sig[p.sig.ID]; r != nil && len(r.GetDifferences()) > 0 {
			d := r.GetDifferences()[0]
			example = fmt.Sprintf("%s: %s -> %s", d.GetPath(), d.GetLegacy(), d.GetCandidate())
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", p.method, p.sig.Count, strings.Join(p.sig.FieldKinds, " "), example)
	}
	tw.Flush()
	for _, m := range slices.Sorted(maps.Keys(warmUp)) {
		fmt.Fprintf(w, "and %d mismatches of %s in the warm-up, before its noise was known\n", warmUp[m], m)
	}

	// What the legacy service disagrees with itself on: noise, kept apart.
	fmt.Fprintln(w, "\nnoise found by asking the legacy service twice (its differences no longer count)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "method\tfield\tcandidate differs\tlegacy differs from itself")
	for _, ms := range signals {
		for _, f := range ms.Fields {
			if f.Noise {
				fmt.Fprintf(tw, "%s\t%s\t%.0f%% of %d calls\t%.0f%% of %d probes\n", ms.Method, f.Field,
					100*float64(f.CandidateDiffs)/float64(ms.Compared), ms.Compared, 100*float64(f.NoiseDiffs)/float64(ms.Probes), ms.Probes)
			}
		}
	}
	tw.Flush()
}

// involves says whether a signature has a difference in one of fields (a
// field stands for the fields below it too: computed_at for its nanos).
func involves(sig interceptor.Signature, fields []string) bool {
	for _, fk := range sig.FieldKinds {
		field, _, _ := strings.Cut(fk, ":")
		for _, f := range fields {
			if field == f || strings.HasPrefix(field, f+".") {
				return true
			}
		}
	}
	return false
}
