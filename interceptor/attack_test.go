package interceptor_test

// Attacks on the promises of the parallel run, each test named for the
// promise it checks. They use real gRPC servers through the harness.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// inChild runs the calling test again in a child process and fails if
// that process dies: a panic in a goroutine of the parallel run ends the
// whole program, which no recover in the test can catch. It returns true
// in the child, where the test body runs.
func inChild(t *testing.T) bool {
	t.Helper()
	const key = "PARALLELRUN_ATTACK_CHILD"
	if os.Getenv(key) == t.Name() {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), key+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil {
		lines := strings.Split(string(out), "\n")
		if len(lines) > 40 {
			lines = lines[:40]
		}
		t.Fatalf("the program died: %v\n%s", err, strings.Join(lines, "\n"))
	}
	return false
}

// settledHeap returns the live heap once what earlier tests left behind
// has been collected: two collections in a row that find the same heap,
// within 1 MiB.
func settledHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	last := ms.HeapAlloc
	for range 50 {
		time.Sleep(20 * time.Millisecond)
		runtime.GC()
		runtime.ReadMemStats(&ms)
		if max(ms.HeapAlloc, last)-min(ms.HeapAlloc, last) < 1<<20 {
			break
		}
		last = ms.HeapAlloc
	}
	return ms.HeapAlloc
}

// panicOnSend is a stream whose SendMsg panics: a fault in middleware on
// the candidate's connection.
type panicOnSend struct{ grpc.ClientStream }

func (panicOnSend) SendMsg(any) error { panic("candidate middleware: SendMsg") }

