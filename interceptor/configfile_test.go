package interceptor_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	_ "google.golang.org/grpc/health/grpc_health_v1" // a unary method not declared free of side effects
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	pb "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/difftest/v1"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// config writes a configuration of one or more rules, one key a line, so
// that errors' lines are easy to tell: each rule's first line is its
// opening brace.
func config(rules ...string) string {
	return "{\n  \"methods\": [\n" + strings.Join(rules, ",\n") + "\n  ]\n}\n"
}

// Each error of a configuration file names the file, the line and the
// key path, or the line and column for syntax.
func TestConfigErrors(t *testing.T) {
	getQuoteRule := func(lines ...string) string {
		return "    {\n      \"pattern\": \"/parallelrun.difftest.v1.QuoteService/GetQuote\",\n" + strings.Join(lines, ",\n") + "\n    }"
	}
	for _, tc := range []struct {
		name, json, want string
	}{
		// Syntax and unknown keys, as protojson says them.
		{"unknown key", config(getQuoteRule(`      "sampleRat": 1`)),
			`quote.json:5:7: unknown field "sampleRat"`},
		{"trailing comma", config(getQuoteRule(`      "sampleRate": 1,`)),
			`quote.json:6:5: syntax error: unexpected token }`},
		{"wrong type", config(getQuoteRule(`      "sampleRate": "all"`)),
			`quote.json:5:21: invalid value for double field sampleRate: "all"`},
		{"bad duration", config(getQuoteRule(`      "sampleRate": 1`, `      "timeout": "3"`)),
			`quote.json:6:18: invalid google.protobuf.Duration value "3"`},
		{"empty", "", `quote.json:1:1: syntax error: unexpected token`},
		{"two values", "{}\n{}", `quote.json:2:1: syntax error: unexpected token {`},
		// Values that do not validate, by key path.
		{"sample rate", config(getQuoteRule(`      "sampleRate": 1.5`)),
			`quote.json:5: methods[0].sampleRate: 1.5 is not in (0, 1]`},
		// A key left out is found at its rule's line.
		{"sample rate unset", config(getQuoteRule(`      "sampleRate": 1`), "    {\n      \"pattern\": \"*\"\n    }"),
			`quote.json:7: methods[1].sampleRate: not set: 1 mirrors every call, 0.1 one in ten; to mirror none, set Disabled`},
		{"pattern", config("    {\n      \"pattern\": \"QuoteService\",\n      \"sampleRate\": 1\n    }"),
			`quote.json:4: methods[0].pattern: not a method pattern: want "/pkg.Service/Method", "/pkg.Service/*" or "*"`},
		{"unknown method", config("    {\n      \"pattern\": \"/parallelrun.difftest.v1.QuoteService/GetQuotes\",\n      \"sampleRate\": 1\n    }"),
			`quote.json:4: methods[0].pattern: service parallelrun.difftest.v1.QuoteService has no method GetQuotes (it has GetQuote, ListQuotes, CollectQuotes, ExchangeQuotes)`},
		{"pattern twice", config(getQuoteRule(`      "sampleRate": 1`), "    {\n      \"pattern\": \"parallelrun.difftest.v1.QuoteService/GetQuote\",\n      \"disabled\": true\n    }"),
			`quote.json:8: methods[1].pattern: pattern given twice`},
		{"ignored path without a field", config(getQuoteRule(`      "sampleRate": 1`, "      \"diff\": {\n        \"ignoredPaths\": [\n          \"quote.quote_id\",\n          \"quote.idd\"\n        ]\n      }")),
			`quote.json:9: methods[0].diff.ignoredPaths[1]: "quote.idd": parallelrun.difftest.v1.GetQuoteResponse: no field "idd" in parallelrun.difftest.v1.Quote`},
		{"ignored path for no method of the service", config("    {\n      \"pattern\": \"/parallelrun.difftest.v1.QuoteService/*\",\n      \"sampleRate\": 1,\n      \"diff\": {\"ignoredPaths\": [\"quote.nope\"]}\n    }"),
			`quote.json:6: methods[0].diff.ignoredPaths[0]: "quote.nope" fits the reply of no method of parallelrun.difftest.v1.QuoteService (parallelrun.difftest.v1.GetQuoteResponse: no field "nope" in parallelrun.difftest.v1.Quote)`},
		{"ignored path syntax", config(getQuoteRule(`      "sampleRate": 1`, "      \"diff\": {\n        \"ignoredPaths\": [\"quote..id\"]\n      }")),
			`quote.json:7: methods[0].diff.ignoredPaths[0]: protodiff: WithIgnoredPaths "quote..id": empty field name`},
		{"ignored field", config(getQuoteRule(`      "sampleRate": 1`, "      \"diff\": {\n        \"ignoredFields\": [\"parallelrun.difftest.v1.Quote.idd\"]\n      }")),
			`quote.json:7: methods[0].diff.ignoredFields[0]: "parallelrun.difftest.v1.Quote.idd": parallelrun.difftest.v1.GetQuoteResponse: no field "idd" in parallelrun.difftest.v1.Quote`},
		{"list key", config(getQuoteRule(`      "sampleRate": 1`, "      \"diff\": {\n        \"listKeys\": {\n          \"quote.items\": \"sku\",\n          \"quote.itemz\": \"sku\"\n        }\n      }")),
			`quote.json:9: methods[0].diff.listKeys["quote.itemz"]: "quote.itemz": parallelrun.difftest.v1.GetQuoteResponse: no field "itemz" in parallelrun.difftest.v1.Quote`},
		{"tolerance on a string", config(getQuoteRule(`      "sampleRate": 1`, "      \"diff\": {\n        \"floatTolerances\": [\n          {\n            \"path\": \"quote.quote_id\",\n            \"margin\": 0.01\n          }\n        ]\n      }")),
			`quote.json:9: methods[0].diff.floatTolerances[0].path: "quote.quote_id": parallelrun.difftest.v1.GetQuoteResponse: parallelrun.difftest.v1.Quote.quote_id is a string field, not a float, double or message field`},
		{"negative tolerance", config(getQuoteRule(`      "sampleRate": 1`, "      \"diff\": {\n        \"floatTolerance\": {\"fraction\": -1}\n      }")),
			`quote.json:7: methods[0].diff.floatTolerance: protodiff: WithFloatTolerance: fraction must be a finite number >= 0, not -1`},
		{"max depth", config(getQuoteRule(`      "sampleRate": 1`, "      \"diff\": {\n        \"maxDepth\": 1000000\n      }")),
			`quote.json:7: methods[0].diff.maxDepth: protodiff: WithMaxDepth: 1000000 is not between 1 and 100000`},
		{"negative timeout", config(getQuoteRule(`      "sampleRate": 1`, `      "timeout": "-1s"`)),
			`quote.json:6: methods[0].timeout: -1s is negative`},
		{"stream bound", config(getQuoteRule(`      "sampleRate": 1`, `      "maxStreamMessages": -3`)),
			`quote.json:6: methods[0].maxStreamMessages: -3 is negative`},
		{"header key", config(getQuoteRule(`      "sampleRate": 1`, "      \"ignoredHeaders\": [\n        \"x-date\",\n        \"X-Request-ID\"\n      ]")),
			`quote.json:8: methods[0].ignoredHeaders[1]: "X-Request-ID" is not a header key (lower case letters, digits, '-', '_', '.')`},
		{"probe rate", config(getQuoteRule(`      "sampleRate": 1`, "      \"noise\": {\n        \"probeRate\": 2\n      }")),
			`quote.json:7: methods[0].noise.probeRate: 2 is not in [0, 1]`},
		{"probe of a stream", config("    {\n      \"pattern\": \"/parallelrun.difftest.v1.QuoteService/ListQuotes\",\n      \"sampleRate\": 1,\n      \"noise\": {\"probeRate\": 0.1}\n    }"),
			`quote.json:6: methods[0].noise: /parallelrun.difftest.v1.QuoteService/ListQuotes is a streaming method: noise probes are made for unary methods`},
		{"probe of a write", config("    {\n      \"pattern\": \"/grpc.health.v1.Health/Check\",\n      \"sampleRate\": 1,\n      \"noise\": {\n        \"probeRate\": 0.1\n      }\n    }"),
			`quote.json:6: methods[0].noise: /grpc.health.v1.Health/Check is not declared free of side effects (idempotency_level = NO_SIDE_EFFECTS), and a noise probe calls the legacy service a second time: set AllowWrites to probe it all the same`},
		// Keys as the proto writes them are found all the same.
		{"proto names", config("    {\n      \"pattern\": \"/parallelrun.difftest.v1.QuoteService/GetQuote\",\n      \"sample_rate\": 1,\n      \"diff\": {\n        \"ignored_paths\": [\n          \"quote.idd\"\n        ]\n      }\n    }"),
			`quote.json:8: methods[0].diff.ignoredPaths[0]: "quote.idd"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := interceptor.ParseConfig("quote.json", []byte(tc.json))
			if err == nil || !strings.HasPrefix(err.Error(), "interceptor: "+tc.want) {
				t.Errorf("ParseConfig = %v, %v\nwant interceptor: %s\nin:\n%s", cfg, err, tc.want, tc.json)
			}
			var ce *interceptor.ConfigError
			if !errors.As(err, &ce) || ce.File != "quote.json" || ce.Line == 0 {
				t.Errorf("not a ConfigError with a file and a line: %#v", err)
			}
		})
	}
}

// The names of secondary connections are checked by MethodRules, which
// is given them; the error still says where the name is.
func TestConfigUnknownSecondary(t *testing.T) {
	conn := dial(t, serve(t, &quoteServer{}))
	data := config(
		"    {\n      \"pattern\": \"*\",\n      \"sampleRate\": 1\n    }",
		"    {\n      \"pattern\": \"/parallelrun.difftest.v1.QuoteService/GetQuote\",\n      \"sampleRate\": 1,\n      \"noise\": {\n        \"probeRate\": 0.1,\n        \"secondary\": \"legacy-c\"\n      }\n    }")
	cfg, err := interceptor.ParseConfig("quote.json", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	conns := map[string]grpc.ClientConnInterface{"legacy-b": conn}
	_, err = interceptor.MethodRules(cfg, conns)
	if want := `interceptor: quote.json:12: methods[1].noise.secondary: no connection named "legacy-c"; the program has legacy-b`; err == nil || err.Error() != want {
		t.Errorf("MethodRules = %v\nwant %s", err, want)
	}
	// Built in code, the configuration has no file: the path says where.
	_, err = interceptor.MethodRules(proto.Clone(cfg).(*parallelrunv1.Config), nil)
	if want := `interceptor: methods[1].noise.secondary: no connection named "legacy-c"; the program has none`; err == nil || err.Error() != want {
		t.Errorf("MethodRules = %v\nwant %s", err, want)
	}
	conns["legacy-c"] = conn
	rules, err := interceptor.MethodRules(cfg, conns)
	if err != nil || len(rules) != 2 || rules[1].Config.Noise.Secondary != conn {
		t.Errorf("MethodRules = %+v, %v", rules, err)
	}
}

// A configuration converts field for field, whichever way its keys are
// written.
func TestConfigConverts(t *testing.T) {
	for _, tc := range []struct{ name, json string }{
		{"lowerCamelCase", `{
  "disabled": true,
  "methods": [{
    "pattern": "/parallelrun.difftest.v1.QuoteService/*",
    "sampleRate": 0.25,
    "timeout": "1.5s",
    "compareStatusMessage": true,
    "maxStreamMessages": 10,
    "maxStreamBytes": 4096,
    "unorderedReplies": true,
    "compareHeader": true,
    "ignoredHeaders": ["x-date"],
    "redactedHeaders": ["x-token"],
    "diff": {"ignoredPaths": ["quote.quote_id"], "listKeys": {"quote.items": "sku"}, "maxDifferences": 5},
    "noise": {"probeRate": 0.1, "secondary": "second", "timeout": "0.2s", "allowWrites": true},
    "readiness": {"minCompared": 10}
  }, {
    "pattern": "*",
    "disabled": true
  }],
  "readiness": {"minStreakCalls": 100, "window": "3600s"}
}`},
		{"proto names", `{
  "disabled": true,
  "methods": [{
    "pattern": "/parallelrun.difftest.v1.QuoteService/*",
    "sample_rate": 0.25,
    "timeout": "1.5s",
    "compare_status_message": true,
    "max_stream_messages": 10,
    "max_stream_bytes": 4096,
    "unordered_replies": true,
    "compare_header": true,
    "ignored_headers": ["x-date"],
    "redacted_headers": ["x-token"],
    "diff": {"ignored_paths": ["quote.quote_id"], "list_keys": {"quote.items": "sku"}, "max_differences": 5},
    "noise": {"probe_rate": 0.1, "secondary": "second", "timeout": "0.2s", "allow_writes": true},
    "readiness": {"min_compared": 10}
  }, {
    "pattern": "*",
    "disabled": true
  }],
  "readiness": {"min_streak_calls": 100, "window": "3600s"}
}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := interceptor.ParseConfig("c.json", []byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if !cfg.GetDisabled() || cfg.GetReadiness().GetWindow().AsDuration() != time.Hour || cfg.GetMethods()[0].GetReadiness().GetMinCompared() != 10 {
				t.Errorf("parsed %v", cfg)
			}
			conn := dial(t, serve(t, &quoteServer{}))
			rules, err := interceptor.MethodRules(cfg, map[string]grpc.ClientConnInterface{"second": conn})
			if err != nil {
				t.Fatal(err)
			}
			if len(rules) != 2 || rules[1].Pattern != "*" || !rules[1].Config.Disabled {
				t.Fatalf("rules %+v", rules)
			}
			c := rules[0].Config
			if rules[0].Pattern != quoteService || c.SampleRate != 0.25 || c.Timeout != 1500*time.Millisecond || !c.CompareStatusMessage ||
				c.MaxStreamMessages != 10 || c.MaxStreamBytes != 4096 || !c.UnorderedReplies || !c.CompareHeader ||
				strings.Join(c.IgnoredHeaders, ",") != "x-date" || strings.Join(c.RedactedHeaders, ",") != "x-token" ||
				len(c.Diff) != 3 || c.Noise.ProbeRate != 0.1 || c.Noise.Secondary != conn || c.Noise.Timeout != 200*time.Millisecond || !c.Noise.AllowWrites {
				t.Errorf("rule %+v", rules[0])
			}
		})
	}
}

