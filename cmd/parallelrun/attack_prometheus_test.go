package main

// Attacks on `parallelrun summary --prometheus` and on the Prometheus rules
// of deploy/prometheus: a hostile Prometheus (an httptest server speaking
// the query API), URLs with credentials, and, when PROMETHEUS_BIN names a
// built Prometheus, the real server with the repository's rules, fed over
// its OTLP receiver.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/parallelrun/grpc-parallelrun/internal/testproc"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// hostileProm is a server speaking Prometheus's query API: answer gives the
// JSON array of the result of each query. It counts the queries.
func hostileProm(t *testing.T, answer func(q string) string) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":%s}}`, answer(r.URL.Query().Get("query")))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

func vec(samples ...string) string { return "[" + strings.Join(samples, ",") + "]" }

func outcomeSample(method, outcome, v string) string {
	return fmt.Sprintf(`{"metric":{"rpc_method":%q,"parallelrun_outcome":%q},"value":[1,%q]}`, method, outcome, v)
}

func methodSample(method, v string) string {
	return fmt.Sprintf(`{"metric":{"rpc_method":%q},"value":[1,%q]}`, method, v)
}

// fleetAnswers is a plausible fleet of one method, p.S/M: 90,001 calls
// compared in all, one mismatch two hours before now, 5,000 calls since,
// p99 latencies of 10ms. Each field replaces one answer's value.
type fleetAnswers struct {
	winMatch, winMismatch, lastMismatch, candidateP99 string
}

const judgedAt = "2026-01-01T00:00:00Z"

var judgedAtUnix = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

func (a fleetAnswers) answer(q string) string {
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	switch {
	case strings.HasPrefix(q, "sum by (rpc_method, parallelrun_outcome)") && strings.Contains(q, "offset"):
		return vec(outcomeSample("p.S/M", "match", or(a.winMatch, "5000")), outcomeSample("p.S/M", "mismatch", or(a.winMismatch, "0")))
	case strings.HasPrefix(q, "sum by (rpc_method, parallelrun_outcome)"):
		return vec(outcomeSample("p.S/M", "match", "90000"), outcomeSample("p.S/M", "mismatch", "1"))
	case strings.HasPrefix(q, "min by (rpc_method)"):
		return vec(methodSample("p.S/M", fmt.Sprint(judgedAtUnix-3*86400)))
	case strings.HasPrefix(q, "max by (rpc_method)"):
		return vec(methodSample("p.S/M", or(a.lastMismatch, fmt.Sprint(judgedAtUnix-7200))))
	case strings.HasPrefix(q, "sum(("): // the streak's calls
		return vec(`{"metric":{},"value":[1,"5000"]}`)
	case strings.HasPrefix(q, "sum by (rpc_method) (") && strings.Contains(q, "_count"):
		return vec(methodSample("p.S/M", "5000"))
	case strings.HasPrefix(q, "histogram_quantile(0.99") && strings.Contains(q, "candidate"):
		return vec(methodSample("p.S/M", or(a.candidateP99, "0.01")))
	case strings.HasPrefix(q, "histogram_quantile("):
		return vec(methodSample("p.S/M", "0.01"))
	}
	return "[]"
}

