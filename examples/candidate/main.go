// Command candidate serves the demo's pricing candidate on a fixed
// address, with gRPC server reflection, for `parallelrun replay` to send
// the quickstart's mismatched calls to again. With -fixed it serves the
// candidate with its bugs fixed (the legacy logic), which answers every
// replayed call as the legacy service did.
//
//	go run ./examples/candidate -fixed -for 2m &
//	go run ./cmd/parallelrun replay reports.jsonl --candidate 127.0.0.1:50051
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"

	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"

	"github.com/parallelrun/grpc-parallelrun/examples/pricing"
	pricingv1 "github.com/parallelrun/grpc-parallelrun/proto/examples/pricing/v1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "the address to serve on")
	fixed := flag.Bool("fixed", false, "serve the candidate with its bugs fixed")
	after := flag.Duration("for", 0, "stop after this long (0: when interrupted)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *after > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *after)
		defer cancel()
	}
	if err := serve(ctx, os.Stdout, *addr, *fixed); err != nil {
		fmt.Fprintln(os.Stderr, "candidate:", err)
		os.Exit(1)
	}
}

// serve serves until ctx ends.
func serve(ctx context.Context, w io.Writer, addr string, fixed bool) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	impl, which := pricing.Candidate(), "the candidate"
	if fixed {
		impl, which = pricing.Legacy(), "the candidate, fixed"
	}
	srv := grpc.NewServer()
	pricingv1.RegisterPricingServiceServer(srv, impl)
	reflection.Register(srv)
	fmt.Fprintf(w, "serving %s on %s, with server reflection\n", which, lis.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		srv.GracefulStop()
		<-done
		return nil
	}
}
