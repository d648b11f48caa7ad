package interceptor

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// streak is what a method's readiness needs beyond counters when it is
// judged over many client instances: how many calls this instance has
// compared since its last mismatch, when that mismatch was, and when it
// first compared a call. Counters alone cannot say "since the last
// mismatch": the gauges made from these let a fleet's last mismatch be the
// latest of its instances', and its streak start there.
type streak struct {
	attrs         metric.MeasurementOption
	fieldsMu      sync.Mutex
	fields        map[string]bool // the field labels its metrics have used
	calls         atomic.Int64    // compared since the last mismatch, or in all
	lastMismatch  atomic.Int64    // unix nanoseconds; 0 before the first mismatch
	firstCompared atomic.Int64    // unix nanoseconds; 0 before the first call compared
}

// streaks holds one streak per method name, shared by the entries that a
// change of configuration builds again, so that a reload does not reset a
// method's streak, and by every parallel run that counts through one
// MeterProvider ([streaksFor]), so that the gauges, like the counters,
// speak for the process.
type streaks struct {
	mu     sync.Mutex
	byName map[string]*streak
	order  []*streak // creation order, for a stable observation
	other  *streak
}

// maxStreaks bounds the methods with a streak of their own: the configured
// methods and those a pattern matched are bounded already, but a run that
// is reconfigured many times could name new methods each time. Past it a
// method's gauges go under OtherMethod: judged from the metrics, its
// mismatches then have no time of their own, which the summary command
// takes as now (never a streak it cannot show).
const maxStreaks = 4 * maxCachedMethods

// providerStreaks are the streaks of each MeterProvider that parallel runs
// have counted through, with one callback each: two runs observing one
// method through their own callbacks would export whichever ran last.
// Providers are few in a process and live as long as it does; each is
// kept here (with its streaks, a few hundred bytes a method) for good.
// Past maxProviders (only a test suite makes so many), or for a provider
// that cannot be a map key, a run has streaks of its own.
var providerStreaks struct {
	sync.Mutex
	m map[any]*streaks // by MeterProvider, or globalProvider{}
}

// globalProvider is the key of the global MeterProvider.
type globalProvider struct{}

const maxProviders = 1024

// streaksFor returns the streaks of mp, registered with it on first use.
func streaksFor(mp metric.MeterProvider, t *telemetry) (*streaks, error) {
	// The value, not its type: a struct that embeds an interface has a
	// comparable type, and may hold a value that cannot be a map key.
	if mp != nil && reflect.ValueOf(mp).Comparable() {
		providerStreaks.Lock()
		defer providerStreaks.Unlock()
		var key any = mp
		if global := otel.GetMeterProvider(); reflect.ValueOf(global).Comparable() && any(global) == any(mp) {
			// The global provider, whether the delegate that stands for it
			// before otel.SetMeterProvider or the provider set: runs made
			// on either side of the call count through one.
			key = globalProvider{}
		}
		if s := providerStreaks.m[key]; s != nil {
			return s, nil
		}
		if len(providerStreaks.m) < maxProviders {
			s := newStreaks()
			if err := s.register(t); err != nil {
				return nil, err
			}
			if providerStreaks.m == nil {
				providerStreaks.m = map[any]*streaks{}
			}
			providerStreaks.m[key] = s
			return s, nil
		}
	}
	s := newStreaks()
	return s, s.register(t)
}

func newStreaks() *streaks {
	s := &streaks{byName: map[string]*streak{}}
	s.other = s.get(OtherMethod)
	return s
}

// get returns the method's streak, made on first use.
func (s *streaks) get(name string) *streak {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.byName[name]; ok {
		return st
	}
	if len(s.byName) >= maxStreaks {
		return s.other
	}
	st := &streak{attrs: metric.WithAttributeSet(attribute.NewSet(semconv.RPCSystemNameGRPC, semconv.RPCMethod(name)))}
	s.byName[name] = st
	s.order = append(s.order, st)
	return st
}