// Fixed, found by a review: the numbers Prometheus answers are taken as they come. NaN, ±Inf and
// values past int64 become -9,223,372,036,854,775,808 (Go's conversion of an
// out-of-range float on amd64), a negative count passes as one, a p99 of
// 1e10 s overflows time.Duration into a negative latency, and a last
// mismatch time of NaN lands 290,000 years ago: the command prints garbage
// and, in each case below, says READY and exits 0, so a deployment gate
// promotes. A count or a time that is not a finite number in range must be
// an error that names it.
func TestAttackPrometheusBadNumbersAreErrors(t *testing.T) {
	for _, c := range []struct {
		name, bad string
		a         fleetAnswers
	}{
		// A mismatch in the window, hidden by a NaN count of matches: the
		// rate 1/(NaN→MinInt64+1) is negative, so "at most 0%" holds.
		{"window matches NaN, one mismatch", "NaN", fleetAnswers{winMatch: "NaN", winMismatch: "1"}},
		{"window mismatches negative", "-3", fleetAnswers{winMismatch: "-3"}},
		{"window matches +Inf", "Inf", fleetAnswers{winMatch: "+Inf", winMismatch: "1"}},
		{"last mismatch NaN", "NaN", fleetAnswers{lastMismatch: "NaN"}},
		{"last mismatch 1e300", "1e300", fleetAnswers{lastMismatch: "1e300"}},
		{"candidate p99 1e10 s", "1e10", fleetAnswers{candidateP99: "1e10"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, _ := hostileProm(t, c.a.answer)
			r := runCmd(t, nil, "summary", "--prometheus", u, "--now", judgedAt, "--max-p99-ratio", "2",
				"--min-streak-duration", "1h")
			if r.code == exitOK || !strings.Contains(r.stderr, c.bad) {
				t.Errorf("Prometheus answered %s: want an error naming it, got exit %d, stderr %q, stdout:\n%s", c.bad, r.code, r.stderr, r.stdout)
			}
		})
	}
}

// GUARD (passes): the same fleet with sane numbers is READY, so the cases
// above are READY because of the bad number alone.
func TestAttackPrometheusSaneFleetReadyGuard(t *testing.T) {
	u, _ := hostileProm(t, fleetAnswers{}.answer)
	r := runCmd(t, nil, "summary", "--prometheus", u, "--now", judgedAt, "--max-p99-ratio", "2")
	if r.code != exitOK {
		t.Fatalf("sane fleet: %s", r)
	}
}