// A panic on the candidate's side of a stream (here in the candidate
// connection's middleware, as SendMsg runs) must end that comparison as an
// internal error, as the same panic in RecvMsg or in a unary Invoke does:
// it must never end the program.
func TestCandidateSendPanicDoesNotCrashTheProgram(t *testing.T) {
	if !inChild(t) {
		return
	}
	e := newEnv(t, envConfig{
		legacyServer: exchanger(func(string) int64 { return 10 }), candidateServer: exchanger(func(string) int64 { return 10 }),
		opts: []interceptor.Option{mirrorAll},
		candDialOpts: []grpc.DialOption{grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			s, err := streamer(ctx, desc, cc, method, opts...)
			return panicOnSend{s}, err
		})},
	})
	s, err := e.client.ExchangeQuotes(ctxTimeout(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&pb.ExchangeQuotesRequest{Sku: "A"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseSend()
	if _, err := s.Recv(); err != io.EOF {
		t.Fatal(err)
	}
	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_INTERNAL_ERROR {
		t.Errorf("report %v", r)
	}
}

// The role marker tells the candidate that a call is mirrored, so that it
// suppresses side effects. A metadata hook that builds the candidate's
// metadata afresh (to keep the caller's credentials from it, the very use
// the hook is for) must not take the marker away: every candidate call
// carries it.
func TestCandidateAlwaysCarriesTheRoleMarker(t *testing.T) {
	for name, hook := range map[string]func(context.Context, metadata.MD) metadata.MD{
		"fresh metadata": func(context.Context, metadata.MD) metadata.MD {
			return metadata.Pairs("authorization", "Bearer candidate-token")
		},
		"nil metadata": func(context.Context, metadata.MD) metadata.MD { return nil },
	} {
		t.Run(name, func(t *testing.T) {
			legacy, cand := exchanger(func(string) int64 { return 10 }), exchanger(func(string) int64 { return 10 })
			legacy.get, cand.get = price(10), price(10)
			e := newEnv(t, envConfig{legacyServer: legacy, candidateServer: cand,
				opts: []interceptor.Option{mirrorAll, interceptor.WithCandidateMetadata(hook)}})
			if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
				t.Fatal(err)
			}
			e.waitReports(t, 1)
			if got := e.candidate.LastMD().Get(interceptor.RoleKey); len(got) != 1 || got[0] != "candidate" {
				t.Errorf("unary: the candidate got %s=%q", interceptor.RoleKey, got)
			}
			s, err := e.client.CollectQuotes(ctxTimeout(t))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.CloseAndRecv(); err != nil {
				t.Fatal(err)
			}
			e.waitReports(t, 2)
			if got := e.candidate.LastMD().Get(interceptor.RoleKey); len(got) != 1 || got[0] != "candidate" {
				t.Errorf("stream: the candidate got %s=%q", interceptor.RoleKey, got)
			}
		})
	}
}

// The memory budget bounds everything held for comparisons, both replies
// included. A stream's candidate reply is decoded and then held while the
// comparison waits for the legacy reply at the same position; a candidate
// that answers at once with large replies, ahead of a slow legacy service,
// must not hold more than the budget.
func TestStreamCandidateRepliesCountAgainstTheMemoryBudget(t *testing.T) {
	const (
		streams = 30
		size    = 3 << 20 // within gRPC's default 4 MiB
		budget  = 1 << 20
	)
	legacy := &quoteServer{list: func(_ *pb.ListQuotesRequest, s grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
		<-s.Context().Done()
		return s.Context().Err()
	}}
	huge := &pb.ListQuotesResponse{Quote: &pb.Quote{QuoteId: strings.Repeat("x", size)}}
	var sent atomic.Int64
	cand := &quoteServer{list: func(_ *pb.ListQuotesRequest, s grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
		defer sent.Add(1)
		return s.Send(huge)
	}}
	e := newEnv(t, envConfig{legacyServer: legacy, candidateServer: cand, opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: 10 * time.Minute, MaxStreamBytes: budget}),
		interceptor.WithMemoryBudget(budget),
	}})
	var ms runtime.MemStats
	baseline := settledHeap()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range streams {
		if _, err := e.client.ListQuotes(ctx, &pb.ListQuotesRequest{Count: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// The legacy service never answers: a candidate reply that does not
	// fit in the budget abandons its comparison at once, instead of being
	// held for a legacy reply that may never come, until the candidate's
	// deadline. Once every comparison has ended, what stays is what the
	// client side holds. At once is as soon as 90 MiB have crossed the
	// connection, which takes a busy machine under the race detector more
	// than ten seconds: the wait is bounded well before the deadline.
	waitCtx, waitCancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer waitCancel()
	reports, err := e.sink.Wait(waitCtx, streams)
	if err != nil {
		t.Fatal(err)
	}
	e.waitIdle(t)
	for _, r := range reports {
		if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_ABANDONED || r.GetAbandonReason() != interceptor.AbandonMemoryBound {
			t.Fatalf("report %v", r)
		}
	}
	held := uint64(math.MaxUint64)
	for range 10 {
		time.Sleep(20 * time.Millisecond)
		runtime.GC()
		runtime.ReadMemStats(&ms)
		held = min(held, ms.HeapAlloc-min(ms.HeapAlloc, baseline))
	}
	cancel()
	if held > 32<<20 {
		t.Errorf("the comparisons held %d MiB of the heap with a budget of %d MiB", held>>20, budget>>20)
	}
	for deadline := time.Now().Add(10 * time.Second); sent.Load() < streams && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if sent.Load() != streams {
		t.Errorf("the candidate's handlers ended %d of %d times", sent.Load(), streams)
	}
}

// When both sides fail as calls alike (the same code, here UNAVAILABLE)
// after different numbers of replies, the report must either show what
// differs or not be a mismatch: a mismatch with no difference at all
// tells nobody anything.
func TestStreamMismatchHasItsDifferences(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "backend down")
	e := newEnv(t, envConfig{
		legacyServer:    lister(flat(10), func(int) int { return 3 }, unavailable),
		candidateServer: lister(flat(10), func(int) int { return 1 }, unavailable),
		opts:            []interceptor.Option{mirrorAll},
	})
	got, err := list(t, e.client, ctxTimeout(t), 5)
	if len(got) != 3 || status.Code(err) != codes.Unavailable {
		t.Fatalf("the caller got %d replies, %v", len(got), err)
	}
	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() == parallelrunv1.Outcome_OUTCOME_MISMATCH && len(r.GetDifferences()) == 0 {
		t.Errorf("a mismatch without differences (truncated %v, %d legacy and %d candidate replies)",
			r.GetDifferencesTruncated(), r.GetLegacyMessages(), r.GetCandidateMessages())
	}
}

// Every call that reaches the parallel run is counted once: in an outcome
// or as skipped, with a reason. A stream whose opening panics below the
// parallel run is counted nowhere.
func TestStreamOpenPanicIsCountedOnce(t *testing.T) {
	e := newEnv(t, envConfig{legacyServer: exchanger(func(string) int64 { return 10 }), candidateServer: exchanger(func(string) int64 { return 10 }),
		opts:     []interceptor.Option{mirrorAll},
		dialOpts: []grpc.DialOption{grpc.WithChainStreamInterceptor(panickingStream)},
	})
	if v := recovered(func() { _, _ = e.client.CollectQuotes(ctxTimeout(t)) }); v == nil {
		t.Fatal("the panic below did not reach the caller")
	}
	e.waitIdle(t)
	outcomes := e.counter(t, "parallelrun.comparisons", nil)
	skipped := e.counter(t, "parallelrun.skipped", nil)
	if outcomes+skipped != 1 {
		t.Errorf("one call, counted %d times (%d outcomes, %d skipped)", outcomes+skipped, outcomes, skipped)
	}
}

// New checks its options and says what is wrong: a typed nil provider is
// an error (as a typed nil sink or connection is), not a panic.
func TestTypedNilProvidersAreErrors(t *testing.T) {
	conn := dial(t, serve(t, &quoteServer{}))
	for name, opt := range map[string]interceptor.Option{
		"tracer provider": interceptor.WithTracerProvider((*sdktrace.TracerProvider)(nil)),
		"meter provider":  interceptor.WithMeterProvider((*sdkmetric.MeterProvider)(nil)),
	} {
		var err error
		if v := recovered(func() { _, err = interceptor.New(conn, mirrorAll, opt) }); v != nil {
			t.Errorf("%s: New panicked: %v", name, v)
		} else if err == nil {
			t.Errorf("%s: New accepted a typed nil", name)
		}
	}
}

// The memory budget bounds what streams buffer, and the queues a stream
// buffers in are part of it: they are made, at their full length
// (MaxStreamMessages, twice), as soon as the stream is mirrored, whether
// anything is ever queued or not.
func TestStreamQueuesCountAgainstTheMemoryBudget(t *testing.T) {
	const (
		streams  = 10
		messages = 100_000
		budget   = 1 << 20
	)
	hang := newHanging()
	legacy := newHanging()
	e := newEnv(t, envConfig{legacyServer: &legacy.quoteServer, candidateServer: &hang.quoteServer, opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: time.Minute, MaxStreamMessages: messages}),
		interceptor.WithMemoryBudget(budget),
	}})
	var ms runtime.MemStats
	baseline := settledHeap()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range streams {
		if _, err := e.client.ExchangeQuotes(ctx); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	held := ms.HeapAlloc - min(ms.HeapAlloc, baseline)
	used := e.gauge(t, "parallelrun.memory.used")
	cancel()
	e.waitReports(t, streams)
	e.waitIdle(t)
	if held > 16<<20 {
		t.Errorf("%d idle streams hold %d MiB of the heap, with a budget of %d MiB (the budget's gauge said %d bytes)",
			streams, held>>20, budget>>20, used)
	}
}

