package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	pricingv1 "github.com/parallelrun/grpc-parallelrun/proto/examples/pricing/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncWriter hands what serve prints to the test as it comes.
type syncWriter chan string

func (w syncWriter) Write(b []byte) (int, error) {
	w <- string(b)
	return len(b), nil
}

// TestServe serves both versions on a free port, asks each for a quote and
// the server reflection for the service, then stops it.
func TestServe(t *testing.T) {
	for _, fixed := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		out := make(syncWriter, 1)
		done := make(chan error, 1)
		go func() { done <- serve(ctx, out, "127.0.0.1:0", fixed) }()
		var line string
		select {
		case line = <-out:
		case err := <-done:
			t.Fatal(err)
		}
		_, addr, _ := strings.Cut(strings.TrimSpace(line), " on ")
		addr, _, _ = strings.Cut(addr, ",")
		if fixed != strings.Contains(line, "fixed") {
			t.Errorf("fixed %v: %q", fixed, line)
		}

		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		callCtx, callCancel := context.WithTimeout(ctx, 10*time.Second)
		// A gold customer: the candidate writes the tier in lower case.
		resp, err := pricingv1.NewPricingServiceClient(conn).Quote(callCtx, &pricingv1.QuoteRequest{CustomerId: "C-0003", Skus: []string{"SKU-001"}})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{false: "gold", true: "GOLD"}[fixed]; resp.GetTier() != want {
			t.Errorf("fixed %v: tier %q, want %q", fixed, resp.GetTier(), want)
		}
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(callCtx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
			t.Fatal(err)
		}
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range r.GetListServicesResponse().GetService() {
			names = append(names, s.GetName())
		}
		if !strings.Contains(strings.Join(names, " "), "examples.pricing.v1.PricingService") {
			t.Errorf("reflection lists %q", names)
		}
		_ = stream.CloseSend()
		if _, err := stream.Recv(); err != io.EOF {
			t.Errorf("reflection stream: %v", err)
		}
		callCancel()
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
