package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

const summarySynopsis = `Usage: parallelrun summary [flags] [REPORTS...]
       parallelrun summary [flags] --prometheus URL

Judges from the reports in REPORTS whether the candidate is ready to be
promoted, per method and in all, against a readiness policy: the defaults,
with the fields the policy flags set replaced. Prints per method its
verdict, counts, rates, streak without a mismatch and latencies, the
reasons of the verdict, the fields and problems that differ most and the
noise; then the overall verdict. Exit status 0 only when it is READY.

With --prometheus, judges the same way from the metrics that every client
instance exports to the Prometheus server at URL (through an OpenTelemetry
Collector or Prometheus's own OTLP receiver): the whole fleet at once.`

// summaryFlags are the flags of summary.
type summaryFlags struct {
	inputFlags
	minCompared, minStreakCalls int64
	minStreakDuration, window   time.Duration
	maxMismatch, maxCandErr     float64
	maxP99Ratio                 float64
	now                         string
	top                         int
	json                        bool
	prometheus, selector        string
	lookback                    time.Duration
}

func runSummary(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	started := time.Now()
	var future int64
	fs := newFlagSet("summary", summarySynopsis, stderr)
	var f summaryFlags
	f.register(fs)
	def := readiness.DefaultPolicy()
	fs.Int64Var(&f.minCompared, "min-compared", def.GetMinCompared(), "the fewest calls compared in all")
	fs.Int64Var(&f.minStreakCalls, "min-streak-calls", def.GetMinStreakCalls(), "the fewest calls compared since the last mismatch")
	fs.DurationVar(&f.minStreakDuration, "min-streak-duration", def.GetMinStreakDuration().AsDuration(), "the shortest time since the last mismatch (or the first call compared)")
	fs.Float64Var(&f.maxMismatch, "max-mismatch-rate", def.GetMaxMismatchRate(), "the highest share of compared calls that mismatch, within the window")
	fs.Float64Var(&f.maxCandErr, "max-candidate-error-rate", def.GetMaxCandidateErrorRate(), "the highest share of candidate errors among calls that reached the candidate, within the window")
	fs.Float64Var(&f.maxP99Ratio, "max-p99-ratio", def.GetMaxP99LatencyRatio(), "the highest ratio of the candidate's p99 latency to the legacy one's, within the window (0: not checked)")
	fs.DurationVar(&f.window, "window", def.GetWindow().AsDuration(), "how far back rates and latencies are judged")
	fs.StringVar(&f.now, "now", "", "the time to judge at, RFC 3339 (default: the newest report's time, but never later than the command's start on this machine's clock)")
	fs.IntVar(&f.top, "top", readiness.DefaultTopFields, "fields, signatures and noise fields listed per method")
	fs.BoolVar(&f.json, "json", false, "print the status as JSON (a parallelrun.v1.RunStatus) instead")
	fs.StringVar(&f.prometheus, "prometheus", "", "judge from the metrics in the Prometheus server at this URL instead of from reports")
	fs.StringVar(&f.selector, "selector", "", `with --prometheus: label matchers that pick the run's series, such as 'job="pricing-client"'`)
	fs.DurationVar(&f.lookback, "lookback", 24*time.Hour, "with --prometheus: how far back an instance's last sample is looked for; instances silent for longer are left out")
	files, err := parseArgs(fs, args, stdout)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	policy, now, err := f.check(fs)
	if err != nil {
		return exitUsage
	}
	if f.prometheus != "" {
		return summaryFromPrometheus(&f, files, policy, now, fs, stdout, stderr)
	}
	if f.selector != "" {
		usageError(fs, "--selector: only with --prometheus")
		return exitUsage
	}
	tracker, err := readiness.NewTracker(readiness.WithPolicy(policy), readiness.WithTopFields(f.top))
	if err != nil {
		usageError(fs, "%v", err)
		return exitUsage
	}
	ins, err := openInputs(files, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "parallelrun summary: %s\n", err)
		return exitUsage
	}
	defer closeInputs(ins)

	diag := &diagnostics{w: stderr, progress: newProgress(stderr, f.showProgress(stderr), totalSize(ins))}
	// Requests and replies are dropped as they are read: the summary
	// needs none, and their types are not known here. Even protobuf's own
	// are read as placeholders, whose contents are skipped: a
	// google.protobuf.Struct decoded would take many times its JSON.
	rr := newReportReader(ins, newLenient(nil), diag, true)
	var newest time.Time
	for {
		rec, err := rr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			diag.printf("parallelrun summary: %s", clean(err.Error(), maxErrLen))
			return exitUsage
		}
		at := rec.rep.GetTime().AsTime()
		if now.IsZero() && at.After(started) {
			// From a clock ahead of this one: taken as now, so that it
			// does not push the reports after it out of the window.
			rec.rep.Time = timestamppb.New(started)
			at = started
			future++
		}
		if at.After(newest) {
			newest = at
		}
		tracker.Add(rec.rep)
	}
	if future > 0 {
		diag.printf("parallelrun summary: %s had a time later than now (a clock ahead?), taken as now", plural(future, "report", "reports"))
	}
	if now.IsZero() && newest.After(started) {
		// A client whose clock is ahead would otherwise empty the window
		// of every mismatch and stretch the streak to its clock: judged at
		// its time, a run that is not ready can look ready.
		now = started
	}
	status := tracker.Status(now)
	if f.json {
		if !writeStatusJSON(stdout, stderr, status) {
			return exitUsage
		}
		if diag.malformedN > 0 {
			diag.printf("parallelrun summary: %s", plural(diag.malformedN, "malformed line", "malformed lines"))
		}
	} else {
		printSummary(stdout, status, rr.reports, diag.malformedN)
	}
	if diag.malformedN > 0 && !f.allowMalformed {
		return exitFail
	}
	return verdictStatus(status)
}

