package protodiff

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// rule is a node of the trie that the path options compile into. The walker
// carries the node of the path it is at (nil once no option can apply
// below), so matching costs one map lookup per field and nothing off the
// paths that options name.
type rule struct {
	fields  map[protoreflect.Name]*rule
	paren   map[protoreflect.FullName]*rule // Any payloads and extensions
	numbers map[protowire.Number]*rule      // unknown fields

	ignore    bool
	redact    bool
	tol       *tolerance
	unordered bool
	key       protoreflect.Name // compare the list as a map keyed by this field

	// tolBelow: a non-zero tolerance is set here or below, so the elements
	// of an unordered list here may be equal without being identical.
	tolBelow bool
	// redactBelow: a redacted path ends here or below.
	redactBelow bool
}

// segment is one parsed element of an index-free path.
type segment struct {
	name   protoreflect.Name
	paren  protoreflect.FullName
	number protowire.Number
}

var errEmptyPath = errors.New("empty path")

// parsePath parses an index-free path such as `items.price.units`,
// `detail.(pricing.v1.Tier).name` or `payload.17`.
func parsePath(p string) ([]segment, error) {
	if p == "" {
		return nil, errEmptyPath
	}
	var segs []segment
	for rest := p; ; {
		var seg segment
		var tok string
		switch {
		case strings.HasPrefix(rest, "("):
			end := strings.IndexByte(rest, ')')
			if end < 0 {
				return nil, fmt.Errorf("unclosed %q", "(")
			}
			tok, rest = rest[1:end], rest[end+1:]
			name := protoreflect.FullName(tok)
			if !name.IsValid() {
				return nil, fmt.Errorf("%q is not a full name", tok)
			}
			seg.paren = name
		default:
			end := strings.IndexAny(rest, ".([")
			if end < 0 {
				end = len(rest)
			}
			tok, rest = rest[:end], rest[end:]
			switch {
			case tok == "":
				return nil, errors.New("empty field name")
			case tok[0] >= '0' && tok[0] <= '9':
				n, err := strconv.ParseInt(tok, 10, 32)
				if err != nil || !protowire.Number(n).IsValid() {
					return nil, fmt.Errorf("%q is not a valid field number", tok)
				}
				seg.number = protowire.Number(n)
			case !protoreflect.Name(tok).IsValid():
				return nil, fmt.Errorf("%q is not a field name", tok)
			default:
				seg.name = protoreflect.Name(tok)
			}
		}
		segs = append(segs, seg)
		if rest == "" {
			return segs, nil
		}
		switch rest[0] {
		case '.':
			rest = rest[1:]
			if rest == "" {
				return nil, errors.New("trailing dot")
			}
		case '[':
			return nil, errors.New("list indexes and map keys are not allowed: use the index-free form (items.price, not items[0].price)")
		default:
			return nil, fmt.Errorf("missing dot before %q", rest)
		}
	}
}

// node returns the trie node for path, creating it and its parents.
func (r *rule) node(path string) (*rule, error) {
	segs, err := parsePath(path)
	if err != nil {
		return nil, err
	}
	n := r
	for _, s := range segs {
		var next *rule
		switch {
		case s.name != "":
			if n.fields == nil {
				n.fields = make(map[protoreflect.Name]*rule)
			}
			if next = n.fields[s.name]; next == nil {
				next = &rule{}
				n.fields[s.name] = next
			}
		case s.paren != "":
			if n.paren == nil {
				n.paren = make(map[protoreflect.FullName]*rule)
			}
			if next = n.paren[s.paren]; next == nil {
				next = &rule{}
				n.paren[s.paren] = next
			}
		default:
			if n.numbers == nil {
				n.numbers = make(map[protowire.Number]*rule)
			}
			if next = n.numbers[s.number]; next == nil {
				next = &rule{}
				n.numbers[s.number] = next
			}
		}
		n = next
	}
	return n, nil
}

// zero reports whether t tolerates nothing: then it changes nothing.
func (t *tolerance) zero() bool { return t.fraction == 0 && t.margin == 0 }

func (t tolerance) validate() error {
	for _, v := range []struct {
		name string
		x    float64
	}{{"fraction", t.fraction}, {"margin", t.margin}} {
		if v.x != v.x || v.x < 0 || v.x > 1e308 {
			return fmt.Errorf("%s must be a finite number >= 0, not %v", v.name, v.x)
		}
	}
	return nil
}

