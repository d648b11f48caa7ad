package interceptor

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
	"github.com/parallelrun/grpc-parallelrun/readiness"
)

// MaxConfigBytes bounds a configuration file: ParseConfig refuses a larger
// one, and ReadConfig reads no more than one byte past it. A configuration
// of thousands of methods fits in a small part of it. Checking a file
// takes time linear in its size, and allocates up to about 30 times its
// size while it runs (a file of nothing but short paths, each parsed to
// build and to check comparison options).
const MaxConfigBytes = 4 << 20

// ConfigError is a configuration that does not validate, and where the
// fault is: the file, as named to [ParseConfig], its line (and column, for
// errors of syntax), and the key path of the value in the JSON form, with
// JSON names ("methods[1].diff.ignoredPaths[0]"). File, Line and Path are
// empty when unknown: a Config built in code has no file, and a syntax
// error no path.
type ConfigError struct {
	File         string
	Line, Column int
	Path         string
	Err          error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0 && e.Column > 0:
		fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Column)
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// ReadConfig reads and parses a configuration file: see [ParseConfig]. It
// reads at most [MaxConfigBytes] and one byte more, whatever the file.
func ReadConfig(path string) (*parallelrunv1.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("interceptor: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("interceptor: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig parses the JSON form of a [parallelrunv1.Config]
// (proto/parallelrun/v1/config.proto), with field names in lowerCamelCase
// or as the proto writes them, and checks it as far as it can without the
// program's connections: everything but the names of noise.secondary,
// which [MethodRules] checks. name is the file's name, for errors.
//
// Errors wrap [*ConfigError] values that say where: syntax errors and
// unknown keys as protojson reports them, with the file, line and column
// ("pricing.json:7:12: unknown field \"sampleRat\""); a value that does
// not validate with the file, line and key path ("pricing.json:12:
// methods[1].diff.ignoredPaths[0]: ..."): a bad pattern or sample rate,
// a method its registered service does not have, a Diff value the reply
// type has no field for, a noise probe of a method not declared free of
// side effects without allowWrites, and whatever else [WithMethod]
// refuses. The line of a key path is found by a streaming scan of the
// file, linear in its size. A file larger than [MaxConfigBytes] is an
// error. The readiness policies are checked too ("readiness",
// "methods[2].readiness": a rate outside [0, 1], a negative duration).
func ParseConfig(name string, data []byte) (*parallelrunv1.Config, error) {
	if len(data) > MaxConfigBytes {
		return nil, fmt.Errorf("interceptor: %w", &ConfigError{File: name,
			Err: fmt.Errorf("larger than %d bytes, the most a configuration may have", MaxConfigBytes)})
	}
	cfg := &parallelrunv1.Config{}
	if err := protojson.Unmarshal(data, cfg); err != nil {
		return nil, fmt.Errorf("interceptor: %w", protojsonError(name, err))
	}
	if _, err := convertConfig(cfg, nil); err != nil {
		err.File = name
		if err.Path != "" {
			err.Line = lineOf(data, err.Path)
		}
		return nil, fmt.Errorf("interceptor: %w", err)
	}
	o := &origin{file: name}
	for _, m := range cfg.GetMethods() {
		if m.GetNoise().GetSecondary() != "" {
			o.lines = secondaryLines(data)
			break
		}
	}
	remember(cfg, o)
	return cfg, nil
}

// protojsonPosition matches the position protojson puts in its errors.
// Its prefix is "proto:" and a space or a no-break space, which protojson
// picks at random so that nobody relies on its text: a message that does
// not match is kept whole.
var protojsonPosition = regexp.MustCompile(`^proto:[\s\x{00a0}]*(syntax error )?\(line (\d+):(\d+)\):[\s\x{00a0}]*(.*)$`)

func protojsonError(name string, err error) *ConfigError {
	m := protojsonPosition.FindStringSubmatch(err.Error())
	if m == nil {
		return &ConfigError{File: name, Err: err}
	}
	line, _ := strconv.Atoi(m[2])
	col, _ := strconv.Atoi(m[3])
	msg := m[4]
	if m[1] != "" {
		msg = "syntax error: " + msg
	}
	return &ConfigError{File: name, Line: line, Column: col, Err: errors.New(msg)}
}

// MethodRules turns a configuration into the rules of [ParallelRun.SetMethods],
// checked as [ParseConfig] checks them: DiffConfig into protodiff options,
// durations into time.Duration, and each noise.secondary into the
// connection of that name in conns. An unknown name is an error, as is
// any rule that [WithMethod] refuses; errors wrap [*ConfigError] values
// that name the key path, and the file and line when cfg came from
// [ParseConfig]. The kill switch (disabled) and the readiness policies
// are not rules: see [ParallelRun.ApplyConfig].
func MethodRules(cfg *parallelrunv1.Config, conns map[string]grpc.ClientConnInterface) ([]MethodRule, error) {
	rules, err := methodRules(cfg, conns)
	if err != nil {
		return nil, fmt.Errorf("interceptor: %w", err)
	}
	return rules, nil
}

// methodRules is MethodRules with an error that says where, without the
// package's prefix.
func methodRules(cfg *parallelrunv1.Config, conns map[string]grpc.ClientConnInterface) ([]MethodRule, *ConfigError) {
	if cfg == nil {
		return nil, &ConfigError{Err: errors.New("a nil configuration")}
	}
	if conns == nil {
		conns = map[string]grpc.ClientConnInterface{}
	}
	rules, err := convertConfig(cfg, conns)
	if err != nil {
		if o := originOf(cfg); o != nil {
			err.File, err.Line = o.file, o.lines[err.Path]
		}
		return nil, err
	}
	return rules, nil
}

// WithConfig adds the rules of a configuration (see [MethodRules]) to
// those of [WithMethod], sets the kill switch when it says disabled, and
// puts its readiness policies, when it sets any, in place of those of
// [WithReadiness].
// [New] fails with the configuration's error.
func WithConfig(cfg *parallelrunv1.Config, conns map[string]grpc.ClientConnInterface) Option {
	return func(o *options) { o.configs = append(o.configs, fileConfig{cfg, conns}) }
}

type fileConfig struct {
	cfg   *parallelrunv1.Config
	conns map[string]grpc.ClientConnInterface
}

// ApplyConfig puts a configuration in force on a running parallel run:
// its rules replace the method configuration ([ParallelRun.SetMethods])
// its disabled field sets the kill switch ([ParallelRun.SetDisabled]),
// whatever it was set to before, and its readiness policies, when it sets
// any, replace those in force ([WithReadiness] included) for
// [ParallelRun.Status]. It is all or nothing: when the
// configuration does not validate, nothing changes. The kill switch is
// set before the rules change and cleared after, so that no call is
// mirrored under a mix of the two configurations' rules and switch.
func (p *ParallelRun) ApplyConfig(cfg *parallelrunv1.Config, conns map[string]grpc.ClientConnInterface) error {
	rules, cerr := methodRules(cfg, conns)
	if cerr != nil {
		return fmt.Errorf("interceptor: ApplyConfig: %w", cerr)
	}
	p.setMu.Lock()
	defer p.setMu.Unlock()
	t, err := p.buildMethods(rules, "ApplyConfig")
	if err != nil {
		return err
	}
	// Checked with the rules, so this cannot fail half-way.
	if err := p.applyReadiness(cfg); err != nil {
		return fmt.Errorf("interceptor: ApplyConfig: %w", err)
	}
	if cfg.GetDisabled() {
		p.disabled.Store(true)
		p.installMethods(t)
	} else {
		p.installMethods(t)
		p.disabled.Store(false)
	}
	return nil
}

// convertConfig converts and checks a configuration's rules. conns nil
// leaves the names of secondary connections unchecked, and their probes
// going through the legacy connection.
func convertConfig(cfg *parallelrunv1.Config, conns map[string]grpc.ClientConnInterface) ([]MethodRule, *ConfigError) {
	rules := make([]MethodRule, 0, len(cfg.GetMethods()))
	for i, m := range cfg.GetMethods() {
		r, err := convertRule(m, conns)
		if err != nil {
			err.Path = fmt.Sprintf("methods[%d].%s", i, err.Path)
			return nil, err
		}
		rules = append(rules, r)
	}
	// The checks of New, against the registry too; nothing is kept.
	_, err := newMethodTable(rules, "config", nil, func() *breaker { return nil }, noiseRule{}, func(error) {})
	if err != nil {
		var re *ruleError
		if !errors.As(err, &re) {
			return nil, &ConfigError{Err: err}
		}
		return nil, re.configError(cfg.GetMethods()[re.index])
	}
	if _, _, err := readinessPolicies(cfg); err != nil {
		return nil, err
	}
	return rules, nil
}

// readinessPolicies returns the readiness policies a configuration sets:
// the run's and those of its rules, by pattern, each checked. set is
// false when it sets none, so that a file without readiness leaves the
// policy given in code alone.
func readinessPolicies(cfg *parallelrunv1.Config) (run *parallelrunv1.ReadinessPolicy, perPattern map[string]*parallelrunv1.ReadinessPolicy, err *ConfigError) {
	if r := cfg.GetReadiness(); r != nil {
		if e := readiness.Check(readiness.Merge(readiness.DefaultPolicy(), r)); e != nil {
			return nil, nil, &ConfigError{Path: "readiness", Err: policyError(e)}
		}
		run = r
	}
	for i, m := range cfg.GetMethods() {
		r := m.GetReadiness()
		if r == nil {
			continue
		}
		if e := readiness.Check(readiness.Merge(readiness.DefaultPolicy(), r)); e != nil {
			return nil, nil, &ConfigError{Path: fmt.Sprintf("methods[%d].readiness", i), Err: policyError(e)}
		}
		if perPattern == nil {
			perPattern = map[string]*parallelrunv1.ReadinessPolicy{}
		}
		perPattern[m.GetPattern()] = r
	}
	return run, perPattern, nil
}

// policyError drops the package prefix of readiness.Check's error, which
// the key path takes the place of.
func policyError(err error) error {
	return errors.New(strings.TrimPrefix(err.Error(), "readiness: "))
}

// applyReadiness gives the tracker the policies of a configuration, when
// it sets any: they replace the policies in force, those of
// [WithReadiness] included.
func (p *ParallelRun) applyReadiness(cfg *parallelrunv1.Config) error {
	run, perPattern, cerr := readinessPolicies(cfg)
	if cerr != nil {
		return cerr
	}
	if run == nil && perPattern == nil {
		return nil
	}
	return p.tracker.SetPolicy(run, perPattern)
}

// convertRule converts one rule. Its errors' paths start below the rule.
func convertRule(m *parallelrunv1.MethodRule, conns map[string]grpc.ClientConnInterface) (MethodRule, *ConfigError) {
	r := MethodRule{Pattern: m.GetPattern(), Config: MethodConfig{
		Disabled:             m.GetDisabled(),
		SampleRate:           m.GetSampleRate(),
		CompareStatusMessage: m.GetCompareStatusMessage(),
		UnorderedReplies:     m.GetUnorderedReplies(),
		CompareHeader:        m.GetCompareHeader(),
		IgnoredHeaders:       m.GetIgnoredHeaders(),
		RedactedHeaders:      m.GetRedactedHeaders(),
		Diff:                 diffOptions(m.GetDiff()),
	}}
	var err *ConfigError
	c := &r.Config
	if c.Timeout, err = duration("timeout", m.GetTimeout()); err != nil {
		return r, err
	}
	if c.MaxStreamMessages, err = toInt("maxStreamMessages", m.GetMaxStreamMessages()); err != nil {
		return r, err
	}
	if c.MaxStreamBytes, err = toInt("maxStreamBytes", m.GetMaxStreamBytes()); err != nil {
		return r, err
	}
	if n := m.GetNoise(); n != nil {
		c.Noise = NoiseConfig{ProbeRate: n.GetProbeRate(), AllowWrites: n.GetAllowWrites()}
		if c.Noise.Timeout, err = duration("noise.timeout", n.GetTimeout()); err != nil {
			return r, err
		}
		if name := n.GetSecondary(); name != "" && conns != nil {
			conn, ok := conns[name]
			if !ok {
				return r, &ConfigError{Path: "noise.secondary", Err: fmt.Errorf("no connection named %q; the program has %s", name, connNames(conns))}
			}
			c.Noise.Secondary = conn
		}
	}
	for _, f := range []struct {
		key string
		v   int64
	}{
		{"diff.maxDifferences", m.GetDiff().GetMaxDifferences()},
		{"diff.maxValueLength", m.GetDiff().GetMaxValueLength()},
		{"diff.maxDepth", m.GetDiff().GetMaxDepth()},
		{"diff.maxWork", m.GetDiff().GetMaxWork()},
	} {
		if _, err := toInt(f.key, f.v); err != nil {
			return r, err
		}
	}
	return r, nil
}

func duration(key string, d *durationpb.Duration) (time.Duration, *ConfigError) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, &ConfigError{Path: key, Err: err}
	}
	// AsDuration saturates past 292 years: long enough to mean "never".
	return d.AsDuration(), nil
}

