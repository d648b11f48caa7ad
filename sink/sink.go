package sink

import (
	"context"
	"errors"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// Sink receives reports. Publish is called from one goroutine at a time by
// the interceptor, but the built-in sinks are safe for concurrent use too.
// A Sink must not keep or change the report after Publish returns unless it
// clones it.
type Sink interface {
	Publish(ctx context.Context, r *parallelrunv1.Report) error
	// Flush writes out what is buffered. It is called once, when the
	// interceptor closes.
	Flush(ctx context.Context) error
}

// Func is a Sink made of a function; its Flush does nothing.
type Func func(ctx context.Context, r *parallelrunv1.Report) error

var _ Sink = Func(nil)

// Publish calls f.
func (f Func) Publish(ctx context.Context, r *parallelrunv1.Report) error { return f(ctx, r) }

// Flush does nothing.
func (Func) Flush(context.Context) error { return nil }

// Multi sends every report to each of sinks in turn, and flushes them all.
// A failing sink does not keep the others from their reports; the errors are
// joined.
func Multi(sinks ...Sink) Sink { return multi(sinks) }

type multi []Sink

func (m multi) Publish(ctx context.Context, r *parallelrunv1.Report) error {
	var errs []error
	for _, s := range m {
		errs = append(errs, s.Publish(ctx, r))
	}
	return errors.Join(errs...)
}

func (m multi) Flush(ctx context.Context) error {
	var errs []error
	for _, s := range m {
		errs = append(errs, s.Flush(ctx))
	}
	return errors.Join(errs...)
}
