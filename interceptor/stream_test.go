package interceptor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

func quoteN(i int, units int64) *pb.Quote {
	return &pb.Quote{QuoteId: fmt.Sprint("q", i), Total: &pb.Money{CurrencyCode: "EUR", Units: units}}
}

// lister streams req.count quotes; units says each one's price, n how many
// are really sent, end how the stream ends.
func lister(units func(i int) int64, n func(count int) int, end error) *quoteServer {
	return &quoteServer{list: func(req *pb.ListQuotesRequest, stream grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
		for i := range n(int(req.GetCount())) {
			if err := stream.Send(&pb.ListQuotesResponse{Quote: quoteN(i, units(i))}); err != nil {
				return err
			}
		}
		return end
	}}
}

func flat(u int64) func(int) int64 { return func(int) int64 { return u } }
func all(n int) int                { return n }

// exchanger answers each request with a quote for its SKU, priced by
// price.
func exchanger(price func(sku string) int64) *quoteServer {
	return &quoteServer{
		exchange: func(stream grpc.BidiStreamingServer[pb.ExchangeQuotesRequest, pb.ExchangeQuotesResponse]) error {
			for {
				req, err := stream.Recv()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				q := &pb.Quote{Items: []*pb.Line{{Sku: req.GetSku(), Price: &pb.Money{Units: price(req.GetSku())}}}}
				if err := stream.Send(&pb.ExchangeQuotesResponse{Quote: q}); err != nil {
					return err
				}
			}
		},
		collect: func(stream grpc.ClientStreamingServer[pb.CollectQuotesRequest, pb.CollectQuotesResponse]) error {
			q := &pb.Quote{Total: &pb.Money{}}
			for {
				req, err := stream.Recv()
				if err == io.EOF {
					return stream.SendAndClose(&pb.CollectQuotesResponse{Quote: q})
				}
				if err != nil {
					return err
				}
				q.Total.Units += price(req.GetSku())
			}
		},
	}
}

// list reads a whole server stream and returns what the caller saw.
func list(t *testing.T, c pb.QuoteServiceClient, ctx context.Context, count int) ([]*pb.ListQuotesResponse, error) {
	t.Helper()
	stream, err := c.ListQuotes(ctx, &pb.ListQuotesRequest{Count: int32(count)})
	if err != nil {
		return nil, err
	}
	var got []*pb.ListQuotesResponse
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, m)
	}
}

func diffPaths(r *parallelrunv1.Report) string {
	var paths []string
	for _, d := range r.GetDifferences() {
		paths = append(paths, d.GetPath()+"="+d.GetLegacy()+">"+d.GetCandidate())
	}
	return strings.Join(paths, " ")
}

func TestServerStreamMatch(t *testing.T) {
	e := newEnv(t, envConfig{legacyServer: lister(flat(10), all, nil), candidateServer: lister(flat(10), all, nil),
		opts: []interceptor.Option{mirrorAll}})
	got, err := list(t, e.client, ctxTimeout(t), 20)
	if err != nil || len(got) != 20 {
		t.Fatalf("%d messages, %v", len(got), err)
	}
	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MATCH || r.GetLegacyMessages() != 20 || r.GetCandidateMessages() != 20 {
		t.Fatalf("report %v", r)
	}
	var req pb.ListQuotesRequest
	if err := r.GetRequest().UnmarshalTo(&req); err != nil || req.GetCount() != 20 {
		t.Errorf("request in report: %v, %v", &req, err)
	}
	// The codec tap leaves the wire as it was.
	if ct := e.legacy.LastMD().Get("content-type"); len(ct) != 1 || ct[0] != "application/grpc" {
		t.Errorf("legacy content-type %v", ct)
	}
	span := onlySpan(t, e, "parallelrun parallelrun.difftest.v1.QuoteService/ListQuotes")
	if a := attrMap(span.Attributes()); a["parallelrun.legacy.messages"] != "20" || a["parallelrun.candidate.messages"] != "20" {
		t.Errorf("span attributes %v", a)
	}
}

