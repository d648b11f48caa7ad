package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parallelrun/grpc-parallelrun/examples/pricing"
	"github.com/parallelrun/grpc-parallelrun/internal/testproc"
)

// TestJaegerEndToEnd starts a real Jaeger (the binary named by JAEGER_BIN,
// which .ci/run builds), sends the demo's traffic with its spans exported
// over OTLP, and reads the mismatches back from Jaeger's query API.
func TestJaegerEndToEnd(t *testing.T) {
	bin := os.Getenv("JAEGER_BIN")
	if bin == "" {
		t.Skip("JAEGER_BIN is not set: .ci/run builds Jaeger and sets it")
	}
	ports := testproc.FreePorts(t, 4)
	otlp, query, queryGRPC, health := ports[0], ports[1], ports[2], ports[3]
	cfg := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(jaegerConfig, otlp, query, queryGRPC, health)), 0o600); err != nil {
		t.Fatal(err)
	}
	testproc.Start(t, testproc.Process{Name: "jaeger", Bin: bin, Args: []string{"--config", cfg},
		Ready: testproc.HTTPOK("http://" + health + "/status"), ReadyTimeout: time.Minute})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	traffic := pricing.Traffic{Quotes: 300, Listings: 20, Baskets: 30, Workers: 4, Seed: 1}
	if err := run(ctx, otlp, traffic); err != nil {
		t.Fatal(err)
	}

	// Spans reach storage asynchronously: wait until every method's
	// mismatches can be found.
	api := "http://" + query
	var mismatched []span
	testproc.WaitFor(t, ctx, "mismatches of every method in Jaeger", func() bool {
		mismatched = comparisonSpans(t, api, `{"parallelrun.mismatch":"true"}`)
		methods := map[string]bool{}
		for _, s := range mismatched {
			methods[s.tag("rpc.method")] = true
		}
		return methods[pricing.QuoteMethod[1:]] && methods[pricing.ListPricesMethod[1:]] && methods[pricing.BasketMethod[1:]]
	})
	fields, noise := map[string]bool{}, map[string]bool{}
	for _, s := range mismatched {
		if s.tag("parallelrun.outcome") != "mismatch" || s.tag("parallelrun.signature") == "" {
			t.Errorf("span %s: mismatch=true but outcome %q, signature %q", s.SpanID, s.tag("parallelrun.outcome"), s.tag("parallelrun.signature"))
		}
		for _, l := range s.Logs {
			if l.field("event") == "parallelrun.difference" {
				fields[l.field("parallelrun.field")] = true
			}
		}
	}
	for _, f := range []string{"tier", "lines.discount.nanos", "grpc-message", "sku", "subtotal.nanos"} {
		if !fields[f] {
			t.Errorf("no difference event at %s; found %v", f, fields)
		}
	}

	// Calls whose only differences are noise (the quote ID, the time,
	// once noise probes have shown the legacy service disagreeing with
	// itself there) are matches, their noise in events apart.
	matched := comparisonSpans(t, api, `{"parallelrun.mismatch":"false"}`)
	if len(matched) == 0 {
		t.Fatal("no matched comparisons in Jaeger")
	}
	for _, s := range matched {
		if o := s.tag("parallelrun.outcome"); o == "mismatch" {
			t.Errorf("matched span %s: outcome %q", s.SpanID, o)
		}
		for _, l := range s.Logs {
			if e := l.field("event"); e != "parallelrun.noise" {
				t.Errorf("matched span %s has a %s event", s.SpanID, e)
			}
			noise[l.field("parallelrun.field")] = true
		}
	}
	if !noise["quote_id"] || !noise["computed_at.nanos"] {
		t.Errorf("noise events in matched spans: %v", noise)
	}
	t.Logf("%d mismatched and %d other comparison spans in Jaeger; fields %v, noise %v", len(mismatched), len(matched), fields, noise)
}

// jaegerConfig is an all-in-one Jaeger with in-memory storage, every
// endpoint on loopback.
const jaegerConfig = `
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: %[2]s
    grpc:
      endpoint: %[3]s
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  healthcheckv2:
    use_v2: true
    http:
      endpoint: %[4]s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// span is the part of a span in Jaeger's query API that the test reads.
type span struct {
	SpanID        string    `json:"spanID"`
	OperationName string    `json:"operationName"`
	Tags          []kv      `json:"tags"`
	Logs          []spanLog `json:"logs"`
}

// spanLog is a span event, as Jaeger's API shows it.
type spanLog struct {
	Fields []kv `json:"fields"`
}

func (l spanLog) field(key string) string { return find(l.Fields, key) }

type kv struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

func (s span) tag(key string) string { return find(s.Tags, key) }

func find(kvs []kv, key string) string {
	for _, t := range kvs {
		if t.Key == key {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// comparisonSpans queries Jaeger for traces with a span tagged tags and
// returns the comparison spans among them that carry the tags.
func comparisonSpans(t *testing.T, api, tags string) []span {
	t.Helper()
	q := url.Values{"service": {ServiceName}, "tags": {tags}, "limit": {"2000"}, "lookback": {"1h"}}
	resp, err := http.Get(api + "/api/traces?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("query %s: %s", tags, resp.Status)
	}
	var body struct {
		Data []struct {
			Spans []span `json:"spans"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	var want map[string]string
	if err := json.Unmarshal([]byte(tags), &want); err != nil {
		t.Fatal(err)
	}
	var out []span
	for _, tr := range body.Data {
	spans:
		for _, s := range tr.Spans {
			if !strings.HasPrefix(s.OperationName, "parallelrun ") {
				continue
			}
			for k, v := range want {
				if s.tag(k) != v {
					continue spans
				}
			}
			out = append(out, s)
		}
	}
	return out
}
