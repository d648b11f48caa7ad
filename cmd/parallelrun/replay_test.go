package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

func getQuote(skus ...string) func(context.Context, pb.QuoteServiceClient) {
	return func(ctx context.Context, c pb.QuoteServiceClient) {
		_, _ = c.GetQuote(ctx, &pb.GetQuoteRequest{CustomerId: "c1", Skus: skus})
	}
}

// replayJSON runs replay with --json and returns its call lines and its
// tally.
func replayJSON(t *testing.T, args ...string) (result, []callLine, replayTally) {
	t.Helper()
	r := runCmd(t, nil, append([]string{"replay", "--json"}, args...)...)
	var calls []callLine
	var tally replayTally
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	for i, l := range lines {
		if i == len(lines)-1 {
			var last struct {
				Tally *replayTally `json:"tally"`
			}
			if err := json.Unmarshal([]byte(l), &last); err != nil || last.Tally == nil {
				t.Fatalf("the last line is not the tally: %q (%v)\n%s", l, err, r)
			}
			tally = *last.Tally
			break
		}
		var c callLine
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("line %d: %v\n%s", i+1, err, r)
		}
		calls = append(calls, c)
	}
	return r, calls, tally
}

func paths(prs []pathResult) string {
	var s []string
	for _, p := range prs {
		s = append(s, p.Path)
	}
	return strings.Join(s, " ")
}

func TestReplayFixed(t *testing.T) {
	reports := recordRun(t, &quotes{units: 10}, &quotes{units: 11}, getQuote("A", "B"))
	fixed := &quotes{units: 10}
	r := runCmd(t, nil, "replay", reports, "--candidate", serve(t, fixed, true))
	if r.code != exitOK {
		t.Fatalf("a fixed candidate must exit 0:\n%s", r)
	}
	for _, want := range []string{
		"parallelrun.difftest.v1.QuoteService/GetQuote trace ",
		": fixed (status OK, 1 reply)",
		"fixed quote.items[0].price.units was 10 -> 11",
		"fixed quote.total.units was 20 -> 22",
		"replayed 1 call: 1 fully fixed, 0 still different, 0 with new differences; 0 not replayable, 0 errors, 0 malformed lines",
	} {
		if !strings.Contains(squash(r.stdout), want) {
			t.Errorf("output lacks %q:\n%s", want, r)
		}
	}
	// The candidate knows the call for mirrored traffic.
	if got := fixed.lastMD().Get(interceptor.RoleKey); len(got) != 1 || got[0] != "candidate" {
		t.Errorf("the candidate got %s=%q, want candidate", interceptor.RoleKey, got)
	}
}

func TestReplayStillDifferentAndNew(t *testing.T) {
	reports := recordRun(t, &quotes{units: 10}, &quotes{units: 11}, getQuote("A"))
	t.Run("still different", func(t *testing.T) {
		r, calls, tally := replayJSON(t, reports, "--candidate", serve(t, &quotes{units: 12}, true))
		if r.code != exitFail || len(calls) != 1 || tally.Replayed != 1 || tally.StillDifferent != 1 || tally.FullyFixed != 0 {
			t.Fatalf("calls %+v tally %+v\n%s", calls, tally, r)
		}
		c := calls[0]
		if c.Result != "still_different" || paths(c.StillDifferent) != "quote.items[0].price.units quote.total.units" || len(c.Fixed)+len(c.New) != 0 {
			t.Fatalf("call %+v", c)
		}
		if d := c.StillDifferent[1]; d.Legacy != "10" || d.Candidate != "12" || d.RecordedCandidate != "11" {
			t.Errorf("still different %+v: want 10 -> 12, recorded 11", d)
		}
		if len(c.TraceID) != 32 || !strings.HasSuffix(c.Report, "reports.jsonl:1") {
			t.Errorf("trace %q report %q", c.TraceID, c.Report)
		}
	})
	t.Run("new", func(t *testing.T) {
		// The units are fixed, but the currency is now wrong.
		r, calls, tally := replayJSON(t, reports, "--candidate", serve(t, &quotes{units: 10, currency: "USD"}, true))
		if r.code != exitFail || tally.New != 1 || tally.StillDifferent != 0 || tally.FullyFixed != 0 {
			t.Fatalf("tally %+v\n%s", tally, r)
		}
		c := calls[0]
		if c.Result != "new_differences" || paths(c.Fixed) != "quote.items[0].price.units quote.total.units" ||
			paths(c.New) != "quote.items[0].price.currency_code quote.total.currency_code" {
			t.Fatalf("call %+v", c)
		}
		if d := c.New[1]; d.Legacy != `"EUR"` || d.Candidate != `"USD"` {
			t.Errorf("new %+v", d)
		}
	})
	t.Run("ignored", func(t *testing.T) {
		// --ignore takes the currency out: nothing new, and a recorded
		// difference there would be "not checked", not "fixed".
		r, _, tally := replayJSON(t, reports, "--candidate", serve(t, &quotes{units: 10, currency: "USD"}, true),
			"--ignore", "quote.total.currency_code", "--ignore", "quote.items.price.currency_code")
		if r.code != exitOK || tally.FullyFixed != 1 {
			t.Fatalf("tally %+v\n%s", tally, r)
		}
	})
}

