// Command fleet is one client instance of a fleet: it sends the pricing
// demo's traffic with the parallel run installed, and exports everything
// a central picture needs over OTLP to an OpenTelemetry Collector: the
// metrics that Prometheus aggregates over every instance, each report as a
// log record, and the comparison spans. It also writes its reports to a
// JSONL file, and prints its own count of calls per method and outcome as
// one line of JSON when it is done, so that a test can check the central
// picture against the sum of the instances'.
//
// Each process is an instance of its own (the resource's
// service.instance.id, drawn at random unless -instance names it):
// Prometheus keeps one series per instance, and two processes with one
// name would overwrite each other's counts.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/parallelrun/grpc-parallelrun/examples/pricing"
	"github.com/parallelrun/grpc-parallelrun/interceptor"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// ServiceName is the service every instance reports under: Prometheus's
// job label.
const ServiceName = "pricing-client"

// config is one instance's.
type config struct {
	endpoint, instance, reports string
	interval                    time.Duration
	traffic                     pricing.Traffic
}

// counts is what an instance prints when it is done: its calls by method
// and outcome, from its own status.
type counts struct {
	Instance string                      `json:"instance"`
	Outcomes map[string]map[string]int64 `json:"outcomes"`
}

func main() {
	var c config
	flag.StringVar(&c.endpoint, "otlp", "127.0.0.1:4317", "OTLP gRPC endpoint of the Collector")
	flag.StringVar(&c.instance, "instance", "", "this instance's service.instance.id (default: drawn at random, as each process needs its own)")
	flag.StringVar(&c.reports, "reports", "", "write the reports to this JSONL file too")
	flag.DurationVar(&c.interval, "export-interval", 5*time.Second, "how often the metrics are exported")
	flag.Uint64Var(&c.traffic.Seed, "seed", 1, "seed of the traffic")
	flag.IntVar(&c.traffic.Quotes, "quotes", 1000, "quotes to ask for")
	flag.IntVar(&c.traffic.Listings, "listings", 60, "price listings to stream")
	flag.IntVar(&c.traffic.Baskets, "baskets", 100, "baskets to price")
	flag.IntVar(&c.traffic.Workers, "workers", 4, "calls at once")
	flag.Parse()
	if c.instance == "" {
		c.instance = rand.Text() // a new one for each process: a restart is a new instance
	}
	out, err := run(context.Background(), c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}

// run sends the traffic and exports the telemetry; it returns once every
// report is in the JSONL file and every signal has been exported.
func run(ctx context.Context, c config) (_ *counts, err error) {
	res := resource.NewSchemaless(semconv.ServiceName(ServiceName), semconv.ServiceInstanceID(c.instance))
	metricExp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(c.endpoint), otlpmetricgrpc.WithInsecure())
	if err != nil {
		return nil, err
	}
	logExp, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(c.endpoint), otlploggrpc.WithInsecure())
	if err != nil {
		return nil, err
	}
	traceExp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(c.endpoint), otlptracegrpc.WithInsecure())
	if err != nil {
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metricExp, sdkmetric.WithInterval(c.interval))))
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewBatchProcessor(logExp)))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(traceExp))
	defer func() {
		// Last, so that the final counts, records and spans go out: the
		// metrics' last export is what Prometheus keeps of this instance.
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = errors.Join(err, tp.Shutdown(shutdownCtx), lp.Shutdown(shutdownCtx), mp.Shutdown(shutdownCtx))
	}()

	logs, err := sink.NewOTelLog(lp)
	if err != nil {
		return nil, err
	}
	opts := []interceptor.Option{interceptor.WithTracerProvider(tp), interceptor.WithMeterProvider(mp), interceptor.WithSink(logs)}
	if c.reports != "" {
		file, err := sink.CreateJSONL(c.reports)
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, file.Close()) }()
		opts = append(opts, interceptor.WithSink(file))
	}
	demo, err := pricing.Start(opts...)
	if err != nil {
		return nil, err
	}
	c.traffic.Tracer = tp.Tracer(ServiceName)
	runErr := pricing.Run(ctx, demo.Client, c.traffic)
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := demo.Close(closeCtx); err != nil {
		return nil, err
	}
	if runErr != nil {
		return nil, runErr
	}
	out := &counts{Instance: c.instance, Outcomes: map[string]map[string]int64{}}
	for _, m := range demo.ParallelRun.Status().GetMethods() {
		o := m.GetOutcomes()
		out.Outcomes[m.GetMethod()] = map[string]int64{
			"match": o.GetMatch(), "mismatch": o.GetMismatch(), "candidate_error": o.GetCandidateError(),
			"dropped": o.GetDropped(), "internal_error": o.GetInternalError(), "caller_canceled": o.GetCallerCanceled(),
			"abandoned": o.GetAbandoned(), "legacy_error": o.GetLegacyError(),
		}
	}
	return out, nil
}
