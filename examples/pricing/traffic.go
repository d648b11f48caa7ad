package pricing

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	pricingv1 "github.com/parallelrun/grpc-parallelrun/proto/examples/pricing/v1"
)

// Traffic says how many calls of each kind Run makes.
type Traffic struct {
	Quotes, Listings, Baskets int
	// Workers is how many calls run at once.
	Workers int
	// Seed makes the traffic repeatable.
	Seed uint64
	// Tracer, if set, starts a span around each call, as the caller's own
	// instrumentation would: the comparison spans become its children.
	Tracer trace.Tracer
	// Progress, if set, is called after each call with the calls done.
	Progress func(done, total int)
}

// DefaultTraffic is the quickstart's traffic: a few thousand calls.
var DefaultTraffic = Traffic{Quotes: 3000, Listings: 200, Baskets: 300, Workers: 8, Seed: 1}

// Run sends the traffic through client and returns the first error a call
// got that it did not expect (unknown SKUs are expected to fail).
func Run(ctx context.Context, client pricingv1.PricingServiceClient, t Traffic) error {
	type job func(ctx context.Context) error
	r := rand.New(rand.NewPCG(t.Seed, 7))
	var jobs []job
	for range t.Quotes {
		req := &pricingv1.QuoteRequest{}
		customer := r.IntN(500)
		req.CustomerId = fmt.Sprintf("C-%04d", customer)
		req.CustomerEmail = fmt.Sprintf("customer%d@example.com", customer)
		for range 1 + r.IntN(6) {
			req.Skus = append(req.Skus, SKU(r.IntN(catalogSize)))
		}
		unknown := r.IntN(50) == 0
		if unknown {
			req.Skus = append(req.Skus, "SKU-999")
		}
		jobs = append(jobs, func(ctx context.Context) error {
			_, err := client.Quote(ctx, req)
			if unknown && err != nil {
				return nil
			}
			return err
		})
	}
	for range t.Listings {
		category := categories[r.IntN(len(categories))]
		jobs = append(jobs, func(ctx context.Context) error {
			stream, err := client.ListPrices(ctx, &pricingv1.ListPricesRequest{Category: category})
			if err != nil {
				return err
			}
			for {
				if _, err := stream.Recv(); err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
			}
		})
	}
	for range t.Baskets {
		var skus []string
		for range 2 + r.IntN(5) {
			skus = append(skus, SKU(r.IntN(catalogSize)))
		}
		jobs = append(jobs, func(ctx context.Context) error { return basket(ctx, client, skus) })
	}
	r.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })

	tracer := t.Tracer
	if tracer == nil {
		tracer = noop.NewTracerProvider().Tracer("")
	}
	var next, done atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range max(t.Workers, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) || ctx.Err() != nil {
					return
				}
				cctx, span := tracer.Start(ctx, "checkout")
				err := jobs[i](cctx)
				span.End()
				if err != nil {
					once.Do(func() { firstErr = err })
				}
				if t.Progress != nil {
					t.Progress(int(done.Add(1)), len(jobs))
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("pricing: traffic: %w", firstErr)
	}
	return ctx.Err()
}

// basket adds SKUs one by one, reading the basket after each.
func basket(ctx context.Context, client pricingv1.PricingServiceClient, skus []string) error {
	stream, err := client.Basket(ctx)
	if err != nil {
		return err
	}
	for _, sku := range skus {
		if err := stream.Send(&pricingv1.BasketRequest{Sku: sku}); err != nil {
			return err
		}
		if _, err := stream.Recv(); err != nil {
			return err
		}
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	if _, err := stream.Recv(); err != io.EOF {
		return fmt.Errorf("basket: want the end of the stream, got %v", err)
	}
	return nil
}
