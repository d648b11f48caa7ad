package interceptor

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/parallelrun/grpc-parallelrun/protodiff"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// Defaults, each changed by an option.
const (
	// DefaultMaxInFlight bounds the candidate calls and comparisons running
	// at once: about a thousand requests per second with a candidate that
	// answers in a second, or ten thousand at 100 ms.
	DefaultMaxInFlight = 1024
	// DefaultReportQueue bounds the reports waiting for the sink.
	DefaultReportQueue = 1024
	// DefaultMaxCandidateTimeout caps the candidate's deadline when a
	// method has no timeout of its own.
	DefaultMaxCandidateTimeout = 10 * time.Second
	// DefaultMaxRequestBytes is the largest request a report carries.
	DefaultMaxRequestBytes = 64 << 10
	// DefaultMaxSpanEvents bounds the difference events on one span.
	DefaultMaxSpanEvents = 16
	// DefaultMaxStreamMessages and DefaultMaxStreamBytes bound what one
	// mirrored stream buffers.
	DefaultMaxStreamMessages = 1024
	DefaultMaxStreamBytes    = 16 << 20
	// MaxStreamDifferences bounds the differences reported for one stream.
	MaxStreamDifferences = 64
)

// RoleKey is the metadata key set on every candidate call, with the value
// "candidate", so that the candidate service can tell mirrored traffic from
// real traffic and suppress side effects (emails, payments, writes).
const RoleKey = "parallel-run-role"

// MethodConfig says how one method, or a set of methods, is mirrored.
type MethodConfig struct {
	// Disabled turns mirroring off for the matching methods, for example
	// one writing method of a service that is otherwise mirrored.
	Disabled bool
	// SampleRate is the fraction of calls mirrored, in [0, 1]; 0 means 1
	// (every call), so that the zero MethodConfig mirrors everything.
	SampleRate float64
	// Timeout is the candidate call's own deadline. 0 means the caller's
	// remaining deadline, capped by WithMaxCandidateTimeout.
	Timeout time.Duration
	// Diff are the options replies are compared with, such as ignored
	// paths for fields that differ on every call.
	Diff []protodiff.Option
	// CompareStatusMessage compares the status messages of failed calls,
	// not only their codes.
	CompareStatusMessage bool

	// Streaming methods only.

	// MaxStreamMessages bounds the messages buffered for the candidate
	// in each direction: what the caller sent and the candidate has not
	// taken yet, and the legacy replies the candidate has not matched yet.
	// Past it the candidate is too far behind: its side is abandoned. 0
	// means DefaultMaxStreamMessages.
	MaxStreamMessages int
	// MaxStreamBytes bounds the bytes of those buffered messages; past it
	// the comparison is abandoned. 0 means DefaultMaxStreamBytes.
	MaxStreamBytes int
	// UnorderedReplies compares the replies of a server stream as a
	// multiset, for services whose order is not part of the contract.
	// Every reply is then kept until the end, within the bounds above.
	UnorderedReplies bool
	// CompareHeader compares the response header metadata (all keys but
	// content-type and grpc-*).
	CompareHeader bool
}

// Option configures a [ParallelRun].
type Option func(*options)

type methodRule struct {
	pattern string
	config  MethodConfig
}

type options struct {
	methods         []methodRule
	sinks           []sink.Sink
	tracerProvider  trace.TracerProvider
	meterProvider   metric.MeterProvider
	maxInFlight     int
	reportQueue     int
	maxTimeout      time.Duration
	maxRequestBytes int
	maxSpanEvents   int
	rewriteMD       func(context.Context, metadata.MD) metadata.MD
	errorHandler    func(error)
}

// WithMethod mirrors the methods that pattern matches with config. A
// pattern is a full method ("/pkg.Service/Method"), a whole service
// ("/pkg.Service/*") or every method ("*"); the most specific pattern that
// matches wins. Methods that no pattern matches are not mirrored: a
// duplicated write is always an explicit choice.
func WithMethod(pattern string, config MethodConfig) Option {
	return func(o *options) { o.methods = append(o.methods, methodRule{pattern, config}) }
}

// WithSink adds a sink that receives a report for every compared call.
// Several sinks all receive every report.
func WithSink(s sink.Sink) Option {
	return func(o *options) {
		if s != nil {
			o.sinks = append(o.sinks, s)
		}
	}
}

// WithTracerProvider sets where comparison spans go; the global provider
// by default. nil is ignored.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) {
		if tp != nil {
			o.tracerProvider = tp
		}
	}
}

// WithMeterProvider sets where metrics go; the global provider by default.
// nil is ignored.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) {
		if mp != nil {
			o.meterProvider = mp
		}
	}
}

// WithMaxInFlight bounds the candidate calls and comparisons running at
// once (default [DefaultMaxInFlight]). Past it, calls are not mirrored and
// count as dropped: the caller never waits.
func WithMaxInFlight(n int) Option {
	return func(o *options) { o.maxInFlight = n }
}

// WithReportQueue bounds the reports waiting for the sinks (default
// [DefaultReportQueue]). Past it, reports are dropped and counted.
func WithReportQueue(n int) Option {
	return func(o *options) { o.reportQueue = n }
}

// WithMaxCandidateTimeout caps the candidate's deadline for methods
// without a Timeout (default [DefaultMaxCandidateTimeout]); it is also the
// candidate's deadline when the caller has none.
func WithMaxCandidateTimeout(d time.Duration) Option {
	return func(o *options) { o.maxTimeout = d }
}

// WithMaxRequestBytes sets the largest request, encoded, that a report
// carries (default [DefaultMaxRequestBytes]); 0 leaves requests out.
func WithMaxRequestBytes(n int) Option {
	return func(o *options) { o.maxRequestBytes = n }
}

// WithMaxSpanEvents bounds the difference events on one comparison span
// (default [DefaultMaxSpanEvents]).
func WithMaxSpanEvents(n int) Option {
	return func(o *options) { o.maxSpanEvents = n }
}

// WithCandidateMetadata rewrites the outgoing metadata of every candidate
// call: credentials, tenant or routing headers often differ per target.
// It gets a copy of the caller's metadata, already marked with [RoleKey],
// and returns what the candidate receives. A panic in it is recovered and
// counted as an internal error; the call is then not mirrored.
func WithCandidateMetadata(f func(ctx context.Context, md metadata.MD) metadata.MD) Option {
	return func(o *options) { o.rewriteMD = f }
}

// WithErrorHandler receives what goes wrong inside the parallel run: sink
// errors, dropped reports, recovered panics. None of it ever reaches a
// caller. The default is the OpenTelemetry global error handler
// (otel.Handle).
func WithErrorHandler(f func(error)) Option {
	return func(o *options) {
		if f != nil {
			o.errorHandler = f
		}
	}
}
