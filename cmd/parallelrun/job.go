package main

import (
	"fmt"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
)

// job is one mismatched call to replay: what the report recorded, decoded
// for the call, and, once done is closed, what the replay found.
type job struct {
	rec  record
	done chan struct{}

	// Set by prepare, in the reading goroutine.
	md          protoreflect.MethodDescriptor
	requests    []proto.Message
	legacy      []proto.Message // the legacy replies, in order
	legacyCode  codes.Code
	legacyMsg   string
	compareMsg  bool
	differ      *methodDiffer
	redacted    []string // fields whose values are not to be shown
	notReplayed string   // why the call cannot be replayed
	err         error    // why it could not be replayed, as an error

	// Set by replay, in a worker.
	result *ReplayResult
}

// ready says whether the job is to be replayed.
func (j *job) ready() bool { return j.notReplayed == "" && j.err == nil }

// methodDiffer is the comparison of one method's replies, built again when
// more files are loaded (their debug_redact fields are ignored too).
type methodDiffer struct {
	d     *protodiff.Differ
	files int // the registry's file count when it was built
}

// prepare finds the method and decodes what the report recorded, or says
// why the call cannot be replayed. It runs in the reading goroutine, which
// alone touches the replayer's caches.
func (rp *replayer) prepare(rec record) *job {
	rep := rec.rep
	j := &job{rec: rec, done: make(chan struct{})}
	var err error
	if j.md, err = rp.types.findMethod(rep.GetMethod()); err != nil {
		j.err = err
		return j
	}
	for _, url := range rec.unresolved {
		if _, err := rp.types.FindMessageByURL(url); err != nil {
			j.err = fmt.Errorf("the report holds a message of type %s: %w", url, err)
			return j
		}
	}
	if j.notReplayed = replayable(j.md, rec); j.notReplayed != "" {
		return j
	}
	var ok bool
	if j.legacyCode, ok = codeByName(rep.GetLegacyStatus().GetCode()); !ok {
		j.err = fmt.Errorf("the legacy status code %q is not one of gRPC's", rep.GetLegacyStatus().GetCode())
		return j
	}
	j.legacyMsg = rep.GetLegacyStatus().GetMessage()
	reqs := rep.GetRequests()
	if !j.md.IsStreamingClient() {
		reqs = []*anypb.Any{rep.GetRequest()}
	}
	if j.requests, err = rp.decodeAll(reqs, j.md.Input(), "request"); err != nil {
		j.err = err
		return j
	}
	if j.legacy, err = rp.decodeAll(rep.GetLegacyReplies(), j.md.Output(), "legacy reply"); err != nil {
		j.err = err
		return j
	}
	if !j.md.IsStreamingServer() && len(j.legacy) > 1 {
		j.err = fmt.Errorf("%d legacy replies recorded for a method that answers once", len(j.legacy))
		return j
	}
	rule := ruleFor(rp.config, j.md)
	j.compareMsg = rp.flags.statusMsg || rule.GetCompareStatusMessage()
	for _, d := range rep.GetDifferences() {
		if d.GetPath() == interceptor.StatusMessagePath {
			j.compareMsg = true // the recorded run compared them
		}
		if d.GetLegacy() == protodiff.Redacted || d.GetCandidate() == protodiff.Redacted {
			if seen := rp.redactedSeen[rep.GetMethod()]; !slices.Contains(seen, d.GetField()) && len(seen) < maxRedactedSeen {
				rp.redactedSeen[rep.GetMethod()] = append(seen, d.GetField())
			}
		}
	}
	// A copy: the worker reads it while this goroutine appends.
	j.redacted = slices.Concat(rp.redactedSeen[rep.GetMethod()], rp.flags.redact)
	if j.differ, err = rp.differFor(j.md, rule); err != nil {
		j.err = err
	}
	return j
}

// maxRedactedSeen bounds the redacted fields remembered per method.
const maxRedactedSeen = 256

