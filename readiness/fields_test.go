package readiness_test

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

func TestTopFields(t *testing.T) {
	tr := newTracker(t, readiness.WithTopFields(2))
	// Three differences at one field count once for the call.
	tr.Add(mismatch(t0, withTrace("t1"), withDiffs(
		diff("quote.items[0].price.units", "quote.items.price.units", "1", "2"),
		diff("quote.items[1].price.units", "quote.items.price.units", "3", "4"),
		diff("quote.total.units", "quote.total.units", "4", "6"),
	)))
	tr.Add(mismatch(t0.Add(time.Minute), withTrace("t2"), withDiffs(
		diff("quote.items[2].price.units", "quote.items.price.units", "5", "6"),
		diff("quote.currency", "quote.currency", `"EUR"`, `"USD"`),
	)))
	// Matches and other outcomes carry no differences that count.
	tr.Add(match(t0.Add(2*time.Minute), withDiffs(diff("quote.id", "quote.id", "1", "2"))))
	got := methodStatus(t, tr.Status(time.Time{}), quote).GetTopFields()
	want := []*parallelrunv1.FieldSummary{
		{
			Field:    "quote.items.price.units",
			Count:    2,
			Example:  diff("quote.items[2].price.units", "quote.items.price.units", "5", "6"),
			TraceId:  "t2",
			LastSeen: timestamppb.New(t0.Add(time.Minute)),
		},
		// One each: by name.
		{
			Field:    "quote.currency",
			Count:    1,
			Example:  diff("quote.currency", "quote.currency", `"EUR"`, `"USD"`),
			TraceId:  "t2",
			LastSeen: timestamppb.New(t0.Add(time.Minute)),
		},
	}
	if !slices.EqualFunc(got, want, func(a, b *parallelrunv1.FieldSummary) bool { return proto.Equal(a, b) }) {
		t.Errorf("top fields\n%v\nwant\n%v", got, want)
	}
}

func TestNoiseFields(t *testing.T) {
	tr := newTracker(t)
	noise := withNoise(diff("quote.quote_id", "quote.quote_id", `"a"`, `"b"`), diff("quote.quote_id", "quote.quote_id", `"c"`, `"d"`))
	tr.Add(match(t0, noise, withTrace("t1")))
	tr.Add(mismatch(t0.Add(time.Second), noise, withTrace("t2")))
	tr.Add(candidateError(t0.Add(2*time.Second), noise, withTrace("t3")))
	got := methodStatus(t, tr.Status(time.Time{}), quote).GetNoiseFields()
	want := []*parallelrunv1.FieldSummary{{
		Field:    "quote.quote_id",
		Count:    3,
		Example:  diff("quote.quote_id", "quote.quote_id", `"a"`, `"b"`),
		TraceId:  "t3",
		LastSeen: timestamppb.New(t0.Add(2 * time.Second)),
	}}
	if !slices.EqualFunc(got, want, func(a, b *parallelrunv1.FieldSummary) bool { return proto.Equal(a, b) }) {
		t.Errorf("noise fields\n%v\nwant\n%v", got, want)
	}
}

