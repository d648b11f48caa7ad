package readiness_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

// Many goroutines add, publish and read at once (run with -race): every
// report is counted once, and each Status is a message of its own.
func TestConcurrent(t *testing.T) {
	const writers, perWriter, readers = 8, 500, 4
	tr := newTracker(t, readiness.WithPolicy(permissive))
	methods := []string{"pkg.S/A", "/pkg.S/B", "pkg.S/C"}
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				at := t0.Add(time.Duration(w*perWriter+i) * time.Millisecond)
				m := withMethod(methods[(w+i)%len(methods)])
				var r *parallelrunv1.Report
				switch i % 5 {
				case 0:
					r = mismatch(at, m, withLatency(time.Millisecond, 2*time.Millisecond))
				case 1:
					r = candidateError(at, m)
				default:
					r = match(at, m, withLatency(time.Millisecond, time.Millisecond))
				}
				if w%2 == 0 {
					tr.Add(r)
				} else if err := tr.Publish(context.Background(), r); err != nil {
					t.Error(err)
				}
			}
		})
	}
	var readersWG sync.WaitGroup
	for range readers {
		readersWG.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				st := tr.Status(time.Time{})
				// Reading the whole message races with any writer that
				// shared its parts.
				if _, err := protojson.Marshal(st); err != nil {
					t.Error(err)
					return
				}
				_ = tr.SetPolicy(permissive, nil)
			}
		})
	}
	wg.Wait()
	close(done)
	readersWG.Wait()
	if err := tr.Flush(context.Background()); err != nil {
		t.Error(err)
	}

	var total, mismatches, errs int64
	for _, m := range tr.Status(time.Time{}).GetMethods() {
		o := m.GetOutcomes()
		total += o.GetMatch() + o.GetMismatch() + o.GetCandidateError()
		mismatches += o.GetMismatch()
		errs += o.GetCandidateError()
		if m.GetCandidateLatency().GetCount() != o.GetMatch()+o.GetMismatch() {
			t.Errorf("%s: %d candidate latencies for %d compared calls", m.GetMethod(), m.GetCandidateLatency().GetCount(), o.GetMatch()+o.GetMismatch())
		}
	}
	if total != writers*perWriter || mismatches != writers*perWriter/5 || errs != writers*perWriter/5 {
		t.Errorf("%d reports, %d mismatches, %d candidate errors; want %d, %d, %d", total, mismatches, errs,
			writers*perWriter, writers*perWriter/5, writers*perWriter/5)
	}
}