func toInt(key string, v int64) (int, *ConfigError) {
	if int64(int(v)) != v {
		return 0, &ConfigError{Path: key, Err: fmt.Errorf("%d is too large", v)}
	}
	return int(v), nil
}

// connNames lists the names of the program's connections, for an error:
// at most ten, sorted.
func connNames(conns map[string]grpc.ClientConnInterface) string {
	names := slices.Sorted(maps.Keys(conns))
	switch {
	case len(names) == 0:
		return "none"
	case len(names) > 10:
		return strings.Join(names[:10], ", ") + fmt.Sprintf(" and %d more", len(names)-10)
	}
	return strings.Join(names, ", ")
}

// DiffOptions turns the comparison options of a configuration's rule into
// protodiff's, as [MethodRules] does, so that a tool comparing replies
// outside the parallel run (`parallelrun replay`) compares them the same
// way. It does not check them: [ParseConfig] does.
func DiffOptions(d *parallelrunv1.DiffConfig) []protodiff.Option { return diffOptions(d) }

// diffOptions turns a DiffConfig into protodiff options, in the order of
// its fields (list keys sorted by path), so that the same configuration
// read twice gives options that protodiff.Differ.SameOptions finds the
// same.
func diffOptions(d *parallelrunv1.DiffConfig) []protodiff.Option {
	if d == nil {
		return nil
	}
	var opts []protodiff.Option
	if len(d.GetIgnoredPaths()) > 0 {
		opts = append(opts, protodiff.WithIgnoredPaths(d.GetIgnoredPaths()...))
	}
	if len(d.GetIgnoredFields()) > 0 {
		names := make([]protoreflect.FullName, len(d.GetIgnoredFields()))
		for i, n := range d.GetIgnoredFields() {
			names[i] = protoreflect.FullName(n)
		}
		opts = append(opts, protodiff.WithIgnoredFields(names...))
	}
	if t := d.GetFloatTolerance(); t != nil {
		opts = append(opts, protodiff.WithFloatTolerance(t.GetFraction(), t.GetMargin()))
	}
	for _, t := range d.GetFloatTolerances() {
		opts = append(opts, protodiff.WithFloatToleranceAt(t.GetPath(), t.GetFraction(), t.GetMargin()))
	}
	if len(d.GetUnorderedLists()) > 0 {
		opts = append(opts, protodiff.WithUnorderedLists(d.GetUnorderedLists()...))
	}
	for _, path := range slices.Sorted(maps.Keys(d.GetListKeys())) {
		opts = append(opts, protodiff.WithListKey(path, d.GetListKeys()[path]))
	}
	if len(d.GetRedactedPaths()) > 0 {
		opts = append(opts, protodiff.WithRedactedPaths(d.GetRedactedPaths()...))
	}
	if d.GetIgnoreUnknown() {
		opts = append(opts, protodiff.WithIgnoredUnknown())
	}
	// 0 keeps protodiff's default; toInt has checked that each fits.
	for _, o := range []struct {
		v    int64
		with func(int) protodiff.Option
	}{
		{d.GetMaxDifferences(), protodiff.WithMaxDifferences},
		{d.GetMaxValueLength(), protodiff.WithMaxValueLength},
		{d.GetMaxDepth(), protodiff.WithMaxDepth},
		{d.GetMaxWork(), protodiff.WithMaxWork},
	} {
		if o.v != 0 {
			opts = append(opts, o.with(int(o.v)))
		}
	}
	return opts
}