// Fixed, found by a review: "maxPromResponse bounds what is read of one answer" is no bound on
// memory: an answer of 8 MiB listing ~100,000 methods costs ~230 MiB of
// heap (64 MiB answers ~1.7 GiB and 30 s of CPU), because every answer is
// decoded whole into maps, a MethodStatus is built for every method, and
// the "more than 1,000 methods" check only runs after four such queries.
// The bound should stop the first answer early (count series while
// decoding) and the check should follow the first query.
func TestAttackPrometheusHugeAnswerMemory(t *testing.T) {
	var body bytes.Buffer
	body.WriteString(`{"status":"success","data":{"resultType":"vector","result":[`)
	for i := 0; body.Len() < 8<<20; i++ {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"metric":{"rpc_method":"m%d","parallelrun_outcome":"match"},"value":[1,"1"]}`, i)
	}
	body.WriteString(`]}}`)
	answer := body.Bytes()
	var queries atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		queries.Add(1)
		_, _ = w.Write(answer)
	}))
	defer srv.Close()

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	r := runCmd(t, nil, "summary", "--prometheus", srv.URL)
	close(stop)
	<-done
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	if r.code == exitOK || !strings.Contains(r.stderr, "more than 50,000 series") {
		t.Fatalf("an answer naming 100,000 methods: %s", r)
	}
	if queries.Load() > 1 || grew > 16*int64(len(answer)) {
		t.Errorf("an answer of %d MiB: %d queries before the error, heap grew by %d MiB (want 1 query, at most 16 times the answer)",
			len(answer)>>20, queries.Load(), grew>>20)
	}
}

// Fixed, found by a review: newPromClient quotes the raw URL in its error, so a URL with a
// password that is not http(s), or that does not parse (a bad port, a
// bracket), prints the password to stderr (CI logs). The success path
// redacts (c.base.Redacted()) and net/http redacts its own errors; this
// one path does not. url.Parse's own error quotes the URL too.
func TestAttackPrometheusCredentialsInBadURL(t *testing.T) {
	for _, raw := range []string{
		"ftp://admin:hunter2@prom.example:9090",
		"http://admin:hunter2@prom.example:90x90",
		"http://admin:hunter2@[::1",
		"prom.example:9090", // fine: no password
	} {
		r := runCmd(t, nil, "summary", "--prometheus", raw)
		if r.code != exitUsage {
			t.Errorf("%s: exit %d", raw, r.code)
		}
		if strings.Contains(r.stdout+r.stderr, "hunter2") {
			t.Errorf("--prometheus %s: the password is printed: %s", raw, strings.SplitN(r.stderr, "\n", 2)[0])
		}
	}
}

// GUARD (passes): where the URL parses, neither the command's text, nor a
// connection error, nor a redirect to an unreachable host prints the
// password.
func TestAttackPrometheusCredentialsRedactedGuard(t *testing.T) {
	u, _ := hostileProm(t, fleetAnswers{}.answer)
	withPassword := strings.Replace(u, "http://", "http://admin:hunter2@", 1)
	r := runCmd(t, nil, "summary", "--prometheus", withPassword, "--now", judgedAt)
	if r.code != exitOK || strings.Contains(r.stdout+r.stderr, "hunter2") || !strings.Contains(r.stdout, "admin:xxxxx@") {
		t.Errorf("success: %s", r)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	r = runCmd(t, nil, "summary", "--prometheus", "http://admin:hunter2@"+closed)
	if r.code != exitUsage || strings.Contains(r.stdout+r.stderr, "hunter2") {
		t.Errorf("connection refused: %s", r)
	}
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://admin:hunter2@"+closed+"/api/v1/query", http.StatusFound)
	}))
	defer redirect.Close()
	r = runCmd(t, nil, "summary", "--prometheus", redirect.URL)
	if r.code != exitUsage || strings.Contains(r.stdout+r.stderr, "hunter2") {
		t.Errorf("redirect: %s", r)
	}
}

// Fixed, found by a review: fleetStatus decides "this method had a mismatch" from the
// last-mismatch gauge alone. Counters that count mismatches with no gauge
// beside them (instances of a release before the gauges, in a fleet being
// upgraded; a method whose streak the interceptor put under _OTHER past
// its 4,096 streaks) are judged as a method that never mismatched: the
// streak runs from the first call compared, three days, and the verdict is
// READY under a 24h min streak duration, where the tracker over the same
// reports says NOT READY. Mismatches in the counts with no known time
// should be NOT READY or NOT ENOUGH DATA, with a reason.
func TestAttackPrometheusMismatchesWithoutLastMismatchTime(t *testing.T) {
	u, _ := hostileProm(t, func(q string) string {
		if strings.HasPrefix(q, "max by (rpc_method)") || strings.HasPrefix(q, "sum((") {
			return "[]" // no parallelrun_last_mismatch_time_seconds series
		}
		return fleetAnswers{}.answer(q)
	})
	r := runCmd(t, nil, "summary", "--prometheus", u, "--now", judgedAt, "--min-streak-duration", "24h", "--json")
	if r.code == exitOK {
		t.Errorf("1 mismatch counted, its time unknown, 24h without a mismatch needed: READY\n%s", r)
	}
}

// ---- The real Prometheus, with the repository's configuration and rules.

// realProm starts PROMETHEUS_BIN with deploy/prometheus (the rules as
// they are; the evaluation interval cut to 1s so that a test need not
// wait 30s) and returns its address.
func realProm(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("PROMETHEUS_BIN")
	if bin == "" {
		t.Skip("PROMETHEUS_BIN is not set")
	}
	dir := t.TempDir()
	cfg, err := os.ReadFile("../../deploy/prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte("evaluation_interval: 30s"), []byte("evaluation_interval: 1s"), 1)
	// The tests push hours of history while the rules already write at
	// now: accept it however late, as a backfill.
	cfg = bytes.Replace(cfg, []byte("out_of_order_time_window: 30m"), []byte("out_of_order_time_window: 1d"), 1)
	rules, err := os.ReadFile("../../deploy/prometheus/parallelrun.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"prometheus.yml": cfg, "parallelrun.rules.yml": rules} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	addr := testproc.FreePorts(t, 1)[0]
	// After the process has stopped: no idle connection's goroutines left.
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	testproc.Start(t, testproc.Process{Name: "prometheus", Bin: bin, Ready: testproc.HTTPOK("http://" + addr + "/-/ready"),
		ReadyTimeout: 30 * time.Second, Args: []string{"--config.file=" + filepath.Join(dir, "prometheus.yml"),
			"--storage.tsdb.path=" + filepath.Join(dir, "tsdb"), "--web.listen-address=" + addr, "--web.enable-otlp-receiver"}})
	return "http://" + addr
}

// point is one sample of a series the interceptor exports.
type point struct {
	at time.Time
	v  float64
}

// series is one OTLP metric stream of one instance of job "pc".
type series struct {
	instance, name, unit string
	counter              bool
	attrs                map[string]string
	points               []point
}

// pushOTLP sends the series to Prometheus's OTLP receiver as OTLP/JSON,
// one request per timestamp with every series' point at that time, so
// that the TSDB gets them in time order, as from a live fleet.
func pushOTLP(t *testing.T, prom string, ss ...series) {
	t.Helper()
	kv := func(m map[string]string) []any {
		var out []any
		for k, v := range m {
			out = append(out, map[string]any{"key": k, "value": map[string]any{"stringValue": v}})
		}
		return out
	}
	var times []time.Time
	seen := map[time.Time]bool{}
	for _, s := range ss {
		for _, p := range s.points {
			if !seen[p.at] {
				seen[p.at] = true
				times = append(times, p.at)
			}
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for _, at := range times {
		byInstance := map[string][]any{}
		for _, s := range ss {
			for _, p := range s.points {
				if !p.at.Equal(at) {
					continue
				}
				dps := []any{map[string]any{"attributes": kv(s.attrs), "startTimeUnixNano": fmt.Sprint(s.points[0].at.Add(-time.Second).UnixNano()),
					"timeUnixNano": fmt.Sprint(p.at.UnixNano()), "asDouble": p.v}}
				m := map[string]any{"name": s.name, "unit": s.unit}
				if s.counter {
					m["sum"] = map[string]any{"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": dps}
				} else {
					m["gauge"] = map[string]any{"dataPoints": dps}
				}
				byInstance[s.instance] = append(byInstance[s.instance], m)
			}
		}
		var rms []any
		for instance, metrics := range byInstance {
			rms = append(rms, map[string]any{
				"resource":     map[string]any{"attributes": kv(map[string]string{"service.name": "pc", "service.instance.id": instance})},
				"scopeMetrics": []any{map[string]any{"scope": map[string]any{"name": "github.com/parallelrun/grpc-parallelrun/interceptor"}, "metrics": metrics}},
			})
		}
		body, err := json.Marshal(map[string]any{"resourceMetrics": rms})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(prom+"/api/v1/otlp/v1/metrics", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("OTLP at %s: %d %s", at, resp.StatusCode, b)
		}
	}
}

// promQuery runs an instant query and returns each series' labels and value.
func promQuery(t *testing.T, prom, q string) []map[string]string {
	t.Helper()
	resp, err := http.Get(prom + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct {
		Status, Error string
		Data          struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || a.Status != "success" {
		t.Fatalf("query %s: %v %s", q, err, a.Error)
	}
	var out []map[string]string
	for _, r := range a.Data.Result {
		r.Metric["value"] = fmt.Sprint(r.Value[1])
		out = append(out, r.Metric)
	}
	return out
}

// ruleExpr is the expression of the rule or alert of that name, as the
// running Prometheus loaded it from the repository's file.
func ruleExpr(t *testing.T, prom, name string) string {
	t.Helper()
	resp, err := http.Get(prom + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct {
		Data struct {
			Groups []struct {
				Rules []struct{ Name, Query string }
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	for _, g := range a.Data.Groups {
		for _, r := range g.Rules {
			if r.Name == name {
				return r.Query
			}
		}
	}
	t.Fatalf("no rule %s", name)
	return ""
}

func judgeJSON(t *testing.T, args ...string) (*parallelrunv1.RunStatus, result) {
	t.Helper()
	r := runCmd(t, nil, append([]string{"summary", "--json"}, args...)...)
	var st parallelrunv1.RunStatus
	if err := protojson.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("summary --json: %v\n%s", err, r)
	}
	return &st, r
}

// GUARD (passes): method names that come back from Prometheus are put
// into a label matcher with strconv.Quote. Go's escapes (\", \\, \n, \x1b,
// \u2028, \U000e0001, ...) are all PromQL's, so each method's streak query
// finds exactly its own series: the streak is the method's own 50 calls,
// not 0 (no match) and not an error (a broken matcher).
func TestAttackRealPrometheusMethodNamesQuotedGuard(t *testing.T) {
	prom := realProm(t)
	now := time.Now()
	names := []string{`q"uote/M`, `back\slash/M`, "new\nline/M", "\x1b[31mred/M", "tab\t/M", "sep\u2028/M", "del\x7f/M",
		"tag\U000e0001/M", `x"} or vector(1) or up{a="/M`, "é\u00a0/M"}
	var ss []series
	for _, n := range names {
		attrs := func(o string) map[string]string {
			m := map[string]string{"rpc.method": n, "rpc.system.name": "grpc"}
			if o != "" {
				m["parallelrun.outcome"] = o
			}
			return m
		}
		at := []time.Time{now.Add(-10 * time.Minute), now.Add(-time.Minute)}
		ss = append(ss,
			series{"i1", "parallelrun.comparisons", "{call}", true, attrs("match"), []point{{at[0], 100}, {at[1], 150}}},
			series{"i1", "parallelrun.comparisons", "{call}", true, attrs("mismatch"), []point{{at[0], 1}, {at[1], 1}}},
			series{"i1", "parallelrun.last_mismatch.time", "s", false, attrs(""), []point{{at[0], float64(now.Add(-20 * time.Minute).Unix())}, {at[1], float64(now.Add(-20 * time.Minute).Unix())}}},
			series{"i1", "parallelrun.streak.calls", "{call}", false, attrs(""), []point{{at[0], 20}, {at[1], 50}}},
			series{"i1", "parallelrun.first_compared.time", "s", false, attrs(""), []point{{at[0], float64(now.Add(-2 * time.Hour).Unix())}, {at[1], float64(now.Add(-2 * time.Hour).Unix())}}},
		)
	}
	pushOTLP(t, prom, ss...)
	st, r := judgeJSON(t, "--prometheus", prom, "--selector", `job="pc"`, "--now", now.UTC().Format(time.RFC3339Nano))
	if len(st.GetMethods()) != len(names) {
		t.Fatalf("%d methods, want %d\n%s", len(st.GetMethods()), len(names), r)
	}
	for _, m := range st.GetMethods() {
		if got := m.GetStreak().GetCalls(); got != 50 {
			t.Errorf("method %q: streak %d calls, want its own 50", m.GetMethod(), got)
		}
	}
}