// publishFunc is a sink whose Publish is f.
type publishFunc func(context.Context, *parallelrunv1.Report) error

func (f publishFunc) Publish(ctx context.Context, r *parallelrunv1.Report) error { return f(ctx, r) }
func (publishFunc) Flush(context.Context) error                                  { return nil }

// Sinks are isolated from each other: a sink that blocks (a collector
// that is down, a full pipe) must not keep the reports from the others.
func TestBlockedSinkDoesNotStarveTheOthers(t *testing.T) {
	release := make(chan struct{})
	stuck := publishFunc(func(context.Context, *parallelrunv1.Report) error {
		<-release
		return nil
	})
	other := sink.NewMemory()
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(11), opts: []interceptor.Option{mirrorAll,
		interceptor.WithSink(stuck), interceptor.WithSink(other)}})
	t.Cleanup(func() { close(release) })
	const calls = 5
	for range calls {
		if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	// The first sink stays blocked until the test ends: however long the
	// wait, starved reports would never come.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := other.Wait(ctx, calls); err != nil {
		t.Errorf("the second sink got %d of %d reports while the first was blocked: %v", len(other.Reports()), calls, err)
	}
}

// A bidirectional stream is sent on by one goroutine while another
// receives, as gRPC allows. When the stream's share of the memory budget
// runs out, both may find it out at once: the copies they make on the
// caller's path must not race.
func TestConcurrentSendAndReceiveAtTheBudgetDoNotRace(t *testing.T) {
	pad := strings.Repeat("x", 1<<10)
	flood := &quoteServer{exchange: func(s grpc.BidiStreamingServer[pb.ExchangeQuotesRequest, pb.ExchangeQuotesResponse]) error {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if _, err := s.Recv(); err != nil {
					return
				}
			}
		}()
		for range 200 {
			if err := s.Send(&pb.ExchangeQuotesResponse{Quote: &pb.Quote{QuoteId: pad}}); err != nil {
				break
			}
		}
		<-done
		return nil
	}}
	cand := newHanging()
	e := newEnv(t, envConfig{legacyServer: flood, candidateServer: &cand.quoteServer, opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: time.Minute, MaxStreamBytes: 64 << 10}),
		interceptor.WithMaxRequestBytes(1 << 20),
	}})
	for i := range 40 {
		ctx, cancel := context.WithCancel(context.Background())
		s, err := e.client.ExchangeQuotes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			for range 200 {
				if s.Send(&pb.ExchangeQuotesRequest{Sku: pad}) != nil {
					return
				}
			}
			_ = s.CloseSend()
		}()
		for {
			if _, err := s.Recv(); err != nil {
				break
			}
		}
		<-sent
		cancel()
		e.waitReports(t, i+1)
	}
	e.waitIdle(t)
}

// flipCodec is the proto codec with every byte of the wire inverted: a
// codec that a middleware may pick per call with a content-subtype.
type flipCodec struct{}

func (flipCodec) Marshal(v any) ([]byte, error) {
	b, err := proto.Marshal(v.(proto.Message))
	for i := range b {
		b[i] ^= 0xff
	}
	return b, err
}

func (flipCodec) Unmarshal(data []byte, v any) error {
	b := make([]byte, len(data))
	for i := range data {
		b[i] = data[i] ^ 0xff
	}
	return proto.Unmarshal(b, v.(proto.Message))
}

