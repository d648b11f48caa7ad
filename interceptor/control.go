package interceptor

import (
	"reflect"
	"slices"
)

// MethodRule is one rule of a parallel run's method configuration: the
// methods Pattern matches are mirrored as Config says (see [WithMethod]
// for patterns).
type MethodRule struct {
	Pattern string
	Config  MethodConfig
}

// SetMethods replaces the whole method configuration of a running
// parallel run with rules, checked as [New] checks [WithMethod] (with the
// same errors, naming the pattern and the field). On error nothing
// changes. The new rules apply at once to the calls that start after
// SetMethods returns; calls and streams already started finish under the
// rules they started with. The call path takes no lock for it: it reads
// the configuration from one atomic pointer.
//
// What the parallel run has learnt of a method that is configured before
// and after is carried over, unless the change makes it wrong:
//   - the noise evidence (see [ParallelRun.Signals]: compared calls,
//     probes, and per-field counts) is kept only when the method's Diff
//     options and its [NoiseConfig] are the same as before (Diff options
//     the same, as [protodiff.Differ.SameOptions] says; the Secondary the
//     same connection). Differences counted under other comparison
//     options, or found by other probes, are no evidence of noise under
//     the new ones, so that evidence starts again from nothing;
//   - the signatures of the mismatches found are always kept: they are
//     what happened;
//   - the candidate breaker ([WithCandidateBreaker]) is kept unless the
//     method's Timeout changed, since a candidate that did not answer in
//     time may well answer within another deadline.
//
// A method no rule matches any more loses all of it.
func (p *ParallelRun) SetMethods(rules ...MethodRule) error {
	p.setMu.Lock()
	defer p.setMu.Unlock()
	t, err := p.buildMethods(rules, "SetMethods")
	if err != nil {
		return err
	}
	p.installMethods(t)
	return nil
}

// Methods returns a copy of the rules in force, in the order given to
// [New] (the rules of [WithMethod], then those of [WithConfig]) or to the
// last [ParallelRun.SetMethods].
func (p *ParallelRun) Methods() []MethodRule {
	return cloneRules(p.methods.Load().rules)
}

// SetDisabled sets the kill switch: while disabled, no call is mirrored
// or probed, whatever the method configuration, not even with [Force].
// Calls and streams already mirrored finish. A call made while disabled
// costs one atomic load more than a call without the parallel run, and is
// not counted: the gauge parallelrun.mirroring.enabled (1 or 0) says that
// mirroring is off. The method configuration is kept for when mirroring
// is enabled again.
func (p *ParallelRun) SetDisabled(disabled bool) {
	p.disabled.Store(disabled)
}

// Disabled reports whether the kill switch is set: see
// [ParallelRun.SetDisabled].
func (p *ParallelRun) Disabled() bool {
	return p.disabled.Load()
}

// buildMethods checks rules and builds their table; setMu is held.
func (p *ParallelRun) buildMethods(rules []MethodRule, where string) (*methodTable, error) {
	return newMethodTable(rules, where, p.tel.other, p.newBreaker, p.noiseRule, p.onError)
}

// installMethods carries the state of the current table's methods over to
// t, then puts t in its place; setMu is held, so nothing else replaces the
// table in between.
func (p *ParallelRun) installMethods(t *methodTable) {
	// The old entries' drops reach the status now; calls dropped by a
	// call that looked its entry up just before the swap may be missed
	// there (the metrics have them).
	p.eachEntry(p.foldDrops)
	t.inherit(p.methods.Load())
	p.methods.Store(t)
}

// inherit gives the entries of a table not yet in use the state of the
// same methods in old (see SetMethods). The methods old had built on
// first use (service patterns of unregistered services, "*", Force) get
// an entry in t's cache when t still mirrors them, within its bound.
func (t *methodTable) inherit(old *methodTable) {
	carry := func(name string, prev *methodEntry) {
		if e, ok := t.exact[name]; ok {
			e.inherit(prev)
			return
		}
		cfg := t.match(name)
		if cfg == nil && prev.cfg == old.forced {
			cfg = t.forced
		}
		if cfg == nil || t.cached.Load() >= maxCachedMethods {
			return
		}
		e := t.newEntry(name, cfg, nil)
		e.inherit(prev)
		if _, loaded := t.cache.LoadOrStore(name, e); !loaded {
			t.cached.Add(1)
		}
	}
	for name, prev := range old.exact {
		carry(name, prev)
	}
	// A call may still add to old's cache while this runs: a method first
	// seen at that moment starts afresh.
	old.cache.Range(func(k, v any) bool {
		carry(k.(string), v.(*methodEntry))
		return true
	})
}

// inherit takes over what prev, the entry of the same method in the table
// being replaced, has learnt, as far as it holds under e's configuration.
func (e *methodEntry) inherit(prev *methodEntry) {
	e.attrs = prev.attrs
	if e.breaker != nil && prev.breaker != nil && e.cfg.timeout == prev.cfg.timeout {
		e.breaker = prev.breaker
	}
	e.signals = prev.signals.carry(sameEvidence(prev.cfg, e.cfg))
}

// sameEvidence says whether noise evidence gathered under a still holds
// under b: the replies are compared alike, and probed alike.
func sameEvidence(a, b *methodConfig) bool {
	return a.differ.SameOptions(b.differ) &&
		a.noise.ProbeRate == b.noise.ProbeRate &&
		a.noise.Timeout == b.noise.Timeout &&
		a.noise.AllowWrites == b.noise.AllowWrites &&
		sameConn(a.noise.Secondary, b.noise.Secondary)
}

// sameConn says whether two connections are the same pointer (or both
// nil). Other kinds of values are never the same: == could panic on one
// that holds a slice or a map.
func sameConn(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	ta := reflect.TypeOf(a)
	if ta != reflect.TypeOf(b) || ta.Kind() != reflect.Pointer {
		return false
	}
	return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer()
}

// cloneRules copies rules and the slices of their configurations, so that
// neither the caller nor a reader of Methods can change what the table
// says it was built from.
func cloneRules(rules []MethodRule) []MethodRule {
	out := slices.Clone(rules)
	for i := range out {
		c := &out[i].Config
		c.Diff = slices.Clone(c.Diff)
		c.IgnoredHeaders = slices.Clone(c.IgnoredHeaders)
		c.RedactedHeaders = slices.Clone(c.RedactedHeaders)
	}
	return out
}
