package interceptor

import (
	"cmp"
	"encoding/hex"
	"hash/fnv"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// Noise rule defaults; see [WithNoiseRule].
const (
	// DefaultNoiseMinProbes is how many noise probes of a method must have
	// been compared before any of its fields can be classified as noise.
	DefaultNoiseMinProbes = 20
	// DefaultNoiseRelative and DefaultNoiseAbsolute are Diffy's thresholds:
	// a field's candidate differences are real when their rate exceeds its
	// noise rate by more than 20% of the two together, and by more than
	// 0.03% of the calls.
	DefaultNoiseRelative = 0.20
	DefaultNoiseAbsolute = 0.0003
)

// Bounds on what is kept per method, so that a candidate that answers
// garbage cannot make them grow without end: past them, differences are
// counted under OtherMethod's field name and signature.
const (
	maxFieldsPerMethod     = 1024
	maxSignaturesPerMethod = 256
	maxSignatureExamples   = 3
)

// noiseRule classifies fields as noise from counts.
type noiseRule struct {
	minProbes          int64
	relative, absolute float64
}

// noise says whether a field's differences are explained by noise: the
// legacy service disagreed with itself there in some probes (evidence),
// and the candidate's rate of differences does not clearly exceed that
// noise rate.
func (r noiseRule) noise(compared, candDiffs, probes, noiseDiffs int64) bool {
	if probes < r.minProbes || noiseDiffs == 0 || compared == 0 {
		return false
	}
	cand := float64(candDiffs) / float64(compared)
	noise := float64(noiseDiffs) / float64(probes)
	real := cand > noise && (cand-noise)/(cand+noise) > r.relative && cand-noise > r.absolute
	return !real
}

// signals is what the parallel run learns of one method's differences:
// per index-free field, how often the candidate differed from the legacy
// service and how often the legacy service differed from itself (the
// noise evidence), and per signature how often each distinct problem
// occurred. The evidence holds only under the comparison options it was
// gathered with; the signatures are what happened, and outlive them (see
// carry).
type signals struct {
	rule noiseRule
	// reply is the method's reply type, to find values that are one
	// though protobuf spells them in several fields; nil if unknown.
	reply protoreflect.MessageDescriptor
	sigs  *signatures

	mu       sync.Mutex
	compared int64 // calls whose replies (or statuses) were compared
	probes   int64 // noise probes compared
	fields   map[string]*fieldCounts
	units    map[string]int // field -> segments of its unit (see unitOf)
}

// signatures counts a method's mismatches by signature.
type signatures struct {
	mu sync.Mutex
	m  map[string]*signature
}

type fieldCounts struct {
	cand, noise int64
}

type signature struct {
	id         string
	key        string // the canonical form the ID is a hash of
	legacy     string // status codes
	candidate  string
	fieldKinds []string
	count      int64
	examples   []string // trace IDs of the first mismatches
}

func newSignals(rule noiseRule, reply protoreflect.MessageDescriptor) *signals {
	return &signals{rule: rule, reply: reply, sigs: &signatures{m: map[string]*signature{}}, fields: map[string]*fieldCounts{}, units: map[string]int{}}
}

// carry returns the signals of a method whose configuration is replaced:
// the same, when the evidence still holds; otherwise new ones, with no
// evidence, that go on counting the same signatures. Calls that started
// before go on with the old signals, whose evidence then goes nowhere.
func (s *signals) carry(evidenceHolds bool) *signals {
	if evidenceHolds {
		return s
	}
	n := newSignals(s.rule, s.reply)
	n.sigs = s.sigs
	return n
}

// field returns a field's counts, within the bound.
func (s *signals) field(name string) *fieldCounts {
	fc := s.fields[name]
	if fc == nil {
		if len(s.fields) >= maxFieldsPerMethod {
			name = OtherMethod
			if fc = s.fields[name]; fc != nil {
				return fc
			}
		}
		fc = &fieldCounts{}
		s.fields[name] = fc
	}
	return fc
}

// observe counts one compared call, and its probe if it had one, and
// splits the call's differences into real ones and noise: a difference is
// noise when its field is classified as noise, or when the probe of this
// very call found the legacy service disagreeing with itself at its path.
func (s *signals) observe(diffs []protodiff.Difference, probed bool, probeDiffs []protodiff.Difference) (real, noise []protodiff.Difference) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.compared++
	for _, f := range s.uniqueUnits(diffs) {
		s.field(f).cand++
	}
	var noisyPaths map[string]bool
	if probed {
		s.probes++
		for _, f := range s.uniqueUnits(probeDiffs) {
			s.field(f).noise++
		}
		noisyPaths = make(map[string]bool, len(probeDiffs))
		for _, d := range probeDiffs {
			noisyPaths[s.unitPath(d)] = true
		}
	}
	for _, d := range diffs {
		fc := s.fields[s.unitField(d.Field)]
		if noisyPaths[s.unitPath(d)] || (fc != nil && s.rule.noise(s.compared, fc.cand, s.probes, fc.noise)) {
			noise = append(noise, d)
		} else {
			real = append(real, d)
		}
	}
	return real, noise
}

