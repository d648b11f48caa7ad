package statuspage

import (
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// MaxTraceLinks is how many trace IDs of one signature the page shows; the
// rest are counted.
const MaxTraceLinks = 5

// The view is the status put into words, ready for the template: every
// value from the message is formatted here, so that the template only
// places and escapes them.
type (
	pageView struct {
		Title    string
		Refresh  int64
		Time     stamp
		Start    stamp
		Running  string
		Disabled bool
		Verdict  verdictView
		Reasons  []text
		Policy   []policyItem
		Tally    string
		Methods  []methodView
	}

	verdictView struct {
		Label, Class string
	}

	stamp struct {
		// ISO is empty when the time is not set or not valid.
		ISO, Show, Ago string
	}

	traceView struct {
		// Href is set only for a valid trace ID and a trace URL.
		Href  string
		Label text
	}

	policyItem struct {
		Name, Value string
	}

	methodView struct {
		Anchor         string
		Name           text
		Verdict        verdictView
		Reasons        []text
		Policy         []policyItem
		Compared       string
		WindowCompared string
		MismatchRate   string
		Mismatches     string
		MismatchBad    bool
		ErrorRate      string
		Errors         string
		ErrorBad       bool
		StreakCalls    string
		StreakFor      string
		LastMismatch   *lastMismatch
		Legacy         latencyView
		Candidate      latencyView
		SlowBad        bool
		Outcomes       []outcomeView
		TopFields      []fieldView
		Signatures     []signatureView
		Noise          []fieldView
	}

	lastMismatch struct {
		When  stamp
		At    text
		Trace *traceView
	}

	latencyView struct {
		P50, P99, Count string
	}

	outcomeView struct {
		Name, All, Window string
	}

	fieldView struct {
		Field     text
		Count     string
		Kind      string
		Path      text
		Legacy    text
		Candidate text
		LastSeen  stamp
		Trace     *traceView
	}

	signatureView struct {
		Signature text
		Count     string
		Fields    []text
		Codes     text
		FirstSeen stamp
		LastSeen  stamp
		Traces    []*traceView
		More      int
	}
)

// page builds the view of st. Its size is linear in st's: nothing is shown
// that the message does not hold, and every string at most once in full
// (in a title) besides its cut form.
func (h *Handler) page(st *parallelrunv1.RunStatus) *pageView {
	v := viewer{h: h}
	if t := st.GetTime(); t != nil && t.CheckValid() == nil {
		v.now, v.hasNow = t.AsTime(), true
	}
	p := &pageView{
		Title:    h.title,
		Refresh:  h.refresh,
		Time:     v.stamp(st.GetTime()),
		Start:    v.stamp(st.GetStart()),
		Disabled: st.GetMirroringDisabled(),
		Verdict:  verdict(st.GetReadiness().GetVerdict()),
		Reasons:  texts(st.GetReadiness().GetReasons()),
		Policy:   policy(st.GetReadiness().GetPolicy()),
	}
	if s := st.GetStart(); v.hasNow && s != nil && s.CheckValid() == nil {
		p.Running = span(v.now.Sub(s.AsTime()))
	}
	tally := map[parallelrunv1.Verdict]int{}
	for i, m := range st.GetMethods() {
		p.Methods = append(p.Methods, v.method(i, m))
		tally[m.GetReadiness().GetVerdict()]++
	}
	p.Tally = tallyText(len(st.GetMethods()), tally)
	return p
}

type viewer struct {
	h      *Handler
	now    time.Time
	hasNow bool
}

func (v *viewer) method(i int, m *parallelrunv1.MethodStatus) methodView {
	all, win := m.GetOutcomes(), m.GetWindowOutcomes()
	pol := m.GetReadiness().GetPolicy()
	reached := win.GetMatch() + win.GetMismatch() + win.GetCandidateError()
	mv := methodView{
		Anchor:         "m" + strconv.Itoa(i+1),
		Name:           cut(m.GetMethod()),
		Verdict:        verdict(m.GetReadiness().GetVerdict()),
		Reasons:        texts(m.GetReadiness().GetReasons()),
		Policy:         policy(pol),
		Compared:       count(all.GetMatch() + all.GetMismatch()),
		WindowCompared: count(win.GetMatch() + win.GetMismatch()),
		MismatchRate:   percent(m.GetMismatchRate()),
		Mismatches:     count(win.GetMismatch()) + " of " + count(win.GetMatch()+win.GetMismatch()),
		MismatchBad:    pol != nil && pol.MaxMismatchRate != nil && m.GetMismatchRate() > pol.GetMaxMismatchRate(),
		ErrorRate:      percent(m.GetCandidateErrorRate()),
		Errors:         count(win.GetCandidateError()) + " of " + count(reached),
		ErrorBad:       pol != nil && pol.MaxCandidateErrorRate != nil && m.GetCandidateErrorRate() > pol.GetMaxCandidateErrorRate(),
		StreakCalls:    count(m.GetStreak().GetCalls()),
		StreakFor:      duration(m.GetStreak().GetDuration(), span),
		Legacy:         latencies(m.GetLegacyLatency()),
		Candidate:      latencies(m.GetCandidateLatency()),
		Outcomes:       outcomes(all, win),
	}
	if r := pol.GetMaxP99LatencyRatio(); r > 0 {
		l, c := m.GetLegacyLatency().GetP99(), m.GetCandidateLatency().GetP99()
		if l.CheckValid() == nil && c.CheckValid() == nil && l.AsDuration() > 0 {
			mv.SlowBad = float64(c.AsDuration()) > r*float64(l.AsDuration())
		}
	}
	if s := m.GetStreak(); s.GetLastMismatchTime() != nil || s.GetLastMismatchAt() != "" || s.GetLastMismatchTraceId() != "" {
		mv.LastMismatch = &lastMismatch{
			When:  v.stamp(s.GetLastMismatchTime()),
			At:    cut(s.GetLastMismatchAt()),
			Trace: v.trace(s.GetLastMismatchTraceId()),
		}
	}
	for _, f := range m.GetTopFields() {
		mv.TopFields = append(mv.TopFields, v.field(f))
	}
	for _, f := range m.GetNoiseFields() {
		mv.Noise = append(mv.Noise, v.field(f))
	}
	for _, s := range m.GetTopSignatures() {
		mv.Signatures = append(mv.Signatures, v.signature(s))
	}
	return mv
}

func (v *viewer) field(f *parallelrunv1.FieldSummary) fieldView {
	ex := f.GetExample()
	fv := fieldView{
		Field:     cut(f.GetField()),
		Count:     count(f.GetCount()),
		Path:      cut(ex.GetPath()),
		Legacy:    cut(ex.GetLegacy()),
		Candidate: cut(ex.GetCandidate()),
		LastSeen:  v.stamp(f.GetLastSeen()),
		Trace:     v.trace(f.GetTraceId()),
	}
	if ex != nil {
		fv.Kind = kind(ex.GetKind())
	}
	return fv
}

func (v *viewer) signature(s *parallelrunv1.SignatureSummary) signatureView {
	sv := signatureView{
		Signature: cut(s.GetSignature()),
		Count:     count(s.GetCount()),
		Fields:    texts(s.GetFields()),
		FirstSeen: v.stamp(s.GetFirstSeen()),
		LastSeen:  v.stamp(s.GetLastSeen()),
	}
	switch l, c := s.GetLegacyCode(), s.GetCandidateCode(); {
	case l != c:
		sv.Codes = cut(l + " → " + c)
	case l != "":
		sv.Codes = cut(l)
	}
	ids := s.GetTraceIds()
	for _, id := range ids[:min(len(ids), MaxTraceLinks)] {
		if t := v.trace(id); t != nil {
			sv.Traces = append(sv.Traces, t)
		}
	}
	sv.More = max(len(ids)-MaxTraceLinks, 0)
	return sv
}

// trace shows a trace ID: linked when it is valid and there is a trace
// URL, otherwise as text (a valid one in full, for a search in the tracing
// UI).
func (v *viewer) trace(id string) *traceView {
	if id == "" {
		return nil
	}
	if !validTraceID(id) {
		return &traceView{Label: cut(id)}
	}
	if v.h.traceURL == "" {
		return &traceView{Label: text{Show: id}}
	}
	return &traceView{
		Href:  traceLink(v.h.traceURL, id),
		Label: text{Show: id[:8] + "…", Full: id},
	}
}

func (v *viewer) stamp(ts *timestamppb.Timestamp) stamp {
	if ts == nil {
		return stamp{}
	}
	if ts.CheckValid() != nil {
		return stamp{Show: "invalid time"}
	}
	t := ts.AsTime()
	s := stamp{ISO: t.Format(time.RFC3339Nano), Show: t.Format("2006-01-02 15:04:05Z")}
	if v.hasNow {
		if d := v.now.Sub(t); d >= 0 {
			s.Ago = span(d) + " ago"
		} else {
			s.Ago = span(-d) + " after the status"
		}
	}
	return s
}

func duration(d *durationpb.Duration, format func(time.Duration) string) string {
	if d == nil {
		return "–"
	}
	if d.CheckValid() != nil {
		return "invalid"
	}
	return format(d.AsDuration())
}

func latencies(l *parallelrunv1.LatencySummary) latencyView {
	if l.GetCount() == 0 {
		return latencyView{P50: "–", P99: "–", Count: "0"}
	}
	return latencyView{
		P50:   duration(l.GetP50(), latency),
		P99:   duration(l.GetP99(), latency),
		Count: count(l.GetCount()),
	}
}

func outcomes(all, win *parallelrunv1.OutcomeCounts) []outcomeView {
	row := func(name string, get func(*parallelrunv1.OutcomeCounts) int64) outcomeView {
		return outcomeView{Name: name, All: count(get(all)), Window: count(get(win))}
	}
	return []outcomeView{
		row("match", (*parallelrunv1.OutcomeCounts).GetMatch),
		row("mismatch", (*parallelrunv1.OutcomeCounts).GetMismatch),
		row("candidate error", (*parallelrunv1.OutcomeCounts).GetCandidateError),
		row("legacy error", (*parallelrunv1.OutcomeCounts).GetLegacyError),
		row("caller canceled", (*parallelrunv1.OutcomeCounts).GetCallerCanceled),
		row("abandoned", (*parallelrunv1.OutcomeCounts).GetAbandoned),
		row("dropped", (*parallelrunv1.OutcomeCounts).GetDropped),
		row("internal error", (*parallelrunv1.OutcomeCounts).GetInternalError),
	}
}

func policy(p *parallelrunv1.ReadinessPolicy) []policyItem {
	if p == nil {
		return nil
	}
	var items []policyItem
	add := func(name, value string) { items = append(items, policyItem{name, value}) }
	if p.MinCompared != nil {
		add("min compared", count(p.GetMinCompared()))
	}
	if p.MinStreakCalls != nil {
		add("min streak", count(p.GetMinStreakCalls())+" calls")
	}
	if p.MinStreakDuration != nil {
		add("min streak", duration(p.GetMinStreakDuration(), span))
	}
	if p.MaxMismatchRate != nil {
		add("max mismatch rate", percent(p.GetMaxMismatchRate()))
	}
	if p.MaxCandidateErrorRate != nil {
		add("max candidate error rate", percent(p.GetMaxCandidateErrorRate()))
	}
	if p.MaxP99LatencyRatio != nil {
		if r := p.GetMaxP99LatencyRatio(); r > 0 {
			add("max p99 ratio", strconv.FormatFloat(r, 'g', 3, 64)+"×")
		} else {
			add("max p99 ratio", "not checked")
		}
	}
	if p.Window != nil {
		add("window", duration(p.GetWindow(), span))
	}
	return items
}

func texts(ss []string) []text {
	if len(ss) == 0 {
		return nil
	}
	t := make([]text, len(ss))
	for i, s := range ss {
		t[i] = cut(s)
	}
	return t
}

func verdict(v parallelrunv1.Verdict) verdictView {
	switch v {
	case parallelrunv1.Verdict_VERDICT_READY:
		return verdictView{"ready", "ready"}
	case parallelrunv1.Verdict_VERDICT_NOT_READY:
		return verdictView{"not ready", "not-ready"}
	case parallelrunv1.Verdict_VERDICT_NOT_ENOUGH_DATA:
		return verdictView{"not enough data", "no-data"}
	case parallelrunv1.Verdict_VERDICT_UNSPECIFIED:
		return verdictView{"no verdict", "unknown"}
	}
	return verdictView{"unknown verdict " + strconv.Itoa(int(v)), "unknown"}
}

func kind(k parallelrunv1.DifferenceKind) string {
	switch k {
	case parallelrunv1.DifferenceKind_DIFFERENCE_KIND_CHANGED:
		return "changed"
	case parallelrunv1.DifferenceKind_DIFFERENCE_KIND_ADDED:
		return "added"
	case parallelrunv1.DifferenceKind_DIFFERENCE_KIND_REMOVED:
		return "removed"
	case parallelrunv1.DifferenceKind_DIFFERENCE_KIND_TYPE_CHANGED:
		return "type changed"
	case parallelrunv1.DifferenceKind_DIFFERENCE_KIND_UNSPECIFIED:
		return ""
	}
	return "kind " + strconv.Itoa(int(k))
}

func tallyText(n int, tally map[parallelrunv1.Verdict]int) string {
	if n == 0 {
		return "no methods yet"
	}
	s := strconv.Itoa(n) + " method"
	if n != 1 {
		s += "s"
	}
	sep := ": "
	for _, v := range []parallelrunv1.Verdict{
		parallelrunv1.Verdict_VERDICT_NOT_READY,
		parallelrunv1.Verdict_VERDICT_NOT_ENOUGH_DATA,
		parallelrunv1.Verdict_VERDICT_READY,
	} {
		if c := tally[v]; c > 0 {
			s += sep + strconv.Itoa(c) + " " + verdict(v).Label
			sep = ", "
		}
	}
	return s
}
