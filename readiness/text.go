package readiness

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/parallelrun/grpc-parallelrun/internal/termtext"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// Lengths at which strings of a status are cut when written as text.
const (
	maxNameLen   = 200 // methods, paths, trace IDs, signatures
	maxValueLen  = 300 // rendered values (protodiff cuts them at 256 bytes already)
	maxReasonLen = 500
)

// WriteText writes a status for a person reading a terminal: a table of
// the methods (verdict, calls compared, rates, streak, p99 latencies);
// per method the reasons of its verdict, the fields that differ most with
// an example and a trace ID, the distinct problems (signatures) and the
// noise; then the run's verdict and its reasons, and when it was judged.
// Every string from the status is escaped for the terminal and cut (a
// report's values come from an unfinished service). It returns the first
// error of w.
func WriteText(w io.Writer, st *parallelrunv1.RunStatus) error {
	ew := &errWriter{w: w}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "method\tverdict\tcompared\tmismatch rate\tcandidate error rate\tstreak\tlegacy p99\tcandidate p99")
	for _, m := range st.GetMethods() {
		compared := m.GetOutcomes().GetMatch() + m.GetOutcomes().GetMismatch()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s, %s\t%s\t%s\n",
			clean(m.GetMethod()), VerdictName(m.GetReadiness().GetVerdict()), count(compared),
			percent(m.GetMismatchRate()), percent(m.GetCandidateErrorRate()),
			plural(m.GetStreak().GetCalls(), "call", "calls"), durationOf(m.GetStreak().GetDuration()),
			p99(m.GetLegacyLatency()), p99(m.GetCandidateLatency()))
	}
	tw.Flush()

	for _, m := range st.GetMethods() {
		fmt.Fprintf(ew, "\n%s: %s\n", clean(m.GetMethod()), VerdictName(m.GetReadiness().GetVerdict()))
		for _, r := range m.GetReadiness().GetReasons() {
			fmt.Fprintf(ew, "  - %s\n", termtext.Clean(r, maxReasonLen))
		}
		if fields := m.GetTopFields(); len(fields) > 0 {
			fmt.Fprintln(ew, "  fields that differ most:")
			tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "    field\tmismatches\texample (legacy -> candidate)\ttrace")
			for _, f := range fields {
				fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", clean(f.GetField()), count(f.GetCount()), example(f.GetExample()), traceOrNone(f.GetTraceId()))
			}
			tw.Flush()
		}
		if sigs := m.GetTopSignatures(); len(sigs) > 0 {
			fmt.Fprintln(ew, "  distinct problems (mismatches by signature):")
			tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
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
				fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\n", clean(s.GetSignature()), count(s.GetCount()),
					termtext.Clean(strings.Join(s.GetFields(), " "), maxValueLen), clean(status), traceOrNone(first))
			}
			tw.Flush()
		}
		if noise := m.GetNoiseFields(); len(noise) > 0 {
			fmt.Fprintln(ew, "  noise (fields where the legacy service differs from itself; not counted):")
			tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "    field\tdifferences\texample (legacy -> candidate)")
			for _, f := range noise {
				fmt.Fprintf(tw, "    %s\t%s\t%s\n", clean(f.GetField()), count(f.GetCount()), example(f.GetExample()))
			}
			tw.Flush()
		}
	}

	r := st.GetReadiness()
	fmt.Fprintf(ew, "\noverall: %s\n", VerdictName(r.GetVerdict()))
	for _, reason := range r.GetReasons() {
		fmt.Fprintf(ew, "  - %s\n", termtext.Clean(reason, maxReasonLen))
	}
	judged := "judged at " + st.GetTime().AsTime().UTC().Format("2006-01-02T15:04:05Z07:00")
	if st.GetStart() != nil {
		judged += ", reports from " + st.GetStart().AsTime().UTC().Format("2006-01-02T15:04:05Z07:00")
	}
	if st.GetMirroringDisabled() {
		judged += "; mirroring is stopped (kill switch)"
	}
	fmt.Fprintln(ew, judged)
	return ew.err
}

// VerdictName writes a verdict as a reader says it: READY, NOT READY,
// NOT ENOUGH DATA.
func VerdictName(v parallelrunv1.Verdict) string {
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

// errWriter keeps the first error of w and writes nothing after it.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func clean(s string) string { return termtext.Clean(s, maxNameLen) }

func durationOf(d *durationpb.Duration) string {
	if d == nil {
		return "0s"
	}
	return duration(d.AsDuration())
}

func p99(l *parallelrunv1.LatencySummary) string {
	if l.GetCount() == 0 {
		return "-"
	}
	return durationOf(l.GetP99())
}

// example writes a difference as "path kind: legacy -> candidate", with
// the values as the reports hold them (redacted where sensitive).
func example(d *parallelrunv1.Difference) string {
	if d == nil {
		return ""
	}
	return fmt.Sprintf("%s %s: %s -> %s", clean(d.GetPath()), sink.KindName(d.GetKind()), value(d.GetLegacy()), value(d.GetCandidate()))
}

func value(s string) string {
	if s == "" {
		return "(none)"
	}
	return termtext.Clean(s, maxValueLen)
}

func traceOrNone(id string) string {
	if id == "" {
		return "-"
	}
	return clean(id)
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return count(n) + " " + many
}