// Fixed, found by a review (deploy/prometheus/parallelrun.rules.yml, ParallelRunReportsLost):
// `sum by (job, instance) (increase(reports_dropped[10m]) or
// increase(sink_errors[10m]))`. Both counters carry the same labels (job,
// instance, parallelrun_sink), and increase() drops the names, so `or`
// keeps the left side and throws the right away: once an instance has ever
// dropped a report, its sink errors never raise the alert. Here 7 reports
// failed in the last 5 minutes and the alert's expression is empty. Fix:
// `sum by (job, instance) (increase({__name__=~"parallelrun_reports_dropped_total|parallelrun_sink_errors_total"}[10m])) > 0`.
func TestAttackRulesReportsLostAlertSeesSinkErrors(t *testing.T) {
	prom := realProm(t)
	now := time.Now()
	sinkAttr := map[string]string{"parallelrun.sink": "0"}
	pushOTLP(t, prom,
		series{"i1", "parallelrun.reports.dropped", "{report}", true, sinkAttr, []point{{now.Add(-8 * time.Minute), 3}, {now.Add(-4 * time.Minute), 3}, {now.Add(-30 * time.Second), 3}}},
		series{"i1", "parallelrun.sink.errors", "{report}", true, sinkAttr, []point{{now.Add(-8 * time.Minute), 0}, {now.Add(-4 * time.Minute), 2}, {now.Add(-30 * time.Second), 7}}},
	)
	if got := promQuery(t, prom, `increase(parallelrun_sink_errors_total[10m])`); len(got) != 1 {
		t.Fatalf("sink errors: %v", got)
	}
	expr := ruleExpr(t, prom, "ParallelRunReportsLost")
	if got := promQuery(t, prom, expr); len(got) != 1 {
		t.Errorf("7 reports failed in the sink in the last 5 minutes; ParallelRunReportsLost's expression\n%s\nfinds %v", expr, got)
	}
}

