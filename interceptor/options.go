package interceptor

import (
	"context"
	"time"

	"google.golang.org/grpc"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
	"github.com/parallelrun/grpc-parallelrun/readiness"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// Defaults, each changed by an option.
const (
	// DefaultMaxInFlight bounds the candidate calls and comparisons running
	// at once: about a thousand requests per second with a candidate that
	// answers in a second, or ten thousand at 100 ms.
	DefaultMaxInFlight = 1024
	// DefaultMemoryBudget bounds the bytes held for comparisons at once,
	// over all calls: copies of requests and replies, and stream buffers.
	DefaultMemoryBudget = 64 << 20
	// DefaultReportQueue bounds the reports waiting for the sink.
	DefaultReportQueue = 1024
	// DefaultMaxCandidateTimeout caps the candidate's deadline when a
	// method has no timeout of its own.
	DefaultMaxCandidateTimeout = 10 * time.Second
	// DefaultMaxRequestBytes is the most a report carries of what the
	// caller sent: one request, or a stream's first messages together.
	DefaultMaxRequestBytes = 64 << 10
	// DefaultMaxSpanEvents bounds the difference events on one span.
	DefaultMaxSpanEvents = 16
	// DefaultMaxStreamMessages and DefaultMaxStreamBytes bound what one
	// mirrored stream buffers (within the memory budget).
	DefaultMaxStreamMessages = 1024
	DefaultMaxStreamBytes    = 16 << 20
	// MaxStreamDifferences bounds the differences reported for one stream.
	MaxStreamDifferences = 64
	// DefaultBreakerFailures and DefaultBreakerBackoff: after this many
	// candidate calls of a method in a row fail as calls, the method is
	// not mirrored for the backoff, then probed.
	DefaultBreakerFailures = 5
	DefaultBreakerBackoff  = time.Second
)

// RoleKey is the metadata key set on every candidate call, with the value
// "candidate", so that the candidate service can tell mirrored traffic from
// real traffic and suppress side effects (emails, payments, writes).
const RoleKey = "parallel-run-role"

// MethodConfig says how one method, or a set of methods, is mirrored.
type MethodConfig struct {
	// Disabled turns mirroring off for the matching methods, for example
	// one writing method of a service that is otherwise mirrored. Nothing
	// mirrors a disabled method, not even [Force].
	Disabled bool
	// SampleRate is the fraction of calls mirrored, in (0, 1]: 1 mirrors
	// every call, 0.1 one in ten. It must be set unless Disabled is: 0 is
	// an error rather than a default, since "0 means all" and "0 means
	// off" are both easy to read into it, and one of them duplicates
	// writes. Turn a method off with Disabled.
	SampleRate float64
	// Timeout is the candidate call's own deadline. 0 means the caller's
	// remaining deadline, capped by WithMaxCandidateTimeout.
	Timeout time.Duration
	// Diff are the options replies are compared with, such as ignored
	// paths for fields that differ on every call. When the method's
	// service is in the protobuf registry, New checks every path and field
	// they name against the method's reply type.
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
	// MaxStreamBytes bounds the bytes of those buffered messages; past it,
	// or past the memory budget shared by all calls, the comparison is
	// abandoned. 0 means DefaultMaxStreamBytes.
	MaxStreamBytes int
	// UnorderedReplies compares the replies of a server stream as a
	// multiset, for services whose order is not part of the contract.
	// Every reply is then kept until the end, within the bounds above.
	UnorderedReplies bool
	// CompareHeader compares the response header metadata (all keys but
	// content-type and grpc-*).
	CompareHeader bool
	// IgnoredHeaders are header keys left out of that comparison, such as
	// a date or a request ID that differs on every call.
	IgnoredHeaders []string
	// RedactedHeaders are header keys whose values are compared but never
	// shown, besides those that always are: authorization,
	// proxy-authorization, cookie, set-cookie and x-api-key.
	RedactedHeaders []string

	// Noise finds the fields that differ on every call (generated IDs,
	// timestamps, the answering host) by asking the legacy service twice.
	// Unary methods only.
	Noise NoiseConfig
}

// NoiseConfig sets a method's noise probes. On a probed call the request
// also goes to a second legacy instance, and the fields where the two
// legacy answers differ are noise: the legacy service does not agree with
// itself there, so the candidate cannot be held to it. Per index-free
// field, the parallel run counts how often the candidate differs from the
// legacy service and how often the legacy service differs from itself;
// once a field has enough evidence and the candidate's rate does not
// clearly exceed the noise rate (see [WithNoiseRule]), its differences are
// reported apart, as noise, and a call with only noise differences is a
// match. On a probed call, a candidate difference at a path where the two
// legacy answers differ too is noise for that call whatever the counts.
//
// A probe calls the legacy service a second time, with the metadata
// [RoleKey] set to "noise-probe". A method whose proto does not declare
// idempotency_level = NO_SIDE_EFFECTS is probed only with AllowWrites:
// [New] fails for such a method configured by its full name, and a
// service pattern probes only the methods declared free of side effects.
type NoiseConfig struct {
	// ProbeRate is the fraction of mirrored calls also sent to the
	// second legacy instance, in [0, 1]; 0 turns probes off.
	ProbeRate float64
	// Secondary is the second legacy instance; nil sends probes through
	// the legacy connection itself (the parallel run skips them), which
	// works when it balances over instances, or when the noise comes from
	// the calls rather than the instances (IDs, timestamps).
	Secondary grpc.ClientConnInterface
	// Timeout is a probe's own deadline; 0 means the candidate's.
	Timeout time.Duration
	// AllowWrites probes a method that is not declared free of side
	// effects.
	AllowWrites bool
}

// Option configures a [ParallelRun].
type Option func(*options)

type options struct {
	methods         []MethodRule
	configs         []fileConfig // WithConfig's
	sinks           []sink.Sink
	tracerProvider  trace.TracerProvider
	meterProvider   metric.MeterProvider
	maxInFlight     int
	memoryBudget    int
	reportQueue     int
	maxTimeout      time.Duration
	maxRequestBytes int
	maxSpanEvents   int
	rewriteMD       func(context.Context, metadata.MD) metadata.MD
	errorHandler    func(error)
	rootSpans       bool
	errorStatus     []parallelrunv1.Outcome
	breakerFailures int
	breakerBackoff  time.Duration
	readiness       []readiness.Option
	noiseRule       noiseRule
}

// WithMethod mirrors the methods that pattern matches with config. A
// pattern is a full method ("/pkg.Service/Method", as gRPC names it, or
// "pkg.Service/Method", as OpenTelemetry does), a whole service
// ("/pkg.Service/*") or every method ("*"); the most specific pattern that
// matches wins. Methods that no pattern matches are not mirrored: a
// duplicated write is always an explicit choice.
//
// When the service is in the protobuf registry (generated code registers
// it), New checks that the method exists and that config.Diff names only
// paths and fields of its reply type; a service that is not registered is
// accepted, and said once to the error handler.
func WithMethod(pattern string, config MethodConfig) Option {
	return func(o *options) { o.methods = append(o.methods, MethodRule{pattern, config}) }
}

// WithSink adds a sink that receives a report for every compared call.
// Several sinks all receive every report, each isolated from the others'
// failures and panics. nil is ignored; a typed nil (a nil *sink.JSONL, say)
// is an error.
func WithSink(s sink.Sink) Option {
	return func(o *options) {
		if s != nil {
			o.sinks = append(o.sinks, s)
		}
	}
}

// WithTracerProvider sets where comparison spans go; the global provider
// by default. nil is ignored; a typed nil is an error.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) {
		if tp != nil {
			o.tracerProvider = tp
		}
	}
}

