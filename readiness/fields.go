package readiness

import (
	"cmp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// Bounds of what is kept of one report, so that a hostile one costs no
// more than these whatever its size. Real reports stay well within:
// protodiff cuts values to 256 bytes, and a trace ID is 32 characters.
const (
	// maxName is the longest method, field or signature kept under its
	// own name; longer ones count under Other.
	maxName = 512
	// maxText is the longest example value or path kept, and maxID the
	// longest trace ID or status code; longer ones are cut (with "…").
	maxText = 512
	maxID   = 64
	// maxSignatureFields and maxSignatureBytes bound a signature's
	// description: those of its fields past either are left out (the
	// signature itself still tells the problems apart). 64 is also the most
	// differences the interceptor reports for a stream.
	maxSignatureFields = 64
	maxSignatureBytes  = 2048
	// signatureTraces is how many trace IDs of a signature are kept: the
	// first ones.
	signatureTraces = 5
)

// cut returns s, or its first maxText bytes (whole characters) and "…".
// A cut is a copy, so that the report's string is not kept alive.
func cut(s string) string { return cutTo(s, maxText) }

func cutTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.Clone(s[:n]) + "…"
}

// difference is a copy of a reported Difference: a report may not be kept
// after Publish, but its strings, which nothing can change, may.
type difference struct {
	path, field       string
	kind              parallelrunv1.DifferenceKind
	legacy, candidate string
}

func (d *difference) proto() *parallelrunv1.Difference {
	return &parallelrunv1.Difference{Path: d.path, Field: d.field, Kind: d.kind, Legacy: d.legacy, Candidate: d.candidate}
}

// fieldCount counts the calls that differed at one field.
type fieldCount struct {
	name     string
	count    int64
	example  difference
	traceID  string
	lastSeen int64 // nanoseconds since the epoch; 0 when unknown
	call     uint64
}

// fieldTally counts calls per field, for at most limit distinct fields;
// newcomers past it count under Other.
type fieldTally struct {
	byName map[string]*fieldCount
	limit  int
}

// add counts call for the field of d, once per call: call numbers each
// report, and a field already counted for it is skipped.
func (t *fieldTally) add(d *parallelrunv1.Difference, call uint64, traceID string, at int64) {
	name := d.GetField()
	c := t.byName[name]
	if c == nil {
		if len(name) > maxName || len(t.byName) >= t.limit {
			name = Other
			c = t.byName[Other]
		}
		if c == nil {
			if t.byName == nil {
				t.byName = make(map[string]*fieldCount)
			}
			c = &fieldCount{name: name}
			t.byName[name] = c
		}
	}
	if c.call == call {
		return
	}
	c.call = call
	c.count++
	c.example = difference{path: cut(d.GetPath()), field: cut(d.GetField()), kind: d.GetKind(),
		legacy: cut(d.GetLegacy()), candidate: cut(d.GetCandidate())}
	c.traceID = cutTo(traceID, maxID)
	c.lastSeen = at
}

// top returns the n fields counted most, most first, then by name.
func (t *fieldTally) top(n int) []*parallelrunv1.FieldSummary {
	best := mostCounted(t.byName, n, func(c *fieldCount) (int64, string) { return c.count, c.name })
	out := make([]*parallelrunv1.FieldSummary, 0, len(best))
	for _, c := range best {
		out = append(out, &parallelrunv1.FieldSummary{
			Field:    c.name,
			Count:    c.count,
			Example:  c.example.proto(),
			TraceId:  c.traceID,
			LastSeen: timestamp(c.lastSeen),
		})
	}
	return out
}

// signatureCount counts the mismatches with one signature.
type signatureCount struct {
	signature            string
	count                int64
	fields               []string
	legacyCode, candCode string
	traceIDs             []string
	firstSeen, lastSeen  int64
}

// signatureTally counts mismatches per signature, for at most limit
// distinct signatures; newcomers past it count under Other.
type signatureTally struct {
	bySig map[string]*signatureCount
	limit int
}

func (t *signatureTally) add(r *parallelrunv1.Report, at int64) {
	sig := r.GetSignature()
	c := t.bySig[sig]
	if c == nil {
		if len(sig) > maxName || len(t.bySig) >= t.limit {
			sig = Other
			c = t.bySig[Other]
		}
		if c == nil {
			if t.bySig == nil {
				t.bySig = make(map[string]*signatureCount)
			}
			c = &signatureCount{signature: sig, firstSeen: at}
			if sig != Other {
				c.fields = fieldKinds(r.GetDifferences())
				c.legacyCode, c.candCode = cutTo(r.GetLegacyStatus().GetCode(), maxID), cutTo(r.GetCandidateStatus().GetCode(), maxID)
			}
			t.bySig[sig] = c
		}
	}
	c.count++
	c.lastSeen = at
	if id := r.GetTraceId(); id != "" && len(c.traceIDs) < signatureTraces {
		c.traceIDs = append(c.traceIDs, cutTo(id, maxID))
	}
}

// fieldKinds is the sorted set of "field:kind" of diffs, as many as fit
// in maxSignatureFields and maxSignatureBytes. Sorting costs n log n in
// the differences, once per signature.
func fieldKinds(diffs []*parallelrunv1.Difference) []string {
	all := make([]string, 0, len(diffs))
	for _, d := range diffs {
		if len(d.GetField()) <= maxName {
			all = append(all, d.GetField()+":"+sink.KindName(d.GetKind()))
		}
	}
	slices.Sort(all)
	all = slices.Compact(all)
	size := 0
	for i, s := range all {
		if size += len(s); size > maxSignatureBytes || i == maxSignatureFields {
			all = all[:i]
			break
		}
	}
	return slices.Clip(all)
}

// top returns the n signatures counted most, most first, then by
// signature.
func (t *signatureTally) top(n int) []*parallelrunv1.SignatureSummary {
	best := mostCounted(t.bySig, n, func(c *signatureCount) (int64, string) { return c.count, c.signature })
	out := make([]*parallelrunv1.SignatureSummary, 0, len(best))
	for _, c := range best {
		out = append(out, &parallelrunv1.SignatureSummary{
			Signature:     c.signature,
			Count:         c.count,
			Fields:        slices.Clone(c.fields),
			LegacyCode:    c.legacyCode,
			CandidateCode: c.candCode,
			TraceIds:      slices.Clone(c.traceIDs),
			FirstSeen:     timestamp(c.firstSeen),
			LastSeen:      timestamp(c.lastSeen),
		})
	}
	return out
}

// mostCounted returns the n values of m counted most, most first, then
// by name (key says both).
func mostCounted[T any](m map[string]*T, n int, key func(*T) (int64, string)) []*T {
	all := make([]*T, 0, len(m))
	for _, c := range m {
		all = append(all, c)
	}
	slices.SortFunc(all, func(a, b *T) int {
		ca, na := key(a)
		cb, nb := key(b)
		return cmp.Or(cmp.Compare(cb, ca), strings.Compare(na, nb))
	})
	return all[:min(n, len(all))]
}

// timestamp is the Timestamp of ns nanoseconds since the epoch; nil for
// 0, which stands for unknown.
func timestamp(ns int64) *timestamppb.Timestamp {
	if ns == 0 {
		return nil
	}
	return timestamppb.New(time.Unix(0, ns))
}