// Fixed, found by a review (deploy/prometheus/parallelrun.rules.yml, parallelrun:verdict): after a
// mismatch, "not ready" needs `parallelrun:compared:window1h < 1000`; when
// no instance has exported within the last hour that series is absent, not
// 0, and the comparison is simply not there. A fleet that compared 10 calls
// since its last mismatch (2h ago) and went silent 65 minutes ago (scaled
// down, rolled back) is READY (1) by the rules, and the ParallelRunReady
// alert fires; the tracker over the same reports, and the command over the
// same metrics, say NOT READY (10 of 1,000 calls since the last mismatch).
func TestAttackRulesVerdictOfASilentFleet(t *testing.T) {
	prom := realProm(t)
	now := time.Now().Truncate(time.Second)
	// Within the TSDB head's span (1.5 x 2h), or Prometheus would compact
	// and reject the rest as too old.
	firstAt, mismatchAt, silentAt := now.Add(-165*time.Minute), now.Add(-2*time.Hour), now.Add(-65*time.Minute)
	var match, mismatch, last, streak, first []point
	for at := firstAt; !at.After(silentAt); at = at.Add(5 * time.Minute) {
		n := 5000 * at.Sub(firstAt).Seconds() / mismatchAt.Sub(firstAt).Seconds() // 5,000 matches up to the mismatch
		s := n
		if at.After(mismatchAt) {
			n, s = 5000+10, 10 // then 10, and silence from now-90m
			mismatch = append(mismatch, point{at, 1})
			last = append(last, point{at, float64(mismatchAt.Unix())})
		}
		match = append(match, point{at, n})
		streak = append(streak, point{at, s})
		first = append(first, point{at, float64(firstAt.Unix())})
	}
	pushOTLP(t, prom,
		series{"i1", "parallelrun.comparisons", "{call}", true, pmAttrs("match"), match},
		series{"i1", "parallelrun.comparisons", "{call}", true, pmAttrs("mismatch"), mismatch},
		series{"i1", "parallelrun.last_mismatch.time", "s", false, pmAttrs(""), last},
		series{"i1", "parallelrun.streak.calls", "{call}", false, pmAttrs(""), streak},
		series{"i1", "parallelrun.first_compared.time", "s", false, pmAttrs(""), first},
	)
	st, r := judgeJSON(t, "--prometheus", prom, "--selector", `job="pc"`)
	if len(st.GetMethods()) != 1 || st.GetMethods()[0].GetReadiness().GetVerdict() != parallelrunv1.Verdict_VERDICT_NOT_READY {
		t.Fatalf("the command: %s", r)
	}
	t.Logf("the command: %v", st.GetMethods()[0].GetReadiness().GetReasons())
	verdict := ruleVerdict(t, prom)
	if len(verdict) != 1 || verdict[0]["value"] != "2" {
		t.Errorf("10 calls compared since the last mismatch, 1,000 needed: parallelrun:verdict %v, want 2 (NOT_READY) as the command says", verdict)
	}
}