func TestReplayStatus(t *testing.T) {
	// The legacy service does not know SKU X; the buggy candidate prices it.
	legacy := &quotes{units: 10, notFound: "X"}
	reports := recordRun(t, legacy, &quotes{units: 10}, getQuote("X"))

	r, calls, tally := replayJSON(t, reports, "--candidate", serve(t, &quotes{units: 10, notFound: "X"}, true))
	if r.code != exitOK || tally.FullyFixed != 1 || calls[0].LegacyStatus != "NOT_FOUND" || calls[0].CandidateStatus != "NOT_FOUND" {
		t.Fatalf("a candidate that now answers NOT_FOUND is fixed: %+v %+v\n%s", calls, tally, r)
	}
	if got := paths(calls[0].Fixed); got != interceptor.StatusCodePath {
		t.Errorf("fixed %q, want the status", got)
	}

	// Another wrong status is the same difference, still there.
	r = runCmd(t, nil, "replay", reports, "--candidate", serve(t, &quotes{fail: codes.Internal}, true))
	if r.code != exitFail || !strings.Contains(squash(r.stdout), "still different grpc-status NOT_FOUND -> INTERNAL (was -> OK)") ||
		!strings.Contains(r.stdout, "still different (status NOT_FOUND -> INTERNAL, 0 replies)") {
		t.Fatalf("want the status still different:\n%s", r)
	}

	// The status messages are compared when asked.
	r, calls, _ = replayJSON(t, reports, "--candidate", serve(t, &quotes{notFound: "X", fail: codes.NotFound}, true), "--compare-status-message")
	if r.code != exitFail || paths(calls[0].New) != interceptor.StatusMessagePath {
		t.Fatalf("want a new difference of status message: %+v\n%s", calls, r)
	}

	// A candidate that fails as a call is an error, not a difference.
	r, calls, tally = replayJSON(t, reports, "--candidate", serve(t, &quotes{fail: codes.Unavailable}, true))
	if r.code != exitFail || tally.Errors != 1 || tally.Replayed != 0 || !strings.Contains(calls[0].Reason, "the call failed: UNAVAILABLE") {
		t.Fatalf("%+v %+v\n%s", calls, tally, r)
	}
}

func TestReplayLegacyOKCandidateFailed(t *testing.T) {
	// The interceptor keeps the legacy reply of a mismatch of statuses
	// too: a candidate that now answers as the legacy service did is
	// fixed, one that still fails is still different.
	reports := recordRun(t, &quotes{units: 10}, &quotes{fail: codes.Internal}, getQuote("A"))
	r, calls, tally := replayJSON(t, reports, "--candidate", serve(t, &quotes{units: 10}, true))
	if r.code != exitOK || tally.FullyFixed != 1 || paths(calls[0].Fixed) != interceptor.StatusCodePath {
		t.Fatalf("%+v %+v\n%s", calls, tally, r)
	}
	r, calls, tally = replayJSON(t, reports, "--candidate", serve(t, &quotes{fail: codes.Internal}, true))
	if r.code != exitFail || tally.StillDifferent != 1 || paths(calls[0].StillDifferent) != interceptor.StatusCodePath {
		t.Fatalf("%+v %+v\n%s", calls, tally, r)
	}
}

