// Package sink receives the reports of a parallel run: one
// [parallelrunv1.Report] per mirrored call, with its outcome, the
// differences between the legacy and candidate replies, both statuses and
// latencies, the trace and the (redacted) request.
//
// A [Sink] is anything with [Sink.Publish] and [Sink.Flush]. The interceptor
// calls Publish from one goroutine of its own, through a bounded queue, so a
// slow or failing sink never holds up a caller: when the queue is full the
// report is dropped and counted. Flush is called when the interceptor
// closes, with the context of Close, and should return by the time that
// context ends.
//
// Built in, all safe for concurrent use ([Func] as far as its function is):
//
//   - [JSONL] writes one protojson object per line to a writer or a file.
//     Publish and Flush wait for the writer no longer than their context; a
//     write that outlasts it goes on in the background and the next call
//     waits for it.
//   - [Slog] logs one record per report through log/slog, with the
//     differences as one list-valued attribute. Repeated candidate and
//     legacy errors are logged once per interval ([WithErrorInterval]);
//     Flush logs how many were left out.
//   - [OTelLog] emits one OpenTelemetry log record per report (the event
//     [EventName], the report's JSON as its body, its trace and span IDs)
//     through the application's LoggerProvider, so that every client
//     instance's reports reach one log store over OTLP.
//   - [Memory] keeps reports for tests and can wait for them.
//   - [Multi] sends each report to several sinks, isolated from each other:
//     one that fails or panics keeps no other from a report or from Flush.
//   - [Func] turns a function into a sink.
package sink
