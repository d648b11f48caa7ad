package sink

import (
	"context"
	"errors"
	"fmt"
	"sync"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// Sink receives reports. The interceptor calls Publish from one goroutine
// at a time, but the built-in sinks are safe for concurrent use too. A Sink
// must not keep or change the report after Publish returns unless it clones
// it.
type Sink interface {
	Publish(ctx context.Context, r *parallelrunv1.Report) error
	// Flush writes out what is buffered. The interceptor calls it when it
	// closes, with the context given to Close: Flush should return by the
	// time ctx ends, and may be called again after it failed.
	Flush(ctx context.Context) error
}

// Func is a Sink made of a function; its Flush does nothing. It is as safe
// for concurrent use as the function is.
type Func func(ctx context.Context, r *parallelrunv1.Report) error

var _ Sink = Func(nil)

// Publish calls f.
func (f Func) Publish(ctx context.Context, r *parallelrunv1.Report) error { return f(ctx, r) }

// Flush does nothing.
func (Func) Flush(context.Context) error { return nil }

// Multi sends every report to each of sinks in turn, and flushes them all.
// The sinks are isolated from each other: one that fails or panics does not
// keep the others from a report or from Flush. A panic becomes an error
// naming the sink's position and type; the errors of all sinks are joined.
//
// Publish calls the sinks one after the other, on the caller's goroutine, so
// one that blocks holds up those after it. Flush calls them all at once, each
// with ctx, so that one taking its time does not leave the others without,
// and returns when the last has returned. Multi is safe for concurrent use
// when the sinks are.
func Multi(sinks ...Sink) Sink { return multi(sinks) }

type multi []Sink

var _ Sink = multi(nil)

func (m multi) Publish(ctx context.Context, r *parallelrunv1.Report) error {
	var errs []error
	for i, s := range m {
		errs = append(errs, call(i, s, func() error { return s.Publish(ctx, r) }))
	}
	return errors.Join(errs...)
}

func (m multi) Flush(ctx context.Context) error {
	errs := make([]error, len(m))
	var wg sync.WaitGroup
	for i, s := range m {
		wg.Go(func() { errs[i] = call(i, s, func() error { return s.Flush(ctx) }) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// call runs f, a method of the i-th sink s, with a panic turned into an
// error: the sinks are user code, and a panic in one must not reach the
// others, nor, from a goroutine of Flush, end the program.
func call(i int, s Sink, f func() error) (err error) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if e, ok := v.(error); ok {
			err = fmt.Errorf("sink: Multi: sink %d (%T) panicked: %w", i, s, e)
		} else {
			err = fmt.Errorf("sink: Multi: sink %d (%T) panicked: %v", i, s, v)
		}
	}()
	if err := f(); err != nil {
		return fmt.Errorf("sink: Multi: sink %d (%T): %w", i, s, err)
	}
	return nil
}
