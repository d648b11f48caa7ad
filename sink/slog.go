package sink

import (
	"context"
	"log/slog"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// Slog logs each report through a [slog.Logger]: matches at Debug,
// mismatches and candidate errors at Warn, internal errors at Error, with
// the method, the outcome, the trace ID and the first differences as
// attributes.
type Slog struct {
	logger *slog.Logger
	max    int
}

var _ Sink = (*Slog)(nil)

// NewSlog logs to logger, or to slog.Default() if it is nil, with at most
// maxDifferences differences per record (at least one).
func NewSlog(logger *slog.Logger, maxDifferences int) *Slog {
	if logger == nil {
		logger = slog.Default()
	}
	return &Slog{logger: logger, max: max(maxDifferences, 1)}
}

// Publish logs r.
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
	attrs := []slog.Attr{
		slog.String("method", r.GetMethod()),
		slog.String("outcome", OutcomeName(r.GetOutcome())),
		slog.String("trace_id", r.GetTraceId()),
		slog.String("legacy_status", r.GetLegacyStatus().GetCode()),
		slog.String("candidate_status", r.GetCandidateStatus().GetCode()),
		slog.Int("differences", len(r.GetDifferences())),
	}
	if r.GetError() != "" {
		attrs = append(attrs, slog.String("error", r.GetError()))
	}
	for i, d := range r.GetDifferences() {
		if i == s.max {
			break
		}
		attrs = append(attrs, slog.Group("difference",
			slog.String("path", d.GetPath()),
			slog.String("kind", KindName(d.GetKind())),
			slog.String("legacy", d.GetLegacy()),
			slog.String("candidate", d.GetCandidate())))
	}
	s.logger.LogAttrs(ctx, level, "parallel run", attrs...)
	return nil
}

// Flush does nothing: slog handlers write as they go.
func (s *Slog) Flush(context.Context) error { return nil }
