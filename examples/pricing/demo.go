package pricing

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pricingv1 "github.com/parallelrun/grpc-parallelrun/proto/examples/pricing/v1"
)

// Demo is the whole demo running: both services on loopback and a client
// of the legacy one with the parallel run installed.
type Demo struct {
	LegacyAddr, CandidateAddr string
	ParallelRun               *interceptor.ParallelRun
	Client                    pricingv1.PricingServiceClient

	closers []func() error // last first
}

// Start starts the demo with [MethodOptions] and opts (sinks, providers).
func Start(opts ...interceptor.Option) (_ *Demo, err error) {
	d := &Demo{}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.stop())
		}
	}()
	for _, side := range []struct {
		srv  pricingv1.PricingServiceServer
		addr *string
	}{{Legacy(), &d.LegacyAddr}, {Candidate(), &d.CandidateAddr}} {
		addr, stop, err := Serve(side.srv)
		if err != nil {
			return nil, err
		}
		*side.addr = addr
		d.closers = append(d.closers, func() error { stop(); return nil })
	}

	creds := grpc.WithTransportCredentials(insecure.NewCredentials())
	candidate, err := grpc.NewClient(d.CandidateAddr, creds)
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, candidate.Close)
	if d.ParallelRun, err = interceptor.New(candidate, append(MethodOptions(), opts...)...); err != nil {
		return nil, err
	}
	legacy, err := grpc.NewClient(d.LegacyAddr, append([]grpc.DialOption{creds}, d.ParallelRun.DialOptions()...)...)
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, legacy.Close)
	d.Client = pricingv1.NewPricingServiceClient(legacy)
	return d, nil
}

// Close waits, within ctx, for the comparisons in flight and flushes the
// sinks, then stops the clients and the services.
func (d *Demo) Close(ctx context.Context) error {
	return errors.Join(d.ParallelRun.Close(ctx), d.stop())
}

func (d *Demo) stop() error {
	var errs []error
	for i := len(d.closers) - 1; i >= 0; i-- {
		errs = append(errs, d.closers[i]())
	}
	d.closers = nil
	return errors.Join(errs...)
}
