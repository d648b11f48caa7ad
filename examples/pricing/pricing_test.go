package pricing_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parallelrun/grpc-parallelrun/examples/pricing"
	"github.com/parallelrun/grpc-parallelrun/interceptor"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDemoFindsTheSeededDiscrepancies runs a small share of the demo's
// traffic and checks that the parallel run finds each seeded discrepancy,
// and that, once noise probes have found it, the per-call noise is kept
// apart from them.
func TestDemoFindsTheSeededDiscrepancies(t *testing.T) {
	mem := sink.NewMemory()
	demo, err := pricing.Start(interceptor.WithSink(mem))
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	traffic := pricing.Traffic{Quotes: 300, Listings: 20, Baskets: 30, Workers: 4, Seed: 1}
	if err := pricing.Run(ctx, demo.Client, traffic); err != nil {
		t.Fatal(err)
	}
	if err := demo.Close(ctx); err != nil {
		t.Fatal(err)
	}

	found := map[string]map[string]bool{}
	outcomes := map[parallelrunv1.Outcome]int{}
	for _, r := range mem.Reports() {
		outcomes[r.GetOutcome()]++
		// Reports name methods as OpenTelemetry does, without the slash.
		method := "/" + r.GetMethod()
		if found[method] == nil {
			found[method] = map[string]bool{}
		}
		for _, d := range r.GetDifferences() {
			found[method][d.GetField()] = true
		}
	}
	if n := len(mem.Reports()); n != 350 || outcomes[parallelrunv1.Outcome_OUTCOME_MATCH] == 0 {
		t.Fatalf("%d reports, outcomes %v", n, outcomes)
	}
	for method, fields := range map[string][]string{
		pricing.QuoteMethod:      {"tier", "lines.discount.nanos", "grpc-message"},
		pricing.ListPricesMethod: {"sku", "price.nanos"},
		pricing.BasketMethod:     {"subtotal.nanos"},
	} {
		for _, f := range fields {
			if !found[method][f] {
				t.Errorf("%s: no difference at %s; found %v", method, f, found[method])
			}
		}
	}
	// The last hundred quotes, long after the warm-up, have the noise
	// apart, and only there.
	var quotes []*parallelrunv1.Report
	for _, r := range mem.Reports() {
		if "/"+r.GetMethod() == pricing.QuoteMethod {
			quotes = append(quotes, r)
		}
	}
	noise := map[string]bool{}
	for _, r := range quotes[len(quotes)-100:] {
		for _, d := range r.GetDifferences() {
			if d.GetField() == "quote_id" || d.GetField() == "computed_at.seconds" || d.GetField() == "computed_at.nanos" {
				t.Errorf("noise reported as a difference: %v", d)
			}
		}
		for _, d := range r.GetNoise() {
			noise[d.GetField()] = true
		}
	}
	if !noise["quote_id"] || !noise["computed_at.nanos"] {
		t.Errorf("noise found: %v", noise)
	}
}
