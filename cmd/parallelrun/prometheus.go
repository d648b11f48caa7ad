package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

// The interceptor's metrics as Prometheus names them when they arrive
// over OTLP (its default translation: dots become underscores, a
// counter gains _total, a unit in seconds _seconds, braced units none).
const (
	promComparisons   = "parallelrun_comparisons_total"
	promStreakCalls   = "parallelrun_streak_calls"
	promLastMismatch  = "parallelrun_last_mismatch_time_seconds"
	promFirstCompared = "parallelrun_first_compared_time_seconds"
	promDifferences   = "parallelrun_differences_total"
	promNoise         = "parallelrun_noise_total"
	promMismatches    = "parallelrun_mismatches_total"
	promLegacyDur     = "parallelrun_legacy_duration_seconds"
	promCandidateDur  = "parallelrun_candidate_duration_seconds"
	labelMethod       = "rpc_method"
	labelOutcome      = "parallelrun_outcome"
)

// Bounds on one answer of Prometheus: its size, and its series, counted
// before it is decoded (a series decoded takes many times its JSON).
const (
	maxPromResponse = 16 << 20
	maxPromSeries   = 50_000
)

// promClient asks one Prometheus server's HTTP API, every query at the
// same evaluation time.
type promClient struct {
	base *url.URL
	http *http.Client
	at   time.Time
}

func newPromClient(raw string, at time.Time) (*promClient, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// Not the URL itself, nor url's error, which quotes it: it may
		// hold a password.
		return nil, fmt.Errorf("not a URL of a Prometheus server")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q: not an http or https URL of a Prometheus server", u.Redacted())
	}
	return &promClient{base: u, http: &http.Client{Timeout: time.Minute}, at: at}, nil
}

// display is the server's URL to show: without a password or parameters,
// which may be secrets.
func (c *promClient) display() string {
	u := *c.base
	u.RawQuery, u.Fragment = "", ""
	return u.Redacted()
}

// sample is one series of an instant vector.
type sample struct {
	labels map[string]string
	value  float64
	raw    string // the value as Prometheus wrote it, for errors
	time   float64
}

// query evaluates an instant query at c.at.
func (c *promClient) query(ctx context.Context, q string) ([]sample, error) {
	return c.queryAt(ctx, q, promTime(c.at))
}

// queryAt evaluates an instant query at t (Prometheus's now when empty).
func (c *promClient) queryAt(ctx context.Context, q, t string) ([]sample, error) {
	u := c.base.JoinPath("api/v1/query")
	v := c.base.Query() // a proxy's own parameters, such as a token, kept
	v.Set("query", q)
	if t != "" {
		v.Set("time", t)
	}
	u.RawQuery = v.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// Not net/http's error, which names the whole URL: its
		// parameters may hold a token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPromResponse+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxPromResponse {
		return nil, fmt.Errorf("query %s: answer larger than %d MiB", q, maxPromResponse>>20)
	}
	if n := bytes.Count(body, []byte(`"metric"`)); n > maxPromSeries {
		return nil, fmt.Errorf("query %s: more than %s series: pick fewer with --selector", q, count(maxPromSeries))
	}
	var answer struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, fmt.Errorf("query %s: HTTP %d, not an answer of the Prometheus API: %s", q, resp.StatusCode, clean(string(body), 200))
	}
	if answer.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, clean(answer.Error, maxErrLen))
	}
	if answer.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: a %s, not a vector", q, clean(answer.Data.ResultType, 64))
	}
	out := make([]sample, 0, len(answer.Data.Result))
	for _, r := range answer.Data.Result {
		at, okAt := r.Value[0].(float64)
		s, ok := r.Value[1].(string)
		if !ok || !okAt {
			return nil, fmt.Errorf("query %s: a sample that is not [time, \"value\"]", q)
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, fmt.Errorf("query %s: value %q: not a number", q, clean(s, 64))
		}
		out = append(out, sample{labels: r.Metric, value: f, raw: clean(s, 64), time: at})
	}
	return out, nil
}

// serverTime is Prometheus's clock: the time of an instant query it
// evaluates at its own now; zero when it does not say.
func (c *promClient) serverTime(ctx context.Context) (time.Time, error) {
	v, err := c.queryAt(ctx, "vector(1)", "")
	if err != nil || len(v) != 1 || math.IsNaN(v[0].time) || v[0].time <= 0 || v[0].time > maxUnixSeconds {
		return time.Time{}, err
	}
	return time.UnixMilli(int64(v[0].time * 1e3)).UTC(), nil
}