// configKeys are the JSON keys of MethodConfig's fields, for ruleError.
var configKeys = map[string]string{
	"SampleRate":        "sampleRate",
	"Timeout":           "timeout",
	"Diff":              "diff",
	"MaxStreamMessages": "maxStreamMessages",
	"MaxStreamBytes":    "maxStreamBytes",
	"IgnoredHeaders":    "ignoredHeaders",
	"RedactedHeaders":   "redactedHeaders",
	"Noise":             "noise",
	"Noise.ProbeRate":   "noise.probeRate",
	"Noise.Timeout":     "noise.timeout",
	"Noise.Secondary":   "noise.secondary",
}

// configError says which key of the configuration's rule m the error is
// about.
func (e *ruleError) configError(m *parallelrunv1.MethodRule) *ConfigError {
	base := fmt.Sprintf("methods[%d]", e.index)
	key, ok := configKeys[e.field]
	switch {
	case e.field == "":
		return &ConfigError{Path: base + ".pattern", Err: e.err}
	case !ok:
		return &ConfigError{Path: base, Err: e.err}
	case e.elem > 0:
		return &ConfigError{Path: fmt.Sprintf("%s.%s[%d]", base, key, e.elem-1), Err: e.err}
	case e.field == "Diff" && len(e.checks) > 0:
		ce := e.checks[0]
		err := fmt.Errorf("%q: %s: %w", ce.Value, ce.Type, ce.Err)
		if e.service != "" {
			err = fmt.Errorf("%q fits the reply of no method of %s (%s: %w)", ce.Value, e.service, ce.Type, ce.Err)
		}
		if n := len(e.checks) - 1; n > 0 {
			err = fmt.Errorf("%w; and %d more values that do not fit", err, n)
		}
		return &ConfigError{Path: base + ".diff" + checkPath(m.GetDiff(), ce), Err: err}
	case e.field == "Diff":
		return &ConfigError{Path: base + ".diff" + diffValuePath(m.GetDiff()), Err: e.err}
	}
	return &ConfigError{Path: base + "." + key, Err: e.err}
}

