package interceptor

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// methodConfig is a MethodConfig checked and compiled.
type methodConfig struct {
	disabled       bool
	sampleRate     float64 // in (0, 1]
	timeout        time.Duration
	differ         *protodiff.Differ
	compareMessage bool
	maxMessages    int
	maxBytes       int64
	unordered      bool
	compareHeader  bool
	ignoredHeader  map[string]bool
	redactedHeader map[string]bool
	noise          NoiseConfig
}

// alwaysRedacted are the header keys whose values are credentials.
var alwaysRedacted = []string{"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}

// methodEntry is what the parallel run knows of one method it mirrors.
type methodEntry struct {
	name  string // rpc.method: pkg.Service/Method
	cfg   *methodConfig
	attrs *methodAttrs
	// The request and reply types, from the protobuf registry; nil when the
	// service is not registered, and then the method's streams cannot be
	// mirrored (a unary call shows its types).
	req, resp protoreflect.MessageType
	breaker   *breaker // nil: never stops mirroring
	signals   *signals
	// probes says noise probes are made: configured, and the method is
	// declared free of side effects or writes are allowed.
	probes bool
	// dropped counts the calls dropped for want of room that the status
	// has not taken yet: the caller's path pays one atomic add, and the
	// comparison goroutines and Status fold them in (foldDrops).
	dropped atomic.Int64
}

// maxCachedMethods bounds the entries built on first use, for methods that
// only a service pattern of an unregistered service, or "*", matches: the
// names of such calls come from the application and need not be bounded.
// Past it, a method's entry is built for each call, and its metrics go
// under OtherMethod, so that neither memory nor the metrics' cardinality
// grows with the names.
const maxCachedMethods = 1024

// methodTable finds the entry of a full method name: an exact pattern
// first, then the service, then "*".
type methodTable struct {
	// Exact patterns, and every method of a registered service that a
	// service pattern matches: built at New, with their types.
	exact map[string]*methodEntry // "/pkg.Service/Method"
	// Service patterns of services not in the registry, and "*".
	service    map[string]*methodConfig // "/pkg.Service/"
	all        *methodConfig
	forced     *methodConfig // for Force() on a method without config
	other      *methodAttrs  // for methods past the cache's bound
	newBreaker func() *breaker
	noiseRule  noiseRule

	cache  sync.Map // full method -> *methodEntry, for service and "*" matches
	cached atomic.Int64

	// rules are the rules the table was built from, for Methods.
	rules []MethodRule
}

// lookup returns the method's entry, or nil when no pattern matches it.
func (t *methodTable) lookup(method string) *methodEntry {
	if e, ok := t.exact[method]; ok {
		return e
	}
	if cfg := t.match(method); cfg != nil {
		return t.entry(method, cfg)
	}
	return nil
}

// match returns the configuration of a method that no exact pattern
// names: its service's, or that of "*"; nil when none.
func (t *methodTable) match(method string) *methodConfig {
	if i := strings.LastIndexByte(method, '/'); i > 0 {
		if cfg := t.service[method[:i+1]]; cfg != nil {
			return cfg
		}
	}
	return t.all
}

// entry returns a cached entry, or builds one and caches it while the
// cache has room.
func (t *methodTable) entry(method string, cfg *methodConfig) *methodEntry {
	if e, ok := t.cache.Load(method); ok {
		return e.(*methodEntry)
	}
	if t.cached.Add(1) > maxCachedMethods {
		t.cached.Add(-1)
		e := &methodEntry{name: methodName(method), cfg: cfg, attrs: t.other}
		md, _ := findMethod(method)
		e.req, e.resp = messageTypes(method, md)
		e.signals = newSignals(t.noiseRule, replyDescriptor(md))
		e.probes = probes(cfg, md)
		return e
	}
	e := t.newEntry(method, cfg, nil)
	actual, loaded := t.cache.LoadOrStore(method, e)
	if loaded {
		t.cached.Add(-1)
	}
	return actual.(*methodEntry)
}

func (t *methodTable) newEntry(method string, cfg *methodConfig, md protoreflect.MethodDescriptor) *methodEntry {
	name := methodName(method)
	e := &methodEntry{name: name, cfg: cfg, attrs: newMethodAttrs(name), breaker: t.newBreaker()}
	if md == nil {
		md, _ = findMethod(method)
	}
	e.req, e.resp = messageTypes(method, md)
	e.signals = newSignals(t.noiseRule, replyDescriptor(md))
	e.probes = probes(cfg, md)
	return e
}

func replyDescriptor(md protoreflect.MethodDescriptor) protoreflect.MessageDescriptor {
	if md == nil {
		return nil
	}
	return md.Output()
}

// probes says whether a method's calls may be probed for noise: probes
// are configured, and a second legacy call is harmless (the method is
// declared free of side effects) or allowed.
func probes(cfg *methodConfig, md protoreflect.MethodDescriptor) bool {
	return cfg.noise.ProbeRate > 0 && (cfg.noise.AllowWrites || sideEffectFree(md))
}

func sideEffectFree(md protoreflect.MethodDescriptor) bool {
	if md == nil {
		return false
	}
	opts, _ := md.Options().(*descriptorpb.MethodOptions)
	return opts.GetIdempotencyLevel() == descriptorpb.MethodOptions_NO_SIDE_EFFECTS
}

// messageTypes returns a method's request and reply types from the
// registry, or nils.
func messageTypes(method string, md protoreflect.MethodDescriptor) (req, resp protoreflect.MessageType) {
	if md == nil {
		return nil, nil
	}
	req, err1 := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	resp, err2 := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err1 != nil || err2 != nil {
		return nil, nil
	}
	return req, resp
}

// findMethod finds a full method in the global registry, where generated
// code registers services.
func findMethod(method string) (protoreflect.MethodDescriptor, error) {
	svc, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	sd, err := findService(svc)
	if err != nil {
		return nil, err
	}
	md := sd.Methods().ByName(protoreflect.Name(name))
	if md == nil {
		return nil, fmt.Errorf("service %s has no method %s (it has %s)", svc, name, methodNames(sd))
	}
	return md, nil
}

var errNotRegistered = errors.New("not in the protobuf registry")

// findService returns the service descriptor of a registered service, an
// error wrapping errNotRegistered, or an error saying the name is
// something else.
func findService(svc string) (protoreflect.ServiceDescriptor, error) {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if errors.Is(err, protoregistry.NotFound) || (err == nil && d == nil) {
		return nil, fmt.Errorf("service %s is %w", svc, errNotRegistered)
	}
	if err != nil {
		return nil, err
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a service", svc)
	}
	return sd, nil
}

func methodNames(sd protoreflect.ServiceDescriptor) string {
	var names []string
	for i := range sd.Methods().Len() {
		names = append(names, string(sd.Methods().Get(i).Name()))
	}
	return strings.Join(names, ", ")
}

// newMethodTable compiles the rules and checks them against the
// registry: a method that does not exist in a registered service, or Diff
// options that name what its reply type does not have, are errors; a
// service that is not registered is said once to warn. where names the
// caller in errors: WithMethod or SetMethods.
func newMethodTable(rules []MethodRule, where string, other *methodAttrs, newBreaker func() *breaker, rule noiseRule, warn func(error)) (*methodTable, error) {
	forced, rerr := compileMethod(MethodConfig{SampleRate: 1})
	if rerr != nil {
		return nil, rerr
	}
	t := &methodTable{exact: map[string]*methodEntry{}, service: map[string]*methodConfig{}, forced: forced, other: other,
		newBreaker: newBreaker, noiseRule: rule, rules: cloneRules(rules)}
	type servicePattern struct {
		index        int
		pattern, svc string
		cfg          *methodConfig
	}
	var services []servicePattern
	seen := map[string]bool{}
	for i, r := range rules {
		fail := func(e *ruleError) error {
			e.where, e.index, e.pattern = where, i, r.Pattern
			return e
		}
		kind, key, err := parsePattern(r.Pattern)
		if err != nil {
			return nil, fail(&ruleError{err: err})
		}
		c, rerr := compileMethod(r.Config)
		if rerr != nil {
			return nil, fail(rerr)
		}
		if seen[key] {
			return nil, fail(&ruleError{err: errors.New("pattern given twice")})
		}
		seen[key] = true
		switch kind {
		case patternAll:
			t.all = c
		case patternService:
			services = append(services, servicePattern{i, r.Pattern, strings.Trim(key, "/"), c})
		default:
			md, err := findMethod(key)
			switch {
			case errors.Is(err, errNotRegistered):
				warn(fail(&ruleError{err: fmt.Errorf("%w: neither the method nor its Diff options can be checked", err)}))
			case err != nil:
				return nil, fail(&ruleError{err: err})
			default:
				if err := c.differ.Check(md.Output()); err != nil {
					return nil, fail(&ruleError{field: "Diff", checks: checkErrors(err), err: err})
				}
				if c.noise.ProbeRate > 0 && (md.IsStreamingClient() || md.IsStreamingServer()) {
					return nil, fail(&ruleError{field: "Noise", err: fmt.Errorf("%s is a streaming method: noise probes are made for unary methods", key)})
				}
				if c.noise.ProbeRate > 0 && !c.noise.AllowWrites && !sideEffectFree(md) {
					return nil, fail(&ruleError{field: "Noise", err: fmt.Errorf("%s is not declared free of side effects (idempotency_level = NO_SIDE_EFFECTS), and a noise probe calls the legacy service a second time: set AllowWrites to probe it all the same", key)})
				}
			}
			t.exact[key] = t.newEntry(key, c, md)
		}
	}
	// Service patterns come after exact ones, which win.
	for _, sp := range services {
		fail := func(e *ruleError) error {
			e.where, e.index, e.pattern = where, sp.index, sp.pattern
			return e
		}
		sd, err := findService(sp.svc)
		switch {
		case errors.Is(err, errNotRegistered):
			warn(fail(&ruleError{err: fmt.Errorf("%w: its Diff options cannot be checked", err)}))
			t.service["/"+sp.svc+"/"] = sp.cfg
			continue
		case err != nil:
			return nil, fail(&ruleError{err: err})
		}
		if checks, err := checkService(sd, sp.cfg.differ); err != nil {
			return nil, fail(&ruleError{field: "Diff", checks: checks, service: sd.FullName(), err: err})
		}
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			full := "/" + sp.svc + "/" + string(md.Name())
			if _, ok := t.exact[full]; !ok {
				t.exact[full] = t.newEntry(full, sp.cfg, md)
			}
		}
	}
	return t, nil
}