// replayable says why a call cannot be replayed from its report, or "".
func replayable(md protoreflect.MethodDescriptor, rec record) string {
	rep := rec.rep
	switch {
	case !md.IsStreamingClient() && rep.GetRequestOmitted():
		return "the request was left out of the report for its size"
	case !md.IsStreamingClient() && rep.GetRequest() == nil:
		return "the report holds no request"
	case md.IsStreamingClient() && rep.GetRequestsOmitted() > 0:
		return fmt.Sprintf("the report leaves out %s of the messages sent, for their size", count(rep.GetRequestsOmitted()))
	case rep.GetLegacyRepliesOmitted() > 0:
		return fmt.Sprintf("the report leaves out %s", plural(rep.GetLegacyRepliesOmitted(), "legacy reply", "legacy replies"))
	case rep.GetLegacyStatus() == nil:
		return "the report holds no legacy status"
	case !streaming(md) && rep.GetLegacyStatus().GetCode() == "OK" && len(rep.GetLegacyReplies()) == 0:
		return "the report holds no legacy reply"
	case streaming(md) && int64(len(rep.GetLegacyReplies())) != rep.GetLegacyMessages():
		return fmt.Sprintf("the report holds %s of the %s legacy replies", count(int64(len(rep.GetLegacyReplies()))), count(rep.GetLegacyMessages()))
	}
	return ""
}

// decodeAll decodes recorded messages, which must be of type want.
func (rp *replayer) decodeAll(anys []*anypb.Any, want protoreflect.MessageDescriptor, what string) ([]proto.Message, error) {
	out := make([]proto.Message, 0, len(anys))
	for i, a := range anys {
		name := protoreflect.FullName(a.GetTypeUrl()[lastSlash(a.GetTypeUrl())+1:])
		if name != want.FullName() {
			return nil, fmt.Errorf("%s %d is a %s; the method's is %s", what, i, clean(string(name), maxNameLen), want.FullName())
		}
		m := dynamicpb.NewMessage(want)
		if err := (proto.UnmarshalOptions{Resolver: rp.types}).Unmarshal(a.GetValue(), m); err != nil {
			return nil, fmt.Errorf("%s %d: %w", what, i, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func streaming(md protoreflect.MethodDescriptor) bool {
	return md.IsStreamingClient() || md.IsStreamingServer()
}

func lastSlash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}

// differFor returns the comparison of a method's replies: the diff options
// of its rule in --config, --ignore, --list-key, --redact, every debug_redact field known ignored
// (the recorded replies have them cleared, so any value the candidate
// gives them would differ), and Any payloads resolved with the registry.
func (rp *replayer) differFor(md protoreflect.MethodDescriptor, rule *parallelrunv1.MethodRule) (*methodDiffer, error) {
	name := string(md.FullName())
	files := rp.types.fileCount()
	if d := rp.differs[name]; d != nil && d.files == files {
		return d, nil
	}
	d, err := protodiff.New(slices.Concat(interceptor.DiffOptions(rule.GetDiff()), rp.flags.diffOptions(), []protodiff.Option{
		protodiff.WithAnyResolver(rp.types),
		protodiff.WithIgnoredFields(rp.types.redactedFields()...),
	})...)
	if err != nil {
		return nil, fmt.Errorf("the comparison of %s: %w", name, err)
	}
	for _, p := range rp.flags.paths() {
		if rp.pathFits[p] {
			continue
		}
		if check, err := protodiff.New(protodiff.WithAnyResolver(rp.types), protodiff.WithIgnoredPaths(p)); err == nil && check.Check(md.Output()) == nil {
			rp.pathFits[p] = true
		}
	}
	md2 := &methodDiffer{d: d, files: files}
	rp.differs[name] = md2
	return md2, nil
}

// ruleFor returns the rule of cfg that applies to a method, as the
// interceptor picks it: the method's own pattern, else its service's,
// else "*"; nil when none matches or there is no configuration.
func ruleFor(cfg *parallelrunv1.Config, md protoreflect.MethodDescriptor) *parallelrunv1.MethodRule {
	full := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
	service := "/" + string(md.Parent().FullName()) + "/*"
	var best *parallelrunv1.MethodRule
	rank := 0
	for _, r := range cfg.GetMethods() {
		n := 0
		switch r.GetPattern() {
		case full:
			n = 3
		case service:
			n = 2
		case "*":
			n = 1
		}
		if n > rank {
			best, rank = r, n
		}
	}
	return best
}
