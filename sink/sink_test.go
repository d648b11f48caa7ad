package sink_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

func report(t testing.TB, outcome parallelrunv1.Outcome) *parallelrunv1.Report {
	t.Helper()
	req, err := anypb.New(&pb.GetQuoteRequest{CustomerId: "c1", Skus: []string{"A1"}})
	if err != nil {
		t.Fatal(err)
	}
	return &parallelrunv1.Report{
		Method:  "/pricing.v1.PricingService/Quote",
		Outcome: outcome,
		Differences: []*parallelrunv1.Difference{
			{Path: "items[0].price.units", Field: "items.price.units", Kind: parallelrunv1.DifferenceKind_DIFFERENCE_KIND_CHANGED, Legacy: "10", Candidate: "11"},
			{Path: "total.units", Field: "total.units", Kind: parallelrunv1.DifferenceKind_DIFFERENCE_KIND_CHANGED, Legacy: "10", Candidate: "11"},
		},
		TraceId: "4bf92f3577b34da6a3ce929d0e0e4736",
		Request: req,
	}
}

func TestJSONLRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reports.jsonl")
	j, err := sink.CreateJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []*parallelrunv1.Report{report(t, parallelrunv1.Outcome_OUTCOME_MISMATCH), report(t, parallelrunv1.Outcome_OUTCOME_MATCH)}
	for _, r := range want {
		if err := j.Publish(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var got []*parallelrunv1.Report
	for sc.Scan() {
		var r parallelrunv1.Report
		if err := protojson.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if !strings.Contains(sc.Text(), `"customer_id":"c1"`) && !strings.Contains(sc.Text(), `"customer_id": "c1"`) {
			t.Errorf("the request is not readable JSON: %s", sc.Text())
		}
		got = append(got, &r)
	}
	if len(got) != 2 || !proto.Equal(got[0], want[0]) || !proto.Equal(got[1], want[1]) {
		t.Fatalf("read back %v", got)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestJSONLErrors(t *testing.T) {
	j := sink.NewJSONL(failingWriter{})
	_ = j.Publish(context.Background(), report(t, parallelrunv1.Outcome_OUTCOME_MATCH))
	if err := j.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), "sink: JSONL: Flush: disk full") {
		t.Fatalf("Flush = %v", err)
	}
	if _, err := sink.CreateJSONL(filepath.Join(t.TempDir(), "no", "such", "dir")); err == nil || !strings.HasPrefix(err.Error(), "sink: ") {
		t.Fatalf("CreateJSONL = %v", err)
	}
}

// stuckWriter blocks every Write until the test closes release.
type stuckWriter struct {
	entered chan struct{} // signalled, if empty, when a Write starts
	release chan struct{}

	mu  sync.Mutex
	buf bytes.Buffer
}

func newStuckWriter() *stuckWriter {
	return &stuckWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	select {
	case w.entered <- struct{}{}:
	default:
	}
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *stuckWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// await returns what a call running on another goroutine returned. The
// timeout only ends a failing test: a passing one never waits for it.
func await(t *testing.T, what string, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(time.Minute):
		t.Fatalf("%s did not return when its context ended", what)
		return nil
	}
}

func TestJSONLFlushHonoursContext(t *testing.T) {
	w := newStuckWriter()
	released := false
	defer func() {
		if !released {
			close(w.release)
		}
	}()
	j := sink.NewJSONL(w)
	if err := j.Publish(context.Background(), report(t, parallelrunv1.Outcome_OUTCOME_MISMATCH)); err != nil {
		t.Fatal(err)
	}

	// The first Flush gets stuck in the writer and returns when ctx ends.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- j.Flush(ctx) }()
	<-w.entered
	cancel()
	err := await(t, "Flush", errc)
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "sink: JSONL: Flush: ") {
		t.Fatalf("Flush = %v", err)
	}

	// The write goes on in the background: a second Flush, and a Publish,
	// wait for it no longer than their contexts.
	for _, call := range []struct {
		name string
		f    func(context.Context) error
	}{
		{"second Flush", j.Flush},
		{"Publish", func(ctx context.Context) error {
			return j.Publish(ctx, report(t, parallelrunv1.Outcome_OUTCOME_MATCH))
		}},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		go func() { errc <- call.f(ctx) }()
		if err := await(t, call.name, errc); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "sink: JSONL: ") {
			t.Fatalf("%s = %v", call.name, err)
		}
	}

	// Once the writer goes on, a later Flush waits for the write and
	// succeeds; the line is out, and no goroutine is left behind.
	close(w.release)
	released = true
	if err := j.Flush(context.Background()); err != nil {
		t.Fatalf("Flush after the writer went on = %v", err)
	}
	if got := strings.Count(w.String(), "\n"); got != 1 {
		t.Fatalf("%d lines written, want the one published before Flush:\n%s", got, w.String())
	}
	goleak.VerifyNone(t)
}