func (s *signals) uniqueUnits(diffs []protodiff.Difference) []string {
	fields := make([]string, 0, len(diffs))
	for _, d := range diffs {
		fields = append(fields, s.unitField(d.Field))
	}
	slices.Sort(fields)
	return slices.Compact(fields)
}

// unitField is the field that a difference's value belongs to as one: a
// google.protobuf.Timestamp or Duration is one value, though its seconds
// and nanos are two fields, and a time that differs on every call differs
// in its seconds only now and then. Counting the two apart would leave
// the seconds without the evidence the nanos give.
func (s *signals) unitField(field string) string {
	n, ok := s.units[field]
	if !ok {
		n = unitOf(s.reply, field)
		if len(s.units) < maxFieldsPerMethod {
			s.units[field] = n
		}
	}
	return firstSegments(field, n)
}

// unitPath is a difference's path cut as its field is.
func (s *signals) unitPath(d protodiff.Difference) string {
	s.unitField(d.Field)
	return firstSegments(d.Path, s.units[d.Field])
}

// unitOf returns how many segments of an index-free field make its unit
// (see unitField), or 0 to keep it whole.
func unitOf(md protoreflect.MessageDescriptor, field string) int {
	for i, seg := range segments(field) {
		if md == nil || strings.HasPrefix(seg, "(") || seg == "" || seg[0] >= '0' && seg[0] <= '9' {
			return 0 // Any payloads, extensions, unknown fields: kept whole
		}
		fd := md.Fields().ByName(protoreflect.Name(seg))
		if fd == nil {
			return 0
		}
		if fd.IsMap() {
			fd = fd.MapValue()
		}
		switch md = fd.Message(); {
		case md == nil:
			return 0
		case md.FullName() == "google.protobuf.Timestamp" || md.FullName() == "google.protobuf.Duration":
			return i + 1
		}
	}
	return 0
}

// segments splits a path at its dots, but for dots inside parentheses
// (full names) and brackets (indexes, map keys, which may be quoted).
func segments(path string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case quoted && c == '\\':
			i++
		case c == '"' && depth > 0:
			quoted = !quoted
		case quoted:
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			depth--
		case c == '.' && depth == 0:
			out = append(out, path[start:i])
			start = i + 1
		}
	}
	return append(out, path[start:])
}

// firstSegments keeps the first n segments of a path; all of it for 0.
func firstSegments(path string, n int) string {
	if n == 0 {
		return path
	}
	segs := segments(path)
	if n >= len(segs) {
		return path
	}
	return strings.Join(segs[:n], ".")
}

// signatureOf is a mismatch's stable signature: a hash of its sorted set
// of (field, kind) and the two status codes, the same in every process
// and every version, so that reports of many clients group alike.
func signatureOf(diffs []protodiff.Difference, legacyCode, candCode string) (id, key string, fieldKinds []string) {
	fieldKinds = make([]string, 0, len(diffs))
	for _, d := range diffs {
		fieldKinds = append(fieldKinds, d.Field+":"+d.Kind.String())
	}
	slices.Sort(fieldKinds)
	fieldKinds = slices.Compact(fieldKinds)
	key = strings.Join(fieldKinds, ",") + ";" + legacyCode + ";" + candCode
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil)), key, fieldKinds
}

