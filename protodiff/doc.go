// Package protodiff compares two protobuf messages of the same type field by
// field and reports every difference with a path, for a parallel run that
// checks a candidate service's replies against the legacy one's.
//
// A [Differ] is built once with [New] from [Option] values and then used
// from any number of goroutines; [Differ.Diff] returns a [Result] that lists
// each [Difference] with its [Kind], its path and both values rendered as
// text. [Diff] is a shortcut for one-off comparisons.
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
// unknown fields). The walk therefore asks proto.Equal (through the
// generated fast path) at every message below the root and descends only
// where it says the messages differ: equal messages cost about one
// proto.Equal whatever the options, and google.protobuf.Struct values are
// compared on their Go types, several times faster than proto.Equal.
//
// # Paths
//
// [Difference.Path] locates a value from the root: field names joined by
// dots, list indexes in brackets, map keys in brackets (strings quoted),
// payloads of an Any and extensions by full name in parentheses, unknown
// fields by number, and elements of a list compared with [WithListKey] by
// their key:
//
//	items[2].price.units
//	labels["eu"]
//	detail.(pricing.v1.Tier).level
//	presence.(pricing.v1.ext_note)
//	items[sku="A1"].quantity
//	f_message.17
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
// a rendered message that contains it.
package protodiff