func TestReplayStreams(t *testing.T) {
	calls := func(ctx context.Context, c pb.QuoteServiceClient) {
		ls, err := c.ListQuotes(ctx, &pb.ListQuotesRequest{Skus: []string{"A", "B", "C"}})
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := ls.Recv(); err != nil {
				break
			}
		}
		cs, err := c.CollectQuotes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, sku := range []string{"A", "B"} {
			_ = cs.Send(&pb.CollectQuotesRequest{Sku: sku})
		}
		if _, err := cs.CloseAndRecv(); err != nil {
			t.Fatal(err)
		}
		ex, err := c.ExchangeQuotes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, sku := range []string{"A", "B"} {
			_ = ex.Send(&pb.ExchangeQuotesRequest{Sku: sku})
			if _, err := ex.Recv(); err != nil {
				t.Fatal(err)
			}
		}
		_ = ex.CloseSend()
		if _, err := ex.Recv(); err == nil {
			t.Fatal("the exchange goes on")
		}
	}
	reports := recordRun(t, &quotes{units: 10}, &quotes{units: 11}, calls)

	r, got, tally := replayJSON(t, reports, "--candidate", serve(t, &quotes{units: 10}, true))
	if r.code != exitOK || tally.Replayed != 3 || tally.FullyFixed != 3 {
		t.Fatalf("%+v\n%s", tally, r)
	}
	byMethod := map[string]callLine{}
	for _, c := range got {
		byMethod[strings.TrimPrefix(c.Method, "parallelrun.difftest.v1.QuoteService/")] = c
	}
	for method, want := range map[string]string{
		"ListQuotes":     "[0].quote.items[0].price.units [0].quote.total.units [1].quote.items[0].price.units [1].quote.total.units [2].quote.items[0].price.units [2].quote.total.units",
		"CollectQuotes":  "[0].quote.items[0].price.units [0].quote.items[1].price.units [0].quote.total.units",
		"ExchangeQuotes": "[0].quote.items[0].price.units [0].quote.total.units [1].quote.items[0].price.units [1].quote.total.units",
	} {
		if c := byMethod[method]; paths(c.Fixed) != want {
			t.Errorf("%s: fixed %q, want %q", method, paths(c.Fixed), want)
		}
	}

	// A candidate that answers in another order, and one more reply.
	r, got, _ = replayJSON(t, reports, "--candidate", serve(t, &quotes{units: 10, reverse: true}, true), "--method", "*/ListQuotes")
	if r.code != exitFail || len(got) != 1 || paths(got[0].New) != interceptor.OrderPath {
		t.Fatalf("want one new reply-order difference: %+v\n%s", got, r)
	}
	r, got, _ = replayJSON(t, reports, "--candidate", serve(t, &quotes{units: 10, extra: true}, true), "--method", "parallelrun.difftest.v1.QuoteService/ListQuotes")
	if r.code != exitFail || len(got) != 1 || paths(got[0].New) != "[3]" || got[0].New[0].Kind != "added" || got[0].Replies != 4 {
		t.Fatalf("want one added reply: %+v\n%s", got, r)
	}
}

func TestReplayNotReplayable(t *testing.T) {
	// Requests larger than the report's limit are left out.
	reports := recordRun(t, &quotes{units: 10}, &quotes{units: 11}, getQuote(strings.Repeat("A", 100)),
		interceptor.WithMaxRequestBytes(64))
	r, calls, tally := replayJSON(t, reports, "--candidate", serve(t, &quotes{units: 10}, true))
	if r.code != exitFail || tally.NotReplayable != 1 || calls[0].Result != "not_replayable" ||
		calls[0].Reason != "the request was left out of the report for its size" {
		t.Fatalf("%+v %+v\n%s", calls, tally, r)
	}
}

