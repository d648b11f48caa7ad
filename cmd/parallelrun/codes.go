package main

import (
	"google.golang.org/grpc/codes"
)

// codeNames are the canonical names of status codes, as the reports write
// them (and the gRPC spec and OpenTelemetry's rpc.response.status_code).
var codeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

func codeName(c codes.Code) string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return c.String()
}

// codeByName reads a code as a report writes it; false for a name it
// does not know.
func codeByName(name string) (codes.Code, bool) {
	for i, n := range codeNames {
		if n == name {
			return codes.Code(i), true
		}
	}
	return 0, false
}

// callFailure tells a failure of a call itself (unreachable, cancelled,
// out of time) from an answer of the service, as the interceptor does.
func callFailure(c codes.Code) bool {
	switch c {
	case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded:
		return true
	}
	return false
}
