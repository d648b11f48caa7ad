package interceptor_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// withEmail answers like price(units), with a secret in the reply.
func withEmail(units int64) func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
	return func(ctx context.Context, req *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		resp, err := price(units)(ctx, req)
		resp.GetQuote().CustomerEmail = "someone@example.com"
		return resp, err
	}
}

func TestMismatchKeepsLegacyReply(t *testing.T) {
	e := newEnv(t, envConfig{legacy: withEmail(10), candidate: withEmail(11), opts: []interceptor.Option{mirrorAll}})
	resp, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{CustomerId: "c1", Skus: []string{"A"}})
	if err != nil || resp.GetQuote().GetCustomerEmail() == "" {
		t.Fatalf("the caller must get the legacy reply whole: %v, %v", resp, err)
	}
	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH || len(r.GetLegacyReplies()) != 1 || r.GetLegacyRepliesOmitted() != 0 {
		t.Fatalf("report %v", r)
	}
	var got pb.GetQuoteResponse
	if err := r.GetLegacyReplies()[0].UnmarshalTo(&got); err != nil {
		t.Fatal(err)
	}
	// The reply as the caller got it, with the secret cleared.
	want := proto.Clone(resp).(*pb.GetQuoteResponse)
	want.GetQuote().CustomerEmail = ""
	if !proto.Equal(&got, want) {
		t.Errorf("legacy reply in report:\n got  %v\n want %v", &got, want)
	}
}

func TestMatchKeepsNoLegacyReply(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{mirrorAll}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{CustomerId: "c1"}); err != nil {
		t.Fatal(err)
	}
	if r := e.waitReports(t, 1)[0]; r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MATCH || len(r.GetLegacyReplies()) != 0 || r.GetLegacyRepliesOmitted() != 0 {
		t.Fatalf("report %v", r)
	}
}

func TestLegacyReplyOverTheLimitIsOmitted(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(11), opts: []interceptor.Option{mirrorAll, interceptor.WithMaxRequestBytes(40)}})
	skus := make([]string, 20)
	for i := range skus {
		skus[i] = "SKU"
	}
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{Skus: skus}); err != nil {
		t.Fatal(err)
	}
	if r := e.waitReports(t, 1)[0]; len(r.GetLegacyReplies()) != 0 || r.GetLegacyRepliesOmitted() != 1 {
		t.Fatalf("report %v", r)
	}
}

func TestStreamMismatchKeepsLegacyReplies(t *testing.T) {
	for _, tc := range []struct {
		name      string
		limit     int
		kept      int
		omitted   int64
		unordered bool
	}{
		{"all fit", 1 << 20, 10, 0, false},
		{"a prefix fits", 300, 3, 7, false},
		{"unordered", 1 << 20, 10, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The candidate's fourth reply differs.
			candidate := func(i int) int64 {
				if i == 3 {
					return 11
				}
				return 10
			}
			e := newEnv(t, envConfig{legacyServer: lister(flat(10), all, nil), candidateServer: lister(candidate, all, nil), opts: []interceptor.Option{
				interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, UnorderedReplies: tc.unordered}),
				interceptor.WithMaxRequestBytes(tc.limit),
			}})
			got, err := list(t, e.client, ctxTimeout(t), 10)
			if err != nil || len(got) != 10 {
				t.Fatalf("%d replies, %v", len(got), err)
			}
			r := e.waitReports(t, 1)[0]
			if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH || len(r.GetLegacyReplies()) != tc.kept || r.GetLegacyRepliesOmitted() != tc.omitted {
				t.Fatalf("%d legacy replies kept, %d omitted: %v", len(r.GetLegacyReplies()), r.GetLegacyRepliesOmitted(), r)
			}
			for i, a := range r.GetLegacyReplies() {
				var m pb.ListQuotesResponse
				if err := a.UnmarshalTo(&m); err != nil || !proto.Equal(&m, got[i]) {
					t.Errorf("legacy reply %d: %v, %v; want %v", i, &m, err, got[i])
				}
			}
		})
	}
}

// A mismatch of statuses keeps the legacy reply too: replaying it is how
// a fix of the candidate's failure is checked.
func TestStatusMismatchKeepsLegacyReply(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: fail(codes.Internal, "boom"), opts: []interceptor.Option{mirrorAll}})
	resp, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{CustomerId: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH || len(r.GetLegacyReplies()) != 1 {
		t.Fatalf("report %v", r)
	}
	var got pb.GetQuoteResponse
	if err := r.GetLegacyReplies()[0].UnmarshalTo(&got); err != nil || !proto.Equal(&got, resp) {
		t.Errorf("legacy reply %v, %v; want %v", &got, err, resp)
	}
}

// Past the differences a stream reports, its legacy replies are still
// kept, within the limit.
func TestStreamKeepsLegacyRepliesPastTheDifferences(t *testing.T) {
	e := newEnv(t, envConfig{legacyServer: lister(flat(10), all, nil), candidateServer: lister(flat(11), all, nil), opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1}),
		interceptor.WithMaxRequestBytes(1 << 20),
	}})
	n := 2 * interceptor.MaxStreamDifferences
	if got, err := list(t, e.client, ctxTimeout(t), n); err != nil || len(got) != n {
		t.Fatalf("%d replies, %v", len(got), err)
	}
	r := e.waitReports(t, 1)[0]
	if !r.GetDifferencesTruncated() || len(r.GetLegacyReplies()) != n || r.GetLegacyRepliesOmitted() != 0 {
		t.Fatalf("%d differences (truncated %v), %d legacy replies kept, %d omitted", len(r.GetDifferences()), r.GetDifferencesTruncated(), len(r.GetLegacyReplies()), r.GetLegacyRepliesOmitted())
	}
}
