// Command jaeger runs the quickstart's traffic with tracing on: every
// comparison span, with its outcome and one event per difference, goes over
// OTLP to a Jaeger (or any OTLP collector) at -otlp. Search Jaeger for
// parallelrun.mismatch=true to find the mismatches.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/parallelrun/grpc-parallelrun/examples/pricing"
	"github.com/parallelrun/grpc-parallelrun/interceptor"
)

// ServiceName is the service the spans are reported under.
const ServiceName = "pricing-client"

func main() {
	endpoint := flag.String("otlp", "127.0.0.1:4317", "OTLP gRPC endpoint of Jaeger")
	flag.Parse()
	if err := run(context.Background(), *endpoint, pricing.DefaultTraffic); err != nil {
		fmt.Fprintln(os.Stderr, "jaeger:", err)
		os.Exit(1)
	}
	fmt.Printf("done: open the Jaeger UI, service %s, tags parallelrun.mismatch=true\n", ServiceName)
}

// run sends the traffic, traced, and flushes the spans to endpoint.
func run(ctx context.Context, endpoint string, traffic pricing.Traffic) error {
	exporter, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure())
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(ServiceName))),
	)
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = tp.Shutdown(shutdownCtx)
	}()

	demo, err := pricing.Start(interceptor.WithTracerProvider(tp))
	if err != nil {
		return err
	}

	traffic.Tracer = tp.Tracer(ServiceName)
	runErr := pricing.Run(ctx, demo.Client, traffic)
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := demo.Close(closeCtx); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	return tp.ForceFlush(closeCtx)
}
