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
// this service: every method mirrored, quote lines paired by SKU, and
// error messages compared, since clients show them. The per-call noise of
// quotes (an ID, a timestamp) is not ignored by hand: a quarter of the
// quotes are asked of the legacy service twice, and the fields where it
// disagrees with itself are found to be noise after a few dozen calls.
func MethodOptions() []interceptor.Option {
	return []interceptor.Option{
		interceptor.WithMethod(QuoteMethod, interceptor.MethodConfig{
			SampleRate: 1,
			Timeout:    2 * time.Second,
			Diff: []protodiff.Option{
				protodiff.WithListKey("lines", "sku"),
			},
			CompareStatusMessage: true,
			Noise:                interceptor.NoiseConfig{ProbeRate: 0.25},
		}),
		interceptor.WithMethod(ListPricesMethod, interceptor.MethodConfig{SampleRate: 1, Timeout: 5 * time.Second}),
		interceptor.WithMethod(BasketMethod, interceptor.MethodConfig{SampleRate: 1, Timeout: 5 * time.Second, CompareStatusMessage: true}),
	}
}