// compared records a call compared at t: a mismatch starts the streak
// again, at the latest mismatch time seen.
func (st *streak) compared(t time.Time, mismatch bool) {
	ns := t.UnixNano()
	for {
		first := st.firstCompared.Load()
		if (first != 0 && first <= ns) || st.firstCompared.CompareAndSwap(first, ns) {
			break
		}
	}
	if !mismatch {
		st.calls.Add(1)
		return
	}
	st.calls.Store(0)
	for {
		last := st.lastMismatch.Load()
		if last >= ns || st.lastMismatch.CompareAndSwap(last, ns) {
			return
		}
	}
}

// fieldLabel is the parallelrun.field a metric of the method counts a
// field under: its own name while the method has used fewer than
// maxFieldsPerMethod, as its signals count them, else OtherMethod. The
// candidate chooses the names of unknown fields (their numbers), and the
// metrics' cardinality must not be its choice.
func (st *streak) fieldLabel(name string) string {
	st.fieldsMu.Lock()
	defer st.fieldsMu.Unlock()
	if st.fields[name] {
		return name
	}
	if len(st.fields) >= maxFieldsPerMethod {
		return OtherMethod
	}
	if st.fields == nil {
		st.fields = map[string]bool{}
	}
	st.fields[name] = true
	return name
}

// streakInstruments are the gauges the streaks are observed through.
type streakInstruments struct {
	calls                       metric.Int64ObservableGauge
	lastMismatch, firstCompared metric.Float64ObservableGauge
}

func (t *telemetry) streakInstruments() (streakInstruments, error) {
	calls, err := t.meter.Int64ObservableGauge("parallelrun.streak.calls",
		metric.WithDescription("Calls this instance compared since its last mismatch, or in all when it had none."),
		metric.WithUnit("{call}"))
	if err != nil {
		return streakInstruments{}, err
	}
	last, err := t.meter.Float64ObservableGauge("parallelrun.last_mismatch.time",
		metric.WithDescription("When this instance's last mismatch was, in seconds since the Unix epoch; absent before its first."),
		metric.WithUnit("s"))
	if err != nil {
		return streakInstruments{}, err
	}
	first, err := t.meter.Float64ObservableGauge("parallelrun.first_compared.time",
		metric.WithDescription("When this instance compared its first call, in seconds since the Unix epoch; absent before it."),
		metric.WithUnit("s"))
	if err != nil {
		return streakInstruments{}, err
	}
	return streakInstruments{calls: calls, lastMismatch: last, firstCompared: first}, nil
}

// register observes the streaks through the gauges for as long as the
// MeterProvider lives, past every run's Close: what they say is history,
// as the counters' sums are, and an application that closes the parallel
// run before it shuts the provider down (the order that flushes the last
// reports) must export their final values. The callback holds the
// streaks alone, a few hundred bytes a method.
func (s *streaks) register(t *telemetry) error {
	in, err := t.streakInstruments()
	if err != nil {
		return err
	}
	_, err = t.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s.observe(o, in)
		return nil
	}, in.calls, in.lastMismatch, in.firstCompared)
	return err
}

// observe reports every method that has compared a call.
func (s *streaks) observe(o metric.Observer, in streakInstruments) {
	s.mu.Lock()
	list := append([]*streak(nil), s.order...)
	s.mu.Unlock()
	for _, st := range list {
		first := st.firstCompared.Load()
		if first == 0 {
			continue
		}
		o.ObserveInt64(in.calls, st.calls.Load(), st.attrs)
		o.ObserveFloat64(in.firstCompared, unixSeconds(first), st.attrs)
		if last := st.lastMismatch.Load(); last != 0 {
			o.ObserveFloat64(in.lastMismatch, unixSeconds(last), st.attrs)
		}
	}
}

// of returns the streak of the method a's metrics are counted under.
func (s *streaks) of(a *methodAttrs) *streak {
	if st := a.streak.Load(); st != nil {
		return st
	}
	st := s.get(a.name)
	a.streak.Store(st)
	return st
}

// unixSeconds is a time in seconds since the epoch, to the microsecond
// (what a float64 holds of a time in this century).
func unixSeconds(ns int64) float64 {
	return float64(ns/1e3) / 1e6
}
