package sink

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// Memory keeps every report in memory, for tests: [Memory.Wait] blocks
// until a number of reports has arrived. It is safe for concurrent use, and
// Flush only counts its calls.
type Memory struct {
	mu      sync.Mutex
	reports []*parallelrunv1.Report
	changed chan struct{} // closed and replaced on each report
	flushes int
}

var _ Sink = (*Memory)(nil)

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{changed: make(chan struct{})} }

// Publish keeps a copy of r.
func (m *Memory) Publish(_ context.Context, r *parallelrunv1.Report) error {
	c := proto.Clone(r).(*parallelrunv1.Report)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reports = append(m.reports, c)
	close(m.changed)
	m.changed = make(chan struct{})
	return nil
}

// Flush counts the calls, for tests of Close; it never blocks.
func (m *Memory) Flush(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flushes++
	return nil
}

// Flushes says how many times Flush was called.
func (m *Memory) Flushes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.flushes
}

// Reports returns the reports received so far, in order.
func (m *Memory) Reports() []*parallelrunv1.Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*parallelrunv1.Report(nil), m.reports...)
}

// Wait blocks until at least n reports have arrived and returns them, or
// returns an error when ctx ends first.
func (m *Memory) Wait(ctx context.Context, n int) ([]*parallelrunv1.Report, error) {
	for {
		m.mu.Lock()
		got, changed := len(m.reports), m.changed
		m.mu.Unlock()
		if got >= n {
			return m.Reports(), nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("sink: waited for %d reports, got %d: %w", n, got, ctx.Err())
		}
	}
}
