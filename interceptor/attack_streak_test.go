package interceptor_test

// Attacks on the streak gauges (parallelrun.streak.calls,
// parallelrun.last_mismatch.time, parallelrun.first_compared.time) and on
// the per-call field counters, with real gRPC servers and the real OTel
// metric SDK.

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// badIsEleven is a candidate that prices customer "bad" differently.
func badIsEleven(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
	if req.GetCustomerId() == "bad" {
		return price(11)(ctx, req)
	}
	return price(10)(ctx, req)
}

// collectFrom reads the metric named name from reader.
// floatGauge returns the points of a float64 gauge by rpc.method.
func floatGauge(t *testing.T, reader *sdkmetric.ManualReader, name string) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	for _, m := range collectFrom(t, reader, name) {
		for _, dp := range m.Data.(metricdata.Gauge[float64]).DataPoints {
			v, _ := dp.Attributes.Value("rpc.method")
			out[v.AsString()] = append(out[v.AsString()], dp.Value)
		}
	}
	return out
}

func intGauge(t *testing.T, reader *sdkmetric.ManualReader, name string) map[string][]int64 {
	t.Helper()
	out := map[string][]int64{}
	for _, m := range collectFrom(t, reader, name) {
		for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
			v, _ := dp.Attributes.Value("rpc.method")
			out[v.AsString()] = append(out[v.AsString()], dp.Value)
		}
	}
	return out
}

func unixSeconds(r *parallelrunv1.Report) float64 {
	return float64(r.GetTime().AsTime().UnixMicro()) / 1e6
}

// Fixed, found by a review: each ParallelRun registers its own callback for the three gauges on
// the MeterProvider (the global one by default), and for a gauge the SDK
// keeps the last value observed per attribute set: two ParallelRuns of one
// process that mirror the same method (two ClientConns to one service, or
// a run replaced by New+Close, whose callback is never unregistered) do
// not add up as the counters do: the run registered last wins. Here run A
// mismatches, then run B (the process's latest mismatch), then B compares
// 1 call and A 5: the process exports one run's streak, 1 call (B's) or
// A's earlier mismatch time (a longer streak than the truth, the unsafe
// direction) with 8 calls, whichever callback the SDK runs last. The counters
// of both runs sum into one series, so the fleet's streak query mixes the
// two. The streaks should be per MeterProvider (shared by the runs that
// use it), or the callback should take the max time and sum the calls.
func TestAttackStreakTwoRunsOneMeterProvider(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	opts := func() []interceptor.Option { return []interceptor.Option{interceptor.WithMeterProvider(mp)} }
	twoRunsOneProvider(t, reader, opts, opts)
}

// Fixed, found by a review (and docs/deployment.md, "Capacity": "one series per differing field
// ... at most 1,024 fields ... per method"): the fields of
// parallelrun.differences are the differences' index-free paths, and an
// unknown field's path is its number, which the candidate chooses. The
// 1,024 bound holds for the method's internal counts (signals.field), not
// for the metric: a candidate that sends each reply with a different
// unknown field makes one series per call, here 1,100 for one method, up
// to the SDK's 2,000 per instrument, after which every method's fields
// (the legitimate ones too) go to the SDK's overflow series. Count the
// metric under the bounded name the signals use (or one label for all
// unknown fields).
func TestAttackDifferencesFieldsBoundedPerMethod(t *testing.T) {
	var n atomic.Int64
	candidate := func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		resp, _ := price(10)(ctx, req)
		raw := protowire.AppendTag(nil, protowire.Number(1000+n.Add(1)), protowire.VarintType)
		resp.ProtoReflect().SetUnknown(protowire.AppendVarint(raw, 1))
		return resp, nil
	}
	e := newEnv(t, envConfig{legacy: price(10), candidate: candidate, opts: []interceptor.Option{mirrorAll}})
	const calls = 1100
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < calls; i += 4 {
				if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{CustomerId: "c"}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	reports := e.waitReports(t, calls)
	if got := reports[0]; got.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH {
		t.Fatalf("first report: %v", got)
	}
	fields := map[string]bool{}
	for _, m := range e.collect(t, "parallelrun.differences") {
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			if hasAll(dp.Attributes, map[string]string{"rpc.method": getQuote[1:]}) {
				v, _ := dp.Attributes.Value("parallelrun.field")
				fields[v.AsString()] = true
			}
		}
	}
	if len(fields) > 1025 {
		t.Errorf("one method, %d calls: %d parallelrun.field series of parallelrun.differences (at most 1,024 and _OTHER)", calls, len(fields))
	}
}

// GUARD (passes, also under -race): many calls of one method at once,
// mismatches among them, then Close. The gauges hold one point each; the
// last mismatch is the latest mismatch report's time and the first call
// compared the earliest report's, to the microsecond; the streak is no
// more than the matches reported after the last mismatch plus those in
// flight beside it; and they stay exported after Close.
func TestAttackStreakConcurrentGuard(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: badIsEleven, opts: []interceptor.Option{mirrorAll}})
	const workers, per = 8, 40
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				c := "ok"
				if (w*per+i)%17 == 0 {
					c = "bad"
				}
				if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{CustomerId: c}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	reports := e.waitReports(t, workers*per)
	var lastMismatch, first float64 = 0, math.Inf(1)
	for _, r := range reports {
		first = min(first, unixSeconds(r))
		if r.GetOutcome() == parallelrunv1.Outcome_OUTCOME_MISMATCH {
			lastMismatch = max(lastMismatch, unixSeconds(r))
		}
	}
	matchesAfter := int64(0)
	for _, r := range reports {
		if r.GetOutcome() == parallelrunv1.Outcome_OUTCOME_MATCH && unixSeconds(r) > lastMismatch {
			matchesAfter++
		}
	}
	check := func(when string) {
		method := getQuote[1:]
		last := floatGauge(t, e.metrics, "parallelrun.last_mismatch.time")[method]
		firstG := floatGauge(t, e.metrics, "parallelrun.first_compared.time")[method]
		calls := intGauge(t, e.metrics, "parallelrun.streak.calls")[method]
		if len(last) != 1 || math.Abs(last[0]-lastMismatch) > 1e-6 {
			t.Errorf("%s: last_mismatch %v, want %.6f", when, last, lastMismatch)
		}
		if len(firstG) != 1 || math.Abs(firstG[0]-first) > 1e-6 {
			t.Errorf("%s: first_compared %v, want %.6f", when, firstG, first)
		}
		if len(calls) != 1 || calls[0] > matchesAfter+workers || calls[0] < matchesAfter-workers {
			t.Errorf("%s: streak.calls %v, %d matches reported after the last mismatch", when, calls, matchesAfter)
		}
	}
	check("open")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.pr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	check("after Close")
}