// maxUnixSeconds bounds a time from Prometheus: the year 2242.
const maxUnixSeconds = 1 << 33

// maxCount bounds a count from Prometheus: above 2^53 a float64 no longer
// holds every integer.
const maxCount = 1 << 53

// countOf is a sample's value as a count: a finite, non-negative number
// that a float64 holds exactly; an error names anything else.
func countOf(s sample, what string) (int64, error) {
	if math.IsNaN(s.value) || s.value < 0 || s.value > maxCount {
		return 0, fmt.Errorf("%s of %s is %s, not a count", what, seriesName(s), s.raw)
	}
	return int64(math.Round(s.value)), nil
}

// timeOf is a sample's value as a time in seconds since the epoch, at
// most at: a time ahead of the judging time comes from a clock ahead, and
// is taken as that time, as the summary of report files takes it.
func timeOf(s sample, what string, at time.Time) (time.Time, error) {
	if math.IsNaN(s.value) || s.value < 0 || s.value > maxUnixSeconds {
		return time.Time{}, fmt.Errorf("%s of %s is %s, not a time", what, seriesName(s), s.raw)
	}
	if t := unixTime(s.value); t.Before(at) {
		return t, nil
	}
	return at, nil
}

// seriesName names the series of a sample by its method, for errors.
func seriesName(s sample) string {
	if m, ok := s.labels[labelMethod]; ok {
		return strconv.Quote(clean(m, 200))
	}
	return "the fleet"
}

// fleet is what a fleet summary asks Prometheus: the series a selector
// picks, each instance's last sample within the lookback.
type fleet struct {
	c        *promClient
	selector string // label matchers, without braces; may be empty
	lookback time.Duration
	window   time.Duration
	topN     int
}

// sel is a series selector of metric, with the fleet's matchers and
// extra ones.
func (f *fleet) sel(metric string, extra ...string) string {
	m := extra
	if f.selector != "" {
		m = append([]string{f.selector}, extra...)
	}
	return metric + "{" + strings.Join(m, ", ") + "}"
}

// last is each series' last sample within the lookback.
func (f *fleet) last(sel string) string {
	return fmt.Sprintf("last_over_time(%s[%s])", sel, promDuration(f.lookback))
}

// windowed is how much each series of a counter grew within the window:
// its last value less its last value in the window before, or all of it
// for a series that began within the window. A series began where its process
// did, so its first value counts everything since: the window is exact to
// the export interval, as the tracker's is to a sixtieth of the window.
func (f *fleet) windowed(sel string) string {
	w := promDuration(f.window)
	now := fmt.Sprintf("last_over_time(%s[%s])", sel, w)
	before := fmt.Sprintf("last_over_time(%s[%s] offset %s)", sel, w, w)
	return fmt.Sprintf("(clamp_min(%s - %s, 0) or %s)", now, before, now)
}