// A configuration built in code is checked the same, with key paths.
func TestMethodRulesOfAConfigInCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  *parallelrunv1.Config
		want string
	}{
		{"nil", nil, "interceptor: a nil configuration"},
		{"bad duration", &parallelrunv1.Config{Methods: []*parallelrunv1.MethodRule{{Pattern: "*", SampleRate: 1, Timeout: &durationpb.Duration{Nanos: -1, Seconds: 1}}}},
			"interceptor: methods[0].timeout: proto: duration (seconds:1 nanos:-1) has seconds and nanos with different signs"},
		{"bad sample rate", &parallelrunv1.Config{Methods: []*parallelrunv1.MethodRule{{Pattern: "*", SampleRate: 1}, {Pattern: "/a.B/*", SampleRate: -1}}},
			"interceptor: methods[1].sampleRate: -1 is not in (0, 1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := interceptor.MethodRules(tc.cfg, nil)
			// protobuf spaces its text apart at random: compare words.
			if err == nil || strings.Join(strings.Fields(err.Error()), " ") != tc.want {
				t.Errorf("MethodRules = %v\nwant %s", err, tc.want)
			}
		})
	}
}

// A file one byte larger than the bound is refused, read or parsed,
// before anything is decoded.
func TestConfigTooLarge(t *testing.T) {
	data := make([]byte, interceptor.MaxConfigBytes+1)
	copy(data, `{"methods": [`)
	for i := len(`{"methods": [`); i < len(data); i++ {
		data[i] = ' '
	}
	want := "interceptor: big.json: larger than 4194304 bytes, the most a configuration may have"
	if _, err := interceptor.ParseConfig("big.json", data); err == nil || err.Error() != want {
		t.Errorf("ParseConfig = %v\nwant %s", err, want)
	}
	path := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := interceptor.ReadConfig(path); err == nil || !strings.Contains(err.Error(), "larger than 4194304 bytes") {
		t.Errorf("ReadConfig = %v", err)
	}
	// At the bound, it is read.
	small := data[:interceptor.MaxConfigBytes]
	copy(small[len(small)-3:], "]}\n")
	if _, err := interceptor.ParseConfig("big.json", small); err != nil {
		t.Errorf("ParseConfig at the bound: %v", err)
	}
}

