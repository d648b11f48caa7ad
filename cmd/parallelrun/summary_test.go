package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

const getQuoteMethod = "parallelrun.difftest.v1.QuoteService/GetQuote"

// runReport is a report of the run the summary tests judge: a match, or a
// mismatch of the total's units, every 10 s from t0.
func runReport(i int, outcome parallelrunv1.Outcome) *parallelrunv1.Report {
	ok := &parallelrunv1.Status{Code: "OK"}
	r := &parallelrunv1.Report{
		Method:           getQuoteMethod,
		Outcome:          outcome,
		Time:             timestamppb.New(t0.Add(time.Duration(i) * 10 * time.Second)),
		LegacyStatus:     ok,
		CandidateStatus:  ok,
		LegacyLatency:    durationpb.New(10 * time.Millisecond),
		CandidateLatency: durationpb.New(12 * time.Millisecond),
		TraceId:          fmt.Sprintf("%032x", i+1),
	}
	if outcome == parallelrunv1.Outcome_OUTCOME_MISMATCH {
		r.Signature = "b3b7aa339dbdabfc"
		r.Differences = []*parallelrunv1.Difference{{Path: "quote.total.units", Field: "quote.total.units",
			Kind: parallelrunv1.DifferenceKind_DIFFERENCE_KIND_CHANGED, Legacy: "10", Candidate: "11"}}
	}
	return r
}

func marshalLine(t testing.TB, r *parallelrunv1.Report) string {
	t.Helper()
	b, err := jsonOptions.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// twoInstances writes the reports of 3 h of a run as two client instances
// would, every other call in each file, with one mismatch 30 minutes in,
// in the second file; it returns the files and the reports in time order.
func twoInstances(t testing.TB) (a, b string, all []*parallelrunv1.Report) {
	t.Helper()
	var la, lb []string
	for i := range 3 * 360 {
		outcome := parallelrunv1.Outcome_OUTCOME_MATCH
		if i == 181 {
			outcome = parallelrunv1.Outcome_OUTCOME_MISMATCH
		}
		r := runReport(i, outcome)
		all = append(all, r)
		if i%2 == 0 {
			la = append(la, marshalLine(t, r))
		} else {
			lb = append(lb, marshalLine(t, r))
		}
	}
	return writeFile(t, "a.jsonl", la...), writeFile(t, "b.jsonl", lb...), all
}

// policy is a policy the two instances' run meets: 899 calls compared
// since the mismatch over 2.5 h.
var policy = []string{"--min-compared", "500", "--min-streak-calls", "800", "--max-mismatch-rate", "0.01", "--min-streak-duration", "2h"}

func TestSummaryMergesFiles(t *testing.T) {
	a, b, _ := twoInstances(t)
	r := runCmd(t, nil, append([]string{"summary", a, b}, policy...)...)
	if r.code != exitOK {
		t.Fatalf("want READY:\n%s", r)
	}
	out := squash(r.stdout)
	for _, want := range []string{
		// The streak counts the matches after the mismatch in time order,
		// over both files.
		"/parallelrun.difftest.v1.QuoteService/GetQuote READY 1,080 0% 0% 898 calls, 2h30m 9.87ms 12.01ms",
		"quote.total.units 1 quote.total.units changed: 10 -> 11 000000000000000000000000000000b6",
		"b3b7aa339dbdabfc 1 quote.total.units:changed OK 000000000000000000000000000000b6",
		"overall: READY",
		"judged at 2025-11-26T12:59:50Z, reports from 2025-11-26T10:00:00Z\n1,080 reports read, 0 malformed lines",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, r)
		}
	}
	// The same files one after the other are not the run in time order:
	// the mismatch comes after all of the first file's matches.
	ba, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	r = runCmd(t, bytes.NewReader(append(ba, bb...)), append([]string{"summary"}, policy...)...)
	if r.code != exitFail || !strings.Contains(squash(r.stdout), "NOT READY 1,080 0% 0% 449 calls") {
		t.Errorf("concatenated, the streak is the second file's rest:\n%s", r)
	}
}