func TestServerStreamDiffers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		candidate *quoteServer
		want      string
		outcome   parallelrunv1.Outcome
	}{
		{"at message 3", lister(func(i int) int64 {
			if i == 3 {
				return 11
			}
			return 10
		}, all, nil), "[3].quote.total.units=10>11", parallelrunv1.Outcome_OUTCOME_MISMATCH},
		{"fewer messages", lister(flat(10), func(n int) int { return n - 2 }, nil),
			`[3]={quote:{quote_id:"q3" total:{currency_code:"EUR" units:10}}}> [4]={quote:{quote_id:"q4" total:{currency_code:"EUR" units:10}}}>`,
			parallelrunv1.Outcome_OUTCOME_MISMATCH},
		{"more messages", lister(flat(10), func(n int) int { return n + 1 }, nil),
			`[5]=>{quote:{quote_id:"q5" total:{currency_code:"EUR" units:10}}}`, parallelrunv1.Outcome_OUTCOME_MISMATCH},
		{"another status", lister(flat(10), all, status.Error(codes.Internal, "boom")),
			"grpc-status=OK>INTERNAL", parallelrunv1.Outcome_OUTCOME_MISMATCH},
		{"fails mid-stream", lister(flat(10), func(int) int { return 2 }, status.Error(codes.Unavailable, "gone")),
			`[2]={quote:{quote_id:"q2" total:{currency_code:"EUR" units:10}}}> [3]={quote:{quote_id:"q3" total:{currency_code:"EUR" units:10}}}> [4]={quote:{quote_id:"q4" total:{currency_code:"EUR" units:10}}}>`,
			parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{legacyServer: lister(flat(10), all, nil), candidateServer: tc.candidate,
				opts: []interceptor.Option{mirrorAll}})
			got, err := list(t, e.client, ctxTimeout(t), 5)
			if err != nil || len(got) != 5 {
				t.Fatalf("the caller must see the legacy stream: %d messages, %v", len(got), err)
			}
			r := e.waitReports(t, 1)[0]
			if r.GetOutcome() != tc.outcome {
				t.Fatalf("outcome %v, want %v: %v", r.GetOutcome(), tc.outcome, r)
			}
			if tc.outcome == parallelrunv1.Outcome_OUTCOME_MISMATCH {
				if got := diffPaths(r); got != tc.want {
					t.Errorf("differences:\n got  %s\n want %s", got, tc.want)
				}
			}
		})
	}
}

func TestBidiStream(t *testing.T) {
	price := func(delta int64) func(string) int64 {
		return func(sku string) int64 {
			if sku == "B" {
				return 20 + delta
			}
			return 10
		}
	}
	e := newEnv(t, envConfig{legacyServer: exchanger(price(0)), candidateServer: exchanger(price(1)),
		opts: []interceptor.Option{mirrorAll}})
	stream, err := e.client.ExchangeQuotes(ctxTimeout(t))
	if err != nil {
		t.Fatal(err)
	}
	var header metadata.MD
	for _, sku := range []string{"A", "B", "C"} {
		if err := stream.Send(&pb.ExchangeQuotesRequest{Sku: sku}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil || resp.GetQuote().GetItems()[0].GetSku() != sku {
			t.Fatalf("Recv = %v, %v", resp, err)
		}
	}
	header, _ = stream.Header()
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("Recv after CloseSend = %v", err)
	}
	if header == nil {
		t.Error("no header")
	}
	r := e.waitReports(t, 1)[0]
	if got, want := diffPaths(r), "[1].quote.items[0].price.units=20>21"; got != want || r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH {
		t.Fatalf("%v: %s", r.GetOutcome(), got)
	}
	if r.GetLegacyMessages() != 3 || r.GetCandidateMessages() != 3 {
		t.Errorf("messages %d, %d", r.GetLegacyMessages(), r.GetCandidateMessages())
	}
}

