package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/parallelrun/grpc-parallelrun/internal/testproc"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// root is the repository's root, from this package's directory.
const root = "../.."

// TestFleetEndToEnd runs the deployment the guide describes, on loopback:
// a real Prometheus (PROMETHEUS_BIN) with the repository's configuration
// and rules, a real OpenTelemetry Collector (OTELCOL_BIN) with the
// repository's configuration, and three client instances with different
// seeds exporting to the Collector. It checks that Prometheus's aggregate
// equals the sum of the instances' own counts exactly, that the verdict
// judged from Prometheus (by the command and by the recording rules)
// equals the verdict judged from the union of their reports, that every
// report arrives through the Collector as a log record with its trace ID,
// and that tail sampling keeps the trace of every mismatch.
func TestFleetEndToEnd(t *testing.T) {
	promBin, colBin := os.Getenv("PROMETHEUS_BIN"), os.Getenv("OTELCOL_BIN")
	if promBin == "" || colBin == "" {
		t.Skip("PROMETHEUS_BIN and OTELCOL_BIN are not set: .ci/run builds both and sets them")
	}
	dir := t.TempDir()
	ports := testproc.FreePorts(t, 5)
	promAddr, otlpGRPC, otlpHTTP, backend, colMetrics := ports[0], ports[1], ports[2], ports[3], ports[4]
	prom := "http://" + promAddr

	// Prometheus, with the configuration and rules of the guide.
	for _, f := range []string{"prometheus.yml", "parallelrun.rules.yml"} {
		b, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	testproc.Start(t, testproc.Process{Name: "prometheus", Bin: promBin, Ready: testproc.HTTPOK(prom + "/-/ready"), Args: []string{
		"--config.file=" + filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path=" + filepath.Join(dir, "tsdb"),
		"--web.listen-address=" + promAddr, "--web.enable-otlp-receiver"}})

	// The backend the Collector sends logs and sampled traces to.
	received := startReceiver(t, backend)

	// The Collector, with the configuration of the guide.
	testproc.Start(t, testproc.Process{Name: "otelcol", Bin: colBin, Env: []string{
		"OTLP_GRPC_ENDPOINT=" + otlpGRPC, "OTLP_HTTP_ENDPOINT=" + otlpHTTP, "PROMETHEUS=" + promAddr,
		"TRACES_ENDPOINT=" + backend, "LOGS_ENDPOINT=" + backend,
		"OTELCOL_METRICS_PORT=" + colMetrics[strings.LastIndexByte(colMetrics, ':')+1:],
	}, Ready: testproc.Listening(otlpGRPC), Args: []string{"--config=" + filepath.Join(root, "deploy", "collector", "config.yaml")}})

	// Three instances of a client, each its own seed and name.
	client, parallelrun := filepath.Join(dir, "fleet"), filepath.Join(dir, "parallelrun")
	build(t, ".", client, ".")
	build(t, root, parallelrun, "./cmd/parallelrun")
	const instances = 3
	outs := make([]counts, instances)
	files := make([]string, instances)
	var wg sync.WaitGroup
	for i := range instances {
		files[i] = filepath.Join(dir, fmt.Sprintf("reports-%d.jsonl", i+1))
		wg.Go(func() {
			cmd := exec.Command(client, "-otlp", otlpGRPC, "-instance", fmt.Sprintf("fleet-%d", i+1),
				"-seed", fmt.Sprint(i+1), "-reports", files[i], "-export-interval", "1s",
				"-quotes", fmt.Sprint(600+100*i), "-listings", "40", "-baskets", "60")
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("instance %d: %v\n%s", i+1, err, stderrOf(err))
				return
			}
			if err := json.Unmarshal(out, &outs[i]); err != nil {
				t.Errorf("instance %d printed %q: %v", i+1, out, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Each instance's own counts, summed: what the fleet's metrics must say.
	want := map[string]int64{}
	for _, o := range outs {
		for method, byOutcome := range o.Outcomes {
			for outcome, n := range byOutcome {
				if n != 0 {
					want[strings.TrimPrefix(method, "/")+" "+outcome] += n
				}
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const job = `job="pricing-client"`
	var got map[string]int64
	sumOf := func(q string) map[string]int64 {
		m := map[string]int64{}
		for _, s := range promQuery(t, prom, q) {
			if v := int64(s.float(t)); v != 0 {
				m[s.Metric["rpc_method"]+" "+s.Metric["parallelrun_outcome"]] += v
			}
		}
		return m
	}
	testproc.WaitFor(t, ctx, "Prometheus's counts to reach the instances' own", func() bool {
		got = sumOf(`sum by (rpc_method, parallelrun_outcome) (parallelrun_comparisons_total{` + job + `})`)
		return maps.Equal(got, want)
	})
	if len(got) < 6 || got[strings.TrimPrefix(quoteMethod, "/")+" mismatch"] == 0 {
		t.Fatalf("too little to judge: %v", got)
	}
	t.Logf("Prometheus's counts equal the instances': %v", got)

	// The verdict judged from Prometheus equals the one judged from the
	// union of the reports, at one time, by one policy.
	now := time.Now().UTC().Format(time.RFC3339Nano)
	fromFiles := summary(t, parallelrun, append([]string{"--now", now}, files...)...)
	fromProm := summary(t, parallelrun, "--now", now, "--prometheus", prom, "--selector", job)
	if a, b := fromFiles.GetReadiness().GetVerdict(), fromProm.GetReadiness().GetVerdict(); a != b {
		t.Errorf("run verdict from the reports %v, from Prometheus %v", a, b)
	}
	if len(fromFiles.GetMethods()) != len(fromProm.GetMethods()) {
		t.Fatalf("methods from the reports %d, from Prometheus %d", len(fromFiles.GetMethods()), len(fromProm.GetMethods()))
	}
	reports := readReports(t, files)
	latestMismatch := map[string]time.Time{}
	for _, r := range reports {
		m := "/" + strings.TrimPrefix(r.GetMethod(), "/")
		if r.GetOutcome() == parallelrunv1.Outcome_OUTCOME_MISMATCH && r.GetTime().AsTime().After(latestMismatch[m]) {
			latestMismatch[m] = r.GetTime().AsTime()
		}
	}
	verdicts := map[string]parallelrunv1.Verdict{}
	for i, f := range fromFiles.GetMethods() {
		p := fromProm.GetMethods()[i]
		verdicts[strings.TrimPrefix(f.GetMethod(), "/")] = f.GetReadiness().GetVerdict()
		if f.GetMethod() != p.GetMethod() || f.GetReadiness().GetVerdict() != p.GetReadiness().GetVerdict() {
			t.Errorf("%s: verdict from the reports %v, from Prometheus %s %v", f.GetMethod(), f.GetReadiness().GetVerdict(), p.GetMethod(), p.GetReadiness().GetVerdict())
		}
		if !proto.Equal(f.GetOutcomes(), p.GetOutcomes()) || !proto.Equal(f.GetWindowOutcomes(), p.GetWindowOutcomes()) {
			t.Errorf("%s: outcomes from the reports %v / %v, from Prometheus %v / %v", f.GetMethod(), f.GetOutcomes(), f.GetWindowOutcomes(), p.GetOutcomes(), p.GetWindowOutcomes())
		}
		// The fleet's last mismatch is the latest mismatch report's time, to
		// the microsecond. (The summary of the files takes the last one
		// read, and a file's last lines may be a few milliseconds out of
		// order: reports are written as comparisons end.)
		fs, ps := f.GetStreak(), p.GetStreak()
		if d := latestMismatch[f.GetMethod()].Sub(ps.GetLastMismatchTime().AsTime()).Abs(); d > time.Microsecond {
			t.Errorf("%s: latest mismatch report at %v, from Prometheus %v", f.GetMethod(), latestMismatch[f.GetMethod()], ps.GetLastMismatchTime().AsTime())
		}
		// A lower bound: exact for the instance of the last mismatch, short
		// of at most an export interval's calls for each other one. (Two
		// calls of slack: the reports' order within a millisecond.)
		if ps.GetCalls() > fs.GetCalls()+2 {
			t.Errorf("%s: streak from the reports %d calls, from Prometheus %d: more", f.GetMethod(), fs.GetCalls(), ps.GetCalls())
		}
		// Latencies are Prometheus's estimates within the histogram's
		// buckets: in the bucket of the reports' exact p99.
		for _, side := range []struct {
			name string
			f, p *parallelrunv1.LatencySummary
		}{{"legacy", f.GetLegacyLatency(), p.GetLegacyLatency()}, {"candidate", f.GetCandidateLatency(), p.GetCandidateLatency()}} {
			lo, hi := bucketOf(side.f.GetP99().AsDuration())
			if got := side.p.GetP99().AsDuration(); got < lo || got > hi || side.p.GetCount() != side.f.GetCount() {
				t.Errorf("%s: %s p99 from the reports %v (bucket %v to %v), from Prometheus %v; counts %d, %d", f.GetMethod(), side.name,
					side.f.GetP99().AsDuration(), lo, hi, got, side.f.GetCount(), side.p.GetCount())
			}
		}
		// The fields and problems that count most count alike (past ties
		// at the end of a list, which each side cuts its own way).
		sameTop(t, f.GetMethod()+" fields", fieldCounts(f.GetTopFields()), fieldCounts(p.GetTopFields()))
		sameTop(t, f.GetMethod()+" noise", fieldCounts(f.GetNoiseFields()), fieldCounts(p.GetNoiseFields()))
		sameTop(t, f.GetMethod()+" signatures", signatureCounts(f.GetTopSignatures()), signatureCounts(p.GetTopSignatures()))
		t.Logf("%s: %v, %d compared, streak %d (Prometheus %d); %q", f.GetMethod(), f.GetReadiness().GetVerdict(),
			f.GetOutcomes().GetMatch()+f.GetOutcomes().GetMismatch(), fs.GetCalls(), ps.GetCalls(), p.GetReadiness().GetReasons())
	}

	// The text a person reads says the same.
	text, err := exec.Command(parallelrun, "summary", "--now", now, "--prometheus", prom, "--selector", job).Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("summary --prometheus: %v", err)
	}
	t.Logf("parallelrun summary --prometheus:\n%s", text)
	for _, want := range []string{"/examples.pricing.v1.PricingService/Quote: NOT READY", "overall: NOT READY", "judged from the metrics in " + prom} {
		if !strings.Contains(string(text), want) {
			t.Errorf("summary --prometheus printed no %q:\n%s", want, text)
		}
	}

	// Under a policy that some methods meet and others do not, too.
	lenient := []string{"--now", now, "--max-mismatch-rate", "0.6", "--min-compared", "100", "--min-streak-calls", "0", "--min-streak-duration", "0s"}
	fromFiles = summary(t, parallelrun, append(lenient, files...)...)
	fromProm = summary(t, parallelrun, append(lenient, "--prometheus", prom, "--selector", job)...)
	seen := map[parallelrunv1.Verdict]bool{}
	for i, f := range fromFiles.GetMethods() {
		p := fromProm.GetMethods()[i]
		seen[f.GetReadiness().GetVerdict()] = true
		if f.GetReadiness().GetVerdict() != p.GetReadiness().GetVerdict() {
			t.Errorf("lenient policy: %s: verdict from the reports %v, from Prometheus %v", f.GetMethod(), f.GetReadiness().GetVerdict(), p.GetReadiness().GetVerdict())
		}
	}
	if !seen[parallelrunv1.Verdict_VERDICT_READY] || !seen[parallelrunv1.Verdict_VERDICT_NOT_READY] {
		t.Errorf("lenient policy: verdicts %v, want both ready and not ready methods", seen)
	}

	// The recording rules judge alike, and count alike.
	testproc.WaitFor(t, ctx, "the recording rules to judge every method as the command does", func() bool {
		rules := map[string]parallelrunv1.Verdict{}
		for _, s := range promQuery(t, prom, `parallelrun:verdict{`+job+`}`) {
			rules[s.Metric["rpc_method"]] = parallelrunv1.Verdict(int32(s.float(t)))
		}
		return maps.Equal(rules, verdicts) && maps.Equal(sumOf(`parallelrun:calls:window1h{`+job+`}`), want)
	})

	// Every report arrives as a log record, with its trace ID. Delivery is
	// at least once (an export that timed out is sent again), so a record
	// may come twice; none may be missing, and none may be anything else.
	byTrace := map[string]*parallelrunv1.Report{}
	var records []*logspb.LogRecord
	testproc.WaitFor(t, ctx, fmt.Sprintf("%d log records", len(reports)), func() bool {
		records = received.records()
		for _, r := range records {
			if r.GetEventName() != sink.EventName {
				t.Fatalf("record %v: event %q", r, r.GetEventName())
			}
			var rep parallelrunv1.Report
			if err := protojson.Unmarshal([]byte(r.GetBody().GetStringValue()), &rep); err != nil {
				t.Fatalf("record body: %v", err)
			}
			if id := fmt.Sprintf("%x", r.GetTraceId()); id != rep.GetTraceId() || id == "" {
				t.Fatalf("record's trace %s, its report's %q", id, rep.GetTraceId())
			}
			byTrace[rep.GetTraceId()+rep.GetSpanId()] = &rep
		}
		return len(byTrace) >= len(reports)
	})
	if len(byTrace) != len(reports) {
		t.Errorf("%d distinct log records, %d reports", len(byTrace), len(reports))
	}
	var mismatches []*parallelrunv1.Report
	for _, r := range reports {
		got := byTrace[r.GetTraceId()+r.GetSpanId()]
		if got == nil || !proto.Equal(got, r) {
			t.Fatalf("report %v: log record %v", r, got)
		}
		if r.GetOutcome() == parallelrunv1.Outcome_OUTCOME_MISMATCH {
			mismatches = append(mismatches, r)
		}
	}

	// Tail sampling keeps the trace of every mismatch, and not all the
	// others.
	testproc.WaitFor(t, ctx, fmt.Sprintf("the traces of all %d mismatches", len(mismatches)), func() bool {
		kept := received.traceIDs()
		for _, r := range mismatches {
			if kept[r.GetTraceId()] == 0 {
				return false
			}
		}
		return true
	})
	kept := received.traceIDs()
	matched, matchedKept := 0, 0
	for _, r := range reports {
		if r.GetOutcome() == parallelrunv1.Outcome_OUTCOME_MATCH {
			matched++
			if kept[r.GetTraceId()] > 0 {
				matchedKept++
			}
		}
	}
	if matchedKept*2 > matched {
		t.Errorf("tail sampling kept %d of %d traces of matches", matchedKept, matched)
	}
	t.Logf("%d reports as %d log records; traces kept: all %d of mismatches, %d of %d of matches", len(byTrace), len(records), len(mismatches), matchedKept, matched)
}

// bucketOf is the range of the interceptor's duration histogram buckets
// (their bounds, in seconds, as telemetry.go sets them) that may hold a
// latency the reports give as d: theirs is within 2% of the exact one, so
// near a bound either bucket may.
func bucketOf(d time.Duration) (lo, hi time.Duration) {
	bounds := []float64{0, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 1e6}
	at := func(s float64) int { // the bucket (bounds[i-1], bounds[i]] holding s
		i := 1
		for i < len(bounds)-1 && s > bounds[i] {
			i++
		}
		return i
	}
	s := d.Seconds()
	lo = time.Duration(bounds[at(s*0.98)-1] * float64(time.Second))
	hi = time.Duration(bounds[at(s*1.02)] * float64(time.Second))
	return lo, hi
}

// sameTop checks that two top lists give every name counted more than the
// list's last the same count.
func sameTop(t *testing.T, what string, a, b []nameCount) {
	t.Helper()
	if len(a) != len(b) {
		t.Errorf("%s: from the reports %v, from Prometheus %v", what, a, b)
		return
	}
	if len(a) == 0 {
		return
	}
	counts := func(l []nameCount) map[string]int64 {
		m := map[string]int64{}
		for _, c := range l {
			if c.n > l[len(l)-1].n {
				m[c.name] = c.n
			}
		}
		return m
	}
	if !maps.Equal(counts(a), counts(b)) {
		t.Errorf("%s: from the reports %v, from Prometheus %v", what, a, b)
	}
}

type nameCount struct {
	name string
	n    int64
}

func fieldCounts(l []*parallelrunv1.FieldSummary) []nameCount {
	var out []nameCount
	for _, f := range l {
		out = append(out, nameCount{f.GetField(), f.GetCount()})
	}
	return out
}

func signatureCounts(l []*parallelrunv1.SignatureSummary) []nameCount {
	var out []nameCount
	for _, s := range l {
		out = append(out, nameCount{s.GetSignature(), s.GetCount()})
	}
	return out
}

const quoteMethod = "/examples.pricing.v1.PricingService/Quote"

// build builds the package pkg of the module in dir to out.
func build(t *testing.T, dir, out, pkg string) {
	t.Helper()
	abs, err := filepath.Abs(out)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", abs, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// summary runs the summary command with --json; exit status 1 (not
// ready) is an answer, not a failure.
func summary(t *testing.T, bin string, args ...string) *parallelrunv1.RunStatus {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"summary", "--json"}, args...)...)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 1) {
		t.Fatalf("parallelrun summary %q: %v\n%s", args, err, stderrOf(err))
	}
	var st parallelrunv1.RunStatus
	if err := protojson.Unmarshal(out, &st); err != nil {
		t.Fatalf("parallelrun summary %q: %v\n%s", args, err, out)
	}
	return &st
}

func readReports(t *testing.T, files []string) []*parallelrunv1.Report {
	t.Helper()
	var out []*parallelrunv1.Report
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var r parallelrunv1.Report
			if err := protojson.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			out = append(out, &r)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(out, func(a, b *parallelrunv1.Report) int { return strings.Compare(a.GetTraceId(), b.GetTraceId()) })
	return out
}

func stderrOf(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}
