package main

import (
	"fmt"
	"io"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

// printSummary prints a run's status as text, as readiness writes it,
// then how much was read.
func printSummary(w io.Writer, st *parallelrunv1.RunStatus, reports, malformed int64) {
	_ = readiness.WriteText(w, st)
	fmt.Fprintf(w, "%s read, %s\n", plural(reports, "report", "reports"), plural(malformed, "malformed line", "malformed lines"))
}