func TestClientStream(t *testing.T) {
	e := newEnv(t, envConfig{legacyServer: exchanger(func(string) int64 { return 10 }), candidateServer: exchanger(func(string) int64 { return 11 }),
		opts: []interceptor.Option{mirrorAll}})
	stream, err := e.client.CollectQuotes(ctxTimeout(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, sku := range []string{"A", "B"} {
		if err := stream.Send(&pb.CollectQuotesRequest{Sku: sku}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil || resp.GetQuote().GetTotal().GetUnits() != 20 {
		t.Fatalf("CloseAndRecv = %v, %v", resp, err)
	}
	r := e.waitReports(t, 1)[0]
	if got := diffPaths(r); got != "[0].quote.total.units=20>22" {
		t.Fatalf("%v: %s", r.GetOutcome(), got)
	}
}

func TestStreamCandidateStalls(t *testing.T) {
	stall := &quoteServer{list: func(req *pb.ListQuotesRequest, stream grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
		<-stream.Context().Done()
		return stream.Context().Err()
	}}
	for _, tc := range []struct {
		name    string
		count   int
		timeout time.Duration
		outcome parallelrunv1.Outcome
	}{
		// Fewer messages than buffered: the candidate runs out of time.
		{"within the buffer", 10, 300 * time.Millisecond, parallelrunv1.Outcome_OUTCOME_CANDIDATE_ERROR},
		// More: the candidate is left behind at once, long before its
		// deadline, however slowly the caller reads.
		{"past the buffer", 100, time.Minute, parallelrunv1.Outcome_OUTCOME_ABANDONED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{legacyServer: lister(flat(10), all, nil), candidateServer: stall, opts: []interceptor.Option{
				interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: tc.timeout, MaxStreamMessages: 16}),
			}})
			// The stalled candidate cannot finish before the caller has the
			// whole legacy stream: the caller does not wait for it.
			got, err := list(t, e.client, ctxTimeout(t), tc.count)
			if err != nil || len(got) != tc.count {
				t.Fatalf("%d messages, %v", len(got), err)
			}
			r := e.waitReports(t, 1)[0]
			if r.GetOutcome() != tc.outcome {
				t.Fatalf("report %v", r)
			}
			if tc.outcome == parallelrunv1.Outcome_OUTCOME_ABANDONED && r.GetAbandonReason() != interceptor.AbandonCandidateBehind {
				t.Errorf("reason %q", r.GetAbandonReason())
			}
		})
	}
}

func TestStreamCallerCancels(t *testing.T) {
	endless := &quoteServer{list: func(req *pb.ListQuotesRequest, stream grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
		for i := 0; ; i++ {
			if err := stream.Send(&pb.ListQuotesResponse{Quote: quoteN(i, 10)}); err != nil {
				return err
			}
			time.Sleep(time.Millisecond)
		}
	}}
	e := newEnv(t, envConfig{legacyServer: endless, candidateServer: endless, opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: 5 * time.Second}),
	}})
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := e.client.ListQuotes(ctx, &pb.ListQuotesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	// The caller stops reading and cancels, as gRPC asks of a caller that
	// leaves a stream early.
	cancel()
	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_CALLER_CANCELED {
		t.Fatalf("report %v", r)
	}
	// gRPC may still hand out replies it had buffered before the cancel
	// (its receive picks among ready cases at random); then it says Canceled,
	// as it would without us.
	for i := 0; ; i++ {
		_, err := stream.Recv()
		if err == nil && i < 1000 {
			continue
		}
		if status.Code(err) != codes.Canceled {
			t.Errorf("Recv after cancel = %v after %d buffered replies", err, i)
		}
		break
	}
}

