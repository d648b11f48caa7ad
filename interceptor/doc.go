// Package interceptor runs a candidate implementation of a gRPC service in
// parallel with the legacy one, from the client side, on real traffic.
//
// A [ParallelRun] is a set of client interceptors. Installed on the client
// connection to the legacy service ([ParallelRun.DialOptions], or
// [ParallelRun.UnaryClientInterceptor] and [ParallelRun.StreamClientInterceptor]
// in a chain), it sends each configured
// call to the legacy service as usual and, at the same time, a copy to the
// candidate connection given to [New]. The caller always gets the legacy
// reply: the same reply, error, headers and trailers, with no wait for the
// candidate. In the background the two replies are compared with
// [protodiff], and the result is recorded three ways: on an OpenTelemetry
// span (a child of the caller's span, with one event per difference),
// in OpenTelemetry metrics, and as a report for the sinks of package sink.
//
// # What is mirrored
//
// Nothing, unless configured: [WithMethod] takes a full method, a service
// ("/pkg.Service/*") or "*", and a [MethodConfig] with the sample rate, the
// candidate's timeout, the comparison options and whether status messages
// are compared; the most specific pattern wins. [Skip] and [Force] decide
// per call.
//
// # Streams
//
// Server-, client- and bidirectional streams are mirrored too. What the
// caller sends is copied to a candidate stream; what the legacy stream
// returns goes to the caller unchanged and is copied for the comparison.
// Replies are compared by position as both sides produce them, with paths
// prefixed by the index (`[3].price.units`); extra or missing replies are
// Added or Removed; then the final statuses, and the response headers if
// MethodConfig.CompareHeader is set. MethodConfig.UnorderedReplies compares
// the replies as a multiset instead. The legacy stream never waits: copies
// go through buffers bounded by MethodConfig.MaxStreamMessages and
// MaxStreamBytes, and when the candidate falls that far behind, or the
// copies outgrow the bytes, the comparison is abandoned (outcome abandoned,
// with the reason on the span and in the report) while the legacy stream
// goes on. Memory per stream is bounded by what one side is ahead of the
// other, not by the stream's length. The candidate side, and every
// goroutine of ours, ends by the candidate's deadline at the latest, also
// when the caller leaves a stream without draining it. Stream message
// types are taken from the global protobuf registry, where generated code
// registers them.
//
// # Outcomes
//
// Every mirrored call ends in exactly one outcome: match, mismatch (another
// status code, another status message if compared, or another reply),
// candidate_error (the candidate was unreachable, cancelled or out of time:
// a failure of the call, not of its logic), legacy_error (the same of the
// legacy call: no legacy answer to hold the candidate to), caller_canceled
// (the caller's context ended before the legacy reply: nothing to compare),
// abandoned (a
// stream comparison given up half-way, see Streams), dropped (the limit of
// calls in flight, [WithMaxInFlight], was reached) and internal_error (a
// panic of ours or of a hook, recovered). Calls not mirrored are counted
// apart, by reason.
//
// # What the candidate receives
//
// A clone of the request, made before the interceptor returns, so the
// caller may reuse it at once. A context with the caller's values (trace, outgoing
// metadata) but not its cancellation, with its own deadline (the method's
// Timeout, or the caller's deadline capped by [WithMaxCandidateTimeout]),
// and the metadata key [RoleKey] set to "candidate" so that the service can
// suppress side effects; [WithCandidateMetadata] rewrites the rest. Call
// options that belong to the caller's call (grpc.Header, grpc.Trailer,
// grpc.Peer, grpc.OnFinish, per-RPC credentials, authority) are not passed
// on.
//
// # Safety
//
// The caller's path does a method lookup, a clone of the request, a copy of
// the reply (its wire bytes, tapped from the registered proto codec, or a
// clone when the call picks its own codec), and a non-blocking hand-off.
// Streams copy every message's wire bytes the same way. Candidate calls,
// comparisons and reports run in goroutines bounded by [WithMaxInFlight];
// reports reach the sinks through a bounded queue ([WithReportQueue]). When
// a bound is reached, work is dropped and counted, never waited for. Errors and
// recovered panics go to [WithErrorHandler], never to the caller.
// [ParallelRun.Close] stops mirroring, waits for the work in flight and
// flushes the sinks.
package interceptor