// A ruleError is a rule that does not validate: which rule and, when the
// fault is in one field of its MethodConfig, which field and element, so
// that a configuration file can say which key of which method it was.
type ruleError struct {
	where   string // WithMethod or SetMethods
	index   int    // the rule's
	pattern string
	field   string // "SampleRate", "Noise.ProbeRate", ...; "" for the pattern
	elem    int    // for a list field, 1 + the index of the element at fault
	// checks are the Diff values that do not fit the reply type (of any
	// method of service, for a service pattern), for field Diff.
	checks  []*protodiff.CheckError
	service protoreflect.FullName
	err     error
}

func (e *ruleError) Error() string {
	if e.field == "" {
		return fmt.Sprintf("interceptor: %s %q: %v", e.where, e.pattern, e.err)
	}
	return fmt.Sprintf("interceptor: %s %q: field %s: %v", e.where, e.pattern, e.field, e.err)
}

func (e *ruleError) Unwrap() error { return e.err }

// checkService checks a service pattern's Diff options: each option value
// must fit the reply type of at least one of the service's methods, since
// a rule for a whole service may well concern some of its replies only.
// It returns the values that fit none, as checked against the first
// method's reply, and an error that says so.
func checkService(sd protoreflect.ServiceDescriptor, d *protodiff.Differ) ([]*protodiff.CheckError, error) {
	type key struct{ option, value string }
	failures := map[key]int{}
	var first []*protodiff.CheckError
	n := sd.Methods().Len()
	for i := range n {
		for _, ce := range checkErrors(d.Check(sd.Methods().Get(i).Output())) {
			k := key{ce.Option, ce.Value}
			if failures[k] == 0 {
				first = append(first, ce)
			}
			failures[k]++
		}
	}
	var checks []*protodiff.CheckError
	var errs []error
	for _, ce := range first {
		if failures[key{ce.Option, ce.Value}] == n {
			checks = append(checks, ce)
			errs = append(errs, fmt.Errorf("%w (nor the reply of any other method of %s)", ce, sd.FullName()))
		}
	}
	return checks, errors.Join(errs...)
}

