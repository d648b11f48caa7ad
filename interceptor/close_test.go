package interceptor_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// With nothing in flight, Close has nothing to wait for: an expired
// context does not keep it from flushing.
func TestCloseWithAnExpiredContext(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{mirrorAll}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	e.waitReports(t, 1)
	e.waitIdle(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.pr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if e.sink.Flushes() != 1 {
		t.Errorf("%d flushes", e.sink.Flushes())
	}
}

// A bound on calls in flight of any size works, Close included.
func TestHugeMaxInFlight(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{mirrorAll, interceptor.WithMaxInFlight(math.MaxInt)}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	closeNow(t, e)
	if len(e.sink.Reports()) != 1 {
		t.Errorf("%d reports", len(e.sink.Reports()))
	}
}

type flushFunc func(context.Context) error

func (flushFunc) Publish(context.Context, *parallelrunv1.Report) error { return nil }
func (f flushFunc) Flush(ctx context.Context) error                    { return f(ctx) }

// A sink whose Flush panics makes Close fail, not panic.
func TestFlushPanicIsAnError(t *testing.T) {
	panics := true
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{mirrorAll,
		interceptor.WithSink(flushFunc(func(context.Context) error {
			if panics {
				panics = false
				panic("flush bug")
			}
			return nil
		}))}})
	err := e.pr.Close(ctxTimeout(t))
	if err == nil || !strings.Contains(err.Error(), "panicked: flush bug") {
		t.Fatalf("Close = %v", err)
	}
	// Close may be called again after an error.
	if err := e.pr.Close(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
}

// stuckWriter blocks every write until released.
type stuckWriter struct{ release chan struct{} }

func (w stuckWriter) Write(p []byte) (int, error) {
	<-w.release
	return len(p), nil
}

// Close returns by its deadline when a sink is stuck, every time; once
// the sink is free again, Close completes.
func TestCloseWithAStuckSink(t *testing.T) {
	w := stuckWriter{make(chan struct{})}
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{mirrorAll,
		interceptor.WithSink(sink.NewJSONL(w))}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	e.waitReports(t, 1)
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := e.pr.Close(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v", err)
		}
	}
	close(w.release)
	if err := e.pr.Close(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
}
