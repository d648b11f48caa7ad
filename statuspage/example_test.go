package statuspage_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/statuspage"
)

// exampleStatus stands for where a status comes from: a live parallel run
// or the reports it wrote.
func exampleStatus() *parallelrunv1.RunStatus {
	return &parallelrunv1.RunStatus{
		Time: timestamppb.New(time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)),
		Methods: []*parallelrunv1.MethodStatus{{
			Method:    "/pricing.v1.PricingService/GetQuote",
			Outcomes:  &parallelrunv1.OutcomeCounts{Match: 3120},
			Readiness: &parallelrunv1.Readiness{Verdict: parallelrunv1.Verdict_VERDICT_NOT_ENOUGH_DATA, Reasons: []string{"3,120 of 10,000 calls compared"}},
		}},
		Readiness: &parallelrunv1.Readiness{Verdict: parallelrunv1.Verdict_VERDICT_NOT_ENOUGH_DATA},
	}
}

// Mount the page under a path of an existing server, beside its other
// handlers: the page links to its JSON relatively, so any prefix works.
func ExampleNew() {
	page, err := statuspage.New(exampleStatus,
		statuspage.WithTitle("Pricing v2, staging"),
		// Trace IDs link to Jaeger's UI.
		statuspage.WithTraceURL("http://localhost:16686/trace/{trace_id}"),
	)
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/parallelrun/", http.StripPrefix("/parallelrun", page))
	// Open http://localhost:8080/parallelrun/, or
	// curl localhost:8080/parallelrun/status.json | jq .readiness
	log.Fatal(http.ListenAndServe("localhost:8080", nil))
}

// The same status for a machine: status.json (or the page's address with
// ?format=json, or Accept: application/json) is the RunStatus message as
// protojson, with the field names of the .proto file, as the JSONL sink
// writes reports.
func Example_json() {
	page, err := statuspage.New(exampleStatus)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/parallelrun/", http.StripPrefix("/parallelrun", page))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/parallelrun/status.json")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	st := &parallelrunv1.RunStatus{}
	if err := protojson.Unmarshal(body, st); err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Header.Get("Content-Type"))
	for _, m := range st.GetMethods() {
		fmt.Println(m.GetMethod(), m.GetReadiness().GetVerdict(), strings.Join(m.GetReadiness().GetReasons(), "; "))
	}
	// Output:
	// application/json
	// /pricing.v1.PricingService/GetQuote VERDICT_NOT_ENOUGH_DATA 3,120 of 10,000 calls compared
}