// Fixed, found by a review: with --prometheus the judging time is this machine's clock (or
// --now), sent as the query's time, and nothing checks it against
// Prometheus's. The window is (now-1h, now] at that time: on a CI runner
// whose clock is 70 minutes ahead of Prometheus's, the window holds no
// sample at all, so the mismatch of 10 minutes ago is out of it, the
// mismatch rate is 0, the streak is 80 minutes, and the gate says READY
// and exits 0. Judged at Prometheus's own time the same fleet is NOT
// READY. The report-file mode guards against exactly this ("a run that is
// not ready can look ready"); this mode should take the server's time
// (query time(), or the Date header) and refuse or clamp a later one.
func TestAttackRealPrometheusClockAhead(t *testing.T) {
	prom := realProm(t)
	now := time.Now().Truncate(time.Second)
	mismatchAt := now.Add(-10 * time.Minute)
	var match, mismatch, last, streak, first []point
	for at := now.Add(-50 * time.Minute); at.Before(now); at = at.Add(time.Minute) {
		n := 400 * at.Sub(now.Add(-50*time.Minute)).Minutes() // 400 calls a minute
		if at.After(mismatchAt) {
			mismatch = append(mismatch, point{at, 1})
			last = append(last, point{at, float64(mismatchAt.Unix())})
			streak = append(streak, point{at, 400 * at.Sub(mismatchAt).Minutes()})
		} else {
			streak = append(streak, point{at, n})
		}
		match = append(match, point{at, n})
		first = append(first, point{at, float64(now.Add(-50 * time.Minute).Unix())})
	}
	pushOTLP(t, prom,
		series{"i1", "parallelrun.comparisons", "{call}", true, pmAttrs("match"), match},
		series{"i1", "parallelrun.comparisons", "{call}", true, pmAttrs("mismatch"), mismatch},
		series{"i1", "parallelrun.last_mismatch.time", "s", false, pmAttrs(""), last},
		series{"i1", "parallelrun.streak.calls", "{call}", false, pmAttrs(""), streak},
		series{"i1", "parallelrun.first_compared.time", "s", false, pmAttrs(""), first},
	)
	atServer, r := judgeJSON(t, "--prometheus", prom, "--selector", `job="pc"`, "--now", now.UTC().Format(time.RFC3339))
	if atServer.GetReadiness().GetVerdict() != parallelrunv1.Verdict_VERDICT_NOT_READY {
		t.Fatalf("at Prometheus's time: %s", r)
	}
	r = runCmd(t, nil, "summary", "--prometheus", prom, "--selector", `job="pc"`, "--now", now.Add(70*time.Minute).UTC().Format(time.RFC3339))
	if r.code == exitOK {
		t.Errorf("a mismatch 10 minutes ago, judged by a clock 70 minutes ahead of Prometheus's: exit 0\n%s", r.stdout)
	}
}

