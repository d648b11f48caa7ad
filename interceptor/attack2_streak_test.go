package interceptor_test

// Second review of the per-MeterProvider registry of streaks
// (providerStreaks in streak.go). The registry is process-wide state, so
// each attack runs in a child process of this test binary: it must not
// fill the registry, or set the global MeterProvider, under the other
// tests of the package.

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// inChild (attack_test.go) runs each test below in a child process.

// twoRunsOneProvider is the scenario of TestAttackStreakTwoRunsOneMeterProvider:
// runs A and B export through one SDK MeterProvider (read by reader); A
// mismatches, then B (the process's latest mismatch), then B compares 1
// call and A 5. The process must export B's mismatch time and 6 calls.
func twoRunsOneProvider(t *testing.T, reader *sdkmetric.ManualReader, optsA, optsB func() []interceptor.Option) {
	t.Helper()
	legacy := serve(t, &quoteServer{get: price(10)})
	candidate := serve(t, &quoteServer{get: badIsEleven})
	run := func(opts []interceptor.Option) (pb.QuoteServiceClient, *sink.Memory) {
		mem := sink.NewMemory()
		pr, err := interceptor.New(dial(t, candidate), append(opts, interceptor.WithSink(mem), mirrorAll)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = pr.Close(ctx)
		})
		return pb.NewQuoteServiceClient(dial(t, legacy, pr.DialOptions()...)), mem
	}
	clientA, memA := run(optsA())
	clientB, memB := run(optsB())
	get := func(c pb.QuoteServiceClient, mem *sink.Memory, customers ...string) {
		for _, customer := range customers {
			n := len(mem.Reports())
			if _, err := c.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{CustomerId: customer}); err != nil {
				t.Fatal(err)
			}
			waitMemory(t, mem, n+1)
		}
	}
	get(clientA, memA, "bad", "a", "b", "c")
	time.Sleep(5 * time.Millisecond)
	get(clientB, memB, "bad", "d")
	get(clientA, memA, "e", "f", "g", "h", "i")
	if memB.Reports()[0].GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH {
		t.Fatalf("B's first report: %v", memB.Reports()[0])
	}
	latest := unixSeconds(memB.Reports()[0])
	method := getQuote[1:]
	last := floatGauge(t, reader, "parallelrun.last_mismatch.time")[method]
	calls := intGauge(t, reader, "parallelrun.streak.calls")[method]
	if len(last) != 1 || math.Abs(last[0]-latest) > 1e-6 || len(calls) != 1 || calls[0] != 6 {
		t.Errorf("the process's last mismatch at %.6f (run B), 6 calls compared since; exported last_mismatch %v (A's was %.6f), streak.calls %v",
			latest, last, unixSeconds(memA.Reports()[0]), calls)
	}
}