// compile checks the options and builds the rule trie. It returns a nil
// root when no path option was given, so the walker skips all matching.
func (o *options) compile() (*rule, error) {
	root := &rule{}
	used := false
	at := func(option, path string) (*rule, error) {
		n, err := root.node(path)
		if err != nil {
			return nil, fmt.Errorf("protodiff: %s %q: %w", option, path, err)
		}
		used = true
		return n, nil
	}
	for _, p := range o.ignorePaths {
		n, err := at("WithIgnoredPaths", p)
		if err != nil {
			return nil, err
		}
		n.ignore = true
	}
	for _, p := range o.redactPaths {
		n, err := at("WithRedactedPaths", p)
		if err != nil {
			return nil, err
		}
		n.redact = true
	}
	for _, pt := range o.pathTolerances {
		n, err := at("WithFloatToleranceAt", pt.path)
		if err != nil {
			return nil, err
		}
		if err := pt.tol.validate(); err != nil {
			return nil, fmt.Errorf("protodiff: WithFloatToleranceAt %q: %w", pt.path, err)
		}
		tol := pt.tol
		n.tol = &tol
	}
	for _, p := range o.unordered {
		n, err := at("WithUnorderedLists", p)
		if err != nil {
			return nil, err
		}
		n.unordered = true
	}
	for _, lk := range o.listKeys {
		n, err := at("WithListKey", lk.path)
		if err != nil {
			return nil, err
		}
		if !protoreflect.Name(lk.field).IsValid() {
			return nil, fmt.Errorf("protodiff: WithListKey %q: key %q is not a field name", lk.path, lk.field)
		}
		if n.unordered {
			return nil, fmt.Errorf("protodiff: WithListKey %q: the list is already unordered (WithUnorderedLists)", lk.path)
		}
		if n.key != "" && n.key != protoreflect.Name(lk.field) {
			return nil, fmt.Errorf("protodiff: WithListKey %q: two keys, %q and %q", lk.path, n.key, lk.field)
		}
		n.key = protoreflect.Name(lk.field)
	}
	for _, name := range o.ignoreNames {
		if !name.IsValid() {
			return nil, fmt.Errorf("protodiff: WithIgnoredFields %q: not a full field name", name)
		}
	}
	if o.tolerance != nil {
		if err := o.tolerance.validate(); err != nil {
			return nil, fmt.Errorf("protodiff: WithFloatTolerance: %w", err)
		}
	}
	if o.maxDiffs < 1 {
		return nil, fmt.Errorf("protodiff: WithMaxDifferences: %d is less than 1", o.maxDiffs)
	}
	if o.maxValueLen < 16 {
		return nil, fmt.Errorf("protodiff: WithMaxValueLength: %d is less than 16", o.maxValueLen)
	}
	if o.maxDepth < 1 || o.maxDepth > MaxDepthLimit {
		return nil, fmt.Errorf("protodiff: WithMaxDepth: %d is not between 1 and %d", o.maxDepth, MaxDepthLimit)
	}
	if o.maxWork < 1 {
		return nil, fmt.Errorf("protodiff: WithMaxWork: %d is less than 1", o.maxWork)
	}
	if !used {
		return nil, nil
	}
	root.markTolerance()
	root.markRedact()
	return root, nil
}

// markRedact sets redactBelow on every node with a redacted path at or
// below it, and reports whether r is such a node.
func (r *rule) markRedact() bool {
	return r.mark(func(n *rule) bool { return n.redact }, func(n *rule, below bool) { n.redactBelow = below })
}

// markTolerance sets tolBelow on every node with a non-zero tolerance at
// or below it, and reports whether r is such a node.
func (r *rule) markTolerance() bool {
	return r.mark(func(n *rule) bool { return n.tol != nil && !n.tol.zero() }, func(n *rule, below bool) { n.tolBelow = below })
}

// mark sets, with set, whether here holds at r or any node below it, and
// reports it.
func (r *rule) mark(here func(*rule) bool, set func(*rule, bool)) bool {
	below := here(r)
	for _, c := range r.fields {
		below = c.mark(here, set) || below
	}
	for _, c := range r.paren {
		below = c.mark(here, set) || below
	}
	for _, c := range r.numbers {
		below = c.mark(here, set) || below
	}
	set(r, below)
	return below
}
