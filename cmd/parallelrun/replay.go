package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

const replaySynopsis = `Usage: parallelrun replay --candidate ADDR [flags] [REPORTS...]

Sends the recorded requests of the mismatched calls in REPORTS to the
candidate at ADDR, compares its replies with the recorded legacy replies,
and says per call which differences are fixed, which are still there and
which are new. Message types come from the candidate's server reflection,
or from --proto-set. Fields marked debug_redact are not compared: they were
cleared when the reports were written. Exit status 0 only when every
replayed call is fixed and nothing new appeared.`

// replayFlags are the flags of replay.
type replayFlags struct {
	inputFlags
	candidate   string
	protoSet    string
	timeout     time.Duration
	wait        time.Duration
	concurrency int
	plaintext   bool
	headers     stringList
	methods     stringList
	ignore      stringList
	listKeys    stringList
	redact      stringList
	statusMsg   bool
	json        bool
	config      string
}

// maxConcurrency bounds --concurrency.
const maxConcurrency = 1024

func runReplay(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("replay", replaySynopsis, stderr)
	var f replayFlags
	f.register(fs)
	fs.StringVar(&f.candidate, "candidate", "", "the candidate's address, as grpc.NewClient takes it (host:port, dns:///host:port); required")
	fs.StringVar(&f.protoSet, "proto-set", "", "a serialized google.protobuf.FileDescriptorSet with the service's types (buf build -o set.binpb); default: the candidate's server reflection")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "the deadline of each replayed call, and of each reflection lookup")
	fs.DurationVar(&f.wait, "wait", 10*time.Second, "how long to wait for the candidate to accept a connection before replaying (one just started)")
	fs.IntVar(&f.concurrency, "concurrency", 4, "calls in flight at once")
	fs.BoolVar(&f.plaintext, "plaintext", true, "connect without TLS; --plaintext=false uses TLS with the system's roots")
	fs.Var(&f.headers, "header", "`key=value` metadata sent with every call (repeatable); "+interceptor.RoleKey+"=candidate is sent unless replaced, or removed with an empty value")
	fs.Var(&f.methods, "method", "replay only the methods matching `PATTERN`: pkg.Service/Method, pkg.Service/* or * (repeatable)")
	fs.Var(&f.ignore, "ignore", "an index-free `path` of the replies left out of the comparison, such as quote.quote_id (repeatable)")
	fs.Var(&f.listKeys, "list-key", "`path=key`: compare the list at path by the key field of its elements, as the recorded run did with protodiff.WithListKey (repeatable)")
	fs.Var(&f.redact, "redact", "an index-free `path` whose values are never printed (repeatable)")
	fs.BoolVar(&f.statusMsg, "compare-status-message", false, "compare the status messages of failed calls (always done for a call whose recorded mismatch was one of status messages)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object per call, then one with the tally")
	fs.StringVar(&f.config, "config", "", "the parallel run's configuration `file` (JSON, as interceptor.ReadConfig reads it): each method's replies are compared with its rule's diff options and compareStatusMessage, besides the flags")
	files, err := parseArgs(fs, args, stdout)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	rp, err := f.replayer(fs, stderr)
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "parallelrun replay: %s\n", err)
		}
		return exitUsage
	}
	defer rp.conn.Close()
	ins, err := openInputs(files, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "parallelrun replay: %s\n", err)
		return exitUsage
	}
	defer closeInputs(ins)
	return rp.run(ins, stdout, stderr)
}