// Fixed, found by a review (streak.go, streaksFor): the registry is keyed by the MeterProvider
// value a run was given. A run built without WithMeterProvider takes
// otel.GetMeterProvider(): before otel.SetMeterProvider that is the
// global delegate, after it the SDK's provider itself. Two runs of one
// process on either side of SetMeterProvider (a library that builds its
// run at init, an application that sets up telemetry later: the order
// the otel docs tolerate) are two keys, two streaks and two callbacks on
// one SDK provider, which keeps the observation of the callback
// registered last: the first review's "two runs on one MeterProvider"
// bug, back. Here the process exports B's streak alone, 1 call (A's 5
// are lost); had the run registered last been the one with the older
// mismatch, the process would export that older time, a longer streak
// than the truth (the unsafe direction). Resolve the
// global delegate to what it delegates to (or key by the SDK's meter
// after delegation), or make the callback sum calls and take the latest
// time across registrations.
func TestAttack2StreakGlobalDelegateThenSDK(t *testing.T) {
	if !inChild(t) {
		return
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	set := false
	twoRunsOneProvider(t, reader,
		func() []interceptor.Option { return nil }, // the global delegate: nothing set yet
		func() []interceptor.Option {
			otel.SetMeterProvider(mp) // telemetry set up; A's instruments now go to mp
			set = true
			return nil // B: otel.GetMeterProvider() is mp now
		})
	if !set {
		t.Fatal("scenario did not run")
	}
}

// GUARD (passes): the same two runs, both given the SDK provider through
// WithMeterProvider after it became the global one: one key, one streak.
func TestAttack2StreakGlobalSetFirstGuard(t *testing.T) {
	if !inChild(t) {
		return
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	otel.SetMeterProvider(mp)
	twoRunsOneProvider(t, reader,
		func() []interceptor.Option { return nil },
		func() []interceptor.Option { return []interceptor.Option{interceptor.WithMeterProvider(mp)} })
}

// Fixed, found by a review (streak.go, maxProviders): the registry keeps every MeterProvider a
// run ever used, shut down or not (pinning each one, its readers and
// their aggregations, for the life of the process), and once it holds 64
// it stops sharing: every later run gets streaks and a callback of its
// own, so two runs on the 65th provider conflict exactly as the first
// review's bug did. A process that builds providers over its life (tests,
// per-tenant or reloaded telemetry) loses the fix for good after 64. Here
// 64 providers come and go (each shut down), then the scenario runs on a
// new one. (The package's own TestAttackStreakTwoRunsOneMeterProvider
// passes only because its file sorts before the ~100 tests that each make
// a provider.) The registry should forget providers (weak references, or
// an entry removed when the last run on it closes: the callback's
// registration can stay), not stop sharing.
func TestAttack2StreakRegistryFullStopsSharing(t *testing.T) {
	if !inChild(t) {
		return
	}
	candidate := serve(t, &quoteServer{get: price(10)})
	conn := dial(t, candidate)
	for range 64 {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		pr, err := interceptor.New(conn, interceptor.WithMeterProvider(mp), mirrorAll)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = pr.Close(ctx)
		cancel()
		_ = mp.Shutdown(context.Background())
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	opts := func() []interceptor.Option { return []interceptor.Option{interceptor.WithMeterProvider(mp)} }
	twoRunsOneProvider(t, reader, opts, opts)
}

// sliceMP is a MeterProvider of a type that cannot be a map key.
type sliceMP struct {
	embedded.MeterProvider
	names []string
}

func (p sliceMP) Meter(name string, opts ...metric.MeterOption) metric.Meter {
	return noop.NewMeterProvider().Meter(name, opts...)
}

// wrappedMP is a decorator over any MeterProvider: its type is comparable
// (a struct of one interface), its value not when the wrapped one's is not.
type wrappedMP struct{ metric.MeterProvider }

// Fixed, found by a review (streak.go, streaksFor): "for a provider type that cannot be a map
// key, a run has its own" checks the static type with
// reflect.TypeOf(mp).Comparable(). A struct that embeds the
// metric.MeterProvider interface (the usual decorator) has a comparable
// type, but hashing it hashes the dynamic value inside, and when that is
// of an uncomparable type the map insert panics: interceptor.New panics
// with "hash of unhashable type". Use reflect.ValueOf(mp).Comparable().
func TestAttack2StreakUnhashableProviderPanics(t *testing.T) {
	if !inChild(t) {
		return
	}
	candidate := serve(t, &quoteServer{get: price(10)})
	defer func() {
		if v := recover(); v != nil {
			t.Errorf("interceptor.New(WithMeterProvider(wrappedMP{sliceMP{...}})) panicked: %v", v)
		}
	}()
	pr, err := interceptor.New(dial(t, candidate), interceptor.WithMeterProvider(wrappedMP{sliceMP{names: []string{"x"}}}), mirrorAll)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = pr.Close(ctx)
}

// GUARD (passes, also under -race): 16 runs built at once on one provider
// each compare 3 calls of one method with no mismatch: one streak, one
// point per gauge, 48 calls.
func TestAttack2StreakConcurrentNewGuard(t *testing.T) {
	if !inChild(t) {
		return
	}
	legacy := serve(t, &quoteServer{get: price(10)})
	candidate := serve(t, &quoteServer{get: price(10)})
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	const runs = 16
	var wg sync.WaitGroup
	for range runs {
		wg.Go(func() {
			mem := sink.NewMemory()
			pr, err := interceptor.New(dial(t, candidate), interceptor.WithMeterProvider(mp), interceptor.WithSink(mem), mirrorAll)
			if err != nil {
				t.Error(err)
				return
			}
			c := pb.NewQuoteServiceClient(dial(t, legacy, pr.DialOptions()...))
			for range 3 {
				if _, err := c.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{CustomerId: "c"}); err != nil {
					t.Error(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = pr.Close(ctx)
		})
	}
	wg.Wait()
	calls := intGauge(t, reader, "parallelrun.streak.calls")[getQuote[1:]]
	first := floatGauge(t, reader, "parallelrun.first_compared.time")[getQuote[1:]]
	if len(calls) != 1 || calls[0] != 3*runs || len(first) != 1 {
		t.Errorf("%d runs of 3 calls: streak.calls %v, first_compared %v", runs, calls, first)
	}
}