// fleetStatus builds the run's status from the metrics of every instance
// the selector picks, judged by policy as the tracker would judge the
// union of their reports.
func fleetStatus(ctx context.Context, f *fleet, policy *parallelrunv1.ReadinessPolicy) (*parallelrunv1.RunStatus, error) {
	methods := map[string]*parallelrunv1.MethodStatus{}
	get := func(m string) *parallelrunv1.MethodStatus {
		if ms := methods[m]; ms != nil {
			return ms
		}
		ms := &parallelrunv1.MethodStatus{Method: "/" + strings.TrimPrefix(m, "/"),
			Outcomes: &parallelrunv1.OutcomeCounts{}, WindowOutcomes: &parallelrunv1.OutcomeCounts{}, Streak: &parallelrunv1.Streak{}}
		methods[m] = ms
		return ms
	}
	by := "sum by (" + labelMethod + ", " + labelOutcome + ") "
	total, err := f.c.query(ctx, by+"("+f.last(f.sel(promComparisons))+")")
	if err != nil {
		return nil, err
	}
	for _, s := range total {
		n, err := countOf(s, "calls "+clean(s.labels[labelOutcome], 64))
		if err != nil {
			return nil, err
		}
		addOutcome(get(s.labels[labelMethod]).Outcomes, s.labels[labelOutcome], n)
	}
	// Checked before anything is asked per method.
	if len(methods) > readiness.DefaultMaxMethods {
		return nil, fmt.Errorf("%s methods, more than %s: pick fewer series with --selector",
			count(int64(len(methods))), count(readiness.DefaultMaxMethods))
	}
	inWindow, err := f.c.query(ctx, by+"("+f.windowed(f.sel(promComparisons))+")")
	if err != nil {
		return nil, err
	}
	for _, s := range inWindow {
		ms := methods[s.labels[labelMethod]]
		if ms == nil {
			continue // counted within the window but not in all: a series that just went
		}
		n, err := countOf(s, "calls "+clean(s.labels[labelOutcome], 64)+" within the window")
		if err != nil {
			return nil, err
		}
		addOutcome(ms.WindowOutcomes, s.labels[labelOutcome], n)
	}
	first, err := f.times(ctx, "min", promFirstCompared, "the first call compared")
	if err != nil {
		return nil, err
	}
	last, err := f.times(ctx, "max", promLastMismatch, "the last mismatch")
	if err != nil {
		return nil, err
	}
	// An instance that counts mismatches but says nothing of when (a
	// version without the gauge, or a method past its bound) leaves the
	// last mismatch unknown: taken as now, so that no streak is claimed.
	unknown, err := f.c.query(ctx, fmt.Sprintf("count by (%s) (%s > 0 unless on (job, instance, %s) %s)", labelMethod,
		f.last(f.sel(promComparisons, labelOutcome+`="mismatch"`)), labelMethod, f.last(f.sel(promLastMismatch))))
	if err != nil {
		return nil, err
	}
	unknownAt := map[string]bool{}
	for _, s := range unknown {
		if methods[s.labels[labelMethod]] != nil {
			unknownAt[s.labels[labelMethod]] = true
		}
	}
	for m, ms := range methods {
		if _, known := last[m]; !known && ms.GetOutcomes().GetMismatch() > 0 {
			unknownAt[m] = true
		}
	}
	for m := range unknownAt {
		last[m] = f.c.at
	}

	names := make([]string, 0, len(methods))
	for m := range methods {
		names = append(names, m)
	}
	slices.Sort(names)
	legacy, err := f.latencies(ctx, promLegacyDur)
	if err != nil {
		return nil, err
	}
	candidate, err := f.latencies(ctx, promCandidateDur)
	if err != nil {
		return nil, err
	}
	fields, err := f.top(ctx, promDifferences, "parallelrun_field")
	if err != nil {
		return nil, err
	}
	noise, err := f.top(ctx, promNoise, "parallelrun_field")
	if err != nil {
		return nil, err
	}
	signatures, err := f.top(ctx, promMismatches, "parallelrun_signature")
	if err != nil {
		return nil, err
	}
	st := &parallelrunv1.RunStatus{Time: timestamppb.New(f.c.at)}
	for _, m := range names {
		ms := methods[m]
		if err := f.streak(ctx, m, ms, first[m], last[m], unknownAt[m]); err != nil {
			return nil, err
		}
		if unknownAt[m] {
			ms.Streak.LastMismatchAt = "an unknown time: an instance counts mismatches but exports no " + promLastMismatch
		}
		ms.LegacyLatency, ms.CandidateLatency = legacy[m], candidate[m]
		for _, c := range fields[m] {
			ms.TopFields = append(ms.TopFields, &parallelrunv1.FieldSummary{Field: c.name, Count: c.n})
		}
		for _, c := range noise[m] {
			ms.NoiseFields = append(ms.NoiseFields, &parallelrunv1.FieldSummary{Field: c.name, Count: c.n})
		}
		for _, c := range signatures[m] {
			ms.TopSignatures = append(ms.TopSignatures, &parallelrunv1.SignatureSummary{Signature: c.name, Count: c.n})
		}
		ms.Readiness = readiness.Judge(policy, ms)
		st.Methods = append(st.Methods, ms)
	}
	st.Readiness = readiness.JudgeRun(policy, st.Methods)
	return st, nil
}

// times is, per method, the earliest or latest of the instances' times
// that gauge holds.
func (f *fleet) times(ctx context.Context, agg, gauge, what string) (map[string]time.Time, error) {
	v, err := f.c.query(ctx, agg+" by ("+labelMethod+") ("+f.last(f.sel(gauge))+")")
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for _, s := range v {
		t, err := timeOf(s, what, f.c.at)
		if err != nil {
			return nil, err
		}
		out[s.labels[labelMethod]] = t
	}
	return out, nil
}

