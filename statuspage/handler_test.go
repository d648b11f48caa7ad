package statuspage_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/statuspage"
)

const traceURL = "http://127.0.0.1:16686/trace/{trace_id}"

func newHandler(t *testing.T, st *parallelrunv1.RunStatus, opts ...statuspage.Option) *statuspage.Handler {
	t.Helper()
	h, err := statuspage.New(func() *parallelrunv1.RunStatus { return st }, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// serve answers one request, as a server would.
func serve(h http.Handler, method, target string, header ...string) *http.Response {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// getPage serves GET / and parses the page.
func getPage(t *testing.T, h http.Handler) *html.Node {
	t.Helper()
	resp := serve(h, http.MethodGet, "/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("GET /: Content-Type %q", ct)
	}
	return parse(t, body(t, resp))
}

func TestPageSummary(t *testing.T) {
	st := sampleStatus()
	doc := getPage(t, newHandler(t, st))
	checkInert(t, doc)

	if got := textOf(one(t, doc, "title", tag("title"))); got != "Parallel run: not ready" {
		t.Errorf("title %q", got)
	}
	overall := one(t, doc, "overall verdict", id("verdict"))
	if got := textOf(one(t, overall, "verdict badge", class("big"))); got != "not ready" {
		t.Errorf("overall verdict %q, want not ready", got)
	}
	if got := textOf(one(t, overall, "tally", class("tally"))); got != "3 methods: 1 not ready, 1 not enough data, 1 ready" {
		t.Errorf("tally %q", got)
	}
	var reasons []string
	for _, li := range all(one(t, overall, "reasons", class("reasons")), tag("li")) {
		reasons = append(reasons, textOf(li))
	}
	if !equal(reasons, st.Readiness.Reasons) {
		t.Errorf("reasons %q, want %q", reasons, st.Readiness.Reasons)
	}
	if got := textOf(one(t, overall, "policy", class("policy"))); !strings.Contains(got, "max candidate error rate 1%") || !strings.Contains(got, "max p99 ratio 1.5×") {
		t.Errorf("policy %q", got)
	}
	if n := len(all(doc, class("kill"))); n != 0 {
		t.Errorf("%d kill switch banners for a run that mirrors", n)
	}
	if got := textOf(one(t, doc, "header", tag("header"))); !strings.Contains(got, "status at 2026-03-14 15:09:26Z") || !strings.Contains(got, "(6h30m of reports)") {
		t.Errorf("header %q", got)
	}
}

func TestPageMethodRows(t *testing.T) {
	st := sampleStatus()
	doc := getPage(t, newHandler(t, st, statuspage.WithTraceURL(traceURL)))
	rows := all(one(t, doc, "methods table", class("methods")), tag("tr"))
	header := cells(rows[0])
	wantHeader := []string{"method", "verdict", "compared", "mismatch rate", "candidate error rate", "streak", "last mismatch", "legacy p50 / p99", "candidate p50 / p99"}
	if !equal(header, wantHeader) {
		t.Errorf("header %q, want %q", header, wantHeader)
	}
	want := [][]string{
		{"/pricing.v1.PricingService/GetQuote", "not ready", "48,522 9,911 in window", "0.41% 41 of 9,911", "0.02% 2 of 9,913", "57 calls 4m12s",
			"4m12s ago quote.total.nanos 4bf92f35…", "12.3ms / 48ms 9,913 calls", "9.8ms / 81ms 9,913 calls"},
		{"/pricing.v1.PricingService/ListPrices", "ready", "120,400 20,110 in window", "0% 0 of 20,110", "0% 0 of 20,110", "120,400 calls 6h30m",
			"none", "3ms / 11ms 20,110 calls", "2.5ms / 9ms 20,110 calls"},
		{"/pricing.v1.PricingService/WatchPrices", "not enough data", "212 212 in window", "0% 0 of 212", "0% 0 of 212", "212 calls 50m",
			"none", "2s / 5s 212 calls", "2s / 5.2s 212 calls"},
	}
	if len(rows)-1 != len(want) {
		t.Fatalf("%d method rows, want %d", len(rows)-1, len(want))
	}
	for i, row := range rows[1:] {
		if got := cells(row); !equal(got, want[i]) {
			t.Errorf("row %d:\n got %q\nwant %q", i, got, want[i])
		}
	}
	// What fails the policy stands out: GetQuote's mismatch rate is above
	// 0, and its candidate's p99 is 81/48 = 1.69 times the legacy's,
	// above 1.5.
	bad := all(rows[1], class("bad"))
	if len(bad) != 2 || !strings.HasPrefix(textOf(bad[0]), "0.41%") || !strings.HasPrefix(textOf(bad[1]), "9.8ms / 81ms") {
		t.Errorf("cells marked bad in row 0: %d", len(bad))
	}
	if n := len(all(rows[2], class("bad"))) + len(all(rows[3], class("bad"))); n != 0 {
		t.Errorf("%d cells marked bad in the rows within the policy", n)
	}
	// Each row leads to the method's details.
	for i, row := range rows[1:] {
		a := one(t, all(row, tag("td"))[0], "method link", tag("a"))
		detail := one(t, doc, "method details", id(strings.TrimPrefix(attr(a, "href"), "#")))
		if got := textOf(one(t, detail, "heading", tag("h3"))); !strings.HasSuffix(got, st.Methods[i].Method) {
			t.Errorf("details of row %d: %q", i, got)
		}
	}
}

func TestPageMethodDetails(t *testing.T) {
	st := sampleStatus()
	doc := getPage(t, newHandler(t, st, statuspage.WithTraceURL(traceURL)))
	details := all(doc, class("detail"))
	if len(details) != 3 {
		t.Fatalf("%d method sections, want 3", len(details))
	}
	quote := details[0]
	var reasons []string
	for _, li := range all(quote, tag("li")) {
		reasons = append(reasons, textOf(li))
	}
	if !equal(reasons, st.Methods[0].Readiness.Reasons) {
		t.Errorf("reasons %q", reasons)
	}
	outcomes := all(one(t, quote, "outcomes", class("outcomes")), tag("tr"))
	for i, want := range [][]string{
		{"", "match", "mismatch", "candidate error", "legacy error", "caller canceled", "abandoned", "dropped", "internal error"},
		{"all", "48,210", "312", "14", "0", "20", "0", "3", "0"},
		{"window", "9,870", "41", "2", "0", "0", "0", "0", "0"},
	} {
		if got := cells(outcomes[i]); !equal(got, want) {
			t.Errorf("outcomes row %d: %q, want %q", i, got, want)
		}
	}

	tables := all(quote, class("fields"))
	if len(tables) != 2 {
		t.Fatalf("%d field tables, want 2 (top fields, noise)", len(tables))
	}
	top, noise := all(tables[0], tag("tr"))[1:], all(tables[1], tag("tr"))[1:]
	for i, want := range [][]string{
		{"quote.total.nanos", "298", "changed quote.total.nanos", "250000000", "240000000", "4m ago", "4bf92f35…"},
		{"quote.items.discount", "14", `added quote.items[sku="B2"].discount`, "–", "{percent:5}", "2h ago", "0af76519…"},
	} {
		if got := cells(top[i]); !equal(got, want) {
			t.Errorf("top field %d:\n got %q\nwant %q", i, got, want)
		}
	}
	if got, want := cells(noise[0]), []string{"quote.quote_id", "9,911", "changed quote.quote_id", `"q-81723"`, `"q-99120"`, "1s ago", "7d1f2c3b…"}; !equal(got, want) {
		t.Errorf("noise field:\n got %q\nwant %q", got, want)
	}
	// A time says how long ago in words, and when in its title.
	if got := attr(one(t, top[0], "last seen", tag("time")), "title"); got != "2026-03-14 15:05:26Z" {
		t.Errorf("last seen title %q", got)
	}

	sigs := all(one(t, quote, "signatures", class("signatures")), tag("tr"))[1:]
	for i, want := range [][]string{
		{"9f86d081884c7d65", "298", "quote.total.nanos:changed", "–", "3h ago", "4m ago", "4bf92f35… 0af76519… 7d1f2c3b…"},
		{"60303ae22b998861", "14", "grpc-status:changed", "OK → INTERNAL", "5h ago", "2h ago", "7d1f2c3b…"},
	} {
		if got := cells(sigs[i]); !equal(got, want) {
			t.Errorf("signature %d:\n got %q\nwant %q", i, got, want)
		}
	}

	// A method with nothing to show says so.
	if got := textOf(details[1]); !strings.Contains(got, "No field has differed.") || !strings.Contains(got, "No mismatch.") || !strings.Contains(got, "No noise found.") {
		t.Errorf("a method without mismatches: %q", got)
	}
}

func TestPageManyTraces(t *testing.T) {
	st := sampleStatus()
	var ids []string
	for i := range 8 {
		ids = append(ids, strings.Repeat("0", 31)+string(rune('1'+i)))
	}
	st.Methods[0].TopSignatures[0].TraceIds = ids
	doc := getPage(t, newHandler(t, st, statuspage.WithTraceURL(traceURL)))
	row := all(one(t, doc, "signatures", class("signatures")), tag("tr"))[1]
	if n := len(all(row, tag("a"))); n != statuspage.MaxTraceLinks {
		t.Errorf("%d trace links, want %d", n, statuspage.MaxTraceLinks)
	}
	if got := cells(row)[6]; !strings.HasSuffix(got, "and 3 more") {
		t.Errorf("traces cell %q", got)
	}
}

func TestVerdicts(t *testing.T) {
	for _, tc := range []struct {
		verdict      parallelrunv1.Verdict
		label, class string
	}{
		{parallelrunv1.Verdict_VERDICT_READY, "ready", "ready"},
		{parallelrunv1.Verdict_VERDICT_NOT_READY, "not ready", "not-ready"},
		{parallelrunv1.Verdict_VERDICT_NOT_ENOUGH_DATA, "not enough data", "no-data"},
		{parallelrunv1.Verdict_VERDICT_UNSPECIFIED, "no verdict", "unknown"},
		{parallelrunv1.Verdict(42), "unknown verdict 42", "unknown"},
	} {
		t.Run(tc.label, func(t *testing.T) {
			st := &parallelrunv1.RunStatus{
				Readiness: &parallelrunv1.Readiness{Verdict: tc.verdict},
				Methods: []*parallelrunv1.MethodStatus{{
					Method:    "/a.B/C",
					Readiness: &parallelrunv1.Readiness{Verdict: tc.verdict},
				}},
			}
			doc := getPage(t, newHandler(t, st))
			overall := one(t, doc, "overall verdict", id("verdict"))
			badge := one(t, overall, "verdict badge", class("big"))
			if got := textOf(badge); got != tc.label {
				t.Errorf("overall %q, want %q", got, tc.label)
			}
			if !class(tc.class)(badge) || !class(tc.class)(overall) {
				t.Errorf("overall verdict classes %q and %q, want %q", attr(overall, "class"), attr(badge, "class"), tc.class)
			}
			row := all(one(t, doc, "methods table", class("methods")), tag("tr"))[1]
			if got := cells(row)[1]; got != tc.label {
				t.Errorf("method verdict %q, want %q", got, tc.label)
			}
		})
	}
}

func TestKillSwitch(t *testing.T) {
	st := sampleStatus()
	st.MirroringDisabled = true
	doc := getPage(t, newHandler(t, st))
	kill := one(t, doc, "kill switch banner", class("kill"))
	if got := textOf(kill); !strings.HasPrefix(got, "Mirroring stopped (kill switch)") {
		t.Errorf("banner %q", got)
	}
	if attr(kill, "role") != "alert" {
		t.Errorf("banner role %q, want alert", attr(kill, "role"))
	}
	// Prominent: before the verdict.
	var order []string
	for _, n := range all(doc, func(n *html.Node) bool { return class("kill")(n) || id("verdict")(n) }) {
		order = append(order, attr(n, "class"))
	}
	if len(order) != 2 || order[0] != "kill" {
		t.Errorf("order %q, want the banner first", order)
	}
}

func TestEmptyStatus(t *testing.T) {
	doc := getPage(t, newHandler(t, &parallelrunv1.RunStatus{}))
	if got := textOf(one(t, doc, "main", tag("main"))); !strings.Contains(got, "no verdict") || !strings.Contains(got, "No method has been compared yet.") {
		t.Errorf("page of an empty status: %q", got)
	}
	if got := textOf(one(t, doc, "header", tag("header"))); !strings.Contains(got, "status at an unknown time") {
		t.Errorf("header %q", got)
	}
}

func TestTraceLinks(t *testing.T) {
	hostile := []string{
		"4BF92F3577B34DA6A3CE929D0E0E4736",       // upper case
		"4bf92f3577b34da6a3ce929d0e0e473",        // 31 digits
		"00000000000000000000000000000000",       // the invalid ID
		"javascript:alert(1)//00000000000000",    // a script URL
		`4bf92f3577b34da6"><a href=//evil>x</a>`, // markup
		"4bf92f3577b34da6a3ce929d0e0e47366",      // 33 digits
		"4bf92f3577b34da6a3ce929d0e0e47g6",       // not hex
		"4bf92f3577b34da6a3ce929d0e0e4７36",       // a full-width digit
		"x/../../admin?4bf92f3577b34da6a3ce92",   // a path
	}
	st := sampleStatus()
	q := st.Methods[0]
	q.TopSignatures[1].TraceIds = hostile[:5]
	q.TopFields[1].TraceId = hostile[5]
	q.NoiseFields[0].TraceId = hostile[6]
	st.Methods[1].Streak.LastMismatchTraceId = hostile[7]
	st.Methods[2].Streak.LastMismatchTraceId = hostile[8]

	// shown returns the trace IDs shown as text, and the links.
	shown := func(doc *html.Node) (texts, links map[string]bool) {
		texts, links = map[string]bool{}, map[string]bool{}
		for _, n := range all(doc, class("trace")) {
			switch n.Data {
			case "code":
				texts[textOf(n)] = true
			case "a":
				links[attr(n, "href")] = true
				if attr(n, "rel") != "noreferrer" {
					t.Errorf("link %q has rel %q", attr(n, "href"), attr(n, "rel"))
				}
			default:
				t.Errorf("a trace in <%s>", n.Data)
			}
		}
		return texts, links
	}

	t.Run("without a trace URL", func(t *testing.T) {
		doc := getPage(t, newHandler(t, st))
		checkInert(t, doc)
		texts, links := shown(doc)
		if len(links) != 0 {
			t.Errorf("links %v without a trace URL", links)
		}
		// Valid IDs are shown in full, to search for.
		for _, id := range append([]string{traceA, traceB, traceC}, hostile...) {
			if !texts[id] {
				t.Errorf("trace ID %q not shown", id)
			}
		}
	})

	t.Run("with a trace URL", func(t *testing.T) {
		doc := getPage(t, newHandler(t, st, statuspage.WithTraceURL(traceURL)))
		checkInert(t, doc)
		texts, links := shown(doc)
		for _, id := range []string{traceA, traceB, traceC} {
			if href := "http://127.0.0.1:16686/trace/" + id; !links[href] {
				t.Errorf("no link %s among %v", href, links)
			}
		}
		if len(links) != 3 {
			t.Errorf("links %v, want those of the 3 valid IDs", links)
		}
		for _, id := range hostile {
			if !texts[id] {
				t.Errorf("hostile trace ID %q not shown as text", id)
			}
		}
		// A link shows the ID's start, and the whole ID in its title.
		row := all(one(t, doc, "methods table", class("methods")), tag("tr"))[1]
		a := one(t, row, "trace link", tag("a"), class("trace"))
		if textOf(a) != traceA[:8]+"…" || attr(a, "title") != "trace "+traceA {
			t.Errorf("link shown as %q, title %q", textOf(a), attr(a, "title"))
		}
	})
}

func TestHostileValues(t *testing.T) {
	st := hostileStatus()
	resp := serve(newHandler(t, st, statuspage.WithTraceURL(traceURL)), http.MethodGet, "/")
	page := body(t, resp)
	for _, raw := range []string{"<img", "<script"} {
		if strings.Contains(page, raw) {
			t.Errorf("the page holds %q unescaped", raw)
		}
	}
	doc := parse(t, page)
	checkInert(t, doc)
	text := textOf(doc)
	for _, v := range []string{hostileImg, hostileScript, "javascript:alert(3)", `"><script>alert(4)</script>`} {
		if !strings.Contains(text, v) {
			t.Errorf("the page does not show %q as text", v)
		}
	}
	// In attributes too: a cut value is whole in its title.
	st = sampleStatus()
	long := hostileScript + strings.Repeat("x", 200) + hostileImg
	st.Methods[0].TopFields[0].Example.Legacy = long
	doc = getPage(t, newHandler(t, st))
	checkInert(t, doc)
	var found bool
	for _, n := range all(doc, class("cut")) {
		if attr(n, "title") == long {
			found = true
		}
	}
	if !found {
		t.Error("no element with the long hostile value as its title")
	}
}

func TestLongValuesCut(t *testing.T) {
	st := sampleStatus()
	long := strings.Repeat("é", statuspage.MaxShown+1)
	exact := strings.Repeat("a", statuspage.MaxShown)
	st.Methods[0].TopFields[0].Example.Legacy = long
	st.Methods[0].TopFields[0].Example.Candidate = exact
	st.Readiness.Reasons = []string{long}
	doc := getPage(t, newHandler(t, st))
	cut := all(doc, class("cut"))
	if len(cut) != 2 {
		t.Fatalf("%d cut values, want 2", len(cut))
	}
	for _, n := range cut {
		if got, want := textOf(n), strings.Repeat("é", statuspage.MaxShown)+"…"; got != want {
			t.Errorf("cut to %q, want %q", got, want)
		}
		if attr(n, "title") != long {
			t.Errorf("title %q, want the whole value", attr(n, "title"))
		}
	}
	row := all(all(doc, class("fields"))[0], tag("tr"))[1]
	if got := cells(row)[4]; got != exact {
		t.Errorf("a value of %d characters shown as %q", statuspage.MaxShown, got)
	}
}

func TestInvalidUTF8(t *testing.T) {
	st := sampleStatus()
	st.Methods[0].TopFields[0].Example.Legacy = "ab\xff\xfecd"
	doc := getPage(t, newHandler(t, st))
	row := all(all(doc, class("fields"))[0], tag("tr"))[1]
	if got := cells(row)[3]; got != "ab\uFFFDcd" {
		t.Errorf("invalid UTF-8 shown as %q", got)
	}
}

func TestJSON(t *testing.T) {
	st := hostileStatus()
	h := newHandler(t, st)
	for _, tc := range []struct {
		name, target string
		header       []string
	}{
		{"format", "/?format=json", nil},
		{"accept", "/", []string{"Accept", "application/json"}},
		{"accept with q", "/", []string{"Accept", "text/html;q=0.5, application/json;q=0.9"}},
		{"status.json", "/status.json", nil},
		{"status.json with format", "/status.json?format=json", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := serve(h, http.MethodGet, tc.target, tc.header...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s", resp.Status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			b := body(t, resp)
			got := &parallelrunv1.RunStatus{}
			if err := protojson.Unmarshal([]byte(b), got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, st) {
				t.Errorf("JSON round trip changed the status:\n%s", b)
			}
			// The field names of the .proto file, as the JSONL sink
			// writes them.
			if !strings.Contains(b, `"mismatch_rate"`) || strings.Contains(b, `"mismatchRate"`) {
				t.Errorf("JSON field names are not those of the proto: %.200s", b)
			}
		})
	}
	// A browser's Accept gets the page.
	browser := "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	for _, accept := range []string{browser, "*/*", "application/json;q=0.5, text/html", "application/json;q=0", ""} {
		resp := serve(h, http.MethodGet, "/", "Accept", accept)
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("Accept %q: Content-Type %q, want the page", accept, ct)
		}
		if v := resp.Header.Get("Vary"); v != "Accept" {
			t.Errorf("Vary %q", v)
		}
	}
	if ct := serve(h, http.MethodGet, "/?format=html", "Accept", "application/json").Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("format=html: Content-Type %q", ct)
	}
}

func TestBadFormat(t *testing.T) {
	h := newHandler(t, sampleStatus())
	for _, target := range []string{"/?format=xml", "/status.json?format=html"} {
		resp := serve(h, http.MethodGet, target)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %s, want 400", target, resp.Status)
		}
		if b := body(t, resp); !strings.Contains(b, "format=") {
			t.Errorf("%s: %q does not name the parameter", target, b)
		}
	}
}

func TestHead(t *testing.T) {
	h := newHandler(t, sampleStatus())
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, path := range []string{"/", "/status.json"} {
		get, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		full := body(t, get)
		get.Body.Close()
		head, err := http.Head(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		if b := body(t, head); head.StatusCode != http.StatusOK || b != "" {
			t.Errorf("HEAD %s: %s, %d bytes", path, head.Status, len(b))
		}
		head.Body.Close()
		if head.ContentLength != int64(len(full)) {
			t.Errorf("HEAD %s: Content-Length %d, GET sent %d bytes", path, head.ContentLength, len(full))
		}
		if head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Errorf("HEAD %s: Content-Type %q, GET %q", path, head.Header.Get("Content-Type"), get.Header.Get("Content-Type"))
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	h := newHandler(t, sampleStatus())
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, "TRACE"} {
		for _, path := range []string{"/", "/status.json"} {
			resp := serve(h, method, path)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %s, want 405", method, path, resp.Status)
			}
			if a := resp.Header.Get("Allow"); a != "GET, HEAD" {
				t.Errorf("%s %s: Allow %q", method, path, a)
			}
		}
	}
}

func TestNotFound(t *testing.T) {
	h := newHandler(t, sampleStatus())
	for _, path := range []string{"/index.html", "/status.json/", "/status.JSON", "/x/", "/favicon.ico", "//status.json"} {
		if resp := serve(h, http.MethodGet, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", path, resp.Status)
		}
	}
}

// Every answer, errors included, carries the headers that keep a browser
// from running, framing or caching it.
func TestSecurityHeaders(t *testing.T) {
	calls := 0
	h, err := statuspage.New(func() *parallelrunv1.RunStatus {
		calls++
		if calls%2 == 0 {
			return nil
		}
		return sampleStatus()
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ method, target string }{
		{"GET", "/"}, {"GET", "/"}, {"GET", "/status.json"}, {"POST", "/"}, {"GET", "/nope"}, {"GET", "/?format=x"},
	} {
		resp := serve(h, tc.method, tc.target)
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.HasPrefix(csp, "default-src 'none'; style-src 'sha256-") || strings.Contains(csp, "unsafe") || strings.Contains(csp, "script-src") {
			t.Errorf("%s %s (%s): CSP %q", tc.method, tc.target, resp.Status, csp)
		}
		if v := resp.Header.Get("X-Content-Type-Options"); v != "nosniff" {
			t.Errorf("%s %s (%s): X-Content-Type-Options %q", tc.method, tc.target, resp.Status, v)
		}
		if v := resp.Header.Get("Cache-Control"); v != "no-store" {
			t.Errorf("%s %s (%s): Cache-Control %q", tc.method, tc.target, resp.Status, v)
		}
	}
}

// The policy allows the page's own style sheet by its hash, and nothing
// else: the hash must be that of the style the page holds.
func TestCSPAllowsTheStyle(t *testing.T) {
	resp := serve(newHandler(t, sampleStatus()), http.MethodGet, "/")
	doc := parse(t, body(t, resp))
	style := one(t, doc, "style sheet", tag("style"))
	sum := sha256.Sum256([]byte(style.FirstChild.Data))
	want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, want) {
		t.Errorf("CSP %q does not allow the page's style (%s)", csp, want)
	}
	for _, n := range all(doc, func(*html.Node) bool { return true }) {
		if attr(n, "style") != "" {
			t.Errorf("<%s> has a style attribute, which the policy blocks", n.Data)
		}
	}
}

func TestStatusFailure(t *testing.T) {
	var mu sync.Mutex
	var handled []error
	onError := statuspage.WithErrorHandler(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		handled = append(handled, err)
	})
	for _, tc := range []struct {
		name    string
		status  func() *parallelrunv1.RunStatus
		body    string
		handled string
	}{
		{"nil", func() *parallelrunv1.RunStatus { return nil }, "statuspage: no status available\n", ""},
		{"panic", func() *parallelrunv1.RunStatus { panic("secret <b>value</b>") }, "statuspage: the status function failed\n", "statuspage: the status function panicked: secret <b>value</b>"},
		{"panic nil", func() *parallelrunv1.RunStatus { panic(errors.New("boom")) }, "statuspage: the status function failed\n", "statuspage: the status function panicked: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			handled = nil
			h, err := statuspage.New(tc.status, onError)
			if err != nil {
				t.Fatal(err)
			}
			// Through a real server: a panic that escaped would reach
			// net/http, which would drop the connection.
			srv := httptest.NewServer(h)
			defer srv.Close()
			for _, path := range []string{"/", "/status.json"} {
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				b := body(t, resp)
				resp.Body.Close()
				if resp.StatusCode != http.StatusInternalServerError || b != tc.body {
					t.Errorf("GET %s: %s %q, want 500 %q", path, resp.Status, b, tc.body)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
					t.Errorf("GET %s: Content-Type %q", path, ct)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.handled == "" && len(handled) != 0 {
				t.Errorf("errors handled: %v", handled)
			}
			if tc.handled != "" && (len(handled) != 2 || handled[0].Error() != tc.handled) {
				t.Errorf("errors handled: %v, want %q twice", handled, tc.handled)
			}
		})
	}
}

// A status that protojson cannot write (a string that is not UTF-8) is a
// 500 for the JSON, and the page still shows it.
func TestUnwritableJSON(t *testing.T) {
	st := sampleStatus()
	st.Methods[0].Method = "/a.B/\xff"
	var handled error
	h := newHandler(t, st, statuspage.WithErrorHandler(func(err error) { handled = err }))
	resp := serve(h, http.MethodGet, "/status.json")
	if b := body(t, resp); resp.StatusCode != http.StatusInternalServerError || b != "statuspage: the status could not be written\n" {
		t.Errorf("%s %q", resp.Status, b)
	}
	if handled == nil || !strings.HasPrefix(handled.Error(), "statuspage: ") {
		t.Errorf("error handled: %v", handled)
	}
	if resp := serve(h, http.MethodGet, "/"); resp.StatusCode != http.StatusOK {
		t.Errorf("page: %s", resp.Status)
	}
}

// A panicking error handler is no more fatal than a panicking status.
func TestErrorHandlerPanics(t *testing.T) {
	h, err := statuspage.New(func() *parallelrunv1.RunStatus { panic("status") },
		statuspage.WithErrorHandler(func(error) { panic("handler") }))
	if err != nil {
		t.Fatal(err)
	}
	if resp := serve(h, http.MethodGet, "/"); resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("%s", resp.Status)
	}
}

func TestRefresh(t *testing.T) {
	for _, tc := range []struct {
		opts []statuspage.Option
		want string
	}{
		{nil, "10"},
		{[]statuspage.Option{statuspage.WithRefresh(0)}, ""},
		{[]statuspage.Option{statuspage.WithRefresh(time.Minute)}, "60"},
		{[]statuspage.Option{statuspage.WithRefresh(1500 * time.Millisecond)}, "2"},
		{[]statuspage.Option{statuspage.WithRefresh(time.Nanosecond)}, "1"},
	} {
		doc := getPage(t, newHandler(t, sampleStatus(), tc.opts...))
		metas := all(doc, func(n *html.Node) bool { return n.Data == "meta" && attr(n, "http-equiv") == "refresh" })
		switch {
		case tc.want == "" && len(metas) != 0:
			t.Errorf("refresh %q, want none", attr(metas[0], "content"))
		case tc.want != "" && (len(metas) != 1 || attr(metas[0], "content") != tc.want):
			t.Errorf("%d refreshes, want one of %q", len(metas), tc.want)
		}
	}
}

func TestTitle(t *testing.T) {
	doc := getPage(t, newHandler(t, sampleStatus(), statuspage.WithTitle("Pricing v2 <staging>")))
	if got := textOf(one(t, doc, "title", tag("title"))); got != "Pricing v2 <staging>: not ready" {
		t.Errorf("title %q", got)
	}
	if got := textOf(one(t, doc, "heading", tag("h1"))); got != "Pricing v2 <staging>" {
		t.Errorf("heading %q", got)
	}
}

func TestOptionErrors(t *testing.T) {
	status := func() *parallelrunv1.RunStatus { return sampleStatus() }
	for _, tc := range []struct {
		name   string
		status func() *parallelrunv1.RunStatus
		opt    statuspage.Option
		want   []string
	}{
		{"no status", nil, nil, []string{"statuspage: New", "status function is nil"}},
		{"no placeholder", status, statuspage.WithTraceURL("http://localhost:16686/trace/"), []string{"statuspage: WithTraceURL", "{trace_id}"}},
		{"javascript", status, statuspage.WithTraceURL("javascript:alert('{trace_id}')"), []string{"statuspage: WithTraceURL", `scheme "javascript"`}},
		{"data", status, statuspage.WithTraceURL("data:text/html,{trace_id}"), []string{"statuspage: WithTraceURL", `scheme "data"`}},
		{"ftp", status, statuspage.WithTraceURL("ftp://host/{trace_id}"), []string{"statuspage: WithTraceURL", `scheme "ftp"`}},
		{"relative", status, statuspage.WithTraceURL("/trace/{trace_id}"), []string{"statuspage: WithTraceURL", `scheme ""`}},
		{"no host", status, statuspage.WithTraceURL("http:///trace/{trace_id}"), []string{"statuspage: WithTraceURL", "no host"}},
		{"bad URL", status, statuspage.WithTraceURL("http://[::1/{trace_id}"), []string{"statuspage: WithTraceURL"}},
		{"empty title", status, statuspage.WithTitle(" "), []string{"statuspage: WithTitle", "empty"}},
		{"negative refresh", status, statuspage.WithRefresh(-time.Second), []string{"statuspage: WithRefresh(-1s)", "negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := statuspage.New(tc.status, tc.opt)
			if err == nil {
				t.Fatalf("no error, handler %v", h)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	for _, ok := range []string{traceURL, "https://grafana.example/explore?trace={trace_id}&x=1", "HTTPS://jaeger:16686/trace/{trace_id}"} {
		if _, err := statuspage.New(status, statuspage.WithTraceURL(ok)); err != nil {
			t.Errorf("WithTraceURL(%q): %v", ok, err)
		}
	}
}

// Mounted under a prefix, the page's links lead to the handler's own
// JSON.
func TestMounted(t *testing.T) {
	st := sampleStatus()
	mux := http.NewServeMux()
	mux.Handle("/ops/parallelrun/", http.StripPrefix("/ops/parallelrun", newHandler(t, st)))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, page := range []string{"/ops/parallelrun/", "/ops/parallelrun"} {
		resp, err := http.Get(srv.URL + page)
		if err != nil {
			t.Fatal(err)
		}
		doc := parse(t, body(t, resp))
		resp.Body.Close()
		base := resp.Request.URL // after the mux's redirect to the slash
		for _, a := range all(doc, tag("a")) {
			href := attr(a, "href")
			if strings.HasPrefix(href, "#") {
				continue
			}
			ref, err := url.Parse(href)
			if err != nil {
				t.Fatal(err)
			}
			link := base.ResolveReference(ref)
			resp, err := http.Get(link.String())
			if err != nil {
				t.Fatal(err)
			}
			got := &parallelrunv1.RunStatus{}
			err = protojson.Unmarshal([]byte(body(t, resp)), got)
			resp.Body.Close()
			if err != nil || !proto.Equal(got, st) {
				t.Errorf("%s links to %s: %s, %v", page, link, resp.Status, err)
			}
		}
	}
}

// Requests at once share nothing but the status function.
func TestConcurrent(t *testing.T) {
	h := newHandler(t, sampleStatus(), statuspage.WithTraceURL(traceURL))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			target := "/"
			if i%2 == 1 {
				target = "/status.json"
			}
			for range 20 {
				if resp := serve(h, http.MethodGet, target); resp.StatusCode != http.StatusOK {
					t.Errorf("%s: %s", target, resp.Status)
				}
			}
		})
	}
	wg.Wait()
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
