package pricing_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/parallelrun/grpc-parallelrun/examples/pricing"
	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pricingv1 "github.com/parallelrun/grpc-parallelrun/proto/examples/pricing/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDemoFindsTheSeededDiscrepancies runs a small share of the demo's
// traffic and checks that the parallel run finds each seeded discrepancy,
// and nothing of the noise the configuration ignores.
func TestDemoFindsTheSeededDiscrepancies(t *testing.T) {
	legacyAddr, stopLegacy, err := pricing.Serve(pricing.Legacy())
	if err != nil {
		t.Fatal(err)
	}
	defer stopLegacy()
	candAddr, stopCand, err := pricing.Serve(pricing.Candidate())
	if err != nil {
		t.Fatal(err)
	}
	defer stopCand()
	creds := grpc.WithTransportCredentials(insecure.NewCredentials())
	cand, err := grpc.NewClient(candAddr, creds)
	if err != nil {
		t.Fatal(err)
	}
	defer cand.Close()
	mem := sink.NewMemory()
	pr, err := interceptor.New(cand, append(pricing.MethodOptions(), interceptor.WithSink(mem))...)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := grpc.NewClient(legacyAddr, append([]grpc.DialOption{creds}, pr.DialOptions()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer legacy.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	traffic := pricing.Traffic{Quotes: 300, Listings: 20, Baskets: 30, Workers: 4, Seed: 1}
	if err := pricing.Run(ctx, pricingv1.NewPricingServiceClient(legacy), traffic); err != nil {
		t.Fatal(err)
	}
	if err := pr.Close(ctx); err != nil {
		t.Fatal(err)
	}

	found := map[string]map[string]bool{}
	outcomes := map[parallelrunv1.Outcome]int{}
	for _, r := range mem.Reports() {
		outcomes[r.GetOutcome()]++
		if found[r.GetMethod()] == nil {
			found[r.GetMethod()] = map[string]bool{}
		}
		for _, d := range r.GetDifferences() {
			found[r.GetMethod()][d.GetField()] = true
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
	for _, noise := range []string{"quote_id", "computed_at"} {
		if found[pricing.QuoteMethod][noise] {
			t.Errorf("the ignored noise %s was reported", noise)
		}
	}
}