// A Publish stuck in the writer (bufio writes through once its buffer is
// full) does not hold up Flush past its context.
func TestJSONLFlushWhilePublishIsStuck(t *testing.T) {
	w := newStuckWriter()
	released := false
	defer func() {
		if !released {
			close(w.release)
		}
	}()
	j := sink.NewJSONL(w)
	big := report(t, parallelrunv1.Outcome_OUTCOME_MISMATCH)
	big.Error = strings.Repeat("x", 8<<10)
	published := make(chan error, 1)
	go func() { published <- j.Publish(context.Background(), big) }()
	<-w.entered

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- j.Flush(ctx) }()
	cancel()
	if err := await(t, "Flush", errc); !errors.Is(err, context.Canceled) {
		t.Fatalf("Flush = %v", err)
	}

	close(w.release)
	released = true
	if err := <-published; err != nil {
		t.Fatalf("Publish = %v", err)
	}
	if err := j.Flush(context.Background()); err != nil {
		t.Fatalf("Flush = %v", err)
	}
	if !strings.Contains(w.String(), big.Error) {
		t.Fatal("the report is not written")
	}
	goleak.VerifyNone(t)
}

type panickingWriter struct{}

func (panickingWriter) Write([]byte) (int, error) { panic("writer broke") }

// A writer's panic is the writer's error, whether the write runs on the
// caller's goroutine or, under a context that can end, on one of its own
// (where a panic would end the program).
func TestJSONLWriterPanics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, ctx := range []context.Context{context.Background(), ctx} {
		j := sink.NewJSONL(panickingWriter{})
		if err := j.Publish(ctx, report(t, parallelrunv1.Outcome_OUTCOME_MATCH)); err != nil {
			t.Fatal(err)
		}
		err := j.Flush(ctx)
		if err == nil || err.Error() != "sink: JSONL: Flush: writer panicked: writer broke" {
			t.Fatalf("Flush = %v", err)
		}
	}
}

