package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/parallelrun/grpc-parallelrun/examples/pricing"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestQuickstart runs the demo on a tenth of its traffic and checks the
// summary and the JSON Lines file.
func TestQuickstart(t *testing.T) {
	out := filepath.Join(t.TempDir(), "reports.jsonl")
	traffic := pricing.DefaultTraffic
	traffic.Quotes, traffic.Listings, traffic.Baskets = 300, 20, 30
	var stdout bytes.Buffer
	if err := run(context.Background(), &stdout, io.Discard, out, traffic); err != nil {
		t.Fatal(err)
	}
	summary := stdout.String()
	for _, want := range []string{
		"/examples.pricing.v1.PricingService/Quote       NOT READY  300 ",
		"/examples.pricing.v1.PricingService/ListPrices  NOT READY  20 ",
		"/examples.pricing.v1.PricingService/Basket      NOT READY  30 ",
		"tier:changed",
		`tier changed: "GOLD" -> "gold"`,
		"grpc-message changed: sku SKU-999 not found -> unknown SKU SKU-999",
		"came in the warm-up, before its noise was known",
		"examples.pricing.v1.PricingService/Quote  computed_at",
		"examples.pricing.v1.PricingService/Quote  quote_id",
		"overall: NOT READY",
		"every report is in " + out,
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(b), "\n"); lines != 350 {
		t.Errorf("%d reports in the file, want 350", lines)
	}
	if strings.Contains(string(b), "@example.com") {
		t.Error("a customer e-mail, marked debug_redact, reached the reports")
	}
}