func TestSummaryJSON(t *testing.T) {
	a, b, all := twoInstances(t)
	r := runCmd(t, nil, "summary", "--json", a, b, "--now", t0.Add(3*time.Hour+30*time.Minute).Format(time.RFC3339), "--window", "30m")
	if r.code != exitFail || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("want one line of JSON and NOT READY (default policy): %s", r)
	}
	var got parallelrunv1.RunStatus
	if err := protojson.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	// The status is the one a tracker given the same reports in time order
	// returns.
	tracker, err := readiness.NewTracker(readiness.WithPolicy(&parallelrunv1.ReadinessPolicy{Window: durationpb.New(30 * time.Minute)}))
	if err != nil {
		t.Fatal(err)
	}
	for _, rep := range all {
		tracker.Add(rep)
	}
	want := tracker.Status(t0.Add(3*time.Hour + 30*time.Minute))
	if !proto.Equal(&got, want) {
		t.Errorf("status\n got  %v\n want %v", &got, want)
	}
	if b, _ := jsonOptions.Marshal(&got); string(b)+"\n" != r.stdout {
		t.Errorf("the output is not sink.JSONL's form:\n%s\n%s", b, r.stdout)
	}
}

func TestSummaryMalformedAndStdin(t *testing.T) {
	a, _, _ := twoInstances(t)
	b, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	// Line 3 is cut short, line 5 is another message, line 7 is 20 MiB.
	lines[2] = lines[2][:len(lines[2])/2]
	lines[4] = `{"time":"2026-11-26T10:00:00Z","methods":[],"readiness":{"verdict":"VERDICT_READY"}}`
	lines[6] = `{"method":"` + strings.Repeat("m", 20<<20) + `"}`
	input := strings.Join(lines, "\n") + "\n"
	args := []string{"summary", "--min-compared", "100", "--min-streak-calls", "10", "--min-streak-duration", "1m"}
	for _, c := range []struct {
		name  string
		args  []string
		stdin io.Reader
		where string
	}{
		{"stdin", nil, strings.NewReader(input), "stdin"},
		{"dash", []string{"-"}, strings.NewReader(input), "stdin"},
		{"file", []string{writeFile(t, "bad.jsonl", lines...)}, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			where := c.where
			if where == "" {
				where = c.args[0]
			}
			r := runCmd(t, c.stdin, append(append([]string(nil), args...), c.args...)...)
			if r.code != exitFail || !strings.Contains(r.stdout, "overall: READY") || !strings.Contains(r.stdout, "537 reports read, 3 malformed lines") {
				t.Fatalf("READY, but 3 malformed lines fail the gate:\n%s", r)
			}
			for _, want := range []string{where + ":3: proto:", where + ":5: not a parallelrun.v1.Report: no method, no outcome", where + ":7: line longer than 16 MiB, skipped"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
				}
			}
		})
	}
	r := runCmd(t, strings.NewReader(input), append(args, "--allow-malformed")...)
	if r.code != exitOK || !strings.Contains(r.stdout, "3 malformed lines") {
		t.Errorf("--allow-malformed: %s", r)
	}
	r = runCmd(t, strings.NewReader(input), append(args, "--allow-malformed", "--json")...)
	if r.code != exitOK || !strings.Contains(r.stderr, "parallelrun summary: 3 malformed lines") {
		t.Errorf("--json says the malformed lines on stderr: %s", r)
	}
}

