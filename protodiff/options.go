package protodiff

import (
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// DefaultMaxDifferences is how many differences [Differ.Diff] reports before
// it stops and sets [Result.Truncated].
const DefaultMaxDifferences = 32

// DefaultMaxValueLength is the length in bytes past which a rendered value in
// [Difference] is cut (and ends with "…").
const DefaultMaxValueLength = 256

// DefaultMaxDepth is how deeply nested messages are compared in detail: the
// root is at depth 0, each message field, list element, map value and
// google.protobuf.Any payload one level deeper. It is at least protobuf's
// own limit (proto.Unmarshal accepts 10,000 nested messages), so a message
// that arrived on the wire is only cut short by the payloads of Any, which
// proto.Unmarshal does not decode.
const DefaultMaxDepth = 10_000

// MaxDepthLimit is the largest depth [WithMaxDepth] accepts. The walk is
// recursive; measured, it takes at most 1.7 KiB of goroutine stack per
// level whatever the shape (fields, lists, maps, Any, Struct), so at this
// depth the stack stays within 256 MiB, a quarter of the runtime's 1 GiB
// limit, whose overflow would kill the process.
const MaxDepthLimit = 100_000

// DefaultMaxWork is the work one comparison may do before it stops and says
// so in [Result.Incomplete]. A unit of work is one value visited by the walk
// (a field, list element or map entry, on either side), one value decoded
// from an Any payload or hashed for an unordered list, one comparison or
// edge when matching, or 64 bytes of unknown fields split by number.
// proto.Equal's checks are not counted: each value is scanned by at most
// one that answers "unequal", besides the walk.
//
// gRPC accepts messages of up to 4 MiB by default. Over the costliest
// shapes measured (unordered lists of bools, of messages holding unordered
// lists, of Any payloads; maps and chains whose every level differs in an
// ignored field), comparing two such messages took at most one unit per
// byte of the pair, 8.4 million units: the default leaves a margin of four.
// Spending it all, which takes hostile input (such as an unordered list
// under a tolerance whose elements all differ within it), took about 4 s
// of one core on a shared 2-vCPU machine; lower it with [WithMaxWork] where
// that is too long.
const DefaultMaxWork = 32 << 20

// Reasons for [Result.Incomplete].
const (
	// IncompleteMaxDepth: messages nested deeper than the maximum depth
	// were compared with proto.Equal instead of in detail.
	IncompleteMaxDepth = "max_depth"
	// IncompleteMaxWork: the work budget ran out, and from there on values
	// were compared with proto.Equal instead of in detail.
	IncompleteMaxWork = "max_work"
)

// Redacted stands in [Difference.Legacy] and [Difference.Candidate] for the
// value of a sensitive field.
const Redacted = "[REDACTED]"

// AnyResolver finds the message type packed in a google.protobuf.Any.
// [protoregistry.GlobalTypes] and [*protoregistry.Types] implement it.
type AnyResolver interface {
	FindMessageByURL(url string) (protoreflect.MessageType, error)
}

// An Option configures a [Differ]. Options only record what was asked;
// [New] checks them all and reports the first problem.
type Option func(*options)

type tolerance struct {
	fraction, margin float64
}

type listKey struct {
	path, field string
}

type pathTolerance struct {
	path string
	tol  tolerance
}

type options struct {
	ignorePaths    []string
	ignoreNames    []protoreflect.FullName
	tolerance      *tolerance
	pathTolerances []pathTolerance
	unordered      []string
	listKeys       []listKey
	redactPaths    []string
	ignoreUnknown  bool
	rawAny         bool
	resolver       AnyResolver
	maxDiffs       int
	maxValueLen    int
	maxDepth       int
	maxWork        int
}

var defaultOptions = options{
	resolver:    protoregistry.GlobalTypes,
	maxDiffs:    DefaultMaxDifferences,
	maxValueLen: DefaultMaxValueLength,
	maxDepth:    DefaultMaxDepth,
	maxWork:     DefaultMaxWork,
}

// WithIgnoredPaths skips the fields at the given index-free paths, and all
// that is below them. A path names fields from the root message, joined by
// dots, without list indexes or map keys: "items.id" ignores the id of every
// element of items. Any and extensions are written "(full.name)", unknown
// fields by number: "detail.(pricing.v1.Tier).level", "17". Cost: one map
// lookup per field on the paths the options name, nothing elsewhere.
func WithIgnoredPaths(paths ...string) Option {
	return func(o *options) { o.ignorePaths = append(o.ignorePaths, paths...) }
}

// WithIgnoredFields skips the fields with the given full names wherever
// they occur, such as "pricing.v1.Quote.computed_at". Cost: one map lookup
// per populated field.
func WithIgnoredFields(names ...protoreflect.FullName) Option {
	return func(o *options) { o.ignoreNames = append(o.ignoreNames, names...) }
}

// WithFloatTolerance makes float and double values x and y equal when they
// are close, everywhere. The rule: values that are equal as numbers (NaN
// counting as equal to NaN) are judged as without a tolerance, so +0 and -0
// keep their meaning in a proto3 field without presence, where -0 is set
// and +0 is not; otherwise x and y are equal when neither is NaN or
// infinite and |x-y| <= max(fraction*min(|x|,|y|), margin). An unset proto3
// field without presence counts as 0 (so 1e-12 is within a margin of 1e-9
// of it); a field with presence that is unset on one side differs whatever
// the tolerance. This is close to cmpopts.EquateApprox, but not the same:
// protocmp sees an unset field as absent, not as 0. A zero tolerance
// changes nothing. Cost: constant per float, except in lists compared with
// [WithUnorderedLists], where a tolerance turns multiset matching into a
// maximum matching (see there).
func WithFloatTolerance(fraction, margin float64) Option {
	return func(o *options) { o.tolerance = &tolerance{fraction, margin} }
}

// WithFloatToleranceAt is [WithFloatTolerance] for the floats at path and
// below it only. It overrides the global tolerance and tolerances set at
// shorter paths; a zero tolerance at a path turns tolerance off there.
// Cost: that of [WithFloatTolerance], plus one map lookup per field on the
// path.
func WithFloatToleranceAt(path string, fraction, margin float64) Option {
	return func(o *options) {
		o.pathTolerances = append(o.pathTolerances, pathTolerance{path, tolerance{fraction, margin}})
	}
}

// WithUnorderedLists compares the repeated fields at the given paths as
// multisets: order does not matter, and each element that has no equal
// partner on the other side is reported once, as [Removed] (with its legacy
// index) or [Added] (with its candidate index). Equal elements pair up in
// index order, so which one is reported is deterministic, and the pairing
// is a maximum one: no other pairing leaves fewer elements unmatched.
//
// Cost, for n elements: lists equal by position cost one pass. Otherwise
// scalars are sorted, O(n log n) (NaN equals NaN, +0 equals -0, bytes by
// content); floats under a tolerance with fraction <= 1 are sorted and
// paired by a linear sweep, exact because the values within tolerance of a
// value then form an interval. Messages are hashed, O(size), with the
// options in force below the list, into buckets of possibly equal elements,
// O(n log n) to sort, and paired inside a bucket: without a tolerance
// equality is an equivalence, so each element is compared with one
// representative of its class, linear in all. With a tolerance (or a
// fraction > 1 for floats), elements that are identical are grouped, and a
// maximum flow pairs the groups of a bucket: O(g^2) comparisons for g
// distinct groups in a bucket, which is cheap when the elements of a
// bucket are few or mostly identical, and bounded by [WithMaxWork].
func WithUnorderedLists(paths ...string) Option {
	return func(o *options) { o.unordered = append(o.unordered, paths...) }
}

// WithListKey compares the repeated message field at path as a map keyed by
// the element's scalar field keyField, as in WithListKey("items", "sku").
// Elements pair up by key whatever their positions, so an inserted or
// reordered element is one [Added] or [Removed] difference instead of a
// cascade of [Changed] ones. Paths below such a list show the key:
// `items[sku="A1"].price`. Elements with the same key pair up in order, and
// the n-th element with a key, from the second on, is written
// `items[sku="A1"#2]`. Keys are compared as values: NaN equals NaN, and +0
// equals -0. Where the field is not a list of messages with a scalar
// keyField, the list is compared by position ([Differ.Check] reports it).
// Cost: linear when the keys are in the same order on both sides, one hash
// map of the keys otherwise.
func WithListKey(path, keyField string) Option {
	return func(o *options) { o.listKeys = append(o.listKeys, listKey{path, keyField}) }
}

// WithRedactedPaths keeps the values at the given paths, and below them, out
// of every [Difference]: only the path is shown. Fields marked with the
// standard debug_redact field option are always redacted, inside the
// payloads of google.protobuf.Any too. Cost: none until a difference is
// rendered.
func WithRedactedPaths(paths ...string) Option {
	return func(o *options) { o.redactPaths = append(o.redactPaths, paths...) }
}

// WithIgnoredUnknown skips unknown fields, which proto.Equal compares.
// Unknown fields otherwise cost one comparison of bytes per message, and a
// split by field number where the bytes differ.
func WithIgnoredUnknown() Option {
	return func(o *options) { o.ignoreUnknown = true }
}

// WithAnyResolver sets the registry that google.protobuf.Any payloads are
// unpacked with. The default is [protoregistry.GlobalTypes]; nil is ignored.
// Extensions inside payloads are resolved with r too when it can (as
// [*protoregistry.Types] can), with [protoregistry.GlobalTypes] otherwise.
// A payload is decoded where the walk needs it, without copying its bytes
// fields (so a chain of nested Any costs time and memory linear in its
// size), and dropped once compared.
func WithAnyResolver(r AnyResolver) Option {
	return func(o *options) {
		if r != nil {
			o.resolver = r
		}
	}
}

// WithRawAny compares google.protobuf.Any as proto.Equal does: by type URL
// and encoded bytes, without unpacking. Two encodings of one message then
// differ. Payload bytes are rendered by their size only, since nothing in
// them can be redacted. Cost: one comparison of bytes per Any, no decoding.
func WithRawAny() Option {
	return func(o *options) { o.rawAny = true }
}

// WithMaxDifferences sets how many differences are reported at most
// (default [DefaultMaxDifferences]). Past it the walk stops and
// [Result.Truncated] is set. n must be at least 1. Cost: each difference
// renders its path and two values, each cut at the maximum value length.
func WithMaxDifferences(n int) Option {
	return func(o *options) { o.maxDiffs = n }
}

// WithMaxValueLength sets the length in bytes past which rendered values are
// cut (default [DefaultMaxValueLength]). n must be at least 16. Rendering
// stops once a value is that long, so the length bounds its cost (but for
// sorting the keys of a map it reaches).
func WithMaxValueLength(n int) Option {
	return func(o *options) { o.maxValueLen = n }
}

// WithMaxDepth sets how deeply nested messages are compared in detail
// (default [DefaultMaxDepth]). Deeper messages are compared with
// proto.Equal, a difference is reported where the walk stopped, and
// [Result.Incomplete] is [IncompleteMaxDepth]. n must be between 1 and
// [MaxDepthLimit].
func WithMaxDepth(n int) Option {
	return func(o *options) { o.maxDepth = n }
}

// WithMaxWork sets the work budget of one comparison (default
// [DefaultMaxWork]; see there for the unit). Once it is spent, what is left
// is compared with proto.Equal at linear cost, each difference is reported
// where the walk stood, and [Result.Incomplete] is [IncompleteMaxWork]. n
// must be at least 1.
func WithMaxWork(n int) Option {
	return func(o *options) { o.maxWork = n }
}
