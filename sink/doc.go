// Package sink receives the reports of a parallel run: one
// [parallelrunv1.Report] per mirrored call, with its outcome, the
// differences between the legacy and candidate replies, both statuses and
// latencies, the trace and the (redacted) request.
//
// A [Sink] is anything with [Sink.Publish] and [Sink.Flush]. The interceptor
// calls Publish from one goroutine of its own, through a bounded queue, so a
// slow or failing sink never holds up a caller: when the queue is full the
// report is dropped and counted. Flush is called when the interceptor
// closes.
//
// Built in: [JSONL] writes one protojson object per line to a writer or a
// file, [Slog] logs through log/slog, [Memory] keeps reports for tests and
// can wait for them, [Multi] sends each report to several sinks, and [Func]
// turns a function into a sink.
package sink