func (flipCodec) Name() string { return "parallelrun-attack-flip" }

func init() { encoding.RegisterCodec(flipCodec{}) }

// withFlip is middleware below the parallel run that has calls use the
// flip codec, through their content-subtype.
var withFlip = []grpc.DialOption{
	grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(ctx, method, req, reply, cc, append(opts, grpc.CallContentSubtype(flipCodec{}.Name()))...)
	}),
	grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(ctx, desc, cc, method, append(opts, grpc.CallContentSubtype(flipCodec{}.Name()))...)
	}),
}

// The caller gets what it would get without the parallel run, whatever
// the middleware below it does. Middleware that picks a codec for a call
// by its content-subtype must still have its codec used: the parallel
// run's tap must not put the proto codec in its place on the wire.
func TestMiddlewareBelowKeepsItsCodec(t *testing.T) {
	legacy := lister(flat(10), all, nil)
	legacy.get = price(10)
	// Without the parallel run, the middleware works.
	plain := pb.NewQuoteServiceClient(dial(t, serve(t, legacy), withFlip...))
	if resp, err := plain.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{Skus: []string{"A"}}); err != nil || resp.GetQuote().GetTotal().GetUnits() != 10 {
		t.Fatalf("without the parallel run: GetQuote = %v, %v", resp, err)
	}
	if got, err := list(t, plain, ctxTimeout(t), 3); err != nil || len(got) != 3 {
		t.Fatalf("without the parallel run: %d replies, %v", len(got), err)
	}
	cand := lister(flat(10), all, nil)
	cand.get = price(10)
	e := newEnv(t, envConfig{legacyServer: legacy, candidateServer: cand, opts: []interceptor.Option{mirrorAll}, dialOpts: withFlip})
	resp, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{Skus: []string{"A"}})
	if err != nil || resp.GetQuote().GetTotal().GetUnits() != 10 {
		t.Errorf("unary: the caller got %v, %v", resp, err)
	}
	got, err := list(t, e.client, ctxTimeout(t), 3)
	if err != nil || len(got) != 3 {
		t.Errorf("stream: the caller got %d replies, %v", len(got), err)
	}
}

// heartbeatFilter is middleware that drops the heartbeats of a server
// stream (replies with quote_id "hb"), so that the caller sees only the
// real replies; each connection has it.
func heartbeatFilter(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	return dropHeartbeats{s}, err
}

type dropHeartbeats struct{ grpc.ClientStream }

func (s dropHeartbeats) RecvMsg(m any) error {
	for {
		if err := s.ClientStream.RecvMsg(m); err != nil {
			return err
		}
		if r, ok := m.(*pb.ListQuotesResponse); !ok || r.GetQuote().GetQuoteId() != "hb" {
			return nil
		}
	}
}

// Copies count against the budget while they are held, and no longer.
// When middleware below the parallel run reads messages that never reach
// the caller (heartbeats it filters out), their copies are dropped, and so
// must their share of the budget be: a long stream with heartbeats must
// not run out of budget while it holds next to nothing.
func TestCopiesDroppedBelowGiveTheirBudgetBack(t *testing.T) {
	pad := strings.Repeat("h", 1<<10)
	withHeartbeats := func() *quoteServer {
		return &quoteServer{list: func(req *pb.ListQuotesRequest, s grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
			for i := range int(req.GetCount()) {
				for range 20 {
					if err := s.Send(&pb.ListQuotesResponse{Quote: &pb.Quote{QuoteId: "hb", CustomerEmail: pad}}); err != nil {
						return err
					}
				}
				if err := s.Send(&pb.ListQuotesResponse{Quote: quoteN(i, 10)}); err != nil {
					return err
				}
			}
			return nil
		}}
	}
	e := newEnv(t, envConfig{legacyServer: withHeartbeats(), candidateServer: withHeartbeats(),
		opts: []interceptor.Option{interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, MaxStreamBytes: 256 << 10})},
		// 20 heartbeats of 1 KiB for each reply: 50 replies read 1 MiB
		// that the caller never sees.
		dialOpts:     []grpc.DialOption{grpc.WithChainStreamInterceptor(heartbeatFilter)},
		candDialOpts: []grpc.DialOption{grpc.WithChainStreamInterceptor(heartbeatFilter)},
	})
	got, err := list(t, e.client, ctxTimeout(t), 50)
	if err != nil || len(got) != 50 {
		t.Fatalf("%d replies, %v", len(got), err)
	}
	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MATCH {
		t.Errorf("outcome %v (%s) after %d legacy and %d candidate replies", r.GetOutcome(), r.GetAbandonReason(), r.GetLegacyMessages(), r.GetCandidateMessages())
	}
	e.waitIdle(t)
}

