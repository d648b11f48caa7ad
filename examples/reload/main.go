// Command reload runs the pricing demo with its parallel run configured
// from a JSON file (the JSON form of parallelrun.v1.Config), and reads the
// file again on SIGHUP: a legacy and a candidate pricing service, and a
// second legacy instance for noise probes, on loopback; a client that
// sends a steady trickle of quotes and price listings; a line every
// -every saying how many calls of each method were compared. Edit the
// file, then
//
//	kill -HUP <pid>
//
// and the new configuration is in force for the calls that start after
// it, or, if the file does not validate, the error is logged with the
// file, line and key it is about, and the old configuration stays.
// SIGINT or SIGTERM stops it.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/parallelrun/grpc-parallelrun/examples/pricing"
	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pricingv1 "github.com/parallelrun/grpc-parallelrun/proto/examples/pricing/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

func main() {
	config := flag.String("config", "pricing.json", "the configuration file, read at start and on SIGHUP")
	every := flag.Duration("every", 5*time.Second, "how often to say what was compared")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *config, *every); err != nil {
		fmt.Fprintln(os.Stderr, "reload:", err)
		os.Exit(1)
	}
}

// secondary is the name the configuration gives the second legacy
// instance, in noise.secondary.
const secondary = "pricing-b"

// run serves, sends traffic and reloads the configuration on SIGHUP until
// ctx ends.
func run(ctx context.Context, stdout io.Writer, config string, every time.Duration) (err error) {
	logger := log.New(stdout, "", log.Ltime)
	// SIGHUP is caught before anything starts, so that one sent as soon as
	// the program says it is ready does not end it.
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)

	var closers []func() error // last first
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			err = errors.Join(err, closers[i]())
		}
	}()
	serve := func(srv pricingv1.PricingServiceServer) (*grpc.ClientConn, error) {
		addr, stop, err := pricing.Serve(srv)
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() error { stop(); return nil })
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		closers = append(closers, conn.Close)
		return conn, nil
	}
	candidate, err := serve(pricing.Candidate())
	if err != nil {
		return err
	}
	second, err := serve(pricing.Legacy())
	if err != nil {
		return err
	}
	// The connections a configuration may name.
	conns := map[string]grpc.ClientConnInterface{secondary: second}

	cfg, err := interceptor.ReadConfig(config)
	if err != nil {
		return err
	}
	counts := &compared{}
	pr, err := interceptor.New(candidate,
		interceptor.WithConfig(cfg, conns),
		interceptor.WithSink(sink.Func(counts.publish)),
		interceptor.WithErrorHandler(func(err error) { logger.Print(err) }),
	)
	if err != nil {
		return err
	}
	addr, stopLegacy, err := pricing.Serve(pricing.Legacy())
	if err != nil {
		return err
	}
	closers = append(closers, func() error { stopLegacy(); return nil })
	legacy, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, pr.DialOptions()...)...)
	if err != nil {
		return errors.Join(err, pr.Close(context.Background()))
	}
	closers = append(closers, legacy.Close, func() error {
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return pr.Close(closeCtx)
	})
	logger.Printf("started with %s: %s", config, describe(pr))

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { traffic(ctx, logger, pricingv1.NewPricingServiceClient(legacy)) })
	wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				quotes, listings := counts.take()
				logger.Printf("compared in the last %v: Quote %d, ListPrices %d", every, quotes, listings)
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hups:
				reload(logger, pr, config, conns)
			}
		}
	})
	<-ctx.Done()
	logger.Print("stopping")
	return nil
}

// reload reads the configuration file again and puts it in force, or
// says why not, keeping the configuration in force as it is.
func reload(logger *log.Logger, pr *interceptor.ParallelRun, config string, conns map[string]grpc.ClientConnInterface) {
	cfg, err := interceptor.ReadConfig(config)
	if err == nil {
		err = pr.ApplyConfig(cfg, conns)
	}
	if err != nil {
		logger.Printf("configuration not reloaded, keeping the old one: %v", err)
		return
	}
	logger.Printf("configuration reloaded: %s", describe(pr))
}

// describe says in a few words what a parallel run mirrors.
func describe(pr *interceptor.ParallelRun) string {
	if pr.Disabled() {
		return "mirroring disabled"
	}
	var rules []string
	for _, r := range pr.Methods() {
		switch c := r.Config; {
		case c.Disabled:
			rules = append(rules, r.Pattern+" off")
		case c.Noise.ProbeRate > 0:
			rules = append(rules, fmt.Sprintf("%s %g%% (noise probes %g%%)", r.Pattern, 100*c.SampleRate, 100*c.Noise.ProbeRate))
		default:
			rules = append(rules, fmt.Sprintf("%s %g%%", r.Pattern, 100*c.SampleRate))
		}
	}
	return cmp.Or(strings.Join(rules, ", "), "no method configured")
}

// compared counts the reports of each method the traffic calls.
type compared struct {
	quotes, listings atomic.Int64
}

func (c *compared) publish(_ context.Context, r *parallelrunv1.Report) error {
	switch r.GetMethod() {
	case strings.TrimPrefix(pricing.QuoteMethod, "/"):
		c.quotes.Add(1)
	case strings.TrimPrefix(pricing.ListPricesMethod, "/"):
		c.listings.Add(1)
	}
	return nil
}

// take returns the counts and starts them again.
func (c *compared) take() (quotes, listings int64) {
	return c.quotes.Swap(0), c.listings.Swap(0)
}

// traffic sends a few quotes and a listing every tenth of a second until
// ctx ends.
func traffic(ctx context.Context, logger *log.Logger, client pricingv1.PricingServiceClient) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for seed := uint64(1); ; seed++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := pricing.Run(ctx, client, pricing.Traffic{Quotes: 5, Listings: 1, Workers: 2, Seed: seed})
		if err != nil && ctx.Err() == nil {
			logger.Printf("traffic: %v", err)
		}
	}
}