func TestTopSignatures(t *testing.T) {
	tr := newTracker(t)
	added := parallelrunv1.DifferenceKind_DIFFERENCE_KIND_ADDED
	for i := range 7 {
		tr.Add(mismatch(t0.Add(time.Duration(i)*time.Second), withSignature("s1"), withTrace(fmt.Sprint("t", i)), withDiffs(
			diff("quote.total.units", "quote.total.units", "1", "2"),
			&parallelrunv1.Difference{Path: "quote.items[3]", Field: "quote.items", Kind: added, Candidate: "{}"},
			diff("quote.items[0].sku", "quote.items.sku", "a", "b"),
			diff("quote.total.units", "quote.total.units", "1", "2"),
		)))
	}
	tr.Add(mismatch(t0.Add(time.Minute), withSignature("s2"), withDiffs(), withTrace("u"), func(r *parallelrunv1.Report) {
		r.CandidateStatus = &parallelrunv1.Status{Code: "INTERNAL"}
	}))
	tr.Add(mismatch(t0.Add(time.Minute), withSignature(""))) // not grouped
	got := methodStatus(t, tr.Status(time.Time{}), quote).GetTopSignatures()
	want := []*parallelrunv1.SignatureSummary{
		{
			Signature:     "s1",
			Count:         7,
			Fields:        []string{"quote.items.sku:changed", "quote.items:added", "quote.total.units:changed"},
			LegacyCode:    "OK",
			CandidateCode: "OK",
			TraceIds:      []string{"t0", "t1", "t2", "t3", "t4"},
			FirstSeen:     timestamppb.New(t0),
			LastSeen:      timestamppb.New(t0.Add(6 * time.Second)),
		},
		{
			Signature:     "s2",
			Count:         1,
			LegacyCode:    "OK",
			CandidateCode: "INTERNAL",
			TraceIds:      []string{"u"},
			FirstSeen:     timestamppb.New(t0.Add(time.Minute)),
			LastSeen:      timestamppb.New(t0.Add(time.Minute)),
		},
	}
	if !slices.EqualFunc(got, want, func(a, b *parallelrunv1.SignatureSummary) bool { return proto.Equal(a, b) }) {
		t.Errorf("top signatures\n%v\nwant\n%v", got, want)
	}
}

// 100,000 distinct fields, noise fields and signatures: a method keeps 64
// of each (for the default top 10) and counts the rest under _OTHER, in
// bounded memory.
func TestFieldsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("adds 100,000 reports")
	}
	const n = 100_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tr := newTracker(t)
	for i := range n {
		name := fmt.Sprintf("f%06d", i)
		tr.Add(mismatch(t0.Add(time.Duration(i)*time.Millisecond), withSignature(name),
			withDiffs(diff(name+"[0]", name, strings.Repeat("x", 200), "y")),
			withNoise(diff(name, name, "1", "2"))))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d distinct fields: %d bytes held", n, held)
	// Each report's strings alone take over 300 bytes: kept, they would
	// be 30 MB.
	if held > 2<<20 {
		t.Errorf("%d bytes held after %d distinct fields", held, n)
	}

	m := methodStatus(t, tr.Status(time.Time{}), quote)
	const kept = 64
	for _, list := range []struct {
		name   string
		fields []*parallelrunv1.FieldSummary
	}{{"top fields", m.GetTopFields()}, {"noise fields", m.GetNoiseFields()}} {
		if len(list.fields) != readiness.DefaultTopFields {
			t.Fatalf("%s: %d, want %d", list.name, len(list.fields), readiness.DefaultTopFields)
		}
		other := list.fields[0]
		if other.GetField() != readiness.Other || other.GetCount() != n-kept {
			t.Errorf("%s: first %s %d, want %s %d", list.name, other.GetField(), other.GetCount(), readiness.Other, n-kept)
		}
		if got := other.GetExample().GetField(); got != fmt.Sprintf("f%06d", n-1) {
			t.Errorf("%s: %s's example is at %s, want the last newcomer's", list.name, readiness.Other, got)
		}
		for i, f := range list.fields[1:] {
			if want := fmt.Sprintf("f%06d", i); f.GetField() != want || f.GetCount() != 1 {
				t.Errorf("%s: %d: %s %d, want %s 1", list.name, i+1, f.GetField(), f.GetCount(), want)
			}
		}
	}
	sigs := m.GetTopSignatures()
	if len(sigs) != readiness.DefaultTopFields || sigs[0].GetSignature() != readiness.Other || sigs[0].GetCount() != n-kept ||
		sigs[1].GetSignature() != "f000000" {
		t.Errorf("signatures: %d, first %v", len(sigs), sigs[0])
	}
	runtime.KeepAlive(tr)
}

// Past WithMaxMethods, methods count under _OTHER; both spellings of a
// method are one method.
func TestMethodsBounded(t *testing.T) {
	tr := newTracker(t, readiness.WithMaxMethods(2), readiness.WithPolicy(permissive))
	for _, m := range []string{"pkg.S/A", "/pkg.S/A", "pkg.S/B", "pkg.S/C", "/pkg.S/D", "", strings.Repeat("x", 600)} {
		tr.Add(match(t0, withMethod(m)))
	}
	st := tr.Status(time.Time{})
	var got []string
	for _, m := range st.GetMethods() {
		got = append(got, fmt.Sprintf("%s %d", m.GetMethod(), m.GetOutcomes().GetMatch()))
	}
	want := []string{"/pkg.S/A 2", "/pkg.S/B 1", readiness.Other + " 4"}
	if !slices.Equal(got, want) {
		t.Errorf("methods %q, want %q", got, want)
	}
}