// checkErrors lists the CheckErrors that protodiff's Check joined.
func checkErrors(err error) []*protodiff.CheckError {
	var out []*protodiff.CheckError
	var walk func(error)
	walk = func(err error) {
		if ce, ok := err.(*protodiff.CheckError); ok {
			out = append(out, ce)
			return
		}
		if u, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

type patternKind uint8

const (
	patternMethod patternKind = iota
	patternService
	patternAll
)

// parsePattern checks a pattern and returns its key in gRPC's form:
// "/pkg.Service/Method", "/pkg.Service/" or "*".
func parsePattern(pattern string) (patternKind, string, error) {
	if pattern == "*" {
		return patternAll, "*", nil
	}
	svc, method, ok := strings.Cut(strings.TrimPrefix(pattern, "/"), "/")
	switch {
	case !ok || svc == "" || method == "" || strings.Contains(method, "/"):
		return 0, "", errors.New(`not a method pattern: want "/pkg.Service/Method", "/pkg.Service/*" or "*"`)
	case strings.ContainsAny(svc, "* \t") || strings.ContainsAny(method, " \t") || (strings.Contains(method, "*") && method != "*"):
		return 0, "", errors.New(`"*" stands only for a whole method name or alone`)
	case !protoreflect.FullName(svc).IsValid():
		return 0, "", fmt.Errorf("%q is not a service's full name", svc)
	case method == "*":
		return patternService, "/" + svc + "/", nil
	case !protoreflect.Name(method).IsValid():
		return 0, "", fmt.Errorf("%q is not a method name", method)
	}
	return patternMethod, "/" + svc + "/" + method, nil
}

// compileMethod checks a MethodConfig and compiles it. Its error names
// the field at fault.
func compileMethod(mc MethodConfig) (*methodConfig, *ruleError) {
	bad := func(field string, err error) (*methodConfig, *ruleError) {
		return nil, &ruleError{field: field, err: err}
	}
	switch {
	case math.IsNaN(mc.SampleRate) || mc.SampleRate < 0 || mc.SampleRate > 1:
		return bad("SampleRate", fmt.Errorf("%v is not in (0, 1]", mc.SampleRate))
	case mc.SampleRate == 0 && !mc.Disabled:
		return bad("SampleRate", errors.New("not set: 1 mirrors every call, 0.1 one in ten; to mirror none, set Disabled"))
	case mc.Timeout < 0:
		return bad("Timeout", fmt.Errorf("%v is negative", mc.Timeout))
	case mc.MaxStreamMessages < 0:
		return bad("MaxStreamMessages", fmt.Errorf("%d is negative", mc.MaxStreamMessages))
	case mc.MaxStreamBytes < 0:
		return bad("MaxStreamBytes", fmt.Errorf("%d is negative", mc.MaxStreamBytes))
	case math.IsNaN(mc.Noise.ProbeRate) || mc.Noise.ProbeRate < 0 || mc.Noise.ProbeRate > 1:
		return bad("Noise.ProbeRate", fmt.Errorf("%v is not in [0, 1]", mc.Noise.ProbeRate))
	case mc.Noise.Timeout < 0:
		return bad("Noise.Timeout", fmt.Errorf("%v is negative", mc.Noise.Timeout))
	case mc.Noise.Secondary != nil && isNil(mc.Noise.Secondary):
		return bad("Noise.Secondary", fmt.Errorf("a nil %T", mc.Noise.Secondary))
	}
	d, err := protodiff.New(mc.Diff...)
	if err != nil {
		return bad("Diff", err)
	}
	ignored, rerr := headerKeys("IgnoredHeaders", mc.IgnoredHeaders)
	if rerr != nil {
		return nil, rerr
	}
	redacted, rerr := headerKeys("RedactedHeaders", append(mc.RedactedHeaders[:len(mc.RedactedHeaders):len(mc.RedactedHeaders)], alwaysRedacted...))
	if rerr != nil {
		return nil, rerr
	}
	return &methodConfig{
		noise:          mc.Noise,
		ignoredHeader:  ignored,
		redactedHeader: redacted,
		disabled:       mc.Disabled,
		sampleRate:     mc.SampleRate,
		timeout:        mc.Timeout,
		differ:         d,
		compareMessage: mc.CompareStatusMessage,
		maxMessages:    cmp.Or(mc.MaxStreamMessages, DefaultMaxStreamMessages),
		maxBytes:       int64(cmp.Or(mc.MaxStreamBytes, DefaultMaxStreamBytes)),
		unordered:      mc.UnorderedReplies,
		compareHeader:  mc.CompareHeader,
	}, nil
}

// headerKeys checks header keys as gRPC metadata has them: lower case
// letters, digits, '-', '_' and '.'.
func headerKeys(field string, keys []string) (map[string]bool, *ruleError) {
	set := make(map[string]bool, len(keys))
	for i, k := range keys {
		if k == "" || strings.Trim(k, "abcdefghijklmnopqrstuvwxyz0123456789-_.") != "" {
			return nil, &ruleError{field: field, elem: i + 1, err: fmt.Errorf("%q is not a header key (lower case letters, digits, '-', '_', '.')", k)}
		}
		set[k] = true
	}
	return set, nil
}