// A candidate that is down fails at once, and that is the outcome: a
// stream to an unreachable candidate is a candidate_error, counted as
// such, however long the legacy stream goes on after it.
func TestStreamToADownCandidateIsACandidateError(t *testing.T) {
	paced := &quoteServer{list: func(req *pb.ListQuotesRequest, s grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
		for i := range int(req.GetCount()) {
			if err := s.Send(&pb.ListQuotesResponse{Quote: quoteN(i, 10)}); err != nil {
				return err
			}
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	}}
	refuse := func(context.Context, string) (net.Conn, error) { return nil, errors.New("connection refused") }
	e := newEnv(t, envConfig{legacyServer: paced, candidateDialer: refuse, opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: 100 * time.Millisecond}),
	}})
	if got, err := list(t, e.client, ctxTimeout(t), 30); err != nil || len(got) != 30 {
		t.Fatalf("%d replies, %v", len(got), err)
	}
	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR {
		t.Errorf("outcome %v (%s), candidate status %v", r.GetOutcome(), r.GetAbandonReason(), r.GetCandidateStatus())
	}
}

// A report says what the caller sent, or that it was left out for its
// size: a server stream's request past WithMaxRequestBytes is marked
// omitted, as a unary call's is.
func TestServerStreamRequestLeftOutPastTheLimit(t *testing.T) {
	e := newEnv(t, envConfig{legacyServer: lister(flat(10), all, nil), candidateServer: lister(flat(10), all, nil),
		opts: []interceptor.Option{mirrorAll, interceptor.WithMaxRequestBytes(8)}})
	s, err := e.client.ListQuotes(ctxTimeout(t), &pb.ListQuotesRequest{Count: 1, Skus: []string{"a SKU longer than eight bytes"}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := s.Recv(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if r := e.waitReports(t, 1)[0]; !r.GetRequestOmitted() || r.GetRequest() != nil {
		t.Errorf("report: request %v, omitted %v", r.GetRequest(), r.GetRequestOmitted())
	}
}

// The error handler is user code, run from the parallel run's own
// goroutines (delivery, comparisons): a panic in it must be contained as
// a panic in a sink or a hook is, not end the program.
func TestErrorHandlerPanicDoesNotCrashTheProgram(t *testing.T) {
	if !inChild(t) {
		return
	}
	failing := publishFunc(func(context.Context, *parallelrunv1.Report) error { return errors.New("sink down") })
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{mirrorAll,
		interceptor.WithSink(failing),
		interceptor.WithErrorHandler(func(err error) { panic("error handler: " + err.Error()) }),
	}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	e.waitIdle(t)
	time.Sleep(100 * time.Millisecond) // the delivery goroutine calls the handler
}

// The candidate connection is the user's, with its own settings: a codec
// that its default call options pick (here by content-subtype) must be the
// one candidate calls use. The budget's bound on the candidate's reply
// must not put the proto codec in its place.
func TestCandidateConnectionKeepsItsCodec(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{mirrorAll},
		candDialOpts: []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.CallContentSubtype(flipCodec{}.Name()))}})
	// Without the parallel run, the candidate connection works.
	if resp, err := pb.NewQuoteServiceClient(e.candConn).GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil || resp.GetQuote().GetTotal().GetUnits() != 10 {
		t.Fatalf("the candidate connection alone: %v, %v", resp, err)
	}
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	if r := e.waitReports(t, 1)[0]; r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MATCH {
		t.Errorf("outcome %v, candidate status %v", r.GetOutcome(), r.GetCandidateStatus())
	}
}

// Every outcome but dropped has its report, and a configuration that New
// accepts works: a bound on a stream's queues of any size is either
// refused by New or honoured, not an internal error on every stream.
func TestHugeMaxStreamMessages(t *testing.T) {
	conn := dial(t, serve(t, &quoteServer{}))
	cfg := interceptor.MethodConfig{SampleRate: 1, MaxStreamMessages: math.MaxInt}
	if _, err := interceptor.New(conn, interceptor.WithMethod("*", cfg)); err != nil {
		return // refused: fine
	}
	e := newEnv(t, envConfig{legacyServer: lister(flat(10), all, nil), candidateServer: lister(flat(10), all, nil),
		opts: []interceptor.Option{interceptor.WithMethod("*", cfg)}})
	if got, err := list(t, e.client, ctxTimeout(t), 3); err != nil || len(got) != 3 {
		t.Fatalf("%d replies, %v", len(got), err)
	}
	e.waitReports(t, 1) // in the sink: waitIdle does not wait for its queue
	e.waitIdle(t)
	internal := e.counter(t, "parallelrun.comparisons", map[string]string{"parallelrun.outcome": "internal_error"})
	if n := len(e.sink.Reports()); internal != 0 || n != 1 {
		t.Errorf("%d internal errors, %d reports; errors: %v", internal, n, e.errs.all())
	}
}

// stampReply is middleware that completes each reply after it arrives,
// as decryption, defaulting or normalising middleware does; both
// connections have it.
func stampReply(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if r, ok := reply.(*pb.GetQuoteResponse); ok && err == nil {
		r.GetQuote().CustomerEmail = "filled-in@client"
	}
	return err
}

