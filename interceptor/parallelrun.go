package interceptor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// ParallelRun mirrors the configured RPCs of a client to a candidate
// connection and compares the replies. Build it with [New], install it with
// [ParallelRun.DialOptions] (or the interceptors in a chain), and
// [ParallelRun.Close] it when the client is done.
type ParallelRun struct {
	candidate       grpc.ClientConnInterface
	methods         *methodTable
	forced          *methodConfig // for Force() on a method without config
	tel             *telemetry
	rewriteMD       func(context.Context, metadata.MD) metadata.MD
	onError         func(error)
	maxTimeout      time.Duration
	maxRequestBytes int
	maxSpanEvents   int
	types           sync.Map // method -> streamTypes

	// slots holds a token per call in flight; Close fills it to wait for
	// them all, and a full slots makes new calls drop.
	slots  chan struct{}
	closed atomic.Bool

	sink       sink.Sink
	queue      chan *parallelrunv1.Report
	workerDone chan struct{}

	closeMu     sync.Mutex
	acquired    int
	queueClosed bool
	flushed     bool
}

// New checks the options and returns a ParallelRun that mirrors to
// candidate, usually a *grpc.ClientConn to the new service. An invalid
// option is an error naming it.
func New(candidate grpc.ClientConnInterface, opts ...Option) (*ParallelRun, error) {
	if candidate == nil {
		return nil, errors.New("interceptor: New: the candidate connection is nil")
	}
	o := options{
		maxInFlight:     DefaultMaxInFlight,
		reportQueue:     DefaultReportQueue,
		maxTimeout:      DefaultMaxCandidateTimeout,
		maxRequestBytes: DefaultMaxRequestBytes,
		maxSpanEvents:   DefaultMaxSpanEvents,
		errorHandler:    otel.Handle,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	switch {
	case o.maxInFlight < 1:
		return nil, fmt.Errorf("interceptor: WithMaxInFlight: %d is less than 1", o.maxInFlight)
	case o.reportQueue < 1:
		return nil, fmt.Errorf("interceptor: WithReportQueue: %d is less than 1", o.reportQueue)
	case o.maxTimeout <= 0:
		return nil, fmt.Errorf("interceptor: WithMaxCandidateTimeout: %v is not positive", o.maxTimeout)
	case o.maxRequestBytes < 0:
		return nil, fmt.Errorf("interceptor: WithMaxRequestBytes: %d is negative", o.maxRequestBytes)
	case o.maxSpanEvents < 0:
		return nil, fmt.Errorf("interceptor: WithMaxSpanEvents: %d is negative", o.maxSpanEvents)
	}
	methods, err := newMethodTable(o.methods)
	if err != nil {
		return nil, err
	}
	forced, err := compileMethod(MethodConfig{})
	if err != nil {
		return nil, err
	}
	tel, err := newTelemetry(o.tracerProvider, o.meterProvider)
	if err != nil {
		return nil, fmt.Errorf("interceptor: telemetry: %w", err)
	}
	p := &ParallelRun{
		candidate:       candidate,
		methods:         methods,
		forced:          forced,
		tel:             tel,
		rewriteMD:       o.rewriteMD,
		onError:         o.errorHandler,
		maxTimeout:      o.maxTimeout,
		maxRequestBytes: o.maxRequestBytes,
		maxSpanEvents:   o.maxSpanEvents,
		slots:           make(chan struct{}, o.maxInFlight),
	}
	switch len(o.sinks) {
	case 0:
	case 1:
		p.sink = o.sinks[0]
	default:
		p.sink = sink.Multi(o.sinks...)
	}
	if p.sink != nil {
		p.queue = make(chan *parallelrunv1.Report, o.reportQueue)
		p.workerDone = make(chan struct{})
		go p.deliver()
	}
	return p, nil
}

// DialOptions install the parallel run's interceptors, unary and
// streaming, on a client connection:
//
//	grpc.NewClient(legacyTarget, append(opts, pr.DialOptions()...)...)
//
// They are two options because gRPC offers no public way to join options
// into one.
func (p *ParallelRun) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(p.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(p.StreamClientInterceptor()),
	}
}

// Close stops mirroring new calls, waits for the calls in flight and their
// comparisons, hands the last reports to the sinks and flushes them. ctx
// bounds the wait; after an error Close may be called again to go on
// waiting. Calls made after Close are not mirrored.
func (p *ParallelRun) Close(ctx context.Context) error {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	p.closed.Store(true)
	for ; p.acquired < cap(p.slots); p.acquired++ {
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("interceptor: Close: %d calls still in flight: %w", cap(p.slots)-p.acquired, ctx.Err())
		}
	}
	if p.sink == nil || p.flushed {
		return nil
	}
	if !p.queueClosed {
		// Every sender holds a slot, and all slots are ours now.
		close(p.queue)
		p.queueClosed = true
	}
	select {
	case <-p.workerDone:
	case <-ctx.Done():
		return fmt.Errorf("interceptor: Close: %d reports still queued for the sinks: %w", len(p.queue), ctx.Err())
	}
	p.flushed = true
	if err := p.sink.Flush(ctx); err != nil {
		return fmt.Errorf("interceptor: Close: flush: %w", err)
	}
	return nil
}

// enqueue hands a report to the sink worker without ever blocking.
func (p *ParallelRun) enqueue(ctx context.Context, r *parallelrunv1.Report) {
	if p.queue == nil {
		return
	}
	select {
	case p.queue <- r:
	default:
		p.tel.reportsLost.Add(ctx, 1)
		p.onError(errors.New("interceptor: the sink queue is full: report dropped"))
	}
}

func (p *ParallelRun) deliver() {
	defer close(p.workerDone)
	for r := range p.queue {
		p.publish(r)
	}
}

func (p *ParallelRun) publish(r *parallelrunv1.Report) {
	ctx := context.Background()
	defer func() {
		if v := recover(); v != nil {
			p.tel.sinkErrors.Add(ctx, 1)
			p.onError(fmt.Errorf("interceptor: sink panicked: %v", v))
		}
	}()
	if err := p.sink.Publish(ctx, r); err != nil {
		p.tel.sinkErrors.Add(ctx, 1)
		p.onError(fmt.Errorf("interceptor: sink: %w", err))
	}
}
