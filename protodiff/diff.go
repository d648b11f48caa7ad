package protodiff

import (
	"hash/maphash"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Kind says how a value differs.
type Kind uint8

const (
	// Changed: the value is on both sides and differs. Fields without
	// presence (proto3 scalars) are always Changed, since unset means zero.
	Changed Kind = iota + 1
	// Added: the value is only in the candidate.
	Added
	// Removed: the value is only in the legacy message.
	Removed
	// TypeChanged: the two sides hold different message types (the roots,
	// or the payloads of a google.protobuf.Any).
	TypeChanged
)

func (k Kind) String() string {
	switch k {
	case Changed:
		return "changed"
	case Added:
		return "added"
	case Removed:
		return "removed"
	case TypeChanged:
		return "type_changed"
	}
	return "unknown"
}

// Difference is one place where the legacy and candidate messages differ.
type Difference struct {
	// Path locates the value from the root message: field names joined by
	// dots, list indexes as [3], map keys as ["eu"] or [42], Any payloads and
	// extensions as (full.name), unknown fields by number, elements of a
	// keyed list as [sku="A1"]. The empty path is the root itself.
	Path string
	// Field is Path without indexes and keys ("items.price.units"): a label
	// of bounded cardinality for metrics, and the form options accept.
	Field string
	Kind  Kind
	// Legacy and Candidate are the rendered values, cut to the maximum value
	// length, empty on the side that lacks the value, and [Redacted] for
	// sensitive fields.
	Legacy    string
	Candidate string
}

// Result is what [Differ.Diff] found.
type Result struct {
	// Differences in the order of the walk: fields in declaration order,
	// extensions and unknown fields by number, map keys sorted.
	Differences []Difference
	// Truncated says the walk stopped at the maximum number of differences
	// and more were there.
	Truncated bool
	// Incomplete is empty when the messages were compared in detail
	// throughout, and otherwise says which limit cut the walk short:
	// [IncompleteMaxDepth] or [IncompleteMaxWork]. What the walk did not
	// reach was compared with proto.Equal, so a result is still empty only
	// when the messages are equal, but a difference reported where the
	// walk stopped may be one that the options would have excused.
	Incomplete string
}

// Equal reports whether no difference was found.
func (r Result) Equal() bool { return len(r.Differences) == 0 }

// Differ compares messages with a fixed set of options. It is safe for
// concurrent use; build one per configuration and reuse it.
type Differ struct {
	root        *rule
	ignoreNames map[protoreflect.FullName]struct{}
	tol         *tolerance
	resolver    AnyResolver // nil: Any is compared raw
	ignoreUnk   bool
	maxDiffs    int
	maxValueLen int
	maxDepth    int
	maxWork     int
	exts        extensionResolver // for extensions inside Any payloads
	seed        maphash.Seed      // of the hashes of unordered list elements
	opts        options           // as given, for Check
	walkers     sync.Pool
}

// New checks the options and returns a [Differ]. An invalid option is an
// error that names the option and the bad value.
func New(opts ...Option) (*Differ, error) {
	o := defaultOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	root, err := o.compile()
	if err != nil {
		return nil, err
	}
	d := &Differ{
		root:        root,
		tol:         o.tolerance,
		resolver:    o.resolver,
		ignoreUnk:   o.ignoreUnknown,
		maxDiffs:    o.maxDiffs,
		maxValueLen: o.maxValueLen,
		maxDepth:    o.maxDepth,
		maxWork:     o.maxWork,
		seed:        maphash.MakeSeed(),
		opts:        o,
	}
	if o.rawAny {
		d.resolver = nil
	}
	d.exts = extensionsOf(d.resolver)
	if len(o.ignoreNames) > 0 {
		d.ignoreNames = make(map[protoreflect.FullName]struct{}, len(o.ignoreNames))
		for _, n := range o.ignoreNames {
			d.ignoreNames[n] = struct{}{}
		}
	}
	d.walkers.New = func() any { return newWalker(d) }
	return d, nil
}

var defaultDiffer, _ = New()

// Diff compares legacy and candidate with the default options, or with opts.
// It panics if opts are invalid; use [New] to get an error instead.
func Diff(legacy, candidate proto.Message, opts ...Option) Result {
	d := defaultDiffer
	if len(opts) > 0 {
		var err error
		if d, err = New(opts...); err != nil {
			panic(err)
		}
	}
	return d.Diff(legacy, candidate)
}

// Diff compares legacy with candidate. With default options the result is
// empty exactly when proto.Equal(legacy, candidate) is true, except that
// google.protobuf.Any payloads are unpacked and compared as messages. Its
// cost is linear in the size of the two messages (n log n where lists or
// map keys are sorted; see each option), within the bounds of
// [WithMaxDepth] and [WithMaxWork].
// Messages of different types give one [TypeChanged] difference at the root;
// a nil message (untyped or typed) equals only another nil one.
func (d *Differ) Diff(legacy, candidate proto.Message) Result {
	var mx, my protoreflect.Message
	if legacy != nil {
		mx = legacy.ProtoReflect()
	}
	if candidate != nil {
		my = candidate.ProtoReflect()
	}
	w := d.walkers.Get().(*walker)
	w.root(mx, my)
	res := Result{Differences: w.diffs, Truncated: w.truncated, Incomplete: w.incomplete}
	w.reset()
	d.walkers.Put(w)
	return res
}