// What is compared is what each side's caller would get: the legacy
// reply as the caller receives it, from the same middleware as the
// candidate's. Copying the legacy reply off the wire, before the
// middleware below has finished it, compares two different things.
func TestComparesTheReplyTheCallerGets(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{mirrorAll},
		dialOpts:     []grpc.DialOption{grpc.WithChainUnaryInterceptor(stampReply)},
		candDialOpts: []grpc.DialOption{grpc.WithChainUnaryInterceptor(stampReply)},
	})
	resp, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{})
	if err != nil || resp.GetQuote().GetCustomerEmail() != "filled-in@client" {
		t.Fatalf("GetQuote = %v, %v", resp, err)
	}
	if r := e.waitReports(t, 1)[0]; r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MATCH {
		t.Errorf("outcome %v: %s", r.GetOutcome(), diffPaths(r))
	}
}

// moody is a bidirectional stream server whose every stream picks one
// behaviour at random: hang, fail at once, close after one reply, flood,
// or echo each request.
func moody(seed uint64) *quoteServer {
	return &quoteServer{exchange: func(s grpc.BidiStreamingServer[pb.ExchangeQuotesRequest, pb.ExchangeQuotesResponse]) error {
		r := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
		switch r.IntN(6) {
		case 0: // hang
			<-s.Context().Done()
			return s.Context().Err()
		case 1: // error at once
			return status.Error(codes.InvalidArgument, "bad")
		case 2: // close early after one
			if _, err := s.Recv(); err != nil {
				return err
			}
			return s.Send(&pb.ExchangeQuotesResponse{Quote: quoteN(0, 1)})
		case 3: // flood
			for i := range 3000 {
				if err := s.Send(&pb.ExchangeQuotesResponse{Quote: quoteN(i, 1)}); err != nil {
					return err
				}
			}
			return nil
		}
		for {
			req, err := s.Recv()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := s.Send(&pb.ExchangeQuotesResponse{Quote: &pb.Quote{QuoteId: req.GetSku()}}); err != nil {
				return err
			}
		}
	}}
}

// Streams with every behaviour on both sides, and callers that send from
// one goroutine while they receive and read the header from others, close
// their side twice or not at all, stop reading, and cancel at random
// moments: every stream that opens ends in exactly one report, none an
// internal error, and nothing is left in flight or held.
func TestStreamChaosEndsEachStreamOnce(t *testing.T) {
	e := newEnv(t, envConfig{legacyServer: moody(1), candidateServer: moody(2), opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: 300 * time.Millisecond, MaxStreamMessages: 64}),
		// Every stream is mirrored, however often the candidate fails.
		interceptor.WithCandidateBreaker(0, 0),
	}})
	var openFailed atomic.Int64
	var wg sync.WaitGroup
	const workers, per = 6, 30
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range per {
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				if r.IntN(3) == 0 {
					time.AfterFunc(time.Duration(r.IntN(3000))*time.Microsecond, cancel)
				}
				s, err := e.client.ExchangeQuotes(ctx)
				if err != nil {
					cancel()
					openFailed.Add(1)
					continue
				}
				nsend, closeSend, read := r.IntN(20), r.IntN(4) != 0, r.IntN(5) != 0
				var inner sync.WaitGroup
				inner.Go(func() {
					for i := range nsend {
						if s.Send(&pb.ExchangeQuotesRequest{Sku: fmt.Sprint(i)}) != nil {
							break
						}
					}
					if closeSend {
						_ = s.CloseSend()
						_ = s.CloseSend()
					}
				})
				inner.Go(func() { _, _ = s.Header() })
				if read {
					for {
						if _, err := s.Recv(); err != nil {
							break
						}
					}
					_ = s.Trailer()
				}
				inner.Wait()
				cancel()
			}
		})
	}
	wg.Wait()
	e.waitIdle(t)
	// The reports reach the sink through its queue, after the calls end.
	e.waitReports(t, workers*per-int(openFailed.Load()))
	outcomes := map[string]int{}
	for _, r := range e.sink.Reports() {
		outcomes[r.GetOutcome().String()+"/"+r.GetAbandonReason()]++
	}
	t.Logf("outcomes: %v", outcomes)
	if n := len(e.sink.Reports()); n != workers*per-int(openFailed.Load()) {
		t.Errorf("%d reports for %d streams", n, workers*per)
	}
	for _, r := range e.sink.Reports() {
		if r.GetOutcome().String() == "OUTCOME_INTERNAL_ERROR" {
			t.Errorf("internal error: %v", r)
		}
	}
}

