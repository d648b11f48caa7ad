package interceptor

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// methodConfig is a MethodConfig checked and compiled.
type methodConfig struct {
	disabled       bool
	sampleRate     float64 // in (0, 1]
	timeout        time.Duration
	differ         *protodiff.Differ
	compareMessage bool
	maxMessages    int
	maxBytes       int64
	unordered      bool
	compareHeader  bool
}

// methodTable finds the config of a full method name: exact match first,
// then the service, then "*".
type methodTable struct {
	exact   map[string]*methodConfig // "/pkg.Service/Method"
	service map[string]*methodConfig // "/pkg.Service/"
	all     *methodConfig
}

func (t *methodTable) lookup(method string) *methodConfig {
	if c, ok := t.exact[method]; ok {
		return c
	}
	if i := strings.LastIndexByte(method, '/'); i > 0 {
		if c, ok := t.service[method[:i+1]]; ok {
			return c
		}
	}
	return t.all
}

func newMethodTable(rules []methodRule) (*methodTable, error) {
	t := &methodTable{exact: map[string]*methodConfig{}, service: map[string]*methodConfig{}}
	for _, r := range rules {
		c, err := compileMethod(r.config)
		if err != nil {
			return nil, fmt.Errorf("interceptor: WithMethod %q: %w", r.pattern, err)
		}
		if err := t.add(r.pattern, c); err != nil {
			return nil, fmt.Errorf("interceptor: WithMethod %q: %w", r.pattern, err)
		}
	}
	return t, nil
}

var errDuplicate = errors.New("pattern given twice")

func (t *methodTable) add(pattern string, c *methodConfig) error {
	if pattern == "*" {
		if t.all != nil {
			return errDuplicate
		}
		t.all = c
		return nil
	}
	svc, method, ok := strings.Cut(strings.TrimPrefix(pattern, "/"), "/")
	switch {
	case !strings.HasPrefix(pattern, "/") || !ok || svc == "" || method == "" || strings.Contains(method, "/"):
		return errors.New(`not a method pattern: want "/pkg.Service/Method", "/pkg.Service/*" or "*"`)
	case strings.ContainsAny(svc, "* \t") || strings.ContainsAny(method, " \t") || (strings.Contains(method, "*") && method != "*"):
		return errors.New(`"*" stands only for a whole method name or alone`)
	case method == "*":
		key := "/" + svc + "/"
		if _, dup := t.service[key]; dup {
			return errDuplicate
		}
		t.service[key] = c
	default:
		if _, dup := t.exact[pattern]; dup {
			return errDuplicate
		}
		t.exact[pattern] = c
	}
	return nil
}

func compileMethod(mc MethodConfig) (*methodConfig, error) {
	if math.IsNaN(mc.SampleRate) || mc.SampleRate < 0 || mc.SampleRate > 1 {
		return nil, fmt.Errorf("field SampleRate: %v is not in [0, 1]", mc.SampleRate)
	}
	if mc.Timeout < 0 {
		return nil, fmt.Errorf("field Timeout: %v is negative", mc.Timeout)
	}
	if mc.MaxStreamMessages < 0 {
		return nil, fmt.Errorf("field MaxStreamMessages: %d is negative", mc.MaxStreamMessages)
	}
	if mc.MaxStreamBytes < 0 {
		return nil, fmt.Errorf("field MaxStreamBytes: %d is negative", mc.MaxStreamBytes)
	}
	d, err := protodiff.New(mc.Diff...)
	if err != nil {
		return nil, fmt.Errorf("field Diff: %w", err)
	}
	rate := mc.SampleRate
	if rate == 0 {
		rate = 1
	}
	return &methodConfig{
		disabled:       mc.Disabled,
		sampleRate:     rate,
		timeout:        mc.Timeout,
		differ:         d,
		compareMessage: mc.CompareStatusMessage,
		maxMessages:    cmp.Or(mc.MaxStreamMessages, DefaultMaxStreamMessages),
		maxBytes:       int64(cmp.Or(mc.MaxStreamBytes, DefaultMaxStreamBytes)),
		unordered:      mc.UnorderedReplies,
		compareHeader:  mc.CompareHeader,
	}, nil
}