// checkPath finds the key, below diff, of the value a CheckError is about;
// "" when it cannot tell.
func checkPath(d *parallelrunv1.DiffConfig, ce *protodiff.CheckError) string {
	in := func(key string, list []string) string {
		if i := slices.Index(list, ce.Value); i >= 0 {
			return fmt.Sprintf(".%s[%d]", key, i)
		}
		return ""
	}
	switch ce.Option {
	case "WithIgnoredPaths":
		return in("ignoredPaths", d.GetIgnoredPaths())
	case "WithIgnoredFields":
		return in("ignoredFields", d.GetIgnoredFields())
	case "WithRedactedPaths":
		return in("redactedPaths", d.GetRedactedPaths())
	case "WithUnorderedLists":
		return in("unorderedLists", d.GetUnorderedLists())
	case "WithFloatToleranceAt":
		for i, t := range d.GetFloatTolerances() {
			if t.GetPath() == ce.Value {
				return fmt.Sprintf(".floatTolerances[%d].path", i)
			}
		}
	case "WithListKey":
		if _, ok := d.GetListKeys()[ce.Value]; ok {
			return ".listKeys[" + strconv.Quote(ce.Value) + "]"
		}
	}
	return ""
}

// diffValuePath finds, below diff, the first value that protodiff refuses
// on its own, for an error of protodiff.New; "" when none does alone (two
// options that conflict). It builds a Differ per value, so it runs only
// once New has failed.
func diffValuePath(d *parallelrunv1.DiffConfig) string {
	bad := func(opt protodiff.Option) bool {
		_, err := protodiff.New(opt)
		return err != nil
	}
	for i, p := range d.GetIgnoredPaths() {
		if bad(protodiff.WithIgnoredPaths(p)) {
			return fmt.Sprintf(".ignoredPaths[%d]", i)
		}
	}
	for i, n := range d.GetIgnoredFields() {
		if bad(protodiff.WithIgnoredFields(protoreflect.FullName(n))) {
			return fmt.Sprintf(".ignoredFields[%d]", i)
		}
	}
	if t := d.GetFloatTolerance(); t != nil && bad(protodiff.WithFloatTolerance(t.GetFraction(), t.GetMargin())) {
		return ".floatTolerance"
	}
	for i, t := range d.GetFloatTolerances() {
		if bad(protodiff.WithFloatToleranceAt(t.GetPath(), t.GetFraction(), t.GetMargin())) {
			return fmt.Sprintf(".floatTolerances[%d]", i)
		}
	}
	for i, p := range d.GetUnorderedLists() {
		if bad(protodiff.WithUnorderedLists(p)) {
			return fmt.Sprintf(".unorderedLists[%d]", i)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(d.GetListKeys())) {
		if bad(protodiff.WithListKey(p, d.GetListKeys()[p])) {
			return ".listKeys[" + strconv.Quote(p) + "]"
		}
	}
	for i, p := range d.GetRedactedPaths() {
		if bad(protodiff.WithRedactedPaths(p)) {
			return fmt.Sprintf(".redactedPaths[%d]", i)
		}
	}
	for _, f := range []struct {
		key  string
		v    int64
		with func(int) protodiff.Option
	}{
		{"maxDifferences", d.GetMaxDifferences(), protodiff.WithMaxDifferences},
		{"maxValueLength", d.GetMaxValueLength(), protodiff.WithMaxValueLength},
		{"maxDepth", d.GetMaxDepth(), protodiff.WithMaxDepth},
		{"maxWork", d.GetMaxWork(), protodiff.WithMaxWork},
	} {
		if f.v != 0 && bad(f.with(int(f.v))) {
			return "." + f.key
		}
	}
	return ""
}