// writeStatusJSON prints st as one line of JSON; false, said on stderr,
// when it cannot.
func writeStatusJSON(stdout, stderr io.Writer, st *parallelrunv1.RunStatus) bool {
	b, err := jsonOptions.Marshal(st)
	if err != nil {
		fmt.Fprintf(stderr, "parallelrun summary: %s\n", err)
		return false
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return true
}

// verdictStatus is the exit status of a judged run: 0 only when it is
// ready, so that the command can gate a deployment.
func verdictStatus(st *parallelrunv1.RunStatus) int {
	if st.GetReadiness().GetVerdict() != parallelrunv1.Verdict_VERDICT_READY {
		return exitFail
	}
	return exitOK
}

// check reads the policy flags into the fields they set over the defaults
// (each checked alone, so that an error names its flag), and --now.
func (f *summaryFlags) check(fs *flag.FlagSet) (*parallelrunv1.ReadinessPolicy, time.Time, error) {
	over := &parallelrunv1.ReadinessPolicy{}
	var bad error
	fs.Visit(func(fl *flag.Flag) {
		p := &parallelrunv1.ReadinessPolicy{}
		switch fl.Name {
		case "min-compared":
			p.MinCompared = proto.Int64(f.minCompared)
		case "min-streak-calls":
			p.MinStreakCalls = proto.Int64(f.minStreakCalls)
		case "min-streak-duration":
			p.MinStreakDuration = durationpb.New(f.minStreakDuration)
		case "max-mismatch-rate":
			p.MaxMismatchRate = proto.Float64(f.maxMismatch)
		case "max-candidate-error-rate":
			p.MaxCandidateErrorRate = proto.Float64(f.maxCandErr)
		case "max-p99-ratio":
			p.MaxP99LatencyRatio = proto.Float64(f.maxP99Ratio)
		case "window":
			p.Window = durationpb.New(f.window)
		default:
			return
		}
		if err := readiness.Check(readiness.Merge(readiness.DefaultPolicy(), p)); err != nil && bad == nil {
			bad = usageError(fs, "--%s %s: %v", fl.Name, fl.Value, err)
		}
		over = readiness.Merge(over, p)
	})
	if bad != nil {
		return nil, time.Time{}, bad
	}
	if f.top < 1 {
		return nil, time.Time{}, usageError(fs, "--top %d: must be at least 1", f.top)
	}
	var now time.Time
	if f.now != "" {
		var err error
		if now, err = time.Parse(time.RFC3339Nano, f.now); err != nil {
			return nil, time.Time{}, usageError(fs, "--now %q: not an RFC 3339 time such as 2026-03-02T15:04:05Z", f.now)
		}
	}
	return over, now, nil
}
