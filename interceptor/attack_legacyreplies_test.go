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
	"google.golang.org/protobuf/proto"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// A method's redacted paths (MethodConfig.Diff with
// protodiff.WithRedactedPaths, or diff.redactedPaths in a configuration
// file) say that a reply's values there must never be shown: the report's
// difference at the path says "<redacted>". The legacy reply that the
// report of a mismatch keeps for a replay must not then hold the same
// value in full, a few fields further down the same report.
func TestAttackLegacyRepliesKeepRedactedPaths(t *testing.T) {
	const legacySecret, candidateSecret = "tok-legacy-7f3a9c", "tok-candidate-1b2d4e"
	redact := []protodiff.Option{protodiff.WithRedactedPaths("quote.quote_id")}
	check := func(t *testing.T, r *parallelrunv1.Report) {
		t.Helper()
		if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH {
			t.Fatalf("outcome %v, want a mismatch: %v", r.GetOutcome(), r)
		}
		// The report itself redacts the path in its differences...
		sawRedacted := false
		for _, d := range r.GetDifferences() {
			if strings.Contains(d.GetLegacy()+d.GetCandidate(), legacySecret) {
				t.Fatalf("difference %v shows the redacted value", d)
			}
			if d.GetField() == "quote.quote_id" && d.GetLegacy() == protodiff.Redacted {
				sawRedacted = true
			}
		}
		if !sawRedacted {
			t.Fatalf("no redacted difference at quote.quote_id: %v", r.GetDifferences())
		}
		if len(r.GetLegacyReplies()) == 0 {
			t.Fatalf("no legacy reply kept: %v", r)
		}
		// ...and must not give it away in the legacy replies.
		b, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), legacySecret) {
			t.Errorf("the report redacts quote.quote_id in its differences, but its legacy_replies hold the value %q in full", legacySecret)
		}
	}

	t.Run("unary", func(t *testing.T) {
		answer := func(id string, units int64) func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
			return func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
				return &pb.GetQuoteResponse{Quote: &pb.Quote{QuoteId: id, Total: &pb.Money{CurrencyCode: "EUR", Units: units}}}, nil
			}
		}
		e := newEnv(t, envConfig{legacy: answer(legacySecret, 10), candidate: answer(candidateSecret, 11), opts: []interceptor.Option{
			interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Diff: redact}),
		}})
		resp, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{CustomerId: "c1"})
		if err != nil || resp.GetQuote().GetQuoteId() != legacySecret {
			t.Fatalf("the caller must get the legacy reply whole: %v, %v", resp, err)
		}
		check(t, e.waitReports(t, 1)[0])
	})

	t.Run("server stream", func(t *testing.T) {
		server := func(id string, units int64) *quoteServer {
			return &quoteServer{list: func(req *pb.ListQuotesRequest, stream grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
				for i := range int(req.GetCount()) {
					q := &pb.Quote{QuoteId: fmt.Sprint(id, "-", i), Total: &pb.Money{CurrencyCode: "EUR", Units: units}}
					if err := stream.Send(&pb.ListQuotesResponse{Quote: q}); err != nil {
						return err
					}
				}
				return nil
			}}
		}
		e := newEnv(t, envConfig{legacyServer: server(legacySecret, 10), candidateServer: server(candidateSecret, 11), opts: []interceptor.Option{
			interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Diff: redact}),
		}})
		if got, err := list(t, e.client, ctxTimeout(t), 3); err != nil || len(got) != 3 {
			t.Fatalf("%d replies, %v", len(got), err)
		}
		check(t, e.waitReports(t, 1)[0])
	})
}

// The legacy replies a stream keeps for the report of a mismatch are bound
// by WithMaxRequestBytes and the memory budget, counted by their encoded
// size. An empty reply is 0 bytes encoded, so a legacy stream of empty
// replies (a heartbeat, a "nothing new" tick) has every one of them kept,
// decoded, for as long as the stream runs: memory grows with the length of
// the stream, whatever the bounds say.
func TestAttackStreamOfEmptyRepliesKeepsMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("long stream")
	}
	empty := func() *quoteServer {
		return &quoteServer{list: func(req *pb.ListQuotesRequest, stream grpc.ServerStreamingServer[pb.ListQuotesResponse]) error {
			for range int(req.GetCount()) {
				if err := stream.Send(&pb.ListQuotesResponse{}); err != nil {
					return err
				}
			}
			return nil
		}}
	}
	// Tight bounds: 64 KiB of legacy replies for the report (the
	// default), 1 MiB for the stream's buffers, 4 MiB of budget in all.
	e := newEnv(t, envConfig{legacyServer: empty(), candidateServer: empty(), opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, Timeout: 2 * time.Minute, MaxStreamBytes: 1 << 20, MaxStreamMessages: 8192}),
		interceptor.WithMemoryBudget(4 << 20),
	}})
	const n = 600_000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream, err := e.client.ListQuotes(ctx, &pb.ListQuotesRequest{Count: n})
	if err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapAlloc
	var peak uint64
	for i := 0; ; i++ {
		_, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if i != n {
				t.Fatalf("%d replies, want %d", i, n)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			// Some work per reply, so that the candidate keeps up on a
			// busy machine and the comparison is not abandoned.
			time.Sleep(time.Millisecond)
		}
		if i%50_000 == 49_999 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc-min(ms.HeapAlloc, baseline))
		}
	}
	r := e.waitReports(t, 1)[0]
	t.Logf("outcome %v (%s), heap grew by %d KiB at most over %d empty replies", r.GetOutcome(), r.GetAbandonReason(), peak>>10, n)
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MATCH {
		t.Skipf("the comparison ended in %v, not a match: the replies were not all kept, nothing to show", r.GetOutcome())
	}
	// Everything the stream may hold is 4 MiB of budget; three times that is
	// generous for gRPC's own buffers and the garbage collector.
	if peak > 12<<20 {
		t.Errorf("the heap grew by %d MiB while a stream of %d empty replies ran, under a memory budget of 4 MiB: every legacy reply is kept for the report, an empty one counting 0 bytes against WithMaxRequestBytes and the budget", peak>>20, n)
	}
}
