package interceptor_test

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// Typos fail at New, naming the bad value, when the registry can tell.
func TestConfigCheckedAgainstTheRegistry(t *testing.T) {
	conn := dial(t, serve(t, &quoteServer{}))
	var nilJSONL *sink.JSONL
	for _, tc := range []struct {
		name string
		opts []interceptor.Option
		want string
	}{
		{"unknown method", []interceptor.Option{interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/GetQuotes", interceptor.MethodConfig{SampleRate: 1})},
			`interceptor: WithMethod "/parallelrun.difftest.v1.QuoteService/GetQuotes": service parallelrun.difftest.v1.QuoteService has no method GetQuotes (it has GetQuote, ListQuotes, CollectQuotes, ExchangeQuotes)`},
		// A typo in the method kept from being mirrored is the worst kind:
		// the write it names would be duplicated by a service pattern.
		{"unknown disabled method", []interceptor.Option{
			interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/*", interceptor.MethodConfig{SampleRate: 1}),
			interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/CollectQuote", interceptor.MethodConfig{Disabled: true})},
			`no method CollectQuote`},
		{"not a service", []interceptor.Option{interceptor.WithMethod("/parallelrun.difftest.v1.Quote/*", interceptor.MethodConfig{SampleRate: 1})},
			`interceptor: WithMethod "/parallelrun.difftest.v1.Quote/*": parallelrun.difftest.v1.Quote is not a service`},
		{"sample rate unset", []interceptor.Option{interceptor.WithMethod("*", interceptor.MethodConfig{})},
			`interceptor: WithMethod "*": field SampleRate: not set: 1 mirrors every call, 0.1 one in ten; to mirror none, set Disabled`},
		{"same method twice", []interceptor.Option{
			interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/GetQuote", interceptor.MethodConfig{SampleRate: 1}),
			interceptor.WithMethod("parallelrun.difftest.v1.QuoteService/GetQuote", interceptor.MethodConfig{SampleRate: 1})},
			`interceptor: WithMethod "parallelrun.difftest.v1.QuoteService/GetQuote": pattern given twice`},
		{"typed nil sink", []interceptor.Option{interceptor.WithSink(nilJSONL)},
			`interceptor: WithSink: sink 0 is a nil *sink.JSONL`},
		{"bad error status", []interceptor.Option{interceptor.WithErrorStatus(42)},
			`interceptor: WithErrorStatus: 42 is not an outcome`},
		{"header key", []interceptor.Option{interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1, IgnoredHeaders: []string{"X-Request-ID"}})},
			`interceptor: WithMethod "*": field IgnoredHeaders: "X-Request-ID" is not a header key`},
		// The comparison options are checked against the reply type.
		{"ignored path typo", []interceptor.Option{interceptor.WithMethod(getQuote, interceptor.MethodConfig{SampleRate: 1,
			Diff: []protodiff.Option{protodiff.WithIgnoredPaths("quote.quote_idd")}})},
			`interceptor: WithMethod "/parallelrun.difftest.v1.QuoteService/GetQuote": field Diff: protodiff: WithIgnoredPaths "quote.quote_idd": parallelrun.difftest.v1.GetQuoteResponse: no field "quote_idd" in parallelrun.difftest.v1.Quote`},
		{"list key on a map", []interceptor.Option{interceptor.WithMethod(getQuote, interceptor.MethodConfig{SampleRate: 1,
			Diff: []protodiff.Option{protodiff.WithListKey("quote.labels", "key")}})},
			`protodiff: WithListKey "quote.labels"`},
		{"tolerance on a string", []interceptor.Option{interceptor.WithMethod(getQuote, interceptor.MethodConfig{SampleRate: 1,
			Diff: []protodiff.Option{protodiff.WithFloatToleranceAt("quote.quote_id", 0, 0.01)}})},
			`protodiff: WithFloatToleranceAt "quote.quote_id"`},
		// A service pattern's options must fit the reply of one method at
		// least.
		{"service path typo", []interceptor.Option{interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/*", interceptor.MethodConfig{SampleRate: 1,
			Diff: []protodiff.Option{protodiff.WithIgnoredPaths("quote.nope")}})},
			`(nor the reply of any other method of parallelrun.difftest.v1.QuoteService)`},
		{"memory budget", []interceptor.Option{interceptor.WithMemoryBudget(0)},
			`interceptor: WithMemoryBudget: 0 is less than 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := interceptor.New(conn, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v\nwant %s", err, tc.want)
			}
		})
	}
	var nilConn *grpc.ClientConn
	if _, err := interceptor.New(nilConn); err == nil || err.Error() != "interceptor: New: the candidate connection is a nil *grpc.ClientConn" {
		t.Errorf("New(nil conn) = %v", err)
	}
}

// A service that is not in the registry cannot be checked: it is accepted,
// and said once.
func TestUnregisteredServiceIsSaidOnce(t *testing.T) {
	conn := dial(t, serve(t, &quoteServer{}))
	errs := &errorLog{}
	pr, err := interceptor.New(conn, interceptor.WithErrorHandler(errs.handle),
		interceptor.WithMethod("/routeguide.RouteGuide/GetFeature", interceptor.MethodConfig{SampleRate: 1}),
		interceptor.WithMethod("/routeguide.RouteGuide/*", interceptor.MethodConfig{SampleRate: 0.5}))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close(ctxTimeout(t))
	got := errs.all()
	if len(got) != 2 || !strings.Contains(fmt.Sprint(got), "service routeguide.RouteGuide is not in the protobuf registry") {
		t.Errorf("error handler got %v", got)
	}
}

// Disabled is how writes are kept from being duplicated: even Force does
// not mirror a disabled method.
func TestDisabledWinsOverForce(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(10), opts: []interceptor.Option{
		interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1}),
		interceptor.WithMethod(getQuote, interceptor.MethodConfig{Disabled: true}),
	}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}, interceptor.Force()); err != nil {
		t.Fatal(err)
	}
	closeNow(t, e)
	if e.candidate.Calls() != 0 {
		t.Errorf("the candidate got %d calls", e.candidate.Calls())
	}
	if got := e.counter(t, "parallelrun.skipped", map[string]string{"parallelrun.reason": "disabled", "rpc.method": getQuote[1:]}); got != 1 {
		t.Errorf("%d calls skipped as disabled", got)
	}
}

// Either form of a method name configures it: gRPC's, with a leading
// slash, or OpenTelemetry's, without.
func TestPatternsInBothForms(t *testing.T) {
	e := newEnv(t, envConfig{legacy: price(10), candidate: price(11), opts: []interceptor.Option{
		interceptor.WithMethod("parallelrun.difftest.v1.QuoteService/GetQuote", interceptor.MethodConfig{SampleRate: 1}),
	}})
	if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
		t.Fatal(err)
	}
	if r := e.waitReports(t, 1)[0]; r.GetMethod() != "parallelrun.difftest.v1.QuoteService/GetQuote" {
		t.Errorf("report %v", r)
	}
}

// A service pattern's options that fit its replies are accepted.
func TestServicePatternOptionsAccepted(t *testing.T) {
	conn := dial(t, serve(t, &quoteServer{}))
	pr, err := interceptor.New(conn, interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/*", interceptor.MethodConfig{SampleRate: 1,
		Diff: []protodiff.Option{protodiff.WithIgnoredPaths("quote.quote_id")}}))
	if err != nil {
		t.Fatal(err)
	}
	_ = pr.Close(ctxTimeout(t))
}
