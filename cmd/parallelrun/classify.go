package main

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/parallelrun/grpc-parallelrun/interceptor"
	"github.com/parallelrun/grpc-parallelrun/protodiff"
	"github.com/parallelrun/grpc-parallelrun/sink"
)

// pathResult is one path of a replayed call: a difference now, one
// recorded, or both.
type pathResult struct {
	Path  string `json:"path"`
	Field string `json:"field"`
	Kind  string `json:"kind"`
	// The values now, or, for a fixed difference, as recorded.
	Legacy    string `json:"legacy"`
	Candidate string `json:"candidate"`
	// For a difference still there: the candidate's value as recorded.
	RecordedCandidate string `json:"recorded_candidate,omitempty"`
	// For a recorded difference that the replay cannot check: why.
	Why string `json:"why,omitempty"`
}

// ReplayResult is what a replayed call came to against its report.
type ReplayResult struct {
	CandidateStatus string       `json:"candidate_status"`
	Replies         int          `json:"replies"`
	LatencyMS       float64      `json:"latency_ms"`
	Fixed           []pathResult `json:"fixed,omitempty"`
	StillDifferent  []pathResult `json:"still_different,omitempty"`
	New             []pathResult `json:"new,omitempty"`
	// Recorded differences that cannot be checked: at --ignore paths, or
	// in debug_redact fields, cleared when recorded.
	NotChecked []pathResult `json:"not_checked,omitempty"`
	// Differences at fields the report holds as noise, not counted.
	Noise int `json:"noise,omitempty"`
	// The recorded differences, or those found now, were cut at a limit:
	// a difference may seem new or fixed for it.
	RecordedTruncated bool   `json:"recorded_truncated,omitempty"`
	Truncated         bool   `json:"truncated,omitempty"`
	Incomplete        string `json:"incomplete,omitempty"`
}

func (r *ReplayResult) fixed() bool { return len(r.StillDifferent) == 0 && len(r.New) == 0 }

// classify sorts the differences found now and those the report recorded
// into fixed, still different and new, by path.
func (j *job) classify(rp *replayer, a answer) *ReplayResult {
	res := &ReplayResult{
		CandidateStatus:   codeName(a.code),
		Replies:           a.replies,
		LatencyMS:         float64(a.latency.Microseconds()) / 1000,
		RecordedTruncated: j.rec.rep.GetDifferencesTruncated(),
		Truncated:         a.truncated,
		Incomplete:        a.incomplete,
	}
	recorded := map[string]int{}
	for i, d := range j.rec.rep.GetDifferences() {
		if _, dup := recorded[d.GetPath()]; !dup {
			recorded[d.GetPath()] = i
		}
	}
	noise := map[string]bool{}
	for _, d := range j.rec.rep.GetNoise() {
		noise[d.GetField()] = true
	}
	seen := map[string]bool{}
	for _, d := range a.diffs {
		d = j.redact(d)
		pr := pathResult{Path: d.Path, Field: d.Field, Kind: d.Kind.String(), Legacy: d.Legacy, Candidate: d.Candidate}
		if i, ok := recorded[d.Path]; ok {
			seen[d.Path] = true
			pr.RecordedCandidate = j.rec.rep.GetDifferences()[i].GetCandidate()
			res.StillDifferent = append(res.StillDifferent, pr)
			continue
		}
		if noise[d.Field] {
			res.Noise++
			continue
		}
		res.New = append(res.New, pr)
	}
	for _, d := range j.rec.rep.GetDifferences() {
		if seen[d.GetPath()] {
			continue
		}
		seen[d.GetPath()] = true
		pr := pathResult{Path: d.GetPath(), Field: d.GetField(), Kind: sink.KindName(d.GetKind()), Legacy: d.GetLegacy(), Candidate: d.GetCandidate()}
		if pr.Why = rp.unchecked(j.md, d.GetField()); pr.Why != "" {
			res.NotChecked = append(res.NotChecked, pr)
			continue
		}
		res.Fixed = append(res.Fixed, pr)
	}
	return res
}

// redact hides the values of a difference at, below or above a field
// whose values the reports showed redacted, or that --redact names: the
// replay compares with its own options, which need not redact what the
// recorded run's did.
func (j *job) redact(d protodiff.Difference) protodiff.Difference {
	for _, f := range j.redacted {
		if within(d.Field, f) || within(f, d.Field) {
			if d.Legacy != "" {
				d.Legacy = protodiff.Redacted
			}
			if d.Candidate != "" {
				d.Candidate = protodiff.Redacted
			}
			break
		}
	}
	return d
}

// within says whether the index-free path field is path or below it. The
// root (the empty path) holds everything.
func within(field, path string) bool {
	return path == "" || field == path || strings.HasPrefix(field, path+".")
}

// unchecked says why a recorded difference at field cannot be checked by
// the replay, or "": it is in the response headers, at an --ignore path,
// or in a debug_redact field, which the recorded replies have cleared.
func (rp *replayer) unchecked(md protoreflect.MethodDescriptor, field string) string {
	if field == interceptor.HeaderPath {
		return "response headers are not compared by a replay"
	}
	for _, p := range rp.flags.ignore {
		if within(field, p) {
			return "ignored (--ignore " + p + ")"
		}
	}
	if rp.throughRedacted(md.Output(), field) {
		return "a debug_redact field, cleared in the recorded replies"
	}
	return ""
}

// throughRedacted says whether the index-free path field of a message of
// type md passes through a field marked debug_redact. Paths it cannot
// follow (unknown fields, types not found) are taken as not.
func (rp *replayer) throughRedacted(md protoreflect.MessageDescriptor, field string) bool {
	for rest := field; rest != "" && md != nil; {
		var seg string
		if strings.HasPrefix(rest, "(") {
			end := strings.IndexByte(rest, ')')
			if end < 0 {
				return false
			}
			seg, rest = rest[1:end], strings.TrimPrefix(rest[end+1:], ".")
			name := protoreflect.FullName(seg)
			if md.FullName() == "google.protobuf.Any" {
				mt, err := rp.types.FindMessageByName(name)
				if err != nil {
					return false
				}
				md = mt.Descriptor()
				continue
			}
			xt, err := rp.types.FindExtensionByName(name)
			if err != nil {
				return false
			}
			fd := xt.TypeDescriptor()
			if isRedacted(fd) {
				return true
			}
			md = fieldMessage(fd)
			continue
		}
		seg, rest, _ = strings.Cut(rest, ".")
		fd := md.Fields().ByName(protoreflect.Name(seg))
		if fd == nil {
			return false
		}
		if isRedacted(fd) {
			return true
		}
		md = fieldMessage(fd)
	}
	return false
}

func fieldMessage(fd protoreflect.FieldDescriptor) protoreflect.MessageDescriptor {
	if fd.IsMap() {
		return fd.MapValue().Message()
	}
	return fd.Message()
}

func isRedacted(fd protoreflect.FieldDescriptor) bool {
	opts, ok := fd.Options().(*descriptorpb.FieldOptions)
	return ok && opts.GetDebugRedact()
}
