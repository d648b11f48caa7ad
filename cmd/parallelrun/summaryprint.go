package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"google.golang.org/protobuf/types/known/durationpb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// printSummary prints a run's status as text: the table of methods, each
// method's reasons, fields, signatures and noise, then the verdict.
func printSummary(w io.Writer, st *parallelrunv1.RunStatus, reports, malformed int64) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "method\tverdict\tcompared\tmismatch rate\tcandidate error rate\tstreak\tlegacy p99\tcandidate p99")
	for _, m := range st.GetMethods() {
		compared := m.GetOutcomes().GetMatch() + m.GetOutcomes().GetMismatch()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s, %s\t%s\t%s\n",
			clean(m.GetMethod(), maxNameLen), verdictName(m.GetReadiness().GetVerdict()), count(compared),
			percent(m.GetMismatchRate()), percent(m.GetCandidateErrorRate()),
			plural(m.GetStreak().GetCalls(), "call", "calls"), durationOf(m.GetStreak().GetDuration()),
			p99(m.GetLegacyLatency()), p99(m.GetCandidateLatency()))
	}
	tw.Flush()

	for _, m := range st.GetMethods() {
		fmt.Fprintf(w, "\n%s: %s\n", clean(m.GetMethod(), maxNameLen), verdictName(m.GetReadiness().GetVerdict()))
		for _, r := range m.GetReadiness().GetReasons() {
			fmt.Fprintf(w, "  - %s\n", clean(r, maxErrLen))
		}
		if fields := m.GetTopFields(); len(fields) > 0 {
			fmt.Fprintln(w, "  fields that differ most:")
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "    field\tmismatches\texample (legacy -> candidate)\ttrace")
			for _, f := range fields {
				fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", clean(f.GetField(), maxNameLen), count(f.GetCount()), example(f.GetExample()), traceOrNone(f.GetTraceId()))
			}
			tw.Flush()
		}
		if sigs := m.GetTopSignatures(); len(sigs) > 0 {
			fmt.Fprintln(w, "  distinct problems (mismatches by signature):")
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "    signature\tmismatches\tfields\tstatus\tfirst trace")
			for _, s := range sigs {
				status := s.GetLegacyCode()
				if s.GetCandidateCode() != s.GetLegacyCode() {
					status += " -> " + s.GetCandidateCode()
				}
				first := ""
				if ids := s.GetTraceIds(); len(ids) > 0 {
					first = ids[0]
				}
				fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\n", clean(s.GetSignature(), maxNameLen), count(s.GetCount()),
					clean(strings.Join(s.GetFields(), " "), maxValueLen), clean(status, maxNameLen), traceOrNone(first))
			}
			tw.Flush()
		}
		if noise := m.GetNoiseFields(); len(noise) > 0 {
			fmt.Fprintln(w, "  noise (fields where the legacy service differs from itself; not counted):")
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "    field\tdifferences\texample (legacy -> candidate)")
			for _, f := range noise {
				fmt.Fprintf(tw, "    %s\t%s\t%s\n", clean(f.GetField(), maxNameLen), count(f.GetCount()), example(f.GetExample()))
			}
			tw.Flush()
		}
	}

	r := st.GetReadiness()
	fmt.Fprintf(w, "\noverall: %s\n", verdictName(r.GetVerdict()))
	for _, reason := range r.GetReasons() {
		fmt.Fprintf(w, "  - %s\n", clean(reason, maxErrLen))
	}
	judged := "judged at " + st.GetTime().AsTime().UTC().Format("2006-01-02T15:04:05Z07:00")
	if st.GetStart() != nil {
		judged += ", reports from " + st.GetStart().AsTime().UTC().Format("2006-01-02T15:04:05Z07:00")
	}
	fmt.Fprintf(w, "%s; %s read, %s\n", judged, plural(reports, "report", "reports"), plural(malformed, "malformed line", "malformed lines"))
}

// verdictName writes a verdict as a reader says it.
func verdictName(v parallelrunv1.Verdict) string {
	switch v {
	case parallelrunv1.Verdict_VERDICT_READY:
		return "READY"
	case parallelrunv1.Verdict_VERDICT_NOT_READY:
		return "NOT READY"
	case parallelrunv1.Verdict_VERDICT_NOT_ENOUGH_DATA:
		return "NOT ENOUGH DATA"
	}
	return "UNKNOWN"
}

func durationOf(d *durationpb.Duration) string {
	if d == nil {
		return "0s"
	}
	return durationText(d.AsDuration())
}

func p99(l *parallelrunv1.LatencySummary) string {
	if l.GetCount() == 0 {
		return "-"
	}
	return durationOf(l.GetP99())
}

// example writes a difference as "path: legacy -> candidate", with the
// values as the reports hold them (redacted where sensitive).
func example(d *parallelrunv1.Difference) string {
	if d == nil {
		return ""
	}
	return fmt.Sprintf("%s %s: %s -> %s", clean(d.GetPath(), maxNameLen), sink.KindName(d.GetKind()), value(d.GetLegacy()), value(d.GetCandidate()))
}

func traceOrNone(id string) string {
	if id == "" {
		return "-"
	}
	return clean(id, maxNameLen)
}
