package sink_test

import (
	"context"
	"io"
	"testing"

	sdklog "go.opentelemetry.io/otel/sdk/log"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// discardExporter is an exporter whose backend takes everything at once:
// what remains is the sink's and the SDK's own cost.
type discardExporter struct{}

func (discardExporter) Export(context.Context, []sdklog.Record) error { return nil }
func (discardExporter) Shutdown(context.Context) error                { return nil }
func (discardExporter) ForceFlush(context.Context) error              { return nil }

// BenchmarkPublish compares the sinks on one mismatch report: the JSONL
// file (to io.Discard) is the baseline; OTelLog runs through the SDK's
// batch processor, as an application exporting over OTLP would.
func BenchmarkPublish(b *testing.B) {
	r := report(b, parallelrunv1.Outcome_OUTCOME_MISMATCH)
	r.SpanId = "00f067aa0ba902b7"
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(discardExporter{})))
	b.Cleanup(func() { _ = lp.Shutdown(context.Background()) })
	otel, err := sink.NewOTelLog(lp)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		s    sink.Sink
	}{{"jsonl", sink.NewJSONL(io.Discard)}, {"otellog", otel}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				if err := bc.s.Publish(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