func TestReplayUnknownMethod(t *testing.T) {
	reports := recordRun(t, &quotes{units: 10}, &quotes{units: 11}, getQuote("A"))
	b, err := os.ReadFile(reports)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(b))
	var lines []string
	for _, m := range []string{"parallelrun.difftest.v1.QuoteService/NoSuchMethod", "nosuch.v1.Service/Get"} {
		lines = append(lines, strings.Replace(line, "parallelrun.difftest.v1.QuoteService/GetQuote", m, 1))
	}
	file := filepath.Join(t.TempDir(), "unknown.jsonl")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, variant := range []struct {
		name  string
		args  []string
		where string
	}{
		{"reflection", nil, "the candidate's server reflection"},
		{"proto-set", []string{"--proto-set", protoSet(t)}, "--proto-set "},
	} {
		t.Run(variant.name, func(t *testing.T) {
			r, calls, tally := replayJSON(t, append([]string{file, "--candidate", serve(t, &quotes{units: 10}, true)}, variant.args...)...)
			if r.code != exitFail || tally.Errors != 2 || len(calls) != 2 {
				t.Fatalf("%+v\n%s", tally, r)
			}
			if want := "method parallelrun.difftest.v1.QuoteService/NoSuchMethod: service parallelrun.difftest.v1.QuoteService has no method NoSuchMethod in " + variant.where; !strings.HasPrefix(calls[0].Reason, want) {
				t.Errorf("reason %q, want it to start with %q", calls[0].Reason, want)
			}
			if want := "method nosuch.v1.Service/Get: service nosuch.v1.Service not found in " + variant.where; !strings.HasPrefix(calls[1].Reason, want) {
				t.Errorf("reason %q, want it to start with %q", calls[1].Reason, want)
			}
		})
	}
}

func TestReplayProtoSet(t *testing.T) {
	reports := recordRun(t, &quotes{units: 10}, &quotes{units: 11}, getQuote("A", "B"))
	// No reflection on this candidate: the types come from the set.
	addr := serve(t, &quotes{units: 10}, false)
	r := runCmd(t, nil, "replay", "--proto-set", protoSet(t), reports, "--candidate", addr)
	if r.code != exitOK || !strings.Contains(r.stdout, "1 fully fixed") {
		t.Fatalf("%s", r)
	}
	// Without it, the missing reflection is named.
	r = runCmd(t, nil, "replay", reports, "--candidate", addr)
	if r.code != exitFail || !strings.Contains(r.stdout, "UNIMPLEMENTED") || !strings.Contains(r.stdout, "give --proto-set") {
		t.Fatalf("%s", r)
	}
}

func TestReplayRedacted(t *testing.T) {
	// customer_email is debug_redact: the reports hold it neither in the
	// differences nor in the legacy reply.
	reports := recordRun(t, &quotes{units: 10, email: "legacy@example.com"}, &quotes{units: 11, email: "candidate@example.com"}, getQuote("A"))
	b, err := os.ReadFile(reports)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "@example.com") {
		t.Fatalf("the report holds the secret:\n%s", b)
	}
	for _, asJSON := range []bool{false, true} {
		args := []string{"replay", reports, "--candidate", serve(t, &quotes{units: 10, email: "fixed@example.com"}, true)}
		if asJSON {
			args = append(args, "--json")
		}
		r := runCmd(t, nil, args...)
		if r.code != exitOK || strings.Contains(r.stdout+r.stderr, "@example.com") {
			t.Fatalf("want fixed, and no email shown:\n%s", r)
		}
		if !asJSON && !strings.Contains(squash(r.stdout), "not checked quote.customer_email a debug_redact field, cleared in the recorded replies") {
			t.Errorf("the recorded difference in a redacted field must be not checked:\n%s", r)
		}
	}
}