// An instance of a version without the gauges counts a mismatch beside one
// that exports them and has had none for 3 hours: the fleet's last
// mismatch is unknown, taken as now, so neither the command nor the rules
// claim the 3-hour streak; the command says why.
func TestRealPrometheusMismatchOfAnInstanceWithoutGauges(t *testing.T) {
	prom := realProm(t)
	now := time.Now().Truncate(time.Second)
	// "new" had its one mismatch at the start, and says when.
	var match, mismatch, last, oldMatch, oldMismatch, streak, first []point
	start := now.Add(-170 * time.Minute)
	for at := start; at.Before(now); at = at.Add(5 * time.Minute) {
		n := 100 * at.Sub(start).Minutes()
		match = append(match, point{at, n})
		mismatch = append(mismatch, point{at, 1})
		last = append(last, point{at, float64(start.Unix())})
		streak = append(streak, point{at, n})
		first = append(first, point{at, float64(start.Unix())})
		oldMatch = append(oldMatch, point{at, n})
		oldMismatch = append(oldMismatch, point{at, 1})
	}
	pushOTLP(t, prom,
		series{"new", "parallelrun.comparisons", "{call}", true, pmAttrs("match"), match},
		series{"new", "parallelrun.comparisons", "{call}", true, pmAttrs("mismatch"), mismatch},
		series{"new", "parallelrun.last_mismatch.time", "s", false, pmAttrs(""), last},
		series{"new", "parallelrun.streak.calls", "{call}", false, pmAttrs(""), streak},
		series{"new", "parallelrun.first_compared.time", "s", false, pmAttrs(""), first},
		series{"old", "parallelrun.comparisons", "{call}", true, pmAttrs("match"), oldMatch},
		series{"old", "parallelrun.comparisons", "{call}", true, pmAttrs("mismatch"), oldMismatch},
	)
	st, r := judgeJSON(t, "--prometheus", prom, "--selector", `job="pc"`, "--min-streak-duration", "2h", "--max-mismatch-rate", "0.5")
	if len(st.GetMethods()) != 1 {
		t.Fatalf("the command: %s", r)
	}
	m := st.GetMethods()[0]
	if m.GetReadiness().GetVerdict() != parallelrunv1.Verdict_VERDICT_NOT_READY || !strings.Contains(m.GetStreak().GetLastMismatchAt(), "an unknown time") {
		t.Errorf("an instance counts a mismatch with no time: %v, last mismatch at %q; reasons %q",
			m.GetReadiness().GetVerdict(), m.GetStreak().GetLastMismatchAt(), m.GetReadiness().GetReasons())
	}
	verdict := ruleVerdict(t, prom)
	if len(verdict) != 1 || verdict[0]["value"] != "2" {
		t.Errorf("the rules: parallelrun:verdict %v, want 2 (NOT_READY): the last mismatch's time is unknown", verdict)
	}
}

