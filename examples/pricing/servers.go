package pricing

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pricingv1 "github.com/parallelrun/grpc-parallelrun/proto/examples/pricing/v1"
)

// service is the pricing logic; its fields are where the candidate
// differs from the legacy service.
type service struct {
	pricingv1.UnimplementedPricingServiceServer
	round        func(nanos int64) int64
	tier         func(customer int) string
	notFound     func(sku string) error
	gardenByCost bool
}

// Legacy returns the legacy implementation: today's source of truth.
func Legacy() pricingv1.PricingServiceServer {
	return &service{
		round: roundHalfUp,
		tier:  legacyTier,
		notFound: func(sku string) error {
			return status.Errorf(codes.NotFound, "sku %s not found", sku)
		},
	}
}

// Candidate returns the candidate implementation, the rewrite, with its
// discrepancies.
func Candidate() pricingv1.PricingServiceServer {
	return &service{
		round: truncate,
		tier: func(customer int) string {
			if t := legacyTier(customer); t != "GOLD" {
				return t
			}
			return "gold"
		},
		notFound: func(sku string) error {
			return status.Errorf(codes.NotFound, "unknown SKU %s", sku)
		},
		gardenByCost: true,
	}
}

func legacyTier(customer int) string {
	return []string{"GOLD", "SILVER", "BRONZE"}[customer%3]
}

func money(nanos int64) *pricingv1.Money {
	return &pricingv1.Money{CurrencyCode: "EUR", Units: nanos / 1e9, Nanos: int32(nanos % 1e9)}
}

// net is an item's price after discount, by the service's rounding.
func (s *service) net(it item) (price, off int64) {
	if it.discount {
		off = discount(it.price, s.round)
	}
	return it.price, off
}

func (s *service) Quote(_ context.Context, req *pricingv1.QuoteRequest) (*pricingv1.QuoteResponse, error) {
	resp := &pricingv1.QuoteResponse{
		QuoteId:       newQuoteID(),
		ComputedAt:    timestamppb.Now(),
		CustomerEmail: req.GetCustomerEmail(),
	}
	var total int64
	for _, sku := range req.GetSkus() {
		it, ok := catalog[sku]
		if !ok {
			return nil, s.notFound(sku)
		}
		price, off := s.net(it)
		resp.Lines = append(resp.Lines, &pricingv1.QuoteLine{Sku: sku, UnitPrice: money(price), Discount: money(off)})
		total += price - off
	}
	resp.Total = money(total)
	customer, _ := strconv.Atoi(strings.TrimPrefix(req.GetCustomerId(), "C-"))
	resp.Tier = s.tier(customer)
	return resp, nil
}

func (s *service) ListPrices(req *pricingv1.ListPricesRequest, stream grpc.ServerStreamingServer[pricingv1.ListPricesResponse]) error {
	var items []item
	for n := range catalogSize {
		if it := catalog[SKU(n)]; it.category == req.GetCategory() {
			items = append(items, it)
		}
	}
	if len(items) == 0 {
		return status.Errorf(codes.NotFound, "no category %q", req.GetCategory())
	}
	if s.gardenByCost && req.GetCategory() == "garden" {
		slices.SortStableFunc(items, func(a, b item) int { return int(a.price - b.price) })
	}
	for _, it := range items {
		price, off := s.net(it)
		if err := stream.Send(&pricingv1.ListPricesResponse{Sku: it.sku, Price: money(price - off)}); err != nil {
			return err
		}
	}
	return nil
}

func (s *service) Basket(stream grpc.BidiStreamingServer[pricingv1.BasketRequest, pricingv1.BasketResponse]) error {
	var subtotal int64
	var items int32
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		it, ok := catalog[req.GetSku()]
		if !ok {
			return s.notFound(req.GetSku())
		}
		price, off := s.net(it)
		subtotal += price - off
		items++
		if err := stream.Send(&pricingv1.BasketResponse{Items: items, Subtotal: money(subtotal)}); err != nil {
			return err
		}
	}
}

// newQuoteID is a random ID: noise that differs on every call.
func newQuoteID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("q-%x-%d", b, time.Now().UnixNano()%1000)
}