// streak fills the method's streak: since the fleet's last mismatch (the
// latest of any instance's), or since its first call compared when none
// had one. Its calls are a lower bound, so that it never claims a streak
// the reports would not: the instance of the last mismatch gives its own
// streak, exact; every other instance its counter's growth since its first
// sample after the mismatch, which misses at most the calls of one export
// interval. A mismatch of unknown time (unknown) has no streak.
func (f *fleet) streak(ctx context.Context, method string, ms *parallelrunv1.MethodStatus, first, last time.Time, unknown bool) error {
	m := labelMethod + "=" + strconv.Quote(method)
	since := first
	switch {
	case unknown:
		since = last
		ms.Streak.LastMismatchTime = timestamppb.New(last)
	case !last.IsZero():
		since = last
		ms.Streak.LastMismatchTime = timestamppb.New(last)
		sel := f.sel(promComparisons, m, labelOutcome+`=~"match|mismatch"`)
		lm := f.last(f.sel(promLastMismatch, m))
		own := fmt.Sprintf("sum by (job, instance) (%s)", f.last(f.sel(promStreakCalls, m)))
		ofLast := fmt.Sprintf("(sum by (job, instance) (%s) == on () group_left () max (%s))", lm, lm)
		growth := fmt.Sprintf("(sum by (job, instance) (%s) - sum by (job, instance) (min_over_time(%s[%s])))",
			f.last(sel), sel, promDuration(f.c.at.Sub(last)))
		calls, err := f.c.query(ctx, fmt.Sprintf("sum((%s and on (job, instance) %s) or %s)", own, ofLast, growth))
		if err != nil {
			return err
		}
		for _, s := range calls {
			n, err := countOf(s, "the calls compared since the last mismatch")
			if err != nil {
				return err
			}
			ms.Streak.Calls += n
		}
	default:
		ms.Streak.Calls = ms.GetOutcomes().GetMatch() + ms.GetOutcomes().GetMismatch()
	}
	if !since.IsZero() {
		ms.Streak.Duration = durationpb.New(max(0, f.c.at.Sub(since)))
	} else {
		ms.Streak.Duration = durationpb.New(0)
	}
	return nil
}

// latencies summarises a duration histogram within the window, per
// method that it counted anything of. The percentiles are Prometheus's
// estimates within the histogram's buckets, coarser than the tracker's.
func (f *fleet) latencies(ctx context.Context, histogram string) (map[string]*parallelrunv1.LatencySummary, error) {
	counts, err := f.c.query(ctx, "sum by ("+labelMethod+") ("+f.windowed(f.sel(histogram+"_count"))+")")
	if err != nil {
		return nil, err
	}
	out := map[string]*parallelrunv1.LatencySummary{}
	for _, s := range counts {
		n, err := countOf(s, "the latencies counted")
		if err != nil {
			return nil, err
		}
		if n > 0 {
			out[s.labels[labelMethod]] = &parallelrunv1.LatencySummary{Count: n}
		}
	}
	for _, q := range []struct {
		q  string
		to func(*parallelrunv1.LatencySummary, *durationpb.Duration)
	}{
		{"0.5", func(l *parallelrunv1.LatencySummary, d *durationpb.Duration) { l.P50 = d }},
		{"0.9", func(l *parallelrunv1.LatencySummary, d *durationpb.Duration) { l.P90 = d }},
		{"0.99", func(l *parallelrunv1.LatencySummary, d *durationpb.Duration) { l.P99 = d }},
	} {
		v, err := f.c.query(ctx, fmt.Sprintf("histogram_quantile(%s, sum by (%s, le) (%s))", q.q, labelMethod, f.windowed(f.sel(histogram+"_bucket"))))
		if err != nil {
			return nil, err
		}
		for _, s := range v {
			l := out[s.labels[labelMethod]]
			if l == nil || math.IsNaN(s.value) { // NaN: no latency in the buckets
				continue
			}
			secs := s.value
			if math.IsInf(secs, 1) {
				// Past the histogram's last bound: as slow as can be said.
				secs = maxLatencySeconds
			}
			if secs < 0 || secs > maxLatencySeconds {
				return nil, fmt.Errorf("the p%s latency of %s is %s s, not a latency", strings.TrimPrefix(q.q, "0."), seriesName(s), s.raw)
			}
			q.to(l, durationpb.New(time.Duration(secs*float64(time.Second))))
		}
	}
	return out, nil
}

// maxLatencySeconds bounds a latency from Prometheus: eleven days.
const maxLatencySeconds = 1e6

// counted is a name and its count.
type counted struct {
	name string
	n    int64
}