// ruleVerdict waits for the rules to record job pc's verdict, and returns
// it (nothing after 20 s).
func ruleVerdict(t *testing.T, prom string) []map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if v := promQuery(t, prom, `parallelrun:verdict{job="pc"}`); len(v) > 0 {
			return v
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// pmAttrs are the attributes of method p.S/M's metrics, with an outcome
// when o is one.
func pmAttrs(o string) map[string]string {
	m := map[string]string{"rpc.method": "p.S/M", "rpc.system.name": "grpc"}
	if o != "" {
		m["parallelrun.outcome"] = o
	}
	return m
}

// The parameters of the URL given (a proxy's token, say) go with every
// query.
func TestPrometheusURLKeepsItsParameters(t *testing.T) {
	var missing atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("token") != "s3cret" || r.URL.Query().Get("query") == "" {
			missing.Add(1)
		}
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	defer srv.Close()
	r := runCmd(t, nil, "summary", "--prometheus", srv.URL+"/prom?token=s3cret")
	if r.code != exitFail || missing.Load() != 0 || !strings.Contains(r.stdout, "overall: NOT ENOUGH DATA") {
		t.Errorf("%d queries without the URL's parameters: %s", missing.Load(), r)
	}
	// Shown nowhere, neither on success nor in an error.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	for _, u := range []string{srv.URL + "/prom?token=s3cret", "http://" + closed + "/?token=s3cret"} {
		if r := runCmd(t, nil, "summary", "--prometheus", u); strings.Contains(r.stdout+r.stderr, "s3cret") {
			t.Errorf("%s: the token is shown: %s", u, r)
		}
	}
}
