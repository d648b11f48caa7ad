package pricing

import (
	"net"

	"google.golang.org/grpc"

	pricingv1 "github.com/parallelrun/grpc-parallelrun/proto/examples/pricing/v1"
)

// Serve starts srv on a loopback port and returns its address and a stop
// function.
func Serve(srv pricingv1.PricingServiceServer) (addr string, stop func(), err error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	s := grpc.NewServer()
	pricingv1.RegisterPricingServiceServer(s, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	return lis.Addr().String(), func() {
		s.Stop()
		<-done
	}, nil
}
