package sink

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// DefaultErrorInterval is how often, at most, [Slog] logs the errors of one
// method with one status code, unless [WithErrorInterval] says otherwise.
const DefaultErrorInterval = 10 * time.Second

// Slog logs one record per report through a [slog.Logger]: matches and
// calls the caller canceled at Debug, internal errors at Error, everything
// else at Warn.
//
// A record holds the method and the outcome, and whichever of these the
// report has: trace_id, span_id, legacy_status and candidate_status (the
// codes), legacy_latency, candidate_latency, legacy_messages and
// candidate_messages (streams), abandon_reason, error, and the first
// differences as one attribute, differences, holding a list: a JSON array
// of objects with path, kind, legacy and candidate to [slog.JSONHandler],
// and "path kind legacy -> candidate" items separated by "; " to
// [slog.TextHandler]. differences_omitted counts the differences left out
// of the list, differences_truncated says the report itself left some out.
//
// Candidate and legacy errors are limited (see [WithErrorInterval]): when a
// service is down every call fails alike, and one record per call would
// flood the log.
//
// Slog is safe for concurrent use. Records go out as the logger's handler
// writes them; Flush logs the counts of errors left out and not yet told.
type Slog struct {
	logger   *slog.Logger
	max      int
	interval time.Duration
	now      func() time.Time // time.Now; tests set their own

	mu      sync.Mutex
	windows map[errorKey]errorWindow
	sweepAt int // len(windows) at which the next new key sweeps them
}

var _ Sink = (*Slog)(nil)

// SlogOption configures a [Slog].
type SlogOption func(*slogOptions)

type slogOptions struct {
	errorInterval time.Duration
}

// WithErrorInterval logs candidate and legacy errors (OUTCOME_CANDIDATE_ERROR
// and OUTCOME_LEGACY_ERROR) at most once per interval d for each method,
// outcome and status code of the failing side; the default is
// [DefaultErrorInterval], and d <= 0 logs every one.
//
// The next record logged for the same method, outcome and code carries in
// suppressed the number left out since the last one. Counts that no record
// carried are logged with the message "parallel run: suppressed" by Flush,
// or before, when Slog lets go of intervals that are over, as it does once
// it holds many. So each "parallel run" record stands for 1 + suppressed
// calls, and each "parallel run: suppressed" record for suppressed calls.
func WithErrorInterval(d time.Duration) SlogOption {
	return func(o *slogOptions) { o.errorInterval = d }
}

// minSweep is the number of error windows kept before the first sweep for
// the expired ones.
const minSweep = 64

// NewSlog logs to logger, or to slog.Default() if it is nil, with at most
// maxDifferences differences per record (at least one).
func NewSlog(logger *slog.Logger, maxDifferences int, opts ...SlogOption) *Slog {
	o := slogOptions{errorInterval: DefaultErrorInterval}
	for _, opt := range opts {
		opt(&o)
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Slog{
		logger:   logger,
		max:      max(maxDifferences, 1),
		interval: o.errorInterval,
		now:      time.Now,
		windows:  make(map[errorKey]errorWindow),
		sweepAt:  minSweep,
	}
}

// Publish logs r, unless it is an error of a kind logged within the
// interval.
func (s *Slog) Publish(ctx context.Context, r *parallelrunv1.Report) error {
	level := slog.LevelWarn
	switch r.GetOutcome() {
	case parallelrunv1.Outcome_OUTCOME_MATCH, parallelrunv1.Outcome_OUTCOME_CALLER_CANCELED:
		level = slog.LevelDebug
	case parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR:
		level = slog.LevelError
	}
	if !s.logger.Enabled(ctx, level) {
		return nil
	}
	suppressed := 0
	if key, ok := s.limited(r); ok {
		log, n, untold := s.admit(key)
		s.tell(ctx, untold)
		if !log {
			return nil
		}
		suppressed = n
	}

	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("method", r.GetMethod()),
		slog.String("outcome", OutcomeName(r.GetOutcome())))
	attrs = appendString(attrs, "trace_id", r.GetTraceId())
	attrs = appendString(attrs, "span_id", r.GetSpanId())
	attrs = appendString(attrs, "legacy_status", r.GetLegacyStatus().GetCode())
	attrs = appendString(attrs, "candidate_status", r.GetCandidateStatus().GetCode())
	if d := r.GetLegacyLatency(); d != nil {
		attrs = append(attrs, slog.Duration("legacy_latency", d.AsDuration()))
	}
	if d := r.GetCandidateLatency(); d != nil {
		attrs = append(attrs, slog.Duration("candidate_latency", d.AsDuration()))
	}
	// A count of zero says something when the other side sent messages.
	if r.GetLegacyMessages() != 0 || r.GetCandidateMessages() != 0 {
		attrs = append(attrs,
			slog.Int64("legacy_messages", r.GetLegacyMessages()),
			slog.Int64("candidate_messages", r.GetCandidateMessages()))
	}
	attrs = appendString(attrs, "abandon_reason", r.GetAbandonReason())
	attrs = appendString(attrs, "error", r.GetError())
	if ds := r.GetDifferences(); len(ds) > 0 {
		list := make(differences, 0, min(len(ds), s.max))
		for _, d := range ds[:min(len(ds), s.max)] {
			list = append(list, difference{
				Path:      d.GetPath(),
				Kind:      KindName(d.GetKind()),
				Legacy:    d.GetLegacy(),
				Candidate: d.GetCandidate(),
				kind:      d.GetKind(),
			})
		}
		attrs = append(attrs, slog.Any("differences", list))
		if n := len(ds) - len(list); n > 0 {
			attrs = append(attrs, slog.Int("differences_omitted", n))
		}
	}
	if r.GetDifferencesTruncated() {
		attrs = append(attrs, slog.Bool("differences_truncated", true))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	s.logger.LogAttrs(ctx, level, "parallel run", attrs...)
	return nil
}

// Flush logs the counts of errors left out and not yet told by a record.
// It does not flush the handler: slog has no way to.
func (s *Slog) Flush(ctx context.Context) error {
	s.mu.Lock()
	var untold []untoldErrors
	for k, w := range s.windows {
		if w.suppressed > 0 {
			untold = append(untold, untoldErrors{k, w.suppressed})
			w.suppressed = 0
			s.windows[k] = w
		}
	}
	s.mu.Unlock()
	s.tell(ctx, untold)
	return nil
}

func appendString(attrs []slog.Attr, key, value string) []slog.Attr {
	if value == "" {
		return attrs
	}
	return append(attrs, slog.String(key, value))
}

// errorKey is what makes errors alike: one outage of one method.
type errorKey struct {
	method  string
	outcome parallelrunv1.Outcome
	code    string // of the failing side
}

// errorWindow is the interval that began when an error of its key was last
// logged.
type errorWindow struct {
	start      time.Time
	suppressed int
}

type untoldErrors struct {
	key        errorKey
	suppressed int
}

// limited returns the key of r if r is an error that is limited.
func (s *Slog) limited(r *parallelrunv1.Report) (errorKey, bool) {
	if s.interval <= 0 {
		return errorKey{}, false
	}
	switch r.GetOutcome() {
	case parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR:
		return errorKey{r.GetMethod(), r.GetOutcome(), r.GetCandidateStatus().GetCode()}, true
	case parallelrunv1.Outcome_OUTCOME_LEGACY_ERROR:
		return errorKey{r.GetMethod(), r.GetOutcome(), r.GetLegacyStatus().GetCode()}, true
	}
	return errorKey{}, false
}

// admit says whether an error of key is logged now and how many of its
// kind were left out before it. A new key first sweeps out the windows that
// are over, once there are many, so that they are bounded by the keys seen
// within an interval rather than ever; it returns their counts to tell.
func (s *Slog) admit(key errorKey) (log bool, suppressed int, untold []untoldErrors) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.windows[key]
	if ok && now.Sub(w.start) < s.interval {
		w.suppressed++
		s.windows[key] = w
		return false, 0, nil
	}
	if !ok && len(s.windows) >= s.sweepAt {
		for k, w := range s.windows {
			if now.Sub(w.start) < s.interval {
				continue
			}
			if w.suppressed > 0 {
				untold = append(untold, untoldErrors{k, w.suppressed})
			}
			delete(s.windows, k)
		}
		s.sweepAt = max(minSweep, 2*len(s.windows))
	}
	s.windows[key] = errorWindow{start: now}
	return true, w.suppressed, untold
}