func TestReplayHeaders(t *testing.T) {
	reports := recordRun(t, &quotes{units: 10}, &quotes{units: 11}, getQuote("A"))
	fixed := &quotes{units: 10}
	r := runCmd(t, nil, "replay", reports, "--candidate", serve(t, fixed, true), "--header", "x-tenant=acme", "--header", interceptor.RoleKey+"=replay")
	if r.code != exitOK {
		t.Fatalf("%s", r)
	}
	md := fixed.lastMD()
	if got := md.Get("x-tenant"); len(got) != 1 || got[0] != "acme" {
		t.Errorf("x-tenant = %q", got)
	}
	if got := md.Get(interceptor.RoleKey); len(got) != 1 || got[0] != "replay" {
		t.Errorf("%s = %q, want the value given", interceptor.RoleKey, got)
	}
}

func TestReplayUsage(t *testing.T) {
	reports := recordRun(t, &quotes{units: 10}, &quotes{units: 11}, getQuote("A"))
	addr := serve(t, &quotes{units: 10}, true)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{reports}, "--candidate is required"},
		{[]string{reports, "--candidate", addr, "--concurrency", "0"}, "--concurrency 0"},
		{[]string{reports, "--candidate", addr, "--timeout", "-1s"}, "--timeout -1s"},
		{[]string{reports, "--candidate", addr, "--header", "novalue"}, `--header "novalue": want key=value`},
		{[]string{reports, "--candidate", addr, "--header", "grpc-timeout=1"}, "gRPC's own"},
		{[]string{reports, "--candidate", addr, "--method", "[x"}, `--method "[x"`},
		{[]string{reports, "--candidate", addr, "--ignore", "a..b"}, "--ignore"},
		{[]string{reports, "--candidate", addr, "--proto-set", reports}, "--proto-set"},
		{[]string{reports, "--candidate", addr, "--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
		{[]string{filepath.Join(t.TempDir(), "missing.jsonl"), "--candidate", addr}, "missing.jsonl: open"},
	} {
		r := runCmd(t, nil, append([]string{"replay"}, c.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%q: want exit 2 and %q:\n%s", c.args, c.want, r)
		}
	}
	if r := runCmd(t, nil, "replay", "-h"); r.code != exitOK || !strings.Contains(r.stdout, "Usage: parallelrun replay") {
		t.Errorf("-h: %s", r)
	}
}

func TestReplayConcurrentKeepsOrder(t *testing.T) {
	n := 40
	calls := func(ctx context.Context, c pb.QuoteServiceClient) {
		for i := range n {
			_, _ = c.GetQuote(ctx, &pb.GetQuoteRequest{CustomerId: fmt.Sprint(i), Skus: []string{fmt.Sprint("S", i)}})
		}
	}
	reports := recordRun(t, &quotes{units: 10}, &quotes{units: 11}, calls)
	r, got, tally := replayJSON(t, reports, "--candidate", serve(t, &quotes{units: 10}, true), "--concurrency", "8")
	if r.code != exitOK || tally.FullyFixed != int64(n) || len(got) != n {
		t.Fatalf("%+v\n%s", tally, r)
	}
	for i, c := range got {
		if want := fmt.Sprintf("reports.jsonl:%d", i+1); !strings.HasSuffix(c.Report, want) {
			t.Fatalf("call %d is from %s, want %s: output out of the reports' order", i, c.Report, want)
		}
	}
}

func TestReplayUnknownType(t *testing.T) {
	reports := recordRun(t, &quotes{units: 10}, &quotes{units: 11}, getQuote("A"))
	b, err := os.ReadFile(reports)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(b))
	const url = "type.googleapis.com/parallelrun.difftest.v1.GetQuoteRequest"
	if !strings.Contains(line, url) {
		t.Fatalf("the report has no request of type %s: %s", url, line)
	}
	file := writeFile(t, "types.jsonl",
		strings.Replace(line, url, "type.googleapis.com/nosuch.v1.Request", 1),
		strings.Replace(line, url, "type.googleapis.com/parallelrun.difftest.v1.Quote", 1))
	r, calls, tally := replayJSON(t, file, "--candidate", serve(t, &quotes{units: 10}, true))
	if r.code != exitFail || tally.Errors != 2 {
		t.Fatalf("%+v\n%s", tally, r)
	}
	if want := "the report holds a message of type type.googleapis.com/nosuch.v1.Request: the candidate's server reflection: not found"; !strings.HasPrefix(calls[0].Reason, want) {
		t.Errorf("reason %q, want %q...", calls[0].Reason, want)
	}
	if want := "request 0 is a parallelrun.difftest.v1.Quote; the method's is parallelrun.difftest.v1.GetQuoteRequest"; calls[1].Reason != want {
		t.Errorf("reason %q, want %q", calls[1].Reason, want)
	}
}