// top lists per method the values of label that a counter counted most,
// most first, as the tracker does over all its reports: the fields that
// differ (calls per field), the noise, the mismatches' signatures (their
// hashes: the metrics do not carry their descriptions).
func (f *fleet) top(ctx context.Context, counter, label string) (map[string][]counted, error) {
	v, err := f.c.query(ctx, fmt.Sprintf("topk by (%s) (%d, sum by (%s, %s) (%s) > 0)",
		labelMethod, f.topN, labelMethod, label, f.last(f.sel(counter))))
	if err != nil {
		return nil, err
	}
	out := map[string][]counted{}
	for _, s := range v {
		n, err := countOf(s, "the calls counted at "+strconv.Quote(clean(s.labels[label], 200)))
		if err != nil {
			return nil, err
		}
		m := s.labels[labelMethod]
		out[m] = append(out[m], counted{name: s.labels[label], n: n})
	}
	for _, list := range out {
		slices.SortFunc(list, func(a, b counted) int {
			if a.n != b.n {
				return cmp.Compare(b.n, a.n)
			}
			return strings.Compare(a.name, b.name)
		})
	}
	return out, nil
}

// addOutcome adds a count to the outcome that name spells.
func addOutcome(c *parallelrunv1.OutcomeCounts, name string, n int64) {
	// OutcomeCounts names its fields as the metrics name the outcomes.
	m := c.ProtoReflect()
	if fd := m.Descriptor().Fields().ByName(protoreflect.Name(name)); fd != nil && fd.Kind() == protoreflect.Int64Kind {
		m.Set(fd, protoreflect.ValueOfInt64(m.Get(fd).Int()+n))
	}
}

// unixTime is a time in seconds since the epoch, to the microsecond.
func unixTime(s float64) time.Time {
	return time.UnixMicro(int64(math.Round(s * 1e6))).UTC()
}

// promTime spells t as PromQL and the API take it, in seconds since the
// epoch to the millisecond.
func promTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1e3, 'f', 3, 64)
}

// promDuration spells d as PromQL does, in whole milliseconds at least.
func promDuration(d time.Duration) string {
	return strconv.FormatInt(max(1, d.Milliseconds()), 10) + "ms"
}

// summaryFromPrometheus is the summary command judging from the metrics
// in a Prometheus server.
func summaryFromPrometheus(f *summaryFlags, files []string, policy *parallelrunv1.ReadinessPolicy, now time.Time,
	fs *flag.FlagSet, stdout, stderr io.Writer) int {
	if len(files) > 0 {
		usageError(fs, "--prometheus: judges from metrics, not from report files (%s)", clean(files[0], 200))
		return exitUsage
	}
	window := readiness.Merge(readiness.DefaultPolicy(), policy).GetWindow().AsDuration()
	if f.lookback < window {
		usageError(fs, "--lookback %s: shorter than the window, %s", f.lookback, window)
		return exitUsage
	}
	if strings.ContainsAny(f.selector, "{}") {
		usageError(fs, "--selector %q: label matchers without braces, such as 'job=\"pricing-client\"'", clean(f.selector, 200))
		return exitUsage
	}
	explicit := !now.IsZero()
	if !explicit {
		now = time.Now()
	}
	c, err := newPromClient(f.prometheus, now)
	if err != nil {
		usageError(fs, "--prometheus %s", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Judged no later than Prometheus's own now: from a clock ahead, the
	// window would hold none of the latest mismatches and the streak would
	// stretch to that clock, and a run that is not ready would look ready.
	server, err := c.serverTime(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "parallelrun summary: prometheus: %s\n", clean(err.Error(), maxErrLen))
		return exitUsage
	}
	if !server.IsZero() && c.at.After(server.Add(time.Second)) {
		how := "this machine's clock is"
		if explicit {
			how = "--now is"
		}
		fmt.Fprintf(stderr, "parallelrun summary: %s %s ahead of Prometheus's: judged at Prometheus's time, %s\n",
			how, c.at.Sub(server).Round(time.Second), server.Format(time.RFC3339))
		c.at = server
	}
	st, err := fleetStatus(ctx, &fleet{c: c, selector: f.selector, lookback: f.lookback, window: window, topN: f.top}, policy)
	if err != nil {
		fmt.Fprintf(stderr, "parallelrun summary: prometheus: %s\n", clean(err.Error(), maxErrLen))
		return exitUsage
	}
	if f.json {
		if !writeStatusJSON(stdout, stderr, st) {
			return exitUsage
		}
	} else {
		_ = readiness.WriteText(stdout, st)
		fmt.Fprintf(stdout, "judged from the metrics in %s\n", c.display())
	}
	return verdictStatus(st)
}