// A candidate that answers with garbage costs the comparison the same as
// one that answers well: unordered replies are matched in time that grows
// with their number, not with its square. 1,000 replies against 1,000
// others, all different, take a few milliseconds so, and seconds paired
// each with each: the bound of a second between the two holds on a busy
// machine, where a tighter one would not.
func TestUnorderedMatchingIsNotQuadratic(t *testing.T) {
	if testing.Short() {
		t.Skip("CPU-bound")
	}
	const n = 1000
	stream := func(offset int) *quoteServer {
		return &quoteServer{list: func(req *pb.ListQuotesRequest, s grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
			for i := range int(req.GetCount()) {
				if err := s.Send(&pb.ListQuotesResponse{Quote: quoteN(offset+i, int64(i))}); err != nil {
					return err
				}
			}
			return nil
		}}
	}
	e := newEnv(t, envConfig{legacyServer: stream(0), candidateServer: stream(n), opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, UnorderedReplies: true, Timeout: time.Minute}),
	}})
	if got, err := list(t, e.client, ctxTimeout(t), n); err != nil || len(got) != n {
		t.Fatalf("%d replies, %v", len(got), err)
	}
	start := time.Now()
	r := e.waitReports(t, 1)[0]
	took := time.Since(start)
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH {
		t.Fatalf("outcome %v (%s): the replies were not compared", r.GetOutcome(), r.GetAbandonReason())
	}
	t.Logf("%d unordered replies against %d compared in %v after the stream ended", n, n, took)
	if took > time.Second {
		t.Errorf("the comparison of %d unordered replies took %v after the stream ended (outcome %v)", n, took, r.GetOutcome())
	}
}

// describeErr says what a caller sees of an error.
func describeErr(err error) string {
	if err == nil {
		return "ok"
	}
	if err == io.EOF {
		return "EOF"
	}
	return status.Code(err).String() + ":" + status.Convert(err).Message()
}

// streamScript uses a stream the way a caller may, and says what it saw.
type streamScript func(ctx context.Context, cancel func(), c pb.QuoteServiceClient) string

