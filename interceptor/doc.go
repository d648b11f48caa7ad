// Package interceptor runs a candidate implementation of a gRPC service in
// parallel with the legacy one, from the client side, on real traffic.
//
// A [ParallelRun] is a set of client interceptors. Installed on the client
// connection to the legacy service ([ParallelRun.DialOptions], or
// [ParallelRun.UnaryClientInterceptor] and [ParallelRun.StreamClientInterceptor]
// in a chain), it sends each configured call to the legacy service as usual
// and, at the same time, a copy to the candidate connection given to [New].
// The caller always gets the legacy reply: the same reply, error, headers
// and trailers, and the same panic if something below panics, with no wait
// for the candidate. In the background the two replies are compared with
// [protodiff], and the result is recorded three ways: on an OpenTelemetry
// span with one event per difference, in OpenTelemetry metrics, and as a
// report for the sinks of package sink.
//
// # What is mirrored
//
// Nothing, unless configured: [WithMethod] takes a full method, a service
// ("/pkg.Service/*") or "*", and a [MethodConfig] with the sample rate (which
// must be set: 1 mirrors every call), the candidate's timeout, the comparison
// options and whether status messages are compared; the most specific
// pattern wins. Disabled turns a method off, and nothing overrides it.
// [Skip] and [Force] decide per call; the kill switch (see Runtime
// control) stops even Force. When a configured service is in the
// protobuf registry (generated code registers it), [New] checks the method
// names and the comparison options against it, so that a typo is an error
// rather than a method silently not mirrored, or a write silently mirrored.
//
// # Runtime control
//
// The method configuration can change while the program runs, without a
// redeploy. [ParallelRun.SetMethods] replaces all the rules at once,
// checked as [New] checks them (on error nothing changes): calls that
// start after it use the new rules, calls in flight finish under the
// rules they started with, and the call path takes no lock for it. What a
// method has learnt is carried over unless the change makes it wrong:
// its noise evidence is dropped when its comparison options or noise
// probes change, since differences counted under other options are no
// evidence; its mismatch signatures are kept; its candidate breaker is
// kept unless its timeout changes. [ParallelRun.SetDisabled] is the kill
// switch: nothing is mirrored or probed, not even with [Force], and a call
// costs one atomic load more; the gauge parallelrun.mirroring.enabled says
// so.
//
// A configuration file is the JSON form of parallelrunv1.Config
// (proto/parallelrun/v1/config.proto). [ReadConfig] and [ParseConfig] read
// and check it, with errors that name the file, the line and the key path
// ([ConfigError]); [MethodRules] turns it into rules, given the program's
// connections by name for noise probes; [WithConfig] starts a parallel run
// with it, and [ParallelRun.ApplyConfig] puts a new one in force, all or
// nothing. examples/reload reloads its file on SIGHUP.
//
// # Outcomes
//
// Every mirrored call ends in exactly one outcome, decided in one place from
// what each side's call came to, in this order of precedence:
// internal_error (a failure of the parallel run itself, or a panic of a hook,
// recovered), legacy_error when the legacy call panicked below the parallel
// run, caller_canceled (the caller's context ended before the legacy call
// did: nothing to compare with, and the candidate is cancelled at once),
// abandoned (the comparison was given up for the reason in
// [AbandonReasonKey]: a stream's candidate fell too far behind, a copy did
// not fit in memory, or the legacy stream outlived the candidate's
// deadline), legacy_error (the legacy call failed as a call: unreachable,
// cancelled, out of time), candidate_error (the same of the candidate's
// call: a failure of the call, not of its logic), and then mismatch
// (another status code, another status message if compared, another reply)
// or match. Calls not mirrored are counted apart, by reason, and so are
// calls dropped because a bound was reached ([WithMaxInFlight],
// [WithMemoryBudget]).
//
// # Streams
//
// Server-, client- and bidirectional streams are mirrored too. What the
// caller sends is copied to a candidate stream; what the legacy stream
// returns goes to the caller unchanged and is copied for the comparison.
// Replies are compared by position as both sides produce them, with paths
// prefixed by the index (`[3].price.units`); extra or missing replies are
// Added or Removed, rendered with the method's comparison options; then the
// final statuses, and the response headers if MethodConfig.CompareHeader is
// set. MethodConfig.UnorderedReplies compares the replies as a multiset
// instead. The legacy stream never waits: copies go through queues bounded
// by MethodConfig.MaxStreamMessages and MaxStreamBytes and the memory
// budget, and when the candidate falls that far behind, or the copies do
// not fit, the comparison is abandoned while the legacy stream goes on.
// When the caller cancels a stream, or its context ends while it has not
// read the stream to its end, the candidate stream ends at once; a stream
// the caller keeps open without reading ends the candidate's side at the
// candidate's deadline. Stream message types are taken from the global
// protobuf registry, where generated code registers them. A report of a
// client or bidirectional stream keeps the first messages the caller sent,
// and the report of a mismatch the legacy replies, within
// [WithMaxRequestBytes].
//
// # What the candidate receives
//
// A clone of the request, made before the interceptor returns, so the caller
// may reuse it at once. A context with the caller's values (trace, outgoing
// metadata: all of it, authorization included) but not its cancellation,
// with its own deadline (the method's Timeout, or the caller's deadline
// capped by [WithMaxCandidateTimeout]), and the metadata key [RoleKey] set to
// "candidate" so that the service can suppress side effects;
// [WithCandidateMetadata] rewrites the rest, for example to replace the
// credentials. Call options that belong to the caller's call (grpc.Header,
// grpc.Trailer, grpc.Peer, grpc.OnFinish, per-RPC credentials, authority,
// WaitForReady) are not passed on. A stateful service diverges from the
// legacy one as soon as the two sides' state does: mirror reads, or give the
// candidate a copy of the state.
//
// # Noise and signatures
//
// Replies carry what differs on every call: generated IDs, timestamps,
// the answering host. With MethodConfig.Noise ([NoiseConfig]) a share of
// a unary method's calls also go to a second legacy instance, and per
// index-free field the parallel run counts how often the candidate
// differs from the legacy service and how often the legacy service differs
// from itself; a field with evidence of the second whose first is not
// clearly larger is noise ([WithNoiseRule]): its differences are kept
// apart and do not make a call a mismatch. A mismatch gets a stable
// signature from its sorted (field, kind) pairs and status codes, so that
// many reports read as the few problems they are; [ParallelRun.Signals]
// returns both, per method. A stream whose replies are the legacy ones in
// another order is one difference at [OrderPath].
//
// # Readiness
//
// [ParallelRun.Status] says where the run stands, per method: how its calls
// ended, the streak of calls compared since the last mismatch and where
// that mismatch was, rates and latencies within a window, the fields and
// signatures that differ most with an example each, and whether the
// candidate is ready to be promoted, with its reasons ([WithReadiness] sets
// the policy; package readiness documents it). Every mirrored call counts,
// dropped ones too, whether or not a sink is set; package statuspage serves
// it as a web page and as JSON.
//
// # A failing candidate
//
// A candidate that is down or stalled fails every call as a call: mirroring
// it would only send calls to time out, each holding its place in flight
// and its share of memory. After a few such failures in a row a method is
// not mirrored for a while, then one call probes the candidate, and any
// answer ends the pause ([WithCandidateBreaker]).
//
// # Memory and goroutines
//
// The caller's path does a method lookup, the request's size, a clone of
// the request, a copy of the reply as the caller got it (encoded, after
// every interceptor below has run: the call's codec and content-subtype are
// left alone) and a non-blocking hand-off. Streams copy every message the
// caller sends or receives the same way. Everything held for comparisons
// (request copies, both replies' bytes, stream buffers, the legacy replies
// kept for the report of a mismatch) counts against one budget, [WithMemoryBudget]; candidate
// calls and comparisons run in goroutines bounded by [WithMaxInFlight];
// reports reach the sinks through a bounded queue ([WithReportQueue]) from
// one goroutine that runs only while there are reports. When a bound is
// reached, work is dropped and counted, never waited for. Errors and
// recovered panics go to [WithErrorHandler], never to the caller.
// [ParallelRun.Close] stops mirroring, waits for the work in flight and
// flushes the sinks.
//
// # Tracing
//
// A comparison's span starts once its outcome is known, with the time the
// call started, so that it carries parallelrun.outcome and
// parallelrun.mismatch from its start and a sampler can decide on them. It
// is a child of the caller's span, as are the legacy and candidate client
// spans when the connections are instrumented; with [WithRootSpans] it is
// the root of a trace of its own, linked to the caller's span, so that the
// caller's sampling decision does not hide mismatches. Its status is Error
// only for internal_error, unless [WithErrorStatus] asks for more. Spans,
// metrics and reports name methods as OpenTelemetry's rpc.method does
// ("pkg.Service/Method"); calls to methods that are not configured are
// counted under [OtherMethod].
//
// # Metrics over a fleet
//
// Counters say how many calls mismatched, but not how many were compared
// since the last mismatch, which readiness needs and which no sum of
// counters over many instances gives. So each method also has three
// gauges: parallelrun.streak.calls, the calls this instance compared since
// its last mismatch (or in all); parallelrun.last_mismatch.time and
// parallelrun.first_compared.time, in seconds since the epoch, at the
// reports' times. Over a fleet the last mismatch is the latest of the
// instances', and each instance's streak bounds what it compared since
// then. A method's streak outlives a change of configuration
// ([ParallelRun.SetMethods]).
package interceptor
