package main

import (
	"bytes"
	"container/heap"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// record is a report as read, with where it was read.
type record struct {
	rep  *parallelrunv1.Report
	in   *input
	line int
	// unresolved lists the type URLs of Any values in the report whose
	// types were not found, read as empty placeholders.
	unresolved []string
}

func (r record) where() string { return r.in.where(r.line) }

// reportReader reads the reports of several inputs, each in order, merged
// by report time: a k-way merge that holds the next report of each input.
// It holds one line buffer, shared, and one decoded report per input.
type reportReader struct {
	ins     []*input
	heads   recordHeap
	buf     []byte
	types   *lenient
	opts    protojson.UnmarshalOptions
	diag    *diagnostics
	strip   bool // drop requests and replies once read (summary needs none)
	reports int64
	bytes   int64 // read from all inputs
	started bool
}

func newReportReader(ins []*input, types *lenient, diag *diagnostics, strip bool) *reportReader {
	return &reportReader{
		ins:   ins,
		types: types,
		// DiscardUnknown lets placeholder types take any payload; it also
		// lets a newer writer's fields pass, and validate tells a report
		// from another JSON object. RecursionLimit: see maxDepth.
		opts:  protojson.UnmarshalOptions{Resolver: types, DiscardUnknown: true, RecursionLimit: maxDepth},
		diag:  diag,
		strip: strip,
	}
}

// next returns the report with the earliest time among the inputs' next
// ones, io.EOF after the last, or an error of reading an input.
func (rr *reportReader) next() (record, error) {
	if !rr.started {
		rr.started = true
		for _, in := range rr.ins {
			rec, err := rr.read(in)
			if err == io.EOF {
				continue
			}
			if err != nil {
				return record{}, err
			}
			rr.heads = append(rr.heads, rec)
		}
		heap.Init(&rr.heads)
	}
	if len(rr.heads) == 0 {
		rr.diag.progress.clear()
		return record{}, io.EOF
	}
	rec := rr.heads[0]
	nextRec, err := rr.read(rec.in)
	switch {
	case err == io.EOF:
		heap.Pop(&rr.heads)
	case err != nil:
		return record{}, err
	default:
		rr.heads[0] = nextRec
		heap.Fix(&rr.heads, 0)
	}
	rr.reports++
	rr.diag.progress.update(rr.bytes, rr.reports)
	return rec, nil
}

// read reads the next report of one input, reporting and counting the
// malformed lines on the way.
func (rr *reportReader) read(in *input) (record, error) {
	for {
		before := in.bytes
		line, err := in.readLine(&rr.buf)
		rr.bytes += in.bytes - before
		switch {
		case err == errLineTooLong:
			rr.diag.malformed(in.where(in.line), err)
			continue
		case err == io.EOF:
			return record{}, io.EOF
		case err != nil:
			return record{}, fmt.Errorf("%s: line %d: %w", in.name, in.line+1, withoutPath(err))
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue // a blank line holds nothing to count
		}
		rec, err := rr.decode(line)
		if err != nil {
			rr.diag.malformed(in.where(in.line), err)
			rr.diag.progress.update(rr.bytes, rr.reports)
			continue
		}
		rec.in, rec.line = in, in.line
		return rec, nil
	}
}

// decode decodes one line into a report, or says why it is malformed.
func (rr *reportReader) decode(line []byte) (rec record, err error) {
	if err := checkShape(line); err != nil {
		return record{}, err
	}
	rep := &parallelrunv1.Report{}
	rr.types.reset()
	defer func() {
		// protojson has panicked on payloads it read with a type other
		// than theirs; whatever else may still do so, one line is not a
		// reason to end the command with the reports read so far.
		if p := recover(); p != nil {
			rec, err = record{}, fmt.Errorf("the line could not be decoded (protojson panicked: %v)", p)
		}
	}()
	if err := rr.opts.Unmarshal(line, rep); err != nil {
		if strings.Contains(err.Error(), "exceeded max recursion depth") {
			// protojson has no error value to test for.
			return record{}, fmt.Errorf("messages nested more than %d levels deep: %w", maxDepth, err)
		}
		return record{}, err
	}
	if err := validate(rep); err != nil {
		return record{}, err
	}
	rec = record{rep: rep}
	if len(rr.types.missed) > 0 {
		rec.unresolved = append([]string(nil), rr.types.missed...)
	}
	if rr.strip {
		rep.Request, rep.Requests, rep.LegacyReplies = nil, nil, nil
	}
	return rec, nil
}

// validate tells a report from another JSON object, which reads as a
// report with nothing in it, since unknown fields are discarded.
func validate(r *parallelrunv1.Report) error {
	var missing []string
	if r.GetMethod() == "" {
		missing = append(missing, "method")
	}
	if _, ok := parallelrunv1.Outcome_name[int32(r.GetOutcome())]; !ok || r.GetOutcome() == parallelrunv1.Outcome_OUTCOME_UNSPECIFIED {
		missing = append(missing, "outcome")
	}
	if r.GetTime() == nil {
		missing = append(missing, "time")
	} else if err := r.GetTime().CheckValid(); err != nil {
		return fmt.Errorf("not a parallelrun.v1.Report: time: %w", err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("not a parallelrun.v1.Report: no %s", strings.Join(missing, ", no "))
	}
	return nil
}

// recordHeap orders the inputs' next reports by time, then by the order
// of the inputs, so that equal times keep a stable order.
type recordHeap []record

func (h recordHeap) Len() int { return len(h) }
func (h recordHeap) Less(i, j int) bool {
	a, b := h[i].rep.GetTime(), h[j].rep.GetTime()
	if a.GetSeconds() != b.GetSeconds() {
		return a.GetSeconds() < b.GetSeconds()
	}
	if a.GetNanos() != b.GetNanos() {
		return a.GetNanos() < b.GetNanos()
	}
	return h[i].in.index < h[j].in.index
}
func (h recordHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *recordHeap) Push(x any)   { *h = append(*h, x.(record)) }
func (h *recordHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// maxShownMalformed bounds the malformed lines reported one by one; the
// rest are counted.
const maxShownMalformed = 100

// diagnostics writes the messages of reading to standard error, around
// the progress line, and counts the malformed lines.
type diagnostics struct {
	w          io.Writer
	progress   *progress
	malformedN int64
}

func (d *diagnostics) malformed(where string, err error) {
	d.malformedN++
	switch {
	case d.malformedN <= maxShownMalformed:
		d.printf("%s: %s", where, clean(err.Error(), maxErrLen))
	case d.malformedN == maxShownMalformed+1:
		d.printf("%s: malformed too; more malformed lines are counted, not shown", where)
	}
}

func (d *diagnostics) printf(format string, args ...any) {
	d.progress.clear()
	fmt.Fprintf(d.w, format+"\n", args...)
}
