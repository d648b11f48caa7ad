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
}

var defaultOptions = options{
	resolver:    protoregistry.GlobalTypes,
	maxDiffs:    DefaultMaxDifferences,
	maxValueLen: DefaultMaxValueLength,
}

// WithIgnoredPaths skips the fields at the given index-free paths, and all
// that is below them. A path names fields from the root message, joined by
// dots, without list indexes or map keys: "items.id" ignores the id of every
// element of items. Any and extensions are written "(full.name)", unknown
// fields by number: "detail.(pricing.v1.Tier).level", "17".
func WithIgnoredPaths(paths ...string) Option {
	return func(o *options) { o.ignorePaths = append(o.ignorePaths, paths...) }
}

// WithIgnoredFields skips the fields with the given full names wherever
// they occur, such as "pricing.v1.Quote.computed_at".
func WithIgnoredFields(names ...protoreflect.FullName) Option {
	return func(o *options) { o.ignoreNames = append(o.ignoreNames, names...) }
}

// WithFloatTolerance treats two float or double values x and y as equal
// when |x-y| <= max(fraction*min(|x|,|y|), margin), everywhere. This is the
// rule of cmpopts.EquateApprox. NaN still equals only NaN, and infinities
// only themselves.
func WithFloatTolerance(fraction, margin float64) Option {
	return func(o *options) { o.tolerance = &tolerance{fraction, margin} }
}

// WithFloatToleranceAt is [WithFloatTolerance] for the floats at path and
// below it only. It overrides the global tolerance and tolerances set at
// shorter paths.
func WithFloatToleranceAt(path string, fraction, margin float64) Option {
	return func(o *options) {
		o.pathTolerances = append(o.pathTolerances, pathTolerance{path, tolerance{fraction, margin}})
	}
}

// WithUnorderedLists compares the repeated fields at the given paths as
// multisets: order does not matter, and each element that has no equal
// partner on the other side is reported once, as [Removed] (with its legacy
// index) or [Added] (with its candidate index). Matching is quadratic in the
// worst case; use [WithListKey] for long lists of messages.
func WithUnorderedLists(paths ...string) Option {
	return func(o *options) { o.unordered = append(o.unordered, paths...) }
}

// WithListKey compares the repeated message field at path as a map keyed by
// the element's scalar field keyField, as in WithListKey("items", "sku").
// Elements pair up by key whatever their positions, so an inserted or
// reordered element is one [Added] or [Removed] difference instead of a
// cascade of [Changed] ones. Paths below such a list show the key:
// `items[sku="A1"].price`. Elements with the same key pair up in order.
// Where the field is not a list of messages with a scalar keyField, the list
// is compared by position.
func WithListKey(path, keyField string) Option {
	return func(o *options) { o.listKeys = append(o.listKeys, listKey{path, keyField}) }
}

// WithRedactedPaths keeps the values at the given paths, and below them, out
// of every [Difference]: only the path is shown. Fields marked with the
// standard debug_redact field option are always redacted.
func WithRedactedPaths(paths ...string) Option {
	return func(o *options) { o.redactPaths = append(o.redactPaths, paths...) }
}

// WithIgnoredUnknown skips unknown fields, which proto.Equal compares.
func WithIgnoredUnknown() Option {
	return func(o *options) { o.ignoreUnknown = true }
}

// WithAnyResolver sets the registry that google.protobuf.Any payloads are
// unpacked with. The default is [protoregistry.GlobalTypes]; nil is ignored.
func WithAnyResolver(r AnyResolver) Option {
	return func(o *options) {
		if r != nil {
			o.resolver = r
		}
	}
}

// WithRawAny compares google.protobuf.Any as proto.Equal does: by type URL
// and encoded bytes, without unpacking. Two encodings of one message then
// differ.
func WithRawAny() Option {
	return func(o *options) { o.rawAny = true }
}

// WithMaxDifferences sets how many differences are reported at most
// (default [DefaultMaxDifferences]). Past it the walk stops and
// [Result.Truncated] is set. n must be at least 1.
func WithMaxDifferences(n int) Option {
	return func(o *options) { o.maxDiffs = n }
}

// WithMaxValueLength sets the length in bytes past which rendered values are
// cut (default [DefaultMaxValueLength]). n must be at least 16.
func WithMaxValueLength(n int) Option {
	return func(o *options) { o.maxValueLen = n }
}