// WithMeterProvider sets where metrics go; the global provider by default.
// nil is ignored; a typed nil is an error.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) {
		if mp != nil {
			o.meterProvider = mp
		}
	}
}

// WithMaxInFlight bounds the candidate calls and comparisons running at
// once (default [DefaultMaxInFlight]). Past it, calls are not mirrored and
// count as dropped (reason max_in_flight): the caller never waits.
func WithMaxInFlight(n int) Option {
	return func(o *options) { o.maxInFlight = n }
}

// WithMemoryBudget bounds the bytes held for comparisons at once, over all
// calls (default [DefaultMemoryBudget]): the copy of each request, the
// wire bytes of both replies, and the messages streams buffer. A call whose
// request does not fit is not mirrored and counts as dropped (reason
// memory_budget); a comparison whose replies do not fit is abandoned
// (reason memory_bound). The legacy call never notices either. What a
// comparison decodes while it runs is not counted: it is about as large as
// the copies and lives as long as one comparison.
func WithMemoryBudget(bytes int) Option {
	return func(o *options) { o.memoryBudget = bytes }
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

// WithMaxRequestBytes sets how much of what the caller sent, encoded, a
// report carries (default [DefaultMaxRequestBytes]): a unary or
// server-streaming call's request if it fits, a client or bidirectional
// stream's first messages as long as they fit together. The report of a
// mismatch also keeps the legacy reply, or a stream's first replies, within
// a second allowance of the same size, so that the call can be replayed
// against a fixed candidate (`parallelrun replay`). Sensitive fields
// (debug_redact) are cleared in both. 0 leaves requests and replies out.
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
// Without it the candidate receives all of the caller's outgoing metadata,
// authorization included, plus [RoleKey]. f gets a copy of that metadata
// and returns what the candidate receives instead; [RoleKey] is set again
// on what it returns, whatever it did. f runs in the candidate's goroutine
// with the candidate call's context, and must return when that context
// ends: a hook that blocks holds the call's place in flight, and Close
// waits for it. A panic in f is recovered and the call ends as an internal
// error, without a candidate call.
func WithCandidateMetadata(f func(ctx context.Context, md metadata.MD) metadata.MD) Option {
	return func(o *options) { o.rewriteMD = f }
}

// WithCandidateBreaker sets when a method whose candidate is failing stops
// being mirrored for a while (defaults [DefaultBreakerFailures] and
// [DefaultBreakerBackoff]). After failures candidate calls of the method in
// a row fail as calls (out of time or unreachable), its calls are not
// mirrored for backoff and count as skipped (reason candidate_failing);
// then one call probes the candidate. A probe that fails doubles the
// pause, up to 64 times backoff; any answer of the candidate ends it.
// A stalled or down candidate thus costs the caller's process next to
// nothing, instead of a call sent only to time out for every mirrored
// call, each holding its place in flight. failures 0 turns it off.
func WithCandidateBreaker(failures int, backoff time.Duration) Option {
	return func(o *options) { o.breakerFailures, o.breakerBackoff = failures, backoff }
}

// WithNoiseRule sets when a field is noise (defaults
// [DefaultNoiseMinProbes], [DefaultNoiseRelative], [DefaultNoiseAbsolute]):
// once a method has had minProbes noise probes compared and the legacy
// service differed from itself at the field in at least one, the field is
// noise unless the candidate's rate of differences there, r, clearly
// exceeds the legacy service's own, q: r > q, (r-q)/(r+q) > relative and
// r-q > absolute (Diffy's rule, on rates, since probes are a sample). The
// rule is applied to the counts as they are at each call, so a field that
// turns out not to be noise comes back.
func WithNoiseRule(minProbes int, relative, absolute float64) Option {
	return func(o *options) { o.noiseRule = noiseRule{int64(minProbes), relative, absolute} }
}

// WithRootSpans records each comparison span as the root of a trace of its
// own, linked to the caller's span, instead of as the caller's child. A
// child span follows the caller's sampling decision, so with a head
// sampler keeping 1% of traces, 99% of mismatches are never recorded; a
// root span is sampled on its own, and since it carries
// parallelrun.outcome and parallelrun.mismatch when it starts, a sampler
// can keep every mismatch (see the package example of sampling).
func WithRootSpans() Option {
	return func(o *options) { o.rootSpans = true }
}

// WithErrorStatus sets the status of comparison spans to Error for the
// given outcomes too, for example OUTCOME_MISMATCH. By default only
// internal_error (a failure of the parallel run itself) does: a mismatch or
// a failing candidate is what a parallel run is for finding, and marking it
// an error would inflate the client's error rate in metrics derived from
// spans.
func WithErrorStatus(outcomes ...parallelrunv1.Outcome) Option {
	return func(o *options) { o.errorStatus = append(o.errorStatus, outcomes...) }
}

// WithErrorHandler receives what goes wrong inside the parallel run: sink
// errors, dropped reports, recovered panics. None of it ever reaches a
// caller. The default is the OpenTelemetry global error handler
// (otel.Handle). It is called from the parallel run's goroutines; a panic
// in it is recovered and dropped.
func WithErrorHandler(f func(error)) Option {
	return func(o *options) {
		if f != nil {
			o.errorHandler = f
		}
	}
}

// WithReadiness sets how [ParallelRun.Status] judges whether the candidate
// is ready to be promoted: the policy ([readiness.WithPolicy], per method
// [readiness.WithMethodPolicy]) and the bounds of what it keeps. By
// default the policy is [readiness.DefaultPolicy].
func WithReadiness(opts ...readiness.Option) Option {
	return func(o *options) { o.readiness = append(o.readiness, opts...) }
}
