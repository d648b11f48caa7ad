package readiness

import (
	"fmt"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// Defaults of the options.
const (
	// DefaultTopFields bounds top_fields, noise_fields and top_signatures
	// of each method.
	DefaultTopFields = 10
	// DefaultMaxMethods bounds the distinct methods a Tracker keeps;
	// reports of further methods count under [Other].
	DefaultMaxMethods = 1000
)

// Other is the name under which what exceeds a bound is counted: the
// methods past [WithMaxMethods], and per method the fields and signatures
// past its bound. It is the name OpenTelemetry gives to values whose number
// is not bounded, and the interceptor's for methods it does not mirror.
const Other = "_OTHER"

// Option configures a [Tracker].
type Option func(*options)

type options struct {
	policy     *parallelrunv1.ReadinessPolicy
	methods    map[string]*parallelrunv1.ReadinessPolicy
	topN       int
	maxMethods int
}

// WithPolicy sets the run's policy: the fields p sets replace those of
// [DefaultPolicy]. The last WithPolicy wins; p is copied.
func WithPolicy(p *parallelrunv1.ReadinessPolicy) Option {
	return func(o *options) { o.policy = p }
}

// WithMethodPolicy overrides, for one method, the fields p sets of the
// run's policy. method is a full method ("/pkg.Service/Method", or
// "pkg.Service/Method" as reports name it), a service ("/pkg.Service/*")
// or "*": a method's policy is the run's, then the fields set for "*",
// then for its service, then for itself, as in a configuration file's
// rules. The last WithMethodPolicy for one method wins; p is copied.
func WithMethodPolicy(method string, p *parallelrunv1.ReadinessPolicy) Option {
	return func(o *options) {
		if o.methods == nil {
			o.methods = make(map[string]*parallelrunv1.ReadinessPolicy)
		}
		o.methods[method] = p
	}
}

// WithTopFields sets how many entries top_fields, noise_fields and
// top_signatures each hold at most (default [DefaultTopFields]). A method
// keeps counts for max(4n, 64) distinct fields, noise fields and
// signatures, so that the top n are right when the others stay rare.
func WithTopFields(n int) Option {
	return func(o *options) { o.topN = n }
}

// WithMaxMethods bounds the distinct methods kept (default
// [DefaultMaxMethods]): reports of further methods count under [Other],
// so that a hostile or misconfigured feed cannot grow the Tracker without
// end.
func WithMaxMethods(n int) Option {
	return func(o *options) { o.maxMethods = n }
}

func (o *options) check() error {
	switch {
	case o.topN < 1:
		return fmt.Errorf("readiness: WithTopFields: %d is less than 1", o.topN)
	case o.maxMethods < 1:
		return fmt.Errorf("readiness: WithMaxMethods: %d is less than 1", o.maxMethods)
	}
	return nil
}