// tell logs the counts of errors left out that no record carried, in an
// order that does not depend on a map's.
func (s *Slog) tell(ctx context.Context, untold []untoldErrors) {
	slices.SortFunc(untold, func(a, b untoldErrors) int {
		return cmp.Or(cmp.Compare(a.key.method, b.key.method),
			cmp.Compare(a.key.outcome, b.key.outcome),
			cmp.Compare(a.key.code, b.key.code))
	})
	for _, u := range untold {
		status := "candidate_status"
		if u.key.outcome == parallelrunv1.Outcome_OUTCOME_LEGACY_ERROR {
			status = "legacy_status"
		}
		attrs := []slog.Attr{
			slog.String("method", u.key.method),
			slog.String("outcome", OutcomeName(u.key.outcome)),
		}
		attrs = appendString(attrs, status, u.key.code)
		attrs = append(attrs, slog.Int("suppressed", u.suppressed))
		s.logger.LogAttrs(ctx, slog.LevelWarn, "parallel run: suppressed", attrs...)
	}
}

// differences is the list of a record's differences, one attribute rather
// than a key repeated within the record, of which most log pipelines keep
// only the last. slog has no kind for lists, so the list brings its own
// encodings: slog.JSONHandler uses MarshalJSON, slog.TextHandler
// MarshalText.
type differences []difference

type difference struct {
	Path      string `json:"path"`
	Kind      string `json:"kind"`
	Legacy    string `json:"legacy"`
	Candidate string `json:"candidate"`

	kind parallelrunv1.DifferenceKind
}

// MarshalJSON writes an array of objects. Without it encoding/json would
// use MarshalText and write a string. Like slog, it leaves <, > and & as
// they are.
func (ds differences) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode([]difference(ds)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// MarshalText writes "path kind legacy -> candidate" items separated by
// "; ", with only the side that has a value for added and removed ones.
func (ds differences) MarshalText() ([]byte, error) {
	var b []byte
	for i, d := range ds {
		if i > 0 {
			b = append(b, "; "...)
		}
		b = append(b, d.Path...)
		b = append(b, ' ')
		b = append(b, d.Kind...)
		b = append(b, ' ')
		switch d.kind {
		case parallelrunv1.DifferenceKind_DIFFERENCE_KIND_ADDED:
			b = append(b, d.Candidate...)
		case parallelrunv1.DifferenceKind_DIFFERENCE_KIND_REMOVED:
			b = append(b, d.Legacy...)
		default:
			b = append(b, d.Legacy...)
			b = append(b, " -> "...)
			b = append(b, d.Candidate...)
		}
	}
	return b, nil
}