// Status returns a message of the caller's: changing it changes nothing
// in the Tracker, and neither does changing a report after Add.
func TestStatusNoAliasing(t *testing.T) {
	tr := newTracker(t)
	r := mismatch(t0, withNoise(diff("quote.quote_id", "quote.quote_id", "1", "2")))
	tr.Add(r)
	first := tr.Status(time.Time{})
	keep := proto.Clone(first)
	r.Differences[0].Path, r.Differences[0].Legacy, r.TraceId, r.Signature = "changed", "changed", "changed", "changed"
	r.Noise[0].Field = "changed"
	m := first.GetMethods()[0]
	m.GetTopFields()[0].GetExample().Path = "changed"
	m.GetTopFields()[0].Field = "changed"
	m.GetTopSignatures()[0].Fields[0] = "changed"
	m.GetTopSignatures()[0].TraceIds[0] = "changed"
	m.GetReadiness().GetPolicy().Window.Seconds = 1
	m.GetCandidateLatency().Count = 99
	m.GetStreak().LastMismatchAt = "changed"
	if second := tr.Status(time.Time{}); !proto.Equal(second, keep) {
		t.Errorf("status changed:\n%v\nwas\n%v", second, keep)
	}
}

// A hostile report's long strings are cut, not kept whole.
func TestLongStrings(t *testing.T) {
	tr := newTracker(t)
	long := strings.Repeat("é", 1000) // 2,000 bytes
	tr.Add(mismatch(t0, withTrace(long), withDiffs(diff(long, "f", long, long))))
	m := methodStatus(t, tr.Status(time.Time{}), quote)
	ex := m.GetTopFields()[0].GetExample()
	for _, s := range []string{ex.GetPath(), ex.GetLegacy(), ex.GetCandidate(), m.GetStreak().GetLastMismatchAt()} {
		if len(s) > 520 || !strings.HasSuffix(s, "é…") {
			t.Errorf("kept %d bytes, ending %q", len(s), s[len(s)-8:])
		}
	}
	if got := m.GetTopFields()[0].GetTraceId(); len(got) > 70 || !strings.HasSuffix(got, "…") {
		t.Errorf("trace ID of %d bytes kept", len(got))
	}
}

// A signature's description keeps its first 64 fields, within 2 KiB.
func TestSignatureFieldsBounded(t *testing.T) {
	tr := newTracker(t)
	var many, long []*parallelrunv1.Difference
	for i := range 100 {
		many = append(many, diff(fmt.Sprint("f", i), fmt.Sprintf("f%03d", i), "1", "2"))
		long = append(long, diff(fmt.Sprint("g", i), fmt.Sprintf("g%03d%s", i, strings.Repeat("x", 100)), "1", "2"))
	}
	tr.Add(mismatch(t0, withSignature("many"), withDiffs(many...)))
	tr.Add(mismatch(t0, withSignature("long"), withDiffs(long...)))
	for _, s := range methodStatus(t, tr.Status(time.Time{}), quote).GetTopSignatures() {
		fields, size := s.GetFields(), 0
		for _, f := range fields {
			size += len(f)
		}
		if !slices.IsSorted(fields) || size > 2048 || (s.GetSignature() == "many" && len(fields) != 64) ||
			(s.GetSignature() == "long" && len(fields) != 2048/len("g000"+strings.Repeat("x", 100)+":changed")) {
			t.Errorf("%s: %d fields of %d bytes: %q", s.GetSignature(), len(fields), size, fields)
		}
		if first := map[string]string{"many": "f000:changed", "long": "g000" + strings.Repeat("x", 100) + ":changed"}[s.GetSignature()]; fields[0] != first {
			t.Errorf("%s: first field %q, want %q", s.GetSignature(), fields[0], first)
		}
	}
}
