package interceptor

import (
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// Paths of the differences in gRPC status; '-' cannot occur in a field
// path, so they never clash with a reply's fields.
const (
	StatusCodePath    = "grpc-status"
	StatusMessagePath = "grpc-message"
)

// side is what one side's call came to.
type side struct {
	done bool          // the call ended, and err is its final status
	err  error         // nil for OK
	dur  time.Duration // from its start to its end
	msgs int           // streams: replies received
}

// facts is what a comparison found out, gathered per side by whichever
// goroutine saw it. decide turns them into the outcome; nothing else does.
type facts struct {
	legacy, candidate side

	legacyPanicked bool   // the legacy call panicked below the parallel run
	callerGone     bool   // the caller's context ended before the legacy call did
	abandoned      string // the comparison was given up, for this reason
	internal       string // a failure of the parallel run itself

	// The differences found between the replies (and, for streams, the
	// response headers), whether or not the calls failed.
	diffs      []protodiff.Difference
	truncated  bool
	incomplete string // the first protodiff limit a comparison stopped at
	probed     bool   // a noise probe's answer was compared too
}

// verdict is how a mirrored call ended.
type verdict struct {
	outcome   parallelrunv1.Outcome
	problem   string // for the error outcomes: what went wrong
	diffs     []protodiff.Difference
	noise     []protodiff.Difference // differences explained by noise
	truncated bool
}

// classifier splits the differences of a compared call into real ones and
// noise (see signals.observe); nil keeps them all.
type classifier func([]protodiff.Difference) (real, noise []protodiff.Difference)

// decide is the one place where a comparison's outcome is decided. The
// order of the cases is the order of precedence: a failure of ours hides
// everything, a caller that gave up leaves nothing to compare, and a call
// that failed as a call (not as an answer of the service) is nobody's
// mismatch. maxDiffs bounds the differences, status ones included. When
// both sides answered, classify takes out the differences that noise
// explains: a call with noise differences only is a match.
func decide(f *facts, compareMessage bool, maxDiffs int, classify classifier) verdict {
	const (
		internal   = parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR
		legacyErr  = parallelrunv1.Outcome_OUTCOME_LEGACY_ERROR
		candErr    = parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR
		callerGone = parallelrunv1.Outcome_OUTCOME_CALLER_CANCELED
		abandoned  = parallelrunv1.Outcome_OUTCOME_ABANDONED
	)
	lcode, ccode := status.Code(f.legacy.err), status.Code(f.candidate.err)
	switch {
	case f.internal != "":
		return verdict{outcome: internal, problem: f.internal}
	case f.legacyPanicked:
		return verdict{outcome: legacyErr, problem: "the legacy call panicked"}
	case f.callerGone:
		return verdict{outcome: callerGone}
	case f.abandoned != "":
		return verdict{outcome: abandoned}
	case !f.legacy.done && f.candidate.err != nil && callFailure(ccode):
		// The legacy call is still going, but whatever it ends with, the
		// candidate failed as a call.
		return verdict{outcome: candErr, problem: f.candidate.err.Error()}
	case !f.legacy.done || !f.candidate.done:
		// Every path that leaves a side unfinished sets a reason above.
		return verdict{outcome: internal, problem: "a side of the comparison never ended"}
	case f.legacy.err != nil && ccode != lcode && callFailure(lcode):
		return verdict{outcome: legacyErr, problem: f.legacy.err.Error()}
	case f.candidate.err != nil && ccode != lcode && callFailure(ccode):
		return verdict{outcome: candErr, problem: f.candidate.err.Error()}
	}
	v := verdict{diffs: f.diffs, truncated: f.truncated}
	var statusDiff *protodiff.Difference
	switch {
	case ccode != lcode:
		statusDiff = &protodiff.Difference{Path: StatusCodePath, Field: StatusCodePath, Kind: protodiff.Changed,
			Legacy: codeName(lcode), Candidate: codeName(ccode)}
	case f.legacy.err != nil && compareMessage:
		lm, cm := statusMessage(f.legacy.err), statusMessage(f.candidate.err)
		if lm != cm {
			statusDiff = &protodiff.Difference{Path: StatusMessagePath, Field: StatusMessagePath, Kind: protodiff.Changed,
				Legacy: lm, Candidate: cm}
		}
	}
	if statusDiff != nil {
		if len(v.diffs) < maxDiffs {
			v.diffs = append(v.diffs[:len(v.diffs):len(v.diffs)], *statusDiff)
		} else {
			v.truncated = true
		}
	}
	if classify != nil {
		v.diffs, v.noise = classify(v.diffs)
	}
	v.outcome = parallelrunv1.Outcome_OUTCOME_MATCH
	if len(v.diffs) > 0 || v.truncated {
		v.outcome = parallelrunv1.Outcome_OUTCOME_MISMATCH
	}
	return v
}

// candidateHealth says what a comparison tells of the candidate, for its
// breaker: known is false when the candidate call did not run its course
// (not made, or cancelled: by the parallel run, for a caller that left or
// a comparison given up), failed when it failed as a call.
func candidateHealth(f *facts) (known, failed bool) {
	if !f.candidate.done {
		return false, false
	}
	switch status.Code(f.candidate.err) {
	case codes.Canceled:
		return false, false
	case codes.DeadlineExceeded, codes.Unavailable:
		return true, true
	}
	return true, false
}

// callFailure tells failures of a call itself from answers of the
// service's logic: unreachable, cancelled, or out of time. It serves for
// both sides. A deadline is never the candidate's answer: it expires on
// the candidate's side as soon as on ours (gRPC sends the deadline along),
// so either may report it.
func callFailure(code codes.Code) bool {
	switch code {
	case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded:
		return true
	}
	return false
}

// codeName is a status code's canonical name, as in the gRPC spec and
// OpenTelemetry's rpc.response.status_code: "OK", "NOT_FOUND".
func codeName(c codes.Code) string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return c.String()
}

var codeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

// statusMessage is an error's status message as valid UTF-8: a hostile or
// broken peer can send any bytes (gRPC decodes grpc-message byte by byte),
// and a report or status with invalid UTF-8 cannot be encoded at all.
func statusMessage(err error) string {
	return strings.ToValidUTF8(status.Convert(err).Message(), "\uFFFD")
}