// The caller sees exactly what a plain client sees, whatever it does with
// a stream: send after CloseSend, close twice, receive after the end or an
// error, read the header and trailer, cancel while waiting for the header,
// or receive what a client stream's service sends early or instead of a
// reply. The candidate here never answers.
func TestStreamCallerSeesWhatAPlainClientSees(t *testing.T) {
	legacy := &quoteServer{exchange: func(s grpc.BidiStreamingServer[pb.ExchangeQuotesRequest, pb.ExchangeQuotesResponse]) error {
		_ = s.SetHeader(metadata.Pairs("x-h", "1"))
		s.SetTrailer(metadata.Pairs("x-t", "2"))
		for {
			req, err := s.Recv()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			switch req.GetSku() {
			case "fail":
				return status.Error(codes.InvalidArgument, "bad sku")
			case "hold":
				// No header until the caller gives up: when it does is
				// then no race with the reply.
				<-s.Context().Done()
				return s.Context().Err()
			}
			if err := s.Send(&pb.ExchangeQuotesResponse{Quote: &pb.Quote{QuoteId: req.GetSku()}}); err != nil {
				return err
			}
		}
	}, collect: func(s grpc.ClientStreamingServer[pb.CollectQuotesRequest, pb.CollectQuotesResponse]) error {
		req, err := s.Recv()
		if err != nil {
			return err
		}
		if req.GetSku() == "early" {
			return s.SendAndClose(&pb.CollectQuotesResponse{Quote: &pb.Quote{QuoteId: "early"}})
		}
		if req.GetSku() == "fail" {
			return status.Error(codes.FailedPrecondition, "no")
		}
		for {
			if _, err := s.Recv(); err == io.EOF {
				return s.SendAndClose(&pb.CollectQuotesResponse{Quote: &pb.Quote{QuoteId: "all"}})
			} else if err != nil {
				return err
			}
		}
	}}
	cand := newHanging()
	e := newEnv(t, envConfig{legacyServer: legacy, candidateServer: &cand.quoteServer, opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: 200 * time.Millisecond, CompareHeader: true}),
	}})
	scripts := map[string]streamScript{
		"send after CloseSend": func(ctx context.Context, cancel func(), c pb.QuoteServiceClient) string {
			s, _ := c.ExchangeQuotes(ctx)
			var out []string
			out = append(out, describeErr(s.Send(&pb.ExchangeQuotesRequest{Sku: "A"})))
			_, err := s.Recv()
			out = append(out, describeErr(err))
			out = append(out, describeErr(s.CloseSend()))
			_, err = s.Recv()
			out = append(out, describeErr(err), describeErr(s.CloseSend()))
			out = append(out, describeErr(s.Send(&pb.ExchangeQuotesRequest{Sku: "B"})))
			_, err = s.Recv()
			out = append(out, describeErr(err))
			h, err := s.Header()
			out = append(out, fmt.Sprint(h.Get("x-h"), describeErr(err)), fmt.Sprint(s.Trailer().Get("x-t")))
			return strings.Join(out, " ")
		},
		"fail mid": func(ctx context.Context, cancel func(), c pb.QuoteServiceClient) string {
			s, _ := c.ExchangeQuotes(ctx)
			var out []string
			for _, sku := range []string{"A", "fail"} {
				out = append(out, describeErr(s.Send(&pb.ExchangeQuotesRequest{Sku: sku})))
			}
			for range 2 {
				_, err := s.Recv()
				out = append(out, describeErr(err))
			}
			// Sent once the caller has seen the stream fail: a send
			// before that races with the status (gRPC's send returns EOF
			// once the status is in), on a plain stream too.
			for _, sku := range []string{"B", "C"} {
				out = append(out, describeErr(s.Send(&pb.ExchangeQuotesRequest{Sku: sku})))
			}
			_, err := s.Recv()
			out = append(out, describeErr(err))
			h, err := s.Header()
			out = append(out, fmt.Sprint(h.Get("x-h"), describeErr(err)), fmt.Sprint(s.Trailer().Get("x-t")))
			return strings.Join(out, " ")
		},
		"cancel during header": func(ctx context.Context, cancel func(), c pb.QuoteServiceClient) string {
			s, _ := c.ExchangeQuotes(ctx)
			time.AfterFunc(20*time.Millisecond, cancel)
			_ = s.Send(&pb.ExchangeQuotesRequest{Sku: "hold"})
			h, err := s.Header()
			_, err2 := s.Recv()
			return fmt.Sprint(h.Get("x-h"), describeErr(err), describeErr(err2))
		},
		"collect early": func(ctx context.Context, cancel func(), c pb.QuoteServiceClient) string {
			s, _ := c.CollectQuotes(ctx)
			var out []string
			out = append(out, describeErr(s.Send(&pb.CollectQuotesRequest{Sku: "early"})))
			r, err := s.CloseAndRecv()
			out = append(out, r.GetQuote().GetQuoteId(), describeErr(err))
			r2 := &pb.CollectQuotesResponse{}
			out = append(out, describeErr(s.RecvMsg(r2)))
			return strings.Join(out, " ")
		},
		"collect fail": func(ctx context.Context, cancel func(), c pb.QuoteServiceClient) string {
			s, _ := c.CollectQuotes(ctx)
			var out []string
			out = append(out, describeErr(s.Send(&pb.CollectQuotesRequest{Sku: "fail"})))
			r, err := s.CloseAndRecv()
			out = append(out, r.GetQuote().GetQuoteId(), describeErr(err))
			return strings.Join(out, " ")
		},
		"recv without send then cancel": func(ctx context.Context, cancel func(), c pb.QuoteServiceClient) string {
			s, _ := c.ExchangeQuotes(ctx)
			time.AfterFunc(20*time.Millisecond, cancel)
			_, err := s.Recv()
			_, err2 := s.Recv()
			return describeErr(err) + " " + describeErr(err2) + " " + describeErr(s.Send(&pb.ExchangeQuotesRequest{}))
		},
	}
	for name, sc := range scripts {
		ctx1, c1 := context.WithTimeout(context.Background(), 5*time.Second)
		plain := sc(ctx1, c1, e.plain)
		c1()
		ctx2, c2 := context.WithTimeout(context.Background(), 5*time.Second)
		mirrored := sc(ctx2, c2, e.client)
		c2()
		if plain != mirrored {
			t.Errorf("%s:\n plain    %s\n mirrored %s", name, plain, mirrored)
		}
	}
	e.waitReports(t, len(scripts))
	e.waitIdle(t)
}

// plainProto is the proto codec under a codec of the caller's own: the
// wire is the same as gRPC's default.
type plainProto struct{}

func (plainProto) Marshal(v any) (mem.BufferSlice, error) {
	b, err := proto.Marshal(v.(proto.Message))
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

func (plainProto) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

func (plainProto) Name() string { return "" }

// A stream whose middleware below the parallel run picks its own codec
// (one that writes the same wire) is mirrored all the same: the candidate
// gets what the caller sent, and identical services match.
func TestStreamWithACodecPickedBelowIsMirrored(t *testing.T) {
	ownCodec := grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(ctx, desc, cc, method, append(opts, grpc.ForceCodecV2(plainProto{}))...)
	})
	e := newEnv(t, envConfig{legacyServer: lister(flat(10), all, nil), candidateServer: lister(flat(10), all, nil),
		opts:     []interceptor.Option{interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: time.Second})},
		dialOpts: []grpc.DialOption{ownCodec}})
	if got, err := list(t, e.client, ctxTimeout(t), 3); err != nil || len(got) != 3 {
		t.Fatalf("%d replies, %v", len(got), err)
	}
	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MATCH {
		t.Errorf("outcome %v (%s), candidate status %v, %d legacy and %d candidate replies: %s",
			r.GetOutcome(), r.GetAbandonReason(), r.GetCandidateStatus(), r.GetLegacyMessages(), r.GetCandidateMessages(), diffPaths(r))
	}
}
