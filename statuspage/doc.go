// Package statuspage serves where a parallel run stands, a
// [parallelrunv1.RunStatus], as a web page for a person and as JSON for a
// machine.
//
// A [Handler] gets the status from a function at each request, so it knows
// nothing of where the status is computed: a live run, or the reports
// written by several client instances. Mount it on any path of an existing
// server, with [http.StripPrefix]; the page's links are relative.
//
// # The page
//
// GET on the handler's root renders, from top to bottom: a banner when
// mirroring is stopped (the kill switch), the overall verdict with its
// reasons and the policy judged by, then a table with a row per method (its
// verdict, the calls compared, the mismatch and candidate error rates
// within the window, the streak since the last mismatch, the last mismatch
// and where, both sides' p50 and p99 latencies; a rate or latency beyond
// the policy is marked). Below the table, per method, come the calls by
// outcome, the fields that differ most with an example of each (the
// redacted legacy and candidate values as reported), the distinct problems
// (mismatch signatures) with their counts and first traces, and the noise
// fields. Trace IDs link to a tracing UI with [WithTraceURL]. The page
// reloads itself every [DefaultRefresh] ([WithRefresh]), and is readable
// without any network: it loads nothing but itself.
//
// # The JSON
//
// status.json, or the root with ?format=json or a request that prefers
// application/json in its Accept header, returns the message as protojson
// with the field names of the .proto file, the form in which the JSONL sink
// writes reports. Only GET and HEAD are answered (405 otherwise), and other
// paths are not found.
//
// # Security
//
// Everything shown comes, in the end, from the replies of an unfinished
// service, so it is treated as hostile:
//
//   - The page is rendered with html/template, which escapes every value
//     for where it stands: element text or attribute.
//   - A trace ID becomes a link only when it is 32 lowercase hex digits
//     (and not all zero, the invalid ID); anything else is shown as text.
//     The link template must be an http or https URL, checked by [New].
//   - Responses carry a Content-Security-Policy that allows nothing but the
//     page's own inline style sheet, by its hash: no script (the page has
//     none; it reloads with a meta refresh), no image, no frame, no form.
//     An injection that got past the escaping would still do nothing.
//     X-Content-Type-Options: nosniff keeps the JSON from being read as
//     anything else, Cache-Control: no-store keeps the status out of
//     caches, and Referrer-Policy: no-referrer keeps the page's address
//     from the tracing UI.
//   - A panic of the status function, or a nil status, is answered with a
//     500 and a short message, never with the panic's contents; the error
//     goes to [WithErrorHandler].
//   - The page shows no more than the message holds, and each value once in
//     full at most: a value longer than [MaxShown] characters is cut, with
//     the whole value in the element's title, and a signature's trace IDs
//     beyond [MaxTraceLinks] are counted. Its size, and the time to render
//     it, are linear in the message's.
package statuspage
