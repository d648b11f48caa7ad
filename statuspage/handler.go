package statuspage

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// Handler serves a parallel run's status: an HTML page at the root of
// where it is mounted, and the same status as JSON at status.json, or at
// the root when asked for with ?format=json or Accept: application/json.
// It is safe for concurrent use; each request calls the status function
// once.
type Handler struct {
	status   func() *parallelrunv1.RunStatus
	traceURL string
	title    string
	// refresh is in whole seconds, 0 for never.
	refresh      int64
	errorHandler func(error)
}

var _ http.Handler = (*Handler)(nil)

// jsonOptions are those of the JSONL sink, so that a status and a report
// read alike: the field names of the .proto files.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true}

// New serves the status that status returns at each request. The function
// should return a message that nothing changes afterwards (a snapshot), or
// nil when there is no status; it may be called from several requests at
// once. A panic in it goes to the error handler ([WithErrorHandler]); it
// and a nil status are answered with a 500 and a short message, and the
// server goes on.
func New(status func() *parallelrunv1.RunStatus, opts ...Option) (*Handler, error) {
	if status == nil {
		return nil, errors.New("statuspage: New: the status function is nil")
	}
	o := defaultOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	refresh := int64(o.refresh / 1e9)
	if o.refresh%1e9 != 0 {
		refresh++
	}
	return &Handler{
		status:       status,
		traceURL:     o.traceURL,
		title:        o.title,
		refresh:      refresh,
		errorHandler: o.errorHandler,
	}, nil
}

// ServeHTTP answers GET and HEAD at "/" (or "", as http.StripPrefix leaves
// the mount point itself) and "/status.json"; anything else is a 404, and
// another method a 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-store")
	// The page links to a tracing UI: its address, which may be an
	// internal one, is none of the UI's business.
	hdr.Set("Referrer-Policy", "no-referrer")

	var asJSON bool
	format := r.URL.Query().Get("format")
	switch r.URL.Path {
	case "", "/":
		hdr.Add("Vary", "Accept")
		switch format {
		case "":
			asJSON = acceptsJSON(r.Header.Values("Accept"))
		case "json":
			asJSON = true
		case "html":
		default:
			http.Error(w, "statuspage: unknown format="+strconv.Quote(format)+": want html or json", http.StatusBadRequest)
			return
		}
	case "/status.json":
		if format != "" && format != "json" {
			http.Error(w, "statuspage: status.json is JSON: format="+strconv.Quote(format), http.StatusBadRequest)
			return
		}
		asJSON = true
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "statuspage: method not allowed", http.StatusMethodNotAllowed)
		return
	}

	st, err := h.load()
	if err != nil {
		h.handle(err)
		http.Error(w, "statuspage: the status function failed", http.StatusInternalServerError)
		return
	}
	if st == nil {
		http.Error(w, "statuspage: no status available", http.StatusInternalServerError)
		return
	}
	var body []byte
	if asJSON {
		body, err = jsonOptions.Marshal(st)
		if err == nil {
			body = append(body, '\n')
			hdr.Set("Content-Type", "application/json")
		}
	} else {
		var buf bytes.Buffer
		err = pageTemplate.Execute(&buf, h.page(st))
		body = buf.Bytes()
		hdr.Set("Content-Type", "text/html; charset=utf-8")
	}
	if err != nil {
		h.handle(fmt.Errorf("statuspage: %w", err))
		hdr.Del("Content-Type")
		http.Error(w, "statuspage: the status could not be written", http.StatusInternalServerError)
		return
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// load calls the status function, turning a panic into an error: the page
// is read while the run goes on, and a fault of the function must not take
// the server down with it.
func (h *Handler) load() (st *parallelrunv1.RunStatus, err error) {
	defer func() {
		if p := recover(); p != nil {
			st, err = nil, fmt.Errorf("statuspage: the status function panicked: %v", p)
		}
	}()
	return h.status(), nil
}

// acceptsJSON reports whether an Accept header prefers application/json to
// HTML: a browser, which accepts anything with */*, gets the page; curl
// -H 'Accept: application/json' the JSON.
func acceptsJSON(accept []string) bool {
	jsonQ, htmlQ := -1.0, -1.0
	for _, v := range accept {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(part)
			if err != nil {
				continue
			}
			q := 1.0
			if s, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f <= 1 {
					q = f
				} else {
					continue
				}
			}
			switch mt {
			case "application/json":
				jsonQ = max(jsonQ, q)
			case "text/html":
				htmlQ = max(htmlQ, q)
			}
		}
	}
	return jsonQ > 0 && jsonQ > htmlQ
}

// handle passes err to the error handler, which must not take the request
// down either.
func (h *Handler) handle(err error) {
	defer func() { _ = recover() }()
	h.errorHandler(err)
}