// mismatch counts a mismatch under its signature and returns the
// signature's ID (OtherMethod past the bound).
func (s *signals) mismatch(diffs []protodiff.Difference, legacyCode, candCode, traceID string) string {
	id, key, fieldKinds := signatureOf(diffs, legacyCode, candCode)
	ss := s.sigs
	ss.mu.Lock()
	defer ss.mu.Unlock()
	sig := ss.m[id]
	if sig == nil {
		if len(ss.m) >= maxSignaturesPerMethod {
			id, key, fieldKinds = OtherMethod, OtherMethod, nil
			sig = ss.m[id]
		}
		if sig == nil {
			sig = &signature{id: id, key: key, legacy: legacyCode, candidate: candCode, fieldKinds: fieldKinds}
			ss.m[id] = sig
		}
	}
	sig.count++
	if len(sig.examples) < maxSignatureExamples && traceID != "" {
		sig.examples = append(sig.examples, traceID)
	}
	return id
}

// MethodSignals is what a [ParallelRun] has learnt of one method's
// differences so far: see [ParallelRun.Signals].
type MethodSignals struct {
	// Method is the method's name, as rpc.method: pkg.Service/Method.
	Method string
	// Compared counts the calls whose answers were compared (both sides
	// answered: matches and mismatches), Probes the noise probes compared.
	// They and Fields are the noise evidence: they count from the last
	// time the method's comparison options or noise probes changed (see
	// [ParallelRun.SetMethods]).
	Compared, Probes int64
	// Fields are the index-free fields that differed at least once, most
	// often differing first.
	Fields []FieldSignal
	// Signatures are the distinct problems found, most frequent first,
	// since the method was first configured.
	Signatures []Signature
}

// FieldSignal is one field's counts and its classification.
type FieldSignal struct {
	// Field is an index-free field path; a google.protobuf.Timestamp or
	// Duration counts as one field (quote.computed_at), not as its seconds
	// and nanos.
	Field string
	// CandidateDiffs counts compared calls whose candidate answer differed
	// from the legacy one at the field; NoiseDiffs probes whose second
	// legacy answer did.
	CandidateDiffs, NoiseDiffs int64
	// Noise says the field's differences are explained by the legacy
	// service's own: they no longer make a call a mismatch.
	Noise bool
}

// Signature is one distinct problem: the mismatches whose differences are
// at the same fields, of the same kinds, with the same status codes.
type Signature struct {
	// ID is stable across processes and versions: a hash of the rest.
	ID string
	// FieldKinds are the sorted "field:kind" pairs, such as
	// "quote.total.units:changed".
	FieldKinds []string
	// LegacyStatus and CandidateStatus are the status codes' names.
	LegacyStatus, CandidateStatus string
	Count                         int64
	// Examples are the trace IDs of the first mismatches of the kind.
	Examples []string
}

// snapshot copies the signals out, sorted.
func (s *signals) snapshot(method string) MethodSignals {
	s.mu.Lock()
	ms := MethodSignals{Method: method, Compared: s.compared, Probes: s.probes}
	for name, fc := range s.fields {
		ms.Fields = append(ms.Fields, FieldSignal{Field: name, CandidateDiffs: fc.cand, NoiseDiffs: fc.noise,
			Noise: s.rule.noise(s.compared, fc.cand, s.probes, fc.noise)})
	}
	s.mu.Unlock()
	slices.SortFunc(ms.Fields, func(a, b FieldSignal) int {
		return cmp.Or(cmp.Compare(b.CandidateDiffs, a.CandidateDiffs), cmp.Compare(a.Field, b.Field))
	})
	s.sigs.mu.Lock()
	defer s.sigs.mu.Unlock()
	for _, sig := range s.sigs.m {
		ms.Signatures = append(ms.Signatures, Signature{ID: sig.id, FieldKinds: slices.Clone(sig.fieldKinds),
			LegacyStatus: sig.legacy, CandidateStatus: sig.candidate, Count: sig.count, Examples: slices.Clone(sig.examples)})
	}
	slices.SortFunc(ms.Signatures, func(a, b Signature) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.ID, b.ID))
	})
	return ms
}
