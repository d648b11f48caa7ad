package interceptor_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// rawStatusCandidate is a hostile candidate that is no gRPC library: an
// HTTP/2 server that answers every call with a trailers-only response
// whose grpc-message is what it likes. gRPC percent-decodes the message
// byte by byte, so "%FF%FE" reaches the client as two bytes that are not
// UTF-8.
func rawStatusCandidate(t *testing.T, code codes.Code, grpcMessage string) func(context.Context, string) (net.Conn, error) {
	t.Helper()
	lis := bufconn.Listen(256 << 10)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", "application/grpc")
			h.Set("Grpc-Status", strconv.Itoa(int(code)))
			h.Set("Grpc-Message", grpcMessage)
			w.WriteHeader(http.StatusOK)
		}),
		Protocols: new(http.Protocols),
	}
	srv.Protocols.SetUnencryptedHTTP2(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }
}

// Whatever the candidate answers, ParallelRun.Status and the reports are
// valid messages: status.proto and report.proto are proto3, whose strings
// must be UTF-8, or neither proto.Marshal nor protojson will write them.
// A candidate whose status message is not UTF-8 (a hostile or broken
// server; gRPC decodes the message byte by byte) makes the status
// unwritable for as long as the field is among the top fields: the status
// page's status.json answers 500 from then on, and every sink that
// encodes the report (the JSONL sink) loses the mismatch.
func TestAttackCandidateStatusMessageNotUTF8(t *testing.T) {
	legacy := func(context.Context, *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
		return nil, status.Error(codes.InvalidArgument, "no such customer")
	}
	e := newEnv(t, envConfig{legacy: legacy, candidateDialer: rawStatusCandidate(t, codes.InvalidArgument, "no such %FF%FE customer"), opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, CompareStatusMessage: true}),
	}})
	_, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{CustomerId: "c1"})
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != "no such customer" {
		t.Fatalf("the caller must get the legacy status: %v", err)
	}
	r := e.waitReports(t, 1)[0]
	if r.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH {
		t.Fatalf("outcome %v, want a mismatch of status messages: %v", r.GetOutcome(), r)
	}

	t.Run("status", func(t *testing.T) {
		st := e.pr.Status()
		if _, err := proto.Marshal(st); err != nil {
			t.Errorf("ParallelRun.Status() cannot be encoded after one call: %v", err)
		}
		if _, err := protojson.Marshal(st); err != nil {
			t.Errorf("ParallelRun.Status() cannot be written as JSON (status.json answers 500): %v", err)
		}
	})
	t.Run("report", func(t *testing.T) {
		if _, err := proto.Marshal(r); err != nil {
			t.Errorf("the report of the mismatch cannot be encoded, so a sink that writes it loses it: %v", err)
		}
	})
}
