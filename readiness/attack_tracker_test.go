package readiness_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

// The package documentation promises that "Tracker.Add allocates nothing
// for a match". It does allocate, on every report, for a match counted
// under Other: a method past WithMaxMethods named as the interceptor names
// it (without the leading slash, "pkg.Service/Method"), or a name longer
// than 512 bytes without one. Tracker.method finds neither in byName
// (names that go to Other are rightly not remembered, so that they cannot
// grow the map) and builds canonicalMethod(name), "/" + name, again each
// time. A live run with more methods than the bound (the hostile or
// misconfigured feed WithMaxMethods is there for) pays an allocation per
// call under the Tracker's lock.
//
// Cause: readiness/tracker.go, Tracker.method and canonicalMethod. Fix:
// send a name longer than maxName-1 to Other before building anything,
// and look the slashed spelling up without allocating (append "/" and the
// name to a stack buffer of maxName bytes and index byName with
// string(buf), which the compiler does not copy).
func TestAttackAddAllocatesForOtherMethods(t *testing.T) {
	tr, err := readiness.NewTracker(readiness.WithMaxMethods(1))
	if err != nil {
		t.Fatal(err)
	}
	at := timestamppb.New(time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC))
	report := func(method string) *parallelrunv1.Report {
		return &parallelrunv1.Report{Method: method, Outcome: parallelrunv1.Outcome_OUTCOME_MATCH, Time: at}
	}
	// The one method kept, then the reports counted under Other.
	tr.Add(report("pkg.Quotes/Get"))
	for _, method := range []string{
		"pkg.Quotes/List",        // past WithMaxMethods, as the interceptor names it
		strings.Repeat("m", 600), // longer than 512 bytes
		"/pkg.Quotes/Put",        // past WithMaxMethods, as gRPC names it: holds up
	} {
		r := report(method)
		tr.Add(r) // Other now exists
		if n := testing.AllocsPerRun(100, func() { tr.Add(r) }); n != 0 {
			t.Errorf("Add of a match of %.20q, counted under %s, allocates %v times per call; the package documentation says a match allocates nothing", method, readiness.Other, n)
		}
	}
}