// The run's configuration file gives each method its rule's comparison:
// the same list key as --list-key, and the status messages compared.
func TestReplayConfig(t *testing.T) {
	reports := recordRun(t, &quotes{units: 10}, &quotes{units: 11}, getQuote("A"),
		interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/GetQuote", interceptor.MethodConfig{SampleRate: 1, Diff: []protodiff.Option{protodiff.WithListKey("quote.items", "sku")}}))
	cfg := filepath.Join(t.TempDir(), "run.json")
	if err := os.WriteFile(cfg, []byte(`{"methods": [
  {"pattern": "*", "sampleRate": 1},
  {"pattern": "/parallelrun.difftest.v1.QuoteService/*", "sampleRate": 1, "diff": {"listKeys": {"quote.items": "sku"}}}
]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	buggy := serve(t, &quotes{units: 11}, true)
	r, calls, _ := replayJSON(t, reports, "--candidate", buggy, "--config", cfg)
	if r.code != exitFail || paths(calls[0].StillDifferent) != `quote.items[sku="A"].price.units quote.total.units` || len(calls[0].New) != 0 {
		t.Fatalf("%+v\n%s", calls, r)
	}
	if err := os.WriteFile(cfg, []byte(`{"methods": [{"pattern": "*", "sampleRat": 1}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCmd(t, nil, "replay", reports, "--candidate", buggy, "--config", cfg); r.code != exitUsage || !strings.Contains(r.stderr, `run.json:1:31: unknown field "sampleRat"`) {
		t.Errorf("a bad configuration must be a usage error naming the key:\n%s", r)
	}
}

func TestReplayListKey(t *testing.T) {
	// The recorded run paired quote lines by SKU; the replay must too, or
	// a difference still there reads as one fixed and one new.
	reports := recordRun(t, &quotes{units: 10}, &quotes{units: 11}, getQuote("A"),
		interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/GetQuote", interceptor.MethodConfig{SampleRate: 1, Diff: []protodiff.Option{protodiff.WithListKey("quote.items", "sku")}}))
	buggy := serve(t, &quotes{units: 11}, true)
	r, calls, _ := replayJSON(t, reports, "--candidate", buggy, "--list-key", "quote.items=sku")
	if r.code != exitFail || paths(calls[0].StillDifferent) != `quote.items[sku="A"].price.units quote.total.units` || len(calls[0].New) != 0 {
		t.Fatalf("%+v\n%s", calls, r)
	}
	r, calls, _ = replayJSON(t, reports, "--candidate", buggy)
	if r.code != exitFail || paths(calls[0].New) != "quote.items[0].price.units" || paths(calls[0].Fixed) != `quote.items[sku="A"].price.units` {
		t.Fatalf("without --list-key: %+v\n%s", calls, r)
	}
	if r := runCmd(t, nil, "replay", reports, "--candidate", buggy, "--list-key", "quote.items"); r.code != exitUsage || !strings.Contains(r.stderr, "want path=key") {
		t.Errorf("%s", r)
	}
	// A path that fits no reply is said.
	r = runCmd(t, nil, "replay", reports, "--candidate", buggy, "--ignore", "quote.no_such_field")
	if !strings.Contains(r.stderr, `the path "quote.no_such_field" names no field of the replies of the methods replayed`) {
		t.Errorf("%s", r)
	}
}

func TestReplayWaitsForTheCandidate(t *testing.T) {
	reports := recordRun(t, &quotes{units: 10}, &quotes{units: 11}, getQuote("A"))
	// The candidate's port is held from the start (a port let go and
	// taken again could be another program's by then), but the candidate
	// starts only once the replay has tried it and found nobody.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gate := &startingListener{Listener: lis, tried: make(chan struct{}), started: make(chan struct{})}
	srv := grpc.NewServer()
	pb.RegisterQuoteServiceServer(srv, &quotes{units: 10})
	reflection.Register(srv)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(gate) }()
	defer func() { srv.Stop(); <-served }()
	done := make(chan result, 1)
	go func() { done <- runCmd(t, nil, "replay", reports, "--candidate", lis.Addr().String(), "--wait", "30s") }()
	select {
	case <-gate.tried:
		close(gate.started)
	case r := <-done:
		t.Fatalf("the replay ended before it tried the candidate: %s", r)
	}
	if r := <-done; r.code != exitOK || !strings.Contains(r.stdout, "1 fully fixed") {
		t.Fatalf("%s", r)
	}

	// Nobody there: said, then every call is an error.
	r := runCmd(t, nil, "replay", reports, "--candidate", "127.0.0.1:1", "--wait", "200ms")
	if r.code != exitFail || !strings.Contains(r.stderr, "accepted no connection within --wait 200ms") || !strings.Contains(r.stdout, "1 error") {
		t.Fatalf("%s", r)
	}
}

func TestReplayHeadersNotChecked(t *testing.T) {
	// A stream whose recorded mismatch was in its response headers: the
	// replay does not compare them, and must not call them fixed.
	reports := recordRun(t, &quotes{units: 10}, &quotes{units: 10}, func(ctx context.Context, c pb.QuoteServiceClient) {
		ls, err := c.ListQuotes(ctx, &pb.ListQuotesRequest{Skus: []string{"A"}})
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := ls.Recv(); err != nil {
				break
			}
		}
	}, interceptor.WithMethod("/parallelrun.difftest.v1.QuoteService/ListQuotes", interceptor.MethodConfig{SampleRate: 1, CompareHeader: true}))
	// The header differs only if a side sets one: rewrite the report as
	// if the candidate had.
	b, err := os.ReadFile(reports)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(b))
	if !strings.Contains(line, `"outcome":"OUTCOME_MATCH"`) {
		t.Fatalf("want a match to rewrite: %s", line)
	}
	line = strings.Replace(line, `"outcome":"OUTCOME_MATCH"`, `"outcome":"OUTCOME_MISMATCH","differences":[{"path":"grpc-header[\"x-version\"]","field":"grpc-header","kind":"DIFFERENCE_KIND_ADDED","candidate":"2"}]`, 1)
	var rep parallelrunv1.Report
	if err := protojson.Unmarshal([]byte(line), &rep); err != nil {
		t.Fatal(err)
	}
	// The interceptor keeps the legacy replies of mismatches only.
	legacy, err := anypb.New(&pb.ListQuotesResponse{Quote: &pb.Quote{QuoteId: "q", Total: &pb.Money{CurrencyCode: "EUR", Units: 10},
		Items: []*pb.Line{{Sku: "A", Quantity: 1, Price: &pb.Money{CurrencyCode: "EUR", Units: 10}}}}})
	if err != nil {
		t.Fatal(err)
	}
	rep.LegacyReplies = []*anypb.Any{legacy}
	file := writeFile(t, "headers.jsonl", marshalLine(t, &rep))
	r, calls, tally := replayJSON(t, file, "--candidate", serve(t, &quotes{units: 10}, true))
	if r.code != exitOK || tally.FullyFixed != 1 || len(calls[0].Fixed) != 0 || len(calls[0].NotChecked) != 1 ||
		calls[0].NotChecked[0].Why != "response headers are not compared by a replay" {
		t.Fatalf("%+v\n%s", calls, r)
	}
}

// startingListener is the listener of a candidate that is still starting:
// until started is closed it resets every connection, as a port nobody
// listens on refuses it, and closes tried at the first.
type startingListener struct {
	net.Listener
	tried, started chan struct{}
	once           sync.Once
}

func (l *startingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case <-l.started:
			return c, nil
		default:
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, not an orderly close
		}
		_ = c.Close()
		l.once.Do(func() { close(l.tried) })
	}
}