func TestStreamCallerLeavesWithoutCancel(t *testing.T) {
	// The candidate must send its whole stream within its deadline, or
	// the run shows nothing of the legacy stream left open: on a machine
	// too busy for that, it is made again with a longer deadline.
	for timeout := 200 * time.Millisecond; ; timeout *= 2 {
		e := newEnv(t, envConfig{legacyServer: lister(flat(10), all, nil), candidateServer: lister(flat(10), all, nil), opts: []interceptor.Option{
			interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: timeout}),
		}})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stream, err := e.client.ListQuotes(ctx, &pb.ListQuotesRequest{Count: 5})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
		// The caller keeps the stream open: our side ends at the
		// candidate's deadline all the same.
		r := e.waitReports(t, 1)[0]
		if r.GetCandidateStatus().GetCode() == "DEADLINE_EXCEEDED" && timeout < 3*time.Second {
			t.Logf("the candidate did not end its stream within %v: again with twice the deadline", timeout)
			continue
		}
		if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_ABANDONED || r.GetAbandonReason() != interceptor.AbandonLegacyUnfinished {
			t.Fatalf("report %v", r)
		}
		return
	}
}

func TestUnorderedReplies(t *testing.T) {
	reversed := &quoteServer{list: func(req *pb.ListQuotesRequest, stream grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
		for i := int(req.GetCount()) - 1; i >= 0; i-- {
			if err := stream.Send(&pb.ListQuotesResponse{Quote: quoteN(i, 10)}); err != nil {
				return err
			}
		}
		return nil
	}}
	for _, unordered := range []bool{true, false} {
		e := newEnv(t, envConfig{legacyServer: lister(flat(10), all, nil), candidateServer: reversed, opts: []interceptor.Option{
			interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, UnorderedReplies: unordered}),
		}})
		if _, err := list(t, e.client, ctxTimeout(t), 4); err != nil {
			t.Fatal(err)
		}
		r := e.waitReports(t, 1)[0]
		want := parallelrunv1.Outcome_OUTCOME_MATCH
		if !unordered {
			want = parallelrunv1.Outcome_OUTCOME_MISMATCH
		}
		if r.GetOutcome() != want {
			t.Errorf("unordered %v: %v", unordered, r)
		}
	}
}

func TestStreamHeaderCompared(t *testing.T) {
	withHeader := func(v string) *quoteServer {
		s := lister(flat(10), all, nil)
		inner := s.list
		s.list = func(req *pb.ListQuotesRequest, stream grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
			_ = stream.SendHeader(metadata.Pairs("x-pricing-version", v, "x-request-id", "r"+v,
				"set-cookie", "session="+v, "x-tenant-token", "secret-"+v))
			return inner(req, stream)
		}
		return s
	}
	e := newEnv(t, envConfig{legacyServer: withHeader("1"), candidateServer: withHeader("2"), opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, CompareHeader: true,
			IgnoredHeaders: []string{"x-request-id"}, RedactedHeaders: []string{"x-tenant-token"}}),
	}})
	if _, err := list(t, e.client, ctxTimeout(t), 2); err != nil {
		t.Fatal(err)
	}
	r := e.waitReports(t, 1)[0]
	// Credentials are always redacted, other keys when asked; ignored
	// keys are not compared.
	want := `grpc-header["set-cookie"]=[REDACTED]>[REDACTED] grpc-header["x-pricing-version"]=1>2 grpc-header["x-tenant-token"]=[REDACTED]>[REDACTED]`
	if got := diffPaths(r); got != want {
		t.Fatalf("%v:\n got %s\nwant %s", r.GetOutcome(), got, want)
	}
}

