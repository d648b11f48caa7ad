// Package readiness judges, per method, whether a parallel run's candidate
// is ready to be promoted, from the run's reports.
//
// A [Tracker] takes reports ([parallelrunv1.Report]), through [Tracker.Add]
// or as a [sink.Sink] given to the interceptor, and [Tracker.Status] returns a
// [parallelrunv1.RunStatus]: per method, how its calls ended, the streak of
// calls compared since the last mismatch, the rates and latencies within a
// window, the fields and signatures that differ most, and a verdict with
// its reasons in plain words. The live status page serves it; the summary
// command builds one Tracker from the report files of several client
// instances.
//
// # Policy
//
// A [parallelrunv1.ReadinessPolicy] says when a candidate is ready.
// [DefaultPolicy] has every field set to the defaults status.proto
// documents; [WithPolicy] overrides the fields it sets, and
// [WithMethodPolicy] overrides, for "*", a service ("/pkg.Service/*") or a
// method, the fields it sets of the run's: a method's policy is the run's,
// then "*"'s, then its service's, then its own ([Merge] layers them).
// [Check] validates a policy, and [NewTracker] and [Tracker.SetPolicy]
// return an error that names the method and the field of the first bad
// value.
//
// # Counting
//
// Reports are taken in the order they are added. A report counts once in
// outcomes, by its outcome; a report whose outcome is unspecified (or
// unknown to this version) is ignored. "Compared" calls are matches and
// mismatches; calls that "reached the candidate" are those and candidate
// errors. A report's time is report.time; a report without one (or with an
// invalid one) takes the newest time seen so far, and while no time has
// been seen it counts in outcomes and the streak but in no window. Times
// are clamped to the years 1970 to 2116.
//
// Methods are named as gRPC names them, "/pkg.Service/Method"; the
// interceptor's reports leave the slash out, as OpenTelemetry's
// rpc.method does, and both spellings are one method. At most
// [WithMaxMethods] methods are kept by name; the reports of further ones,
// of methods without a name and of names longer than 512 bytes count
// under [Other], which is judged like a method by the run's policy.
//
// # Streak
//
// The streak is the calls compared (matches) added after the last mismatch
// added, or all of them when there was none. Its duration runs from the
// last mismatch's time, or when there was none from the time of the first
// compared call added, to the time judged at, and is never negative. The
// last mismatch is described by its first difference's path, or when it
// has none by its status codes ("status: OK != INTERNAL"), and its trace
// ID. The order is the arrival order, not the reports' times: a match
// added after a mismatch lengthens the streak even when its time is
// earlier.
//
// # Window
//
// window_outcomes, mismatch_rate, candidate_error_rate and the latencies
// count the reports with a time in the window (now - window, now], to the
// precision of its buckets: a window is cut into 60 buckets of window/60
// (a minute of the default hour; rounded up to the nanosecond), aligned
// on the epoch, and the window at now is the 60 buckets that end with the
// one holding now. A report thus counts for at least window - window/60
// and at most window after its time, and so does a report up to a bucket
// newer than now. Memory is a fixed 60 buckets per method whatever the
// traffic. A report older than the window ending at the newest time seen,
// when it is added, counts in outcomes but in no window. A rate whose
// denominator is zero is 0. When [Tracker.SetPolicy] changes a method's
// window, each of its buckets moves whole into the new bucket holding the
// old one's last instant, so that nothing leaves the window earlier than
// its time says (a mismatch may stay up to an old bucket longer); what the
// old window had let go does not come back.
//
// # Latency
//
// The legacy_latency and candidate_latency of the reports that have them,
// within the window, are counted in log-scale histograms of bins a factor
// 1.04 apart from 1 µs to about 4.4 h. The p50, p90 and p99 are the
// nearest-rank percentiles (the value at rank ceil(q·count)) given as the
// midpoint of their bin: within 2% of the exact value for latencies in
// that range (1.96% by construction, and the midpoint's rounding to the
// nanosecond); below it they read 1 µs, above it about 4.4 h. count is
// the number of latencies. A bucket's histogram holds only the bins it
// uses, 8 bytes each, at most 600 per side.
//
// # Fields and signatures
//
// Each MISMATCH report counts once for each distinct field among its
// differences in top_fields, with the latest difference at the field as
// its example (copied: reports are redacted already), its trace ID and its
// time. The noise differences of a report of any outcome count the same
// way in noise_fields. Each mismatch counts under its signature in
// top_signatures, described by the sorted distinct "field:kind" of its
// differences (kinds as [sink.KindName] writes them), both status codes,
// the trace IDs of the first 5, and the first and last time seen; a
// mismatch without a signature is not grouped. To bound memory, a method
// keeps at most max(4n, 64) distinct fields, noise fields and signatures
// for n of [WithTopFields], and counts newcomers past that under [Other];
// the lists hold the n largest counts, largest first, then by name. A
// field or signature longer than 512 bytes counts under Other; an example
// value or path longer than that is cut, a trace ID or status code past 64
// bytes too, and a signature's description keeps its first 64 fields
// within 2 KiB.
//
// # Memory
//
// A method holds at most about 1.5 MiB whatever its reports (for n up to
// 16 in [WithTopFields], each unit more adding up to 40 KiB; a test feeds
// it the worst and finds about 1 MiB), most of it the histograms of
// latencies spread over every bin; an hour of real traffic at 100 calls
// a second, latencies around a mean, takes about 60 KiB. A Tracker holds
// at most [WithMaxMethods] + 1 methods. [Tracker.Add] allocates nothing
// for a match, nor for a mismatch whose fields and signature it has seen
// (one that differs only in status codes allocates its description).
//
// # Verdict
//
// A method is NOT_READY when any of these holds, each giving a reason:
// its mismatch rate exceeds max_mismatch_rate; its candidate error rate
// exceeds max_candidate_error_rate; max_p99_latency_ratio is positive, both
// sides have latencies and the candidate's p99 over the legacy p99 exceeds
// it; or a mismatch happened and the streak has fewer calls than
// min_streak_calls ("412 of 1,000 calls compared since the last
// mismatch") or lasted less than min_streak_duration ("last mismatch 12m
// ago at quote.total.nanos (trace 4bf9…), 1h needed"). Otherwise it is
// NOT_ENOUGH_DATA when fewer calls than min_compared were compared ("3,120
// of 10,000 calls compared") or, without any mismatch, the streak is
// shorter than min_streak_calls or min_streak_duration. Otherwise it is
// READY, with the evidence as reasons ("12,340 calls compared, none
// mismatched in the last 1h", "streak of 5,000 calls over 3h12m", the
// candidate error rate, the latency ratio when checked).
//
// [Judge] and [JudgeRun] judge a status built elsewhere (from the metrics
// of a fleet of client instances, by the summary command) by the same
// rules and words.
//
// The run is NOT_READY when any method is, else NOT_ENOUGH_DATA when any
// method is or there is none ("no calls compared yet"), else READY; its
// reasons say how many methods are ready and name those that are not. A
// [parallelrunv1.Readiness] carries the policy it was judged by, with
// every field set.
package readiness