// replayer checks the flags and builds what replay needs: the
// candidate's connection, the types, the metadata.
func (f *replayFlags) replayer(fs *flag.FlagSet, stderr io.Writer) (*replayer, error) {
	switch {
	case f.candidate == "":
		return nil, usageError(fs, "--candidate is required")
	case f.timeout <= 0:
		return nil, usageError(fs, "--timeout %s: must be positive", f.timeout)
	case f.wait < 0:
		return nil, usageError(fs, "--wait %s: must not be negative", f.wait)
	case f.concurrency < 1 || f.concurrency > maxConcurrency:
		return nil, usageError(fs, "--concurrency %d: must be between 1 and %d", f.concurrency, maxConcurrency)
	}
	md, err := parseHeaders(f.headers)
	if err != nil {
		return nil, usageError(fs, "%v", err)
	}
	for _, p := range f.methods {
		if _, err := path.Match(strings.TrimPrefix(p, "/"), ""); err != nil {
			return nil, usageError(fs, "--method %q: %v", p, err)
		}
	}
	if _, err := protodiff.New(protodiff.WithIgnoredPaths(f.ignore...)); err != nil {
		return nil, usageError(fs, "--ignore: %v", err)
	}
	if _, err := protodiff.New(protodiff.WithRedactedPaths(f.redact...)); err != nil {
		return nil, usageError(fs, "--redact: %v", err)
	}
	for _, lk := range f.listKeys {
		p, key, ok := strings.Cut(lk, "=")
		if !ok || p == "" || key == "" {
			return nil, usageError(fs, "--list-key %q: want path=key", lk)
		}
		if _, err := protodiff.New(protodiff.WithListKey(p, key)); err != nil {
			return nil, usageError(fs, "--list-key: %v", err)
		}
	}
	var cfg *parallelrunv1.Config
	if f.config != "" {
		var err error
		if cfg, err = interceptor.ReadConfig(f.config); err != nil {
			return nil, usageError(fs, "--config: %v", err)
		}
	}
	creds := insecure.NewCredentials()
	if !f.plaintext {
		// Nil roots: the system's.
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(f.candidate, grpc.WithTransportCredentials(creds),
		// A candidate that is starting is tried again soon, not after
		// gRPC's backoff of up to two minutes.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}}))
	if err != nil {
		return nil, usageError(fs, "--candidate %q: %v", f.candidate, err)
	}
	if !awaitReady(conn, f.wait) {
		fmt.Fprintf(stderr, "parallelrun replay: the candidate at %s accepted no connection within --wait %s; replaying anyway\n", f.candidate, f.wait)
	}
	rp := &replayer{flags: f, conn: conn, md: md, config: cfg, differs: map[string]*methodDiffer{}, redactedSeen: map[string][]string{}}
	if f.protoSet != "" {
		rp.types, err = loadProtoSet(f.protoSet)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("--proto-set: %w", err)
		}
	} else {
		rp.types = newRegistry(&reflectionSource{conn: conn, timeout: f.timeout, ctx: rp.outgoing}, "the candidate's server reflection")
	}
	return rp, nil
}

// paths are the paths that the flags name, to check that each fits the
// replies of a method replayed.
func (f *replayFlags) paths() []string {
	paths := slices.Concat(f.ignore, f.redact)
	for _, lk := range f.listKeys {
		p, _, _ := strings.Cut(lk, "=")
		paths = append(paths, p)
	}
	return paths
}

// diffOptions are the comparison options the flags give.
func (f *replayFlags) diffOptions() []protodiff.Option {
	opts := []protodiff.Option{protodiff.WithIgnoredPaths(f.ignore...), protodiff.WithRedactedPaths(f.redact...)}
	for _, lk := range f.listKeys {
		p, key, _ := strings.Cut(lk, "=")
		opts = append(opts, protodiff.WithListKey(p, key))
	}
	return opts
}

// awaitReady waits up to wait for conn to connect, and says whether it
// did.
func awaitReady(conn *grpc.ClientConn, wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn.Connect()
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(ctx, s) {
			return false
		}
	}
	return true
}

