package statuspage

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
)

// Defaults, each changed by an option.
const (
	// DefaultTitle heads the page and names its tab.
	DefaultTitle = "Parallel run"
	// DefaultRefresh is how often the page reloads itself: often enough to
	// watch a run, seldom enough that reading the page is not disturbed.
	DefaultRefresh = 10 * time.Second
)

// TraceIDPlaceholder stands in the template of [WithTraceURL] for a trace
// ID.
const TraceIDPlaceholder = "{trace_id}"

// An Option configures a [Handler]. Options only record what was asked;
// [New] checks them all and reports the first problem.
type Option func(*options)

type options struct {
	traceURL     string
	title        string
	refresh      time.Duration
	errorHandler func(error)
}

var defaultOptions = options{
	title:        DefaultTitle,
	refresh:      DefaultRefresh,
	errorHandler: otel.Handle,
}

// WithTraceURL links trace IDs to a tracing UI. The template is an http or
// https URL with [TraceIDPlaceholder] where the trace ID goes, such as
// "http://localhost:16686/trace/{trace_id}" for Jaeger. Without it, trace
// IDs are shown as text. Only IDs of 32 lowercase hex digits (not all zero)
// are ever put into a link.
func WithTraceURL(template string) Option {
	return func(o *options) { o.traceURL = template }
}

// WithTitle sets the page's heading and the title of its tab; by default
// [DefaultTitle]. Naming the environment ("Pricing v2, staging") tells
// pages apart.
func WithTitle(title string) Option {
	return func(o *options) { o.title = title }
}

// WithRefresh sets how often the page reloads itself: [DefaultRefresh] by
// default, 0 for never. It is rounded up to whole seconds, since that is
// what a page refresh can say. The JSON is not affected.
func WithRefresh(every time.Duration) Option {
	return func(o *options) { o.refresh = every }
}

// WithErrorHandler receives what goes wrong while serving: a panic of the
// status function, a status that cannot be written. The client sees a 500
// with a short message and nothing of the error, which may hold values of
// the status. The default is the OpenTelemetry global error handler
// (otel.Handle). It is called from the request's goroutine; a panic in it
// is recovered and dropped.
func WithErrorHandler(f func(error)) Option {
	return func(o *options) {
		if f != nil {
			o.errorHandler = f
		}
	}
}

// check validates the options, naming the option at fault.
func (o *options) check() error {
	if o.traceURL != "" {
		if err := checkTraceURL(o.traceURL); err != nil {
			return fmt.Errorf("statuspage: WithTraceURL(%q): %w", o.traceURL, err)
		}
	}
	if strings.TrimSpace(o.title) == "" {
		return errors.New("statuspage: WithTitle: the title is empty")
	}
	if o.refresh < 0 {
		return fmt.Errorf("statuspage: WithRefresh(%v): negative interval; use 0 for a page that never reloads", o.refresh)
	}
	return nil
}

func checkTraceURL(template string) error {
	if !strings.Contains(template, TraceIDPlaceholder) {
		return fmt.Errorf("no %s placeholder for the trace ID", TraceIDPlaceholder)
	}
	// Checked as it will be used, with an ID in place, since braces are
	// not valid in every part of a URL.
	u, err := url.Parse(traceLink(template, "4bf92f3577b34da6a3ce929d0e0e4736"))
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

// traceLink is the link to one trace.
func traceLink(template, traceID string) string {
	return strings.ReplaceAll(template, TraceIDPlaceholder, traceID)
}