func TestMemoryWait(t *testing.T) {
	m := sink.NewMemory()
	go func() {
		for range 3 {
			_ = m.Publish(context.Background(), report(t, parallelrunv1.Outcome_OUTCOME_MATCH))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs, err := m.Wait(ctx, 3)
	if err != nil || len(rs) != 3 {
		t.Fatalf("Wait = %d reports, %v", len(rs), err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if _, err := m.Wait(short, 4); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waited for 4 reports, got 3") {
		t.Fatalf("Wait = %v", err)
	}
	// Memory keeps copies: changing the original does not change them.
	r := report(t, parallelrunv1.Outcome_OUTCOME_MATCH)
	_ = m.Publish(context.Background(), r)
	r.Method = "changed"
	if got := m.Reports()[3].GetMethod(); got == "changed" {
		t.Error("Memory shares the report")
	}
}

func TestMulti(t *testing.T) {
	a, b := sink.NewMemory(), sink.NewMemory()
	broken := sink.Func(func(context.Context, *parallelrunv1.Report) error { return errors.New("broken") })
	m := sink.Multi(a, broken, b)
	err := m.Publish(context.Background(), report(t, parallelrunv1.Outcome_OUTCOME_MATCH))
	if err == nil || err.Error() != "sink: Multi: sink 1 (sink.Func): broken" {
		t.Fatalf("Publish = %v", err)
	}
	if len(a.Reports()) != 1 || len(b.Reports()) != 1 {
		t.Fatal("a failing sink kept the others from the report")
	}
	if err := m.Flush(context.Background()); err != nil || a.Flushes() != 1 || b.Flushes() != 1 {
		t.Fatalf("Flush = %v, %d, %d", err, a.Flushes(), b.Flushes())
	}
}

// panicking is a sink whose every method panics, with an error when err is
// set.
type panicking struct{ err error }

func (p *panicking) Publish(context.Context, *parallelrunv1.Report) error { p.panic(); return nil }
func (p *panicking) Flush(context.Context) error                          { p.panic(); return nil }
func (p *panicking) panic() {
	if p.err != nil {
		panic(p.err)
	}
	panic("out of luck")
}

func TestMultiPanic(t *testing.T) {
	a, b := sink.NewMemory(), sink.NewMemory()
	cause := errors.New("cause")
	m := sink.Multi(&panicking{}, a, &panicking{err: cause}, b)
	for range 20 {
		err := m.Publish(context.Background(), report(t, parallelrunv1.Outcome_OUTCOME_MATCH))
		want := "sink: Multi: sink 0 (*sink_test.panicking) panicked: out of luck\n" +
			"sink: Multi: sink 2 (*sink_test.panicking) panicked: cause"
		if err == nil || err.Error() != want {
			t.Fatalf("Publish = %v, want %q", err, want)
		}
		if !errors.Is(err, cause) {
			t.Errorf("Publish = %v, does not wrap the error the sink panicked with", err)
		}
	}
	if len(a.Reports()) != 20 || len(b.Reports()) != 20 {
		t.Fatalf("a panicking sink kept the others from their reports: %d, %d of 20", len(a.Reports()), len(b.Reports()))
	}
	err := m.Flush(context.Background())
	want := "sink: Multi: sink 0 (*sink_test.panicking) panicked: out of luck\n" +
		"sink: Multi: sink 2 (*sink_test.panicking) panicked: cause"
	if err == nil || err.Error() != want || !errors.Is(err, cause) {
		t.Fatalf("Flush = %v, want %q", err, want)
	}
	if a.Flushes() != 1 || b.Flushes() != 1 {
		t.Fatalf("a panicking sink kept the others from Flush: %d, %d", a.Flushes(), b.Flushes())
	}
}

// flushFunc is a sink whose Flush is f.
type flushFunc func(ctx context.Context) error

func (flushFunc) Publish(context.Context, *parallelrunv1.Report) error { return nil }
func (f flushFunc) Flush(ctx context.Context) error                    { return f(ctx) }

// A sink whose Flush takes all of ctx does not leave the others without
// time: each is flushed with the whole of ctx.
func TestMultiFlushConcurrently(t *testing.T) {
	secondFlushed := make(chan struct{})
	first := flushFunc(func(ctx context.Context) error {
		select {
		case <-secondFlushed:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	second := flushFunc(func(ctx context.Context) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		close(secondFlushed)
		return nil
	})
	// The timeout only ends a failing test; a passing one never waits for it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sink.Multi(first, second).Flush(ctx); err != nil {
		t.Fatalf("Flush = %v: the second sink was flushed only after the first", err)
	}
}

func TestNames(t *testing.T) {
	if got := sink.OutcomeName(parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR); got != "candidate_error" {
		t.Error(got)
	}
	if got := sink.KindName(parallelrunv1.DifferenceKind_DIFFERENCE_KIND_TYPE_CHANGED); got != "type_changed" {
		t.Error(got)
	}
}