// parseHeaders reads --header key=value flags into the metadata sent,
// over the role marker.
func parseHeaders(headers []string) (metadata.MD, error) {
	md := metadata.Pairs(interceptor.RoleKey, "candidate")
	for _, h := range headers {
		k, v, ok := strings.Cut(h, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			return nil, fmt.Errorf("--header %q: want key=value", h)
		}
		for _, c := range k {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				return nil, fmt.Errorf("--header %q: a key has only letters, digits, '-', '_' and '.'", h)
			}
		}
		if strings.HasPrefix(k, "grpc-") {
			return nil, fmt.Errorf("--header %q: keys starting with grpc- are gRPC's own", h)
		}
		if v == "" {
			delete(md, k)
			continue
		}
		if _, seen := md[k]; seen && k == interceptor.RoleKey {
			delete(md, k) // replaced, not added to
		}
		md.Append(k, v)
	}
	return md, nil
}

// replayer replays the calls of a run of reports.
type replayer struct {
	flags *replayFlags
	conn  *grpc.ClientConn
	types *registry
	md    metadata.MD
	// The run's configuration (--config), nil without one.
	config *parallelrunv1.Config

	// Used by the reading goroutine only.
	differs map[string]*methodDiffer
	// redactedSeen lists per method the fields whose values the reports
	// showed as redacted, so that the replay redacts them too.
	redactedSeen map[string][]string
	pathFits     map[string]bool // --ignore and --redact paths that fit a replayed method
}

func (rp *replayer) outgoing(ctx context.Context) context.Context {
	return metadata.NewOutgoingContext(ctx, rp.md.Copy())
}

// run reads the reports, replays the mismatches that can be replayed
// with at most --concurrency calls at once, and prints the results in the
// order of the reports. Memory holds at most twice --concurrency calls.
func (rp *replayer) run(ins []*input, stdout, stderr io.Writer) int {
	prog := newProgress(stderr, rp.flags.showProgress(stderr), totalSize(ins))
	diag := &diagnostics{w: stderr, progress: prog}
	rr := newReportReader(ins, newLenient(rp.types), diag, false)
	out := newReplayPrinter(stdout, prog, rp.flags.json)
	rp.pathFits = map[string]bool{}

	jobs := make(chan *job)
	order := make(chan *job, rp.flags.concurrency)
	var workers sync.WaitGroup
	for range rp.flags.concurrency {
		workers.Go(func() {
			for j := range jobs {
				j.replay(rp)
				close(j.done)
			}
		})
	}
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for j := range order {
			<-j.done
			out.print(j)
		}
	}()

	var readErr error
	for {
		rec, err := rr.next()
		if err != nil {
			if err != io.EOF {
				readErr = err
			}
			break
		}
		if rec.rep.GetOutcome() != parallelrunv1.Outcome_OUTCOME_MISMATCH || !rp.selected(rec.rep.GetMethod()) {
			continue
		}
		j := rp.prepare(rec)
		order <- j
		if j.ready() {
			jobs <- j
		} else {
			close(j.done)
		}
	}
	close(jobs)
	workers.Wait()
	close(order)
	<-printed

	for _, p := range rp.flags.paths() {
		if out.tally.Replayed > 0 && !rp.pathFits[p] {
			diag.printf("parallelrun replay: the path %q names no field of the replies of the methods replayed", p)
		}
	}
	out.finish(diag.malformedN)
	switch {
	case readErr != nil:
		diag.printf("parallelrun replay: %s", clean(readErr.Error(), maxErrLen))
		return exitUsage
	case out.tally.Replayed == 0:
		diag.printf("parallelrun replay: no mismatched call was replayed")
		return exitFail
	case diag.malformedN > 0 && !rp.flags.allowMalformed:
		return exitFail
	case out.tally.Errors > 0 || out.tally.StillDifferent > 0 || out.tally.New > 0:
		return exitFail
	}
	return exitOK
}

// selected says whether --method selects a method.
func (rp *replayer) selected(method string) bool {
	if len(rp.flags.methods) == 0 {
		return true
	}
	method = strings.TrimPrefix(method, "/")
	for _, p := range rp.flags.methods {
		if p == "*" {
			return true
		}
		if ok, _ := path.Match(strings.TrimPrefix(p, "/"), method); ok {
			return true
		}
	}
	return false
}