// TestLongStreamMemoryBound runs 100,000 replies of 1 KiB through a
// mirrored stream with a 4 MiB buffer: the live heap stays far below the
// stream's 100 MiB.
func TestLongStreamMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("long stream")
	}
	big := func() *quoteServer {
		return &quoteServer{list: func(req *pb.ListQuotesRequest, stream grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
			pad := strings.Repeat("x", 1024)
			for i := range int(req.GetCount()) {
				q := quoteN(i, 10)
				q.CustomerEmail = pad
				if err := stream.Send(&pb.ListQuotesResponse{Quote: q}); err != nil {
					return err
				}
			}
			return nil
		}}
	}
	e := newEnv(t, envConfig{legacyServer: big(), candidateServer: big(), opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: time.Minute, MaxStreamBytes: 4 << 20}),
	}})
	const n = 100_000
	// 100,000 replies take a while on a loaded machine, under the race
	// detector most of all.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream, err := e.client.ListQuotes(ctx, &pb.ListQuotesRequest{Count: n})
	if err != nil {
		t.Fatal(err)
	}
	// Measured against the heap before the stream: what earlier tests left
	// is not this stream's.
	var peak uint64
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapAlloc
	for i := 0; ; i++ {
		_, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if i != n {
				t.Fatalf("%d messages", i)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%200 == 0 {
			// A caller does some work per message; a little here lets a
			// healthy candidate keep up on a busy two-core machine.
			time.Sleep(2 * time.Millisecond)
		}
		if i%10_000 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc-min(ms.HeapAlloc, baseline))
		}
	}
	r := e.waitReports(t, 1)[0]
	// Either the candidate kept up (match), or it fell past the bound and
	// was abandoned: never more than the bound is buffered.
	switch r.GetOutcome() {
	case parallelrunv1.Outcome_OUTCOME_MATCH:
	case parallelrunv1.Outcome_OUTCOME_ABANDONED:
		t.Logf("abandoned: %s after %d candidate messages", r.GetAbandonReason(), r.GetCandidateMessages())
	default:
		t.Fatalf("report %v", r)
	}
	if peak > 24<<20 {
		t.Errorf("the live heap grew by %d MiB", peak>>20)
	}
	t.Logf("outcome %v, live heap grew by %d MiB at most", r.GetOutcome(), peak>>20)
}

// TestStreamEmptyMessages sends and receives empty messages, whose wire
// form is zero bytes: they count like any other.
func TestStreamEmptyMessages(t *testing.T) {
	empty := &quoteServer{exchange: func(stream grpc.BidiStreamingServer[pb.ExchangeQuotesRequest, pb.ExchangeQuotesResponse]) error {
		for {
			if _, err := stream.Recv(); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			if err := stream.Send(&pb.ExchangeQuotesResponse{}); err != nil {
				return err
			}
		}
	}}
	e := newEnv(t, envConfig{legacyServer: empty, candidateServer: exchanger(func(string) int64 { return 1 }), opts: []interceptor.Option{mirrorAll}})
	stream, err := e.client.ExchangeQuotes(ctxTimeout(t))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := stream.Send(&pb.ExchangeQuotesRequest{}); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	_ = stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatal(err)
	}
	r := e.waitReports(t, 1)[0]
	want := `[0].quote=>{items:[{price:{units:1}}]} [1].quote=>{items:[{price:{units:1}}]}`
	if got := diffPaths(r); got != want || r.GetLegacyMessages() != 2 || r.GetCandidateMessages() != 2 {
		t.Fatalf("%d/%d messages, differences:\n got  %s\n want %s", r.GetLegacyMessages(), r.GetCandidateMessages(), got, want)
	}
}

// TestStreamKeepsTheCallersCodec leaves a stream with a codec of the
// caller's choice alone: the tap steps aside and copies are encoded again.
func TestStreamKeepsTheCallersCodec(t *testing.T) {
	e := newEnv(t, envConfig{legacyServer: lister(flat(10), all, nil), candidateServer: lister(flat(11), all, nil), opts: []interceptor.Option{mirrorAll}})
	stream, err := e.client.ListQuotes(ctxTimeout(t), &pb.ListQuotesRequest{Count: 1}, grpc.CallContentSubtype("proto"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := stream.Recv(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	r := e.waitReports(t, 1)[0]
	if got := diffPaths(r); got != "[0].quote.total.units=10>11" {
		t.Fatalf("differences %s", got)
	}
	if ct := e.legacy.LastMD().Get("content-type"); len(ct) != 1 || ct[0] != "application/grpc+proto" {
		t.Errorf("content-type %v", ct)
	}
}