func TestSummaryExitStatus(t *testing.T) {
	a, b, _ := twoInstances(t)
	dir := t.TempDir()
	// A server that is not Prometheus, and a port nothing listens on.
	notPromServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "<html>not here</html>")
	}))
	defer notPromServer.Close()
	notProm := notPromServer.URL
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	for _, c := range []struct {
		args   []string
		stdin  string
		code   int
		stdout string
		stderr string
	}{
		{args: append([]string{a, b}, policy...), code: exitOK, stdout: "overall: READY"},
		{args: []string{a, b}, code: exitFail, stdout: "overall: NOT READY"},
		{args: append([]string{a, b, "--min-compared", "5000"}, policy[2:]...), code: exitFail, stdout: "overall: NOT ENOUGH DATA"},
		{args: nil, code: exitFail, stdout: "overall: NOT ENOUGH DATA"}, // no reports at all
		{args: []string{a, "--max-mismatch-rate", "1.5"}, code: exitUsage, stderr: "--max-mismatch-rate 1.5: readiness: max_mismatch_rate: 1.5 is outside [0, 1]"},
		{args: []string{a, "--window", "-1h"}, code: exitUsage, stderr: "--window -1h0m0s: readiness: window"},
		{args: []string{a, "--now", "yesterday"}, code: exitUsage, stderr: `--now "yesterday": not an RFC 3339 time`},
		{args: []string{a, "--top", "0"}, code: exitUsage, stderr: "--top 0: must be at least 1"},
		{args: []string{a, "--min-compared"}, code: exitUsage, stderr: "flag needs an argument: -min-compared"},
		{args: []string{filepath.Join(dir, "missing.jsonl")}, code: exitUsage, stderr: "missing.jsonl: open"},
		{args: []string{dir}, code: exitUsage, stderr: "is a directory"},
		{args: []string{"-h"}, code: exitOK, stdout: "-max-p99-ratio"},
		{args: []string{a, "--prometheus", notProm}, code: exitUsage, stderr: "--prometheus: judges from metrics, not from report files"},
		{args: []string{"--prometheus", "ftp://example.com"}, code: exitUsage, stderr: `"ftp://example.com": not an http or https URL`},
		{args: []string{"--prometheus", notProm, "--lookback", "10m"}, code: exitUsage, stderr: "--lookback 10m0s: shorter than the window, 1h0m0s"},
		{args: []string{"--prometheus", notProm, "--selector", `{job="x"}`}, code: exitUsage, stderr: "label matchers without braces"},
		{args: []string{a, "--selector", `job="x"`}, code: exitUsage, stderr: "--selector: only with --prometheus"},
		{args: []string{"--prometheus", notProm}, code: exitUsage, stderr: "parallelrun summary: prometheus: query vector(1): HTTP 200, not an answer of the Prometheus API: <html>"},
		{args: []string{"--prometheus", "http://" + closed}, code: exitUsage, stderr: "connection refused"},
	} {
		r := runCmd(t, strings.NewReader(c.stdin), append([]string{"summary"}, c.args...)...)
		if r.code != c.code || !strings.Contains(r.stdout, c.stdout) || !strings.Contains(r.stderr, c.stderr) {
			t.Errorf("%q: want exit %d, %q on stdout, %q on stderr:\n%s", c.args, c.code, c.stdout, c.stderr, r)
		}
	}
	if r := runCmd(t, nil); r.code != exitUsage || !strings.Contains(r.stderr, "Usage:") {
		t.Errorf("no command: %s", r)
	}
	if r := runCmd(t, nil, "help", "summary"); r.code != exitOK || !strings.Contains(r.stdout, "Usage: parallelrun summary") {
		t.Errorf("help summary: %s", r)
	}
}

// One client whose clock is ten years ahead does not make a run ready:
// summary judges at the newest report's time, but never later than its
// own start.
func TestSummaryClockAhead(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	report := func(at time.Time, outcome parallelrunv1.Outcome) string {
		r := runReport(0, outcome)
		r.Time = timestamppb.New(at)
		return marshalLine(t, r)
	}
	var lines []string
	for i := range 200 {
		lines = append(lines, report(now.Add(-2*time.Hour+time.Duration(i)*10*time.Second), parallelrunv1.Outcome_OUTCOME_MATCH))
	}
	lines = append(lines, report(now.Add(-10*time.Minute), parallelrunv1.Outcome_OUTCOME_MISMATCH))
	for i := range 20 {
		lines = append(lines, report(now.Add(-9*time.Minute+time.Duration(i)*10*time.Second), parallelrunv1.Outcome_OUTCOME_MATCH))
	}
	ahead := now.AddDate(10, 0, 0)
	lines = append(lines, report(ahead, parallelrunv1.Outcome_OUTCOME_MATCH))
	path := writeFile(t, "skewed.jsonl", lines...)
	args := []string{"summary", path, "--min-compared", "100", "--min-streak-calls", "10", "--min-streak-duration", "1h"}

	// Judged at the skewed client's time, the run looks ready: the
	// mismatch is out of the window and ten years behind.
	r := runCmd(t, nil, append(args, "--now", ahead.Format(time.RFC3339))...)
	if r.code != exitOK || !strings.Contains(r.stdout, "overall: READY") {
		t.Fatalf("judged at %s, want READY (else this test shows nothing):\n%s", ahead.Format(time.RFC3339), r)
	}
	r = runCmd(t, nil, args...)
	if r.code != exitFail || !strings.Contains(r.stdout, "overall: NOT READY") {
		t.Fatalf("judged by default, want NOT READY:\n%s", r)
	}
	if strings.Contains(r.stdout, "judged at "+ahead.Format("2006")) {
		t.Errorf("judged at the skewed client's time:\n%s", r)
	}
	if !strings.Contains(r.stderr, "1 report had a time later than now (a clock ahead?), taken as now") {
		t.Errorf("the report from the future is not said:\n%s", r)
	}

	// A report from the future in the middle of a file pushes none of the
	// reports after it out of the window: it is taken as now.
	mid := slices.Concat(lines[:201], lines[len(lines)-1:], lines[201:len(lines)-1])
	r = runCmd(t, nil, append([]string{"summary", "--json", writeFile(t, "middle.jsonl", mid...)}, args[2:]...)...)
	var st parallelrunv1.RunStatus
	if err := protojson.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("%v\n%s", err, r)
	}
	if w := st.GetMethods()[0].GetWindowOutcomes(); w.GetMatch() != 21 || w.GetMismatch() != 1 {
		t.Errorf("window %v, want the mismatch, the 20 matches after it and the one from the future", w)
	}
}

