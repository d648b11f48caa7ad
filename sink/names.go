package sink

import (
	"strings"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// OutcomeName is the short lower-case name of an outcome ("match",
// "candidate_error"), as used in metric attributes.
func OutcomeName(o parallelrunv1.Outcome) string {
	return strings.ToLower(strings.TrimPrefix(o.String(), "OUTCOME_"))
}

// KindName is the short lower-case name of a difference kind ("changed").
func KindName(k parallelrunv1.DifferenceKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "DIFFERENCE_KIND_"))
}
