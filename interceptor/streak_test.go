package interceptor_test

import (
	"context"
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
)

// The streak gauges let a fleet judge "since the last mismatch" over many
// instances: each says its calls compared since its last mismatch, when
// that was and when its first call was compared, at the reports' times.
func TestStreakGauges(t *testing.T) {
	candidate := func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		if req.GetCustomerId() == "bad" {
			return price(11)(ctx, req)
		}
		return price(10)(ctx, req)
	}
	e := newEnv(t, envConfig{legacy: price(10), candidate: candidate, opts: []interceptor.Option{mirrorAll}})
	if got := e.collect(t, "parallelrun.streak.calls"); len(got) != 0 && len(got[0].Data.(metricdata.Gauge[int64]).DataPoints) != 0 {
		t.Fatalf("before any call: %v", got)
	}
	for i, customer := range []string{"a", "b", "bad", "c", "bad", "d", "e", "f"} {
		if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{CustomerId: customer}); err != nil {
			t.Fatal(err)
		}
		// One at a time, so that the arrival order is the calls' order.
		e.waitReports(t, i+1)
	}
	reports := e.waitReports(t, 8)
	if got := e.gauge(t, "parallelrun.streak.calls"); got != 3 {
		t.Errorf("streak %d calls, want 3", got)
	}
	seconds := func(i int) float64 { return float64(reports[i].GetTime().AsTime().UnixMicro()) / 1e6 }
	for name, want := range map[string]float64{
		"parallelrun.last_mismatch.time":  seconds(4),
		"parallelrun.first_compared.time": seconds(0),
	} {
		ms := e.collect(t, name)
		if len(ms) != 1 {
			t.Fatalf("%d metrics %s", len(ms), name)
		}
		g := ms[0].Data.(metricdata.Gauge[float64])
		if len(g.DataPoints) != 1 || math.Abs(g.DataPoints[0].Value-want) > 1e-6 {
			t.Errorf("%s = %v, want %.6f", name, g.DataPoints, want)
		}
		if m, _ := g.DataPoints[0].Attributes.Value("rpc.method"); "/"+m.AsString() != getQuote {
			t.Errorf("%s of %q", name, m.AsString())
		}
	}

	// A new configuration keeps the method's streak.
	if err := e.pr.SetMethods(interceptor.MethodRule{Pattern: "*", Config: interceptor.MethodConfig{SampleRate: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{CustomerId: "g"}); err != nil {
		t.Fatal(err)
	}
	e.waitReports(t, 9)
	if got := e.gauge(t, "parallelrun.streak.calls"); got != 4 {
		t.Errorf("after a reload: streak %d calls, want 4", got)
	}

	// Close ends mirroring, not the history: the provider still exports
	// the final values, as it does the counters' sums.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.pr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.gauge(t, "parallelrun.streak.calls"); got != 4 {
		t.Errorf("after Close: streak %d calls, want 4", got)
	}
}
