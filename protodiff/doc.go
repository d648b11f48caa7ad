// Package protodiff compares two protobuf messages of the same type field by
// field and reports every difference with a path, for a parallel run that
// checks a candidate service's replies against the legacy one's.
//
// A [Differ] is built once with [New] from [Option] values and then used
// from any number of goroutines; [Differ.Diff] returns a [Result] that lists
// each [Difference] with its [Kind], its path and both values rendered as
// text. [Diff] is a shortcut for one-off comparisons. [Differ.Check] tells
// whether the options fit a message type, so that a typo in a path fails at
// start-up rather than silently never matching.
//
// # Semantics
//
// With no options, a [Result] is empty exactly when proto.Equal says the
// messages are equal, with one exception: a google.protobuf.Any is unpacked
// (with [WithAnyResolver], the global registry by default) and its payloads
// compared as messages, so two encodings of one message are equal and paths
// lead inside the payload. [WithRawAny] restores proto.Equal's byte
// comparison. Following proto.Equal: NaN equals NaN; +0 equals -0 except in a
// proto3 field without presence, where -0 is set and +0 is not; an unset
// message field differs from an empty one; nil and empty bytes are equal;
// unknown fields are compared per field number, in order within a number;
// a typed nil message differs from an empty one.
//
// Every option can only make more messages equal (ignoring fields,
// tolerating float error, comparing lists as multisets or by key, skipping
// unknown fields), and a result is empty exactly when the messages are
// equal under the options (past a limit of the budget, it may hold a
// difference that they excuse, but is never wrongly empty). Float
// tolerance ([WithFloatTolerance]) follows one rule everywhere: values
// equal as numbers are judged as without a tolerance (so the signed zeros
// and presence keep their meaning, and a zero tolerance changes nothing);
// otherwise x and y are equal when neither is NaN or infinite and
// |x-y| <= max(fraction*min(|x|,|y|), margin), an unset proto3 float
// counting as 0.
//
// # Cost
//
// A comparison costs time linear in the size of the two messages, whatever
// their shape (n log n where lists or map keys are sorted), with equal
// messages at about the cost of one proto.Equal:
//
//   - Below the root, the walk asks proto.Equal (through the generated fast
//     path; google.protobuf.Struct, Value and ListValue on their Go types,
//     several times faster) before it descends into a sub-message: its
//     "equal" is final. A path may hold one such check that answered
//     "unequal"; below it the walk goes on without asking, so every value
//     is scanned by at most one proto.Equal and one walk. The root is not
//     checked, since per-call noise there (an ID, a timestamp) that options
//     ignore is the usual difference.
//   - Populated fields are merged from both sides; a map is scanned once and
//     only the keys that may differ are sorted and walked.
//   - [WithListKey]: linear when the keys are in the same order, one hash map
//     of the keys otherwise.
//   - [WithUnorderedLists]: see there; O(n log n) for scalars and, without a
//     tolerance, for messages; with a tolerance, cheap when the elements of
//     a hash bucket are few or mostly identical, bounded by the budget
//     otherwise.
//   - [WithIgnoredPaths], [WithRedactedPaths], [WithFloatToleranceAt]: one
//     map lookup per field on the paths they name; [WithIgnoredFields]: one
//     lookup per populated field; [WithFloatTolerance]: constant per float;
//     [WithIgnoredUnknown] saves the comparison of unknown bytes.
//   - An Any payload is decoded where the walk needs it, without copying its
//     bytes fields (the payload of a nested Any is one), and dropped once
//     compared: a chain of nested Any costs time and memory linear in its
//     size.
//   - Values are rendered only for the differences reported, within
//     [WithMaxValueLength]; at most [WithMaxDifferences] are.
//
// # Budget
//
// A comparison is bounded by a depth, [WithMaxDepth] ([DefaultMaxDepth],
// counting message nesting including Any payloads and map values), and an
// amount of work, [WithMaxWork] ([DefaultMaxWork]). The defaults let any
// pair of messages that gRPC accepts by default (4 MiB) be compared in
// full, unless Any nest more than 5,000 deep (proto.Unmarshal does not
// decode their payloads, so its own depth limit does not stop them); the
// walk is recursive, and [MaxDepthLimit] keeps its goroutine stack far
// from overflowing. Past a limit, what the walk did not reach is
// compared with proto.Equal, at linear cost; where proto.Equal finds a
// difference, it is reported at the path where the walk stopped (possibly
// one that the options would have excused), and [Result.Incomplete] says
// which limit was reached ([IncompleteMaxDepth], [IncompleteMaxWork]). So
// an empty result still always means equal.
//
// # Paths
//
// [Difference.Path] locates a value from the root: field names joined by
// dots, list indexes in brackets, map keys in brackets (strings quoted),
// payloads of an Any and extensions by full name in parentheses, unknown
// fields by number, and elements of a list compared with [WithListKey] by
// their key, with "#n" for the n-th element with the same key from the
// second on:
//
//	items[2].price.units
//	labels["eu"]
//	detail.(pricing.v1.Tier).level
//	presence.(pricing.v1.ext_note)
//	items[sku="A1"].quantity
//	items[sku="A1"#2].quantity
//	rates[value=NaN]
//	f_message.17
//
// Elements with the same key pair up in order, the n-th on one side with the
// n-th on the other, so `items[sku="A1"#2]` names one element on each side.
// Keys are written as values are (NaN, -0, quoted strings and bytes).
//
// [Difference.Field] is the same path without indexes and keys
// (items.price.units): a low-cardinality label for metrics, and the form
// that path options such as [WithIgnoredPaths] accept.
//
// # Sensitive values
//
// The values of fields marked with the standard debug_redact field option,
// and of paths given to [WithRedactedPaths], never appear in a [Difference]:
// [Redacted] stands in their place, in the field's own difference and inside
// a rendered message that contains it, inside Any payloads too. A rendered
// Any shows its payload unpacked and redacted, or, when it cannot be
// unpacked (an unknown type, bytes that do not decode, [WithRawAny]), its
// type URL and size only: `{type_url:"type.googleapis.com/x.Y" value:<1234
// bytes>}`. [Redact] clears sensitive fields in place, for messages that
// are logged or stored.
package protodiff
