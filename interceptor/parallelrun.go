package interceptor

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// ParallelRun mirrors the configured RPCs of a client to a candidate
// connection and compares the replies. Build it with [New], install it with
// [ParallelRun.DialOptions] (or the interceptors in a chain), and
// [ParallelRun.Close] it when the client is done.
type ParallelRun struct {
	candidate grpc.ClientConnInterface
	// methods is replaced whole by SetMethods: a call reads it once, and
	// keeps the entry it found to its end.
	methods  atomic.Pointer[methodTable]
	disabled atomic.Bool // the kill switch
	// setMu orders replacements of the method table, so that each carries
	// the state of the one it replaces.
	setMu      sync.Mutex
	newBreaker func() *breaker
	noiseRule  noiseRule

	tel             *telemetry
	adm             *admission
	rewriteMD       func(context.Context, metadata.MD) metadata.MD
	onError         func(error)
	maxTimeout      time.Duration
	maxRequestBytes int
	maxSpanEvents   int
	rootSpans       bool
	errorStatus     map[parallelrunv1.Outcome]bool

	tracker  *readiness.Tracker // every call's report, for Status
	reports  []*delivery        // one per sink, so that no sink holds up another
	observed metric.Registration

	closeMu sync.Mutex
	flushed bool
}

// New checks the options and returns a ParallelRun that mirrors to
// candidate, usually a *grpc.ClientConn to the new service. An invalid
// option is an error naming it; see [WithMethod] for what is checked
// against the protobuf registry.
func New(candidate grpc.ClientConnInterface, opts ...Option) (*ParallelRun, error) {
	if isNil(candidate) {
		return nil, fmt.Errorf("interceptor: New: the candidate connection is a nil %T", candidate)
	}
	o := options{
		maxInFlight:     DefaultMaxInFlight,
		memoryBudget:    DefaultMemoryBudget,
		reportQueue:     DefaultReportQueue,
		maxTimeout:      DefaultMaxCandidateTimeout,
		maxRequestBytes: DefaultMaxRequestBytes,
		maxSpanEvents:   DefaultMaxSpanEvents,
		errorHandler:    otel.Handle,
		breakerFailures: DefaultBreakerFailures,
		breakerBackoff:  DefaultBreakerBackoff,
		noiseRule:       noiseRule{DefaultNoiseMinProbes, DefaultNoiseRelative, DefaultNoiseAbsolute},
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	switch {
	case o.maxInFlight < 1:
		return nil, fmt.Errorf("interceptor: WithMaxInFlight: %d is less than 1", o.maxInFlight)
	case o.memoryBudget < 1:
		return nil, fmt.Errorf("interceptor: WithMemoryBudget: %d is less than 1", o.memoryBudget)
	case o.reportQueue < 1:
		return nil, fmt.Errorf("interceptor: WithReportQueue: %d is less than 1", o.reportQueue)
	case o.maxTimeout <= 0:
		return nil, fmt.Errorf("interceptor: WithMaxCandidateTimeout: %v is not positive", o.maxTimeout)
	case o.maxRequestBytes < 0:
		return nil, fmt.Errorf("interceptor: WithMaxRequestBytes: %d is negative", o.maxRequestBytes)
	case o.maxSpanEvents < 0:
		return nil, fmt.Errorf("interceptor: WithMaxSpanEvents: %d is negative", o.maxSpanEvents)
	case o.breakerFailures < 0:
		return nil, fmt.Errorf("interceptor: WithCandidateBreaker: %d failures is negative", o.breakerFailures)
	case o.breakerFailures > 0 && o.breakerBackoff <= 0:
		return nil, fmt.Errorf("interceptor: WithCandidateBreaker: backoff %v is not positive", o.breakerBackoff)
	case o.noiseRule.minProbes < 1:
		return nil, fmt.Errorf("interceptor: WithNoiseRule: minProbes %d is less than 1", o.noiseRule.minProbes)
	case !(o.noiseRule.relative >= 0 && o.noiseRule.relative < 1) || !(o.noiseRule.absolute >= 0 && o.noiseRule.absolute < 1):
		return nil, fmt.Errorf("interceptor: WithNoiseRule: thresholds %v and %v are not in [0, 1)", o.noiseRule.relative, o.noiseRule.absolute)
	}
	for i, s := range o.sinks {
		if isNil(s) {
			return nil, fmt.Errorf("interceptor: WithSink: sink %d is a nil %T", i, s)
		}
	}
	if o.tracerProvider != nil && isNil(o.tracerProvider) {
		return nil, fmt.Errorf("interceptor: WithTracerProvider: a nil %T", o.tracerProvider)
	}
	if o.meterProvider != nil && isNil(o.meterProvider) {
		return nil, fmt.Errorf("interceptor: WithMeterProvider: a nil %T", o.meterProvider)
	}
	// The error handler is the user's code, called from goroutines of
	// ours: a panic in it must not end the program.
	handler := o.errorHandler
	o.errorHandler = func(err error) {
		defer func() { _ = recover() }()
		handler(err)
	}
	errorStatus := map[parallelrunv1.Outcome]bool{parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR: true}
	for _, oc := range o.errorStatus {
		if _, ok := parallelrunv1.Outcome_name[int32(oc)]; !ok || oc == parallelrunv1.Outcome_OUTCOME_UNSPECIFIED {
			return nil, fmt.Errorf("interceptor: WithErrorStatus: %d is not an outcome", oc)
		}
		errorStatus[oc] = true
	}
	tracker, err := readiness.NewTracker(o.readiness...)
	if err != nil {
		return nil, fmt.Errorf("interceptor: WithReadiness: %w", err)
	}
	rules, disabled := o.methods, false
	for _, fc := range o.configs {
		more, err := methodRules(fc.cfg, fc.conns)
		if err != nil {
			return nil, fmt.Errorf("interceptor: WithConfig: %w", err)
		}
		rules = append(rules, more...)
		disabled = disabled || fc.cfg.GetDisabled()
		if run, perPattern, _ := readinessPolicies(fc.cfg); run != nil || perPattern != nil {
			// Checked by methodRules above.
			if err := tracker.SetPolicy(run, perPattern); err != nil {
				return nil, fmt.Errorf("interceptor: WithConfig: %w", err)
			}
		}
	}
	tel, err := newTelemetry(o.tracerProvider, o.meterProvider)
	if err != nil {
		return nil, fmt.Errorf("interceptor: telemetry: %w", err)
	}
	newBreakerFunc := func() *breaker {
		if o.breakerFailures == 0 {
			return nil
		}
		return newBreaker(o.breakerFailures, o.breakerBackoff)
	}
	methods, err := newMethodTable(rules, "WithMethod", tel.other, newBreakerFunc, o.noiseRule, o.errorHandler)
	if err != nil {
		return nil, err
	}
	p := &ParallelRun{
		candidate:       candidate,
		newBreaker:      newBreakerFunc,
		noiseRule:       o.noiseRule,
		tel:             tel,
		adm:             newAdmission(o.maxInFlight, o.memoryBudget),
		rewriteMD:       o.rewriteMD,
		onError:         o.errorHandler,
		maxTimeout:      o.maxTimeout,
		maxRequestBytes: o.maxRequestBytes,
		maxSpanEvents:   o.maxSpanEvents,
		rootSpans:       o.rootSpans,
		errorStatus:     errorStatus,
		tracker:         tracker,
	}
	p.methods.Store(methods)
	p.disabled.Store(disabled)
	if p.observed, err = tel.observe(p.adm, &p.disabled); err != nil {
		return nil, fmt.Errorf("interceptor: telemetry: %w", err)
	}
	for i, s := range o.sinks {
		p.reports = append(p.reports, newDelivery(i, s, o.reportQueue, tel, o.errorHandler))
	}
	return p, nil
}

// isNil reports whether v is nil or a nil pointer, map, func, chan or
// slice in an interface: a typed nil that would fail on first use.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
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
// bounds the waits, and is passed to the sinks' Flush, which must return
// when it ends (the built-in sinks do). After an error Close may be called
// again to go on; once it has succeeded, it returns nil at once. Calls made
// after Close are not mirrored.
func (p *ParallelRun) Close(ctx context.Context) error {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	p.adm.closed.Store(true)
	for n := p.adm.inFlight.Load(); n > 0; n = p.adm.inFlight.Load() {
		select {
		case <-p.adm.idle:
		case <-ctx.Done():
			if n = p.adm.inFlight.Load(); n > 0 {
				return fmt.Errorf("interceptor: Close: %d calls still in flight: %w", n, ctx.Err())
			}
		}
	}
	if p.observed != nil {
		if err := p.observed.Unregister(); err != nil {
			p.onError(fmt.Errorf("interceptor: Close: %w", err))
		}
		p.observed = nil
	}
	if p.flushed {
		return nil
	}
	// Nothing is in flight, so nothing more is queued. Each sink is
	// drained and flushed on its own, at once, so that a stuck one does
	// not use up the others' time.
	errs := make([]error, len(p.reports))
	var wg sync.WaitGroup
	for i, d := range p.reports {
		wg.Go(func() {
			if err := d.drain(ctx); err != nil {
				errs[i] = fmt.Errorf("interceptor: Close: sink %d: %w", i, err)
			} else if err := d.flush(ctx); err != nil {
				errs[i] = fmt.Errorf("interceptor: Close: sink %d: flush: %w", i, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	p.flushed = true
	return nil
}

// publish hands a report to every sink's queue; each sink but the first
// gets a copy of its own, since sinks run at once.
func (p *ParallelRun) publish(ctx context.Context, r *parallelrunv1.Report) {
	for i, d := range p.reports {
		if i > 0 {
			r = proto.Clone(r).(*parallelrunv1.Report)
		}
		d.enqueue(ctx, r)
	}
}

// delivery hands reports to the sink from one goroutine, started when a
// report is queued and ended when the queue is empty, so that an idle
// parallel run holds no goroutine and Close finds nothing to wait for.
type delivery struct {
	sink    sink.Sink
	queue   chan *parallelrunv1.Report
	tel     *telemetry
	attrs   metric.MeasurementOption // the sink's index
	onError func(error)

	// pending counts the reports queued or being published: once it is
	// 0, every report is in the sink, even if the worker has yet to end.
	pending atomic.Int64

	mu      sync.Mutex
	working bool
	idle    chan struct{} // closed when the worker ends; nil while none runs
}

func newDelivery(index int, s sink.Sink, size int, tel *telemetry, onError func(error)) *delivery {
	return &delivery{sink: s, queue: make(chan *parallelrunv1.Report, size), tel: tel, onError: onError,
		attrs: metric.WithAttributeSet(attribute.NewSet(SinkKey.Int(index)))}
}

// enqueue hands a report to the worker without ever blocking.
func (d *delivery) enqueue(ctx context.Context, r *parallelrunv1.Report) {
	d.pending.Add(1)
	select {
	case d.queue <- r:
	default:
		d.pending.Add(-1)
		d.tel.reportsLost.Add(ctx, 1, d.attrs)
		d.onError(errors.New("interceptor: the sink queue is full: report dropped"))
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.working {
		d.working = true
		d.idle = make(chan struct{})
		go d.work(d.idle)
	}
}

func (d *delivery) work(idle chan struct{}) {
	defer close(idle)
	for {
		select {
		case r := <-d.queue:
			d.publish(r)
			d.pending.Add(-1)
			continue
		default:
		}
		// Empty: stop, unless a report came in before the lock; enqueue
		// takes the lock after queueing, so it either sees working or
		// queued before this check.
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.working = false
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
	}
}

func (d *delivery) publish(r *parallelrunv1.Report) {
	ctx := context.Background()
	defer func() {
		if v := recover(); v != nil {
			d.tel.sinkErrors.Add(ctx, 1, d.attrs)
			d.onError(fmt.Errorf("interceptor: publishing a report: sink panicked: %v", v))
		}
	}()
	if err := d.sink.Publish(ctx, r); err != nil {
		d.tel.sinkErrors.Add(ctx, 1, d.attrs)
		d.onError(fmt.Errorf("interceptor: publishing a report: %w", err))
	}
}

// drain waits until the worker has handed every queued report to the sink.
func (d *delivery) drain(ctx context.Context) error {
	d.mu.Lock()
	idle := d.idle
	d.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		select {
		case <-idle:
			return nil
		default:
		}
		if n := d.pending.Load(); n > 0 {
			return fmt.Errorf("%d reports still queued for the sinks: %w", n, ctx.Err())
		}
		return nil
	}
}

// flush calls the sink's Flush, recovering a panic into an error.
func (d *delivery) flush(ctx context.Context) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("sink panicked: %v", v)
		}
	}()
	return d.sink.Flush(ctx)
}

// Signals returns what the parallel run has learnt so far of each method
// it compared calls of, sorted by method: per index-free field, how often
// the candidate differed and how often the legacy service differed from
// itself (noise probes), and whether the field counts as noise; and the
// distinct problems, by signature, with their counts and first examples,
// so that a thousand mismatches read as the handful of problems they are.
func (p *ParallelRun) Signals() []MethodSignals {
	var out []MethodSignals
	p.eachEntry(func(e *methodEntry) {
		if ms := e.signals.snapshot(e.name); ms.Compared > 0 || len(ms.Signatures) > 0 {
			out = append(out, ms)
		}
	})
	slices.SortFunc(out, func(a, b MethodSignals) int { return strings.Compare(a.Method, b.Method) })
	return out
}

// eachEntry calls f with every entry of the table in force: the exact
// methods and those built on first use.
func (p *ParallelRun) eachEntry(f func(*methodEntry)) {
	t := p.methods.Load()
	for _, e := range t.exact {
		f(e)
	}
	t.cache.Range(func(_, v any) bool {
		f(v.(*methodEntry))
		return true
	})
}