func TestSummaryRealRun(t *testing.T) {
	// A real parallel run's reports, through the real interceptor and sink.
	reports := recordRun(t, &quotes{units: 10, email: "legacy@example.com"}, &quotes{units: 11, email: "candidate@example.com"}, getQuote("A", "B"))
	r := runCmd(t, nil, "summary", reports, "--progress")
	if r.code != exitFail {
		t.Fatalf("%s", r)
	}
	out := squash(r.stdout)
	for _, want := range []string{
		"/parallelrun.difftest.v1.QuoteService/GetQuote NOT READY 1 100% 0% 0 calls, 0s",
		"last mismatch 0s ago at quote.items[0].price.units (trace ",
		"quote.customer_email 1 quote.customer_email changed: [REDACTED] -> [REDACTED]",
		"quote.total.units 1 quote.total.units changed: 20 -> 22",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, r)
		}
	}
	if strings.Contains(r.stdout+r.stderr, "@example.com") {
		t.Errorf("a redacted value was printed:\n%s", r)
	}
	// --progress draws on stderr, and erases itself.
	if !strings.Contains(r.stderr, "\rreading: ") || !strings.HasSuffix(r.stderr, "\r\x1b[K") {
		t.Errorf("progress: %q", r.stderr)
	}
	if r := runCmd(t, nil, "summary", reports); strings.Contains(r.stderr, "reading") {
		t.Errorf("no progress when stderr is not a terminal: %q", r.stderr)
	}
}

// TestSummaryLarge summarises 100,000 reports and reports its time and
// memory: the time grows with the input (it is measured, not asserted),
// and the heap stays within a bound whatever the input's length.
func TestSummaryLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads 100,000 reports")
	}
	// Mismatches carry a request and a legacy reply of a type the command
	// does not know, read as placeholders.
	req, err := anypb.New(&pb.GetQuoteRequest{CustomerId: "c1", Skus: []string{"A", "B", "C"}})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := anypb.New(&pb.GetQuoteResponse{Quote: &pb.Quote{QuoteId: "q", Items: []*pb.Line{{Sku: "A", Quantity: 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	write := func(n int) (string, int64) {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("%d.jsonl", n))
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		for i := range n {
			outcome := parallelrunv1.Outcome_OUTCOME_MATCH
			if i%10 == 0 {
				outcome = parallelrunv1.Outcome_OUTCOME_MISMATCH
			}
			r := runReport(i, outcome)
			r.Method = fmt.Sprintf("pkg.S/M%d", i%5)
			if outcome == parallelrunv1.Outcome_OUTCOME_MISMATCH {
				r.Request, r.LegacyReplies = req, []*anypb.Any{reply}
			}
			buf.WriteString(marshalLine(t, r))
			buf.WriteByte('\n')
			if buf.Len() > 1<<20 {
				f.Write(buf.Bytes())
				buf.Reset()
			}
		}
		f.Write(buf.Bytes())
		st, _ := f.Stat()
		f.Close()
		return path, st.Size()
	}
	for _, n := range []int{10_000, 100_000} {
		path, size := write(n)
		runtime.GC()
		peak := sampleHeap()
		start := time.Now()
		r := runCmd(t, nil, "summary", path)
		elapsed := time.Since(start)
		heap := peak()
		if r.code != exitFail || !strings.Contains(r.stdout, fmt.Sprintf("%s reports read, 0 malformed lines", count(int64(n)))) {
			t.Fatalf("%s", r)
		}
		t.Logf("%7s reports (%s): %v, %.1f µs a report; heap at most %s", count(int64(n)), bytesText(size), elapsed.Round(time.Millisecond),
			float64(elapsed.Microseconds())/float64(n), bytesText(int64(heap)))
		if heap > 64<<20 {
			t.Errorf("the heap reached %s reading %s reports, past 64 MiB", bytesText(int64(heap)), count(int64(n)))
		}
	}
}

// sampleHeap samples the bytes of live and unswept heap objects every
// millisecond until the returned function is called, which returns the
// largest sample.
func sampleHeap() func() uint64 {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peak uint64
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	return func() uint64 {
		close(stop)
		wg.Wait()
		return peak
	}
}
