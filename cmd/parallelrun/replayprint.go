package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// replayTally counts the replayed calls by what they came to.
type replayTally struct {
	// Calls sent to the candidate and answered.
	Replayed int64 `json:"replayed"`
	// Replayed calls with no recorded difference left and nothing new.
	FullyFixed int64 `json:"fully_fixed"`
	// Replayed calls with a recorded difference still there.
	StillDifferent int64 `json:"still_different"`
	// Replayed calls with a difference the report did not have.
	New int64 `json:"new_differences"`
	// Mismatches whose report lacks what a replay needs.
	NotReplayable int64 `json:"not_replayable"`
	// Mismatches that could not be replayed: a method or type not found,
	// a call that failed as a call.
	Errors int64 `json:"errors"`
	// Lines of the input that were not reports.
	Malformed int64 `json:"malformed_lines"`
}

// callLine is the JSON form of one call's result.
type callLine struct {
	Method        string `json:"method"`
	TraceID       string `json:"trace_id"`
	Report        string `json:"report"` // file:line
	Result        string `json:"result"` // fixed, still_different, new_differences, not_replayable, error
	Reason        string `json:"reason,omitempty"`
	LegacyStatus  string `json:"legacy_status,omitempty"`
	*ReplayResult `json:",omitempty"`
}

// replayPrinter prints each call's result as it is known, in the order of
// the reports, then the tally.
type replayPrinter struct {
	w        io.Writer
	progress *progress
	json     bool
	tally    replayTally
}

func newReplayPrinter(w io.Writer, p *progress, asJSON bool) *replayPrinter {
	return &replayPrinter{w: w, progress: p, json: asJSON}
}

func (p *replayPrinter) print(j *job) {
	rep := j.rec.rep
	line := callLine{Method: rep.GetMethod(), TraceID: rep.GetTraceId(), Report: j.rec.where(), LegacyStatus: rep.GetLegacyStatus().GetCode()}
	switch {
	case j.notReplayed != "":
		p.tally.NotReplayable++
		line.Result, line.Reason = "not_replayable", j.notReplayed
	case j.err != nil:
		p.tally.Errors++
		line.Result, line.Reason = "error", j.err.Error()
	default:
		r := j.result
		line.ReplayResult = r
		p.tally.Replayed++
		switch {
		case r.fixed():
			p.tally.FullyFixed++
			line.Result = "fixed"
		case len(r.StillDifferent) > 0:
			line.Result = "still_different"
		default:
			line.Result = "new_differences"
		}
		if len(r.StillDifferent) > 0 {
			p.tally.StillDifferent++
		}
		if len(r.New) > 0 {
			p.tally.New++
		}
	}
	p.progress.clear()
	if p.json {
		b, _ := json.Marshal(line)
		fmt.Fprintf(p.w, "%s\n", b)
		return
	}
	p.text(line)
}

// text prints a call as a header line and one line per path.
func (p *replayPrinter) text(l callLine) {
	trace := "trace " + clean(l.TraceID, maxNameLen)
	if l.TraceID == "" {
		trace = "no trace"
	}
	head := fmt.Sprintf("%s  %s  (%s): ", clean(l.Method, maxNameLen), trace, clean(l.Report, maxNameLen))
	switch l.Result {
	case "not_replayable":
		fmt.Fprintf(p.w, "%snot replayable: %s\n", head, clean(l.Reason, maxErrLen))
		return
	case "error":
		fmt.Fprintf(p.w, "%serror: %s\n", head, clean(l.Reason, maxErrLen))
		return
	}
	r := l.ReplayResult
	status := l.LegacyStatus
	if r.CandidateStatus != l.LegacyStatus {
		status = l.LegacyStatus + " -> " + r.CandidateStatus
	}
	word := map[string]string{"fixed": "fixed", "still_different": "still different", "new_differences": "new differences"}[l.Result]
	fmt.Fprintf(p.w, "%s%s (status %s, %s)\n", head, word, status, plural(int64(r.Replies), "reply", "replies"))
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	for _, d := range r.Fixed {
		fmt.Fprintf(tw, "    fixed\t%s\twas %s -> %s\n", clean(d.Path, maxNameLen), value(d.Legacy), value(d.Candidate))
	}
	for _, d := range r.StillDifferent {
		fmt.Fprintf(tw, "    still different\t%s\t%s -> %s", clean(d.Path, maxNameLen), value(d.Legacy), value(d.Candidate))
		if d.RecordedCandidate != d.Candidate {
			fmt.Fprintf(tw, " (was -> %s)", value(d.RecordedCandidate))
		}
		fmt.Fprintln(tw)
	}
	for _, d := range r.New {
		fmt.Fprintf(tw, "    new\t%s\t%s -> %s\n", clean(d.Path, maxNameLen), value(d.Legacy), value(d.Candidate))
	}
	for _, d := range r.NotChecked {
		fmt.Fprintf(tw, "    not checked\t%s\t%s\n", clean(d.Path, maxNameLen), d.Why)
	}
	tw.Flush()
	var notes []string
	if r.Noise > 0 {
		notes = append(notes, fmt.Sprintf("%s at fields the report holds as noise, not counted", plural(int64(r.Noise), "difference", "differences")))
	}
	if r.RecordedTruncated {
		notes = append(notes, "the report's differences were cut at a limit: a difference shown new may have been there")
	}
	if r.Truncated {
		notes = append(notes, "the differences found were cut at a limit: a difference shown fixed may be there still")
	}
	if r.Incomplete != "" {
		notes = append(notes, "the comparison stopped at protodiff's "+r.Incomplete+" limit")
	}
	for _, n := range notes {
		fmt.Fprintf(p.w, "    (%s)\n", n)
	}
}

// value prints a rendered value, "(none)" for a side that lacks it.
func value(s string) string {
	if s == "" {
		return "(none)"
	}
	return clean(s, maxValueLen)
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return count(n) + " " + many
}

// finish prints the tally.
func (p *replayPrinter) finish(malformed int64) {
	p.tally.Malformed = malformed
	p.progress.clear()
	if p.json {
		b, _ := json.Marshal(struct {
			Tally replayTally `json:"tally"`
		}{p.tally})
		fmt.Fprintf(p.w, "%s\n", b)
		return
	}
	t := p.tally
	fmt.Fprintf(p.w, "\nreplayed %s: %s fully fixed, %s still different, %s with new differences; %s not replayable, %s, %s\n",
		plural(t.Replayed, "call", "calls"), count(t.FullyFixed), count(t.StillDifferent), count(t.New),
		count(t.NotReplayable), plural(t.Errors, "error", "errors"), plural(t.Malformed, "malformed line", "malformed lines"))
}
