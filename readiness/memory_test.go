package readiness_test

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

// The worst a method's reports can do to memory: latencies in every bin
// of every bucket of the window, on both sides, and as many fields, noise
// fields and signatures as are kept, with every string as long as is kept.
// The package documentation states the bound this checks.
func TestWorstCaseMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("adds 72,000 reports")
	}
	const bound = 1536 << 10
	long := func(prefix string, i int) string { return fmt.Sprintf("%s%04d%s", prefix, i, strings.Repeat("x", 600)) }
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tr := newTracker(t)
	for minute := range 60 {
		for bin := range 600 {
			lat := time.Duration(float64(time.Microsecond) * math.Pow(1.04, float64(bin)+0.5))
			at := t0.Add(time.Duration(minute)*time.Minute + time.Duration(bin)*time.Millisecond)
			var r *parallelrunv1.Report
			if i := minute*600 + bin; i < 200 {
				// Distinct fields and signatures, as long as kept, each
				// with 2 KiB of fields and differences as long as kept.
				var diffs []*parallelrunv1.Difference
				for j := range 8 {
					f := fmt.Sprintf("%d-%d-%s", i, j, strings.Repeat("f", 500))
					diffs = append(diffs, diff(long("p", i), f, long("l", i), long("c", i)))
				}
				r = mismatch(at, withSignature(long("s", i)), withTrace(long("t", i)), withDiffs(diffs...), withNoise(diffs...))
			} else {
				r = match(at)
			}
			withLatency(lat, lat)(r)
			tr.Add(r)
		}
	}
	st := tr.Status(time.Time{})
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("a method at its worst holds %d KiB", held>>10)
	if held > bound {
		t.Errorf("%d bytes held, more than the %d documented", held, bound)
	}
	m := methodStatus(t, st, quote)
	if m.GetCandidateLatency().GetCount() < 59*600 || len(m.GetTopFields()) != readiness.DefaultTopFields {
		t.Errorf("latencies %d, top fields %d", m.GetCandidateLatency().GetCount(), len(m.GetTopFields()))
	}
	runtime.KeepAlive(tr)
}
