package pricing

import (
	"time"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// Full method names of the service.
const (
	QuoteMethod      = "/examples.pricing.v1.PricingService/Quote"
	ListPricesMethod = "/examples.pricing.v1.PricingService/ListPrices"
	BasketMethod     = "/examples.pricing.v1.PricingService/Basket"
)

// MethodOptions is the parallel run configuration a team would write for
// this service: every method mirrored, the per-call noise of quotes
// ignored, quote lines paired by SKU, and error messages compared, since
// clients show them.
func MethodOptions() []interceptor.Option {
	return []interceptor.Option{
		interceptor.WithMethod(QuoteMethod, interceptor.MethodConfig{
			SampleRate: 1,
			Timeout:    2 * time.Second,
			Diff: []protodiff.Option{
				protodiff.WithIgnoredPaths("quote_id", "computed_at"),
				protodiff.WithListKey("lines", "sku"),
			},
			CompareStatusMessage: true,
		}),
		interceptor.WithMethod(ListPricesMethod, interceptor.MethodConfig{SampleRate: 1, Timeout: 5 * time.Second}),
		interceptor.WithMethod(BasketMethod, interceptor.MethodConfig{SampleRate: 1, Timeout: 5 * time.Second, CompareStatusMessage: true}),
	}
}