// Deep nesting is an error, not a crash, wherever it is.
func TestConfigDeepNesting(t *testing.T) {
	deep := strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000)
	for _, json := range []string{
		deep,
		`{"methods": ` + deep + `}`,
		`{"methods": [{"pattern": "*", "diff": {"ignoredPaths": ` + deep + `}}]}`,
		`{"methods": [{"pattern": "*", "noise": ` + deep + `}]}`,
		`{"unknown": ` + deep + `}`,
		`{"readiness": ` + strings.Repeat(`{"window": `, 10_000) + strings.Repeat("}", 10_000) + `}`,
	} {
		if _, err := interceptor.ParseConfig("deep.json", []byte(json)); err == nil || !strings.HasPrefix(err.Error(), "interceptor: deep.json:1:") {
			t.Errorf("ParseConfig of %.60s...: %v", json, err)
		}
	}
}

// ReadConfig reads a file and says which when it cannot.
func TestReadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "quote.json")
	if err := os.WriteFile(path, []byte(config("    {\n      \"pattern\": \"*\",\n      \"sampleRate\": 0\n    }")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := interceptor.ReadConfig(path); err == nil || !strings.HasPrefix(err.Error(), "interceptor: "+path+":5: methods[0].sampleRate: not set") {
		t.Errorf("ReadConfig = %v", err)
	}
	if _, err := interceptor.ReadConfig(path + ".missing"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadConfig of a missing file = %v", err)
	}
}

// ApplyConfig replaces the rules and sets the kill switch, or, when the
// configuration does not validate, changes nothing.
func TestApplyConfig(t *testing.T) {
	legacy, candidate := twoSides()
	initial, err := interceptor.ParseConfig("quote.json", []byte(`{"methods": [{"pattern": "`+quoteService+`", "sampleRate": 1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envConfig{legacyServer: legacy, candidateServer: candidate, opts: []interceptor.Option{
		interceptor.WithConfig(initial, nil),
		interceptor.WithMethod("/grpc.health.v1.Health/*", interceptor.MethodConfig{SampleRate: 1}),
	}})
	if got := e.pr.Methods(); len(got) != 2 || got[0].Pattern != "/grpc.health.v1.Health/*" || got[1].Pattern != quoteService || e.pr.Disabled() {
		t.Fatalf("Methods after New = %+v, disabled %v", got, e.pr.Disabled())
	}
	call := func() {
		t.Helper()
		if _, err := e.client.GetQuote(ctxTimeout(t), &pb.GetQuoteRequest{}); err != nil {
			t.Fatal(err)
		}
		e.waitIdle(t)
	}
	call()
	if n := e.candidate.Calls(); n != 1 {
		t.Fatalf("the candidate got %d calls", n)
	}

	// GetQuote turned off, the rest of the service still mirrored.
	off, err := interceptor.ParseConfig("quote.json", []byte(`{"methods": [{"pattern": "`+quoteService+`", "sampleRate": 1}, {"pattern": "`+getQuote+`", "disabled": true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.pr.ApplyConfig(off, nil); err != nil {
		t.Fatal(err)
	}
	call()
	if n := e.candidate.Calls(); n != 1 {
		t.Errorf("after disabling GetQuote the candidate got %d calls", n)
	}

	// A bad configuration changes nothing, the kill switch included.
	bad := &parallelrunv1.Config{Disabled: true, Methods: []*parallelrunv1.MethodRule{{Pattern: "*", SampleRate: 2}}}
	if err := e.pr.ApplyConfig(bad, nil); err == nil || err.Error() != "interceptor: ApplyConfig: methods[0].sampleRate: 2 is not in (0, 1]" {
		t.Errorf("ApplyConfig = %v", err)
	}
	if got := e.pr.Methods(); len(got) != 2 || got[1].Pattern != getQuote || e.pr.Disabled() {
		t.Errorf("Methods after a bad ApplyConfig = %+v, disabled %v", got, e.pr.Disabled())
	}

	// The kill switch, on, then off again.
	stop := proto.Clone(initial).(*parallelrunv1.Config)
	stop.Disabled = true
	if err := e.pr.ApplyConfig(stop, nil); err != nil || !e.pr.Disabled() {
		t.Fatalf("ApplyConfig = %v, disabled %v", err, e.pr.Disabled())
	}
	call()
	if n := e.candidate.Calls(); n != 1 {
		t.Errorf("disabled, the candidate got %d calls", n)
	}
	if err := e.pr.ApplyConfig(initial, nil); err != nil || e.pr.Disabled() {
		t.Fatalf("ApplyConfig = %v, disabled %v", err, e.pr.Disabled())
	}
	call()
	if n := e.candidate.Calls(); n != 2 {
		t.Errorf("enabled again, the candidate got %d calls", n)
	}
}

// New fails with a configuration's error, and starts disabled when the
// configuration says so.
func TestWithConfig(t *testing.T) {
	conn := dial(t, serve(t, &quoteServer{}))
	bad, err := interceptor.ParseConfig("quote.json", []byte("{\n\"methods\": [{\"pattern\": \"*\", \"sampleRate\": 1, \"noise\": {\"probeRate\": 1, \"secondary\": \"x\"}}]}"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := interceptor.New(conn, interceptor.WithConfig(bad, nil)); err == nil ||
		err.Error() != `interceptor: WithConfig: quote.json:2: methods[0].noise.secondary: no connection named "x"; the program has none` {
		t.Errorf("New = %v", err)
	}
	if _, err := interceptor.New(conn, interceptor.WithConfig(nil, nil)); err == nil || err.Error() != "interceptor: WithConfig: a nil configuration" {
		t.Errorf("New = %v", err)
	}
	// A pattern given by WithMethod and by the configuration is given
	// twice.
	both := &parallelrunv1.Config{Methods: []*parallelrunv1.MethodRule{{Pattern: "*", SampleRate: 1}}}
	if _, err := interceptor.New(conn, interceptor.WithConfig(both, nil), interceptor.WithMethod("*", interceptor.MethodConfig{SampleRate: 1})); err == nil ||
		!strings.Contains(err.Error(), "pattern given twice") {
		t.Errorf("New = %v", err)
	}
	pr, err := interceptor.New(conn, interceptor.WithConfig(&parallelrunv1.Config{Disabled: true}, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close(ctxTimeout(t))
	if !pr.Disabled() {
		t.Error("a disabled configuration did not set the kill switch")
	}
}
