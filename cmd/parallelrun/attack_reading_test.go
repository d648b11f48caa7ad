package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// atkRun runs the command in process and turns a panic into a result, so
// that a crash fails the test that caused it with a message, not the
// whole test binary.
func atkRun(stdin io.Reader, args ...string) (code int, stdout, stderr string, panicked any) {
	var out, errOut bytes.Buffer
	func() {
		defer func() { panicked = recover() }()
		code = run(args, stdin, &out, &errOut)
	}()
	return code, out.String(), errOut.String(), panicked
}

// atkLine is a report as sink.JSONL writes it (protojson, proto names).
func atkLine(t testing.TB, r *parallelrunv1.Report) string {
	t.Helper()
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// atkCandidate starts a real gRPC server with server reflection on a
// loopback port, which serves nothing else: the tests here replay only
// matches, so no call is made to it.
func atkCandidate(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	reflection.Register(srv)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return lis.Addr().String()
}

// A service whose request or reply is one of protobuf's well-known types
// (rpc Now(google.protobuf.Empty) returns (google.protobuf.Timestamp), a
// configuration API answering google.protobuf.Struct, a lookup taking a
// google.protobuf.StringValue) has its messages written by sink.JSONL in
// the special JSON form of those types: {"@type": ..., "value": ...}.
// summary reads every Any with an empty placeholder type named after the
// type URL; protojson sees the well-known name, decodes the special form
// into the placeholder, which has none of the type's fields, and panics on
// a nil field descriptor. A gate that crashes on its own run's reports is
// the opposite of "never crash".
//
// Cause: cmd/parallelrun/types.go, lenient.FindMessageByURL, which makes a
// placeholder for any type URL, well-known ones included (summary passes
// no registry at all). Fix: resolve google.protobuf.* names from
// protoregistry.GlobalTypes (linking the well-known packages, or at least
// never naming a placeholder after a well-known type: read an unresolved
// well-known type as parallelrun.unresolved.Message).
func TestAttackSummaryWellKnownPayloads(t *testing.T) {
	at := time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC)
	st, err := structpb.NewStruct(map[string]any{"region": "eu", "limit": 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []proto.Message{
		wrapperspb.String("sku-1"),
		timestamppb.New(at),
		durationpb.New(1500 * time.Millisecond),
		st,
		structpb.NewNumberValue(3),
		&fieldmaskpb.FieldMask{Paths: []string{"quote.total"}},
		&emptypb.Empty{}, // holds up: its JSON form has no value to decode
	} {
		name := string(m.ProtoReflect().Descriptor().FullName())
		t.Run(name, func(t *testing.T) {
			payload, err := anypb.New(m)
			if err != nil {
				t.Fatal(err)
			}
			rep := &parallelrunv1.Report{
				Method:        "pkg.Clock/Now",
				Outcome:       parallelrunv1.Outcome_OUTCOME_MISMATCH,
				Time:          timestamppb.New(at),
				Request:       payload,
				LegacyReplies: []*anypb.Any{payload},
				LegacyStatus:  &parallelrunv1.Status{Code: "OK"},
			}
			line := atkLine(t, rep)
			code, stdout, stderr, p := atkRun(strings.NewReader(line+"\n"), "summary")
			if p != nil {
				t.Fatalf("summary panicked reading a report whose request and legacy reply are a %s:\n%v\nline: %s", name, p, line)
			}
			if !strings.Contains(stdout, "1 report read, 0 malformed lines") {
				t.Errorf("summary did not read the report whose request is a %s (exit %d):\n%s\n%s", name, code, stdout, stderr)
			}
		})
	}
}

// atkNestedAny is a report line whose request is google.protobuf.Any
// nested depth times, each level naming its type after its value (JSON
// keys may come in any order).
func atkNestedAny(depth int) string {
	var b strings.Builder
	b.WriteString(`{"method":"pkg.Svc/M","outcome":"OUTCOME_MATCH","time":"2026-03-02T15:00:00Z","request":`)
	for range depth {
		b.WriteString(`{"value":`)
	}
	b.WriteString(`{"@type":"type.googleapis.com/google.protobuf.Empty","value":{}}`)
	for range depth {
		b.WriteString(`,"@type":"type.googleapis.com/google.protobuf.Any"}`)
	}
	b.WriteString("}\n")
	return b.String()
}

// Reading a report costs time and memory quadratic in the nesting of its
// Any values: protojson, for each Any, scans ahead for "@type" (skipping
// the whole nested value when "@type" comes last) and then serializes the
// decoded inner message into the outer Any's bytes, which again holds
// every level below. A 60 KB line of 1,000 nested Anys allocates about
// 55 MB; 240 KB of 4,000 about 880 MB; the 16 MiB a line may have, nested
// to protojson's default limit of 10,000, several GB per line, and a file
// of such lines stalls the command for minutes. "Cost linear in input"
// does not hold for the reading of reports.
//
// replay reads with a resolver that knows google.protobuf.Any; summary
// does too once TestAttackSummaryWellKnownPayloads is fixed, and replay
// again with the service's own types that hold an Any field (the
// difftest Quote.detail).
//
// Cause: cmd/parallelrun/reports.go, newReportReader: the protojson
// options keep protojson's default RecursionLimit (10,000). Fix: a small
// RecursionLimit (a report is a few levels deep, its messages the depth of
// the service's types: 100 is plenty), so that the quadratic term is
// bounded by a constant; a deeper line is malformed.
func TestAttackNestedAnyCostIsLinear(t *testing.T) {
	cand := atkCandidate(t)
	allocated := func(depth int) (uint64, int) {
		line := atkNestedAny(depth)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		code, stdout, stderr, p := atkRun(strings.NewReader(line), "replay", "--candidate", cand, "--wait", "5s", "--progress=false")
		runtime.ReadMemStats(&after)
		if p != nil {
			t.Fatalf("replay panicked: %v", p)
		}
		if code == exitUsage {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		return after.TotalAlloc - before.TotalAlloc, len(line)
	}
	small, smallLen := allocated(500)
	large, largeLen := allocated(2000)
	t.Logf("%d bytes of line allocate %d KiB; %d bytes allocate %d KiB", smallLen, small>>10, largeLen, large>>10)
	// Four times the input: linear reading allocates about four times as
	// much, quadratic sixteen.
	if large > 8*small {
		t.Errorf("a line 4x as long (%d bytes, nested Anys) allocated %.1fx as much (%d MiB, %d bytes per byte of input): reading is quadratic in the nesting of Any values",
			largeLen, float64(large)/float64(small), large>>20, large/uint64(largeLen))
	}
}

// A file name is printed raw in the message of a malformed line, on
// standard error, which is a terminal when a person runs the gate: report
// files gathered from many client instances (parallelrun summary
// reports/*.jsonl) carry names that the instances chose, and a name with
// escape sequences rewrites the screen (here it clears it and writes a
// fake verdict) or the terminal's title. Everything else printed from the
// input goes through clean(), and replay's text output cleans the same
// file:line (replayprint.go, text: clean(l.Report, ...)); the
// diagnostics do not.
//
// Cause: cmd/parallelrun/reports.go, reportReader.read builds "where"
// from in.name, and diagnostics.malformed prints it without clean (the
// error after it is cleaned). Fix: clean(where, maxNameLen) in
// diagnostics.malformed, and the name in the errors of openInputs and of
// read.
func TestAttackFileNameEscapes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file names with control characters")
	}
	dir := t.TempDir()
	name := filepath.Join(dir, "\x1b[2J\x1b[Hoverall: READY\x1b]0;pwned\x07.jsonl")
	if err := os.WriteFile(name, []byte("not a report\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"summary", "replay"} {
		args := []string{cmd, name}
		if cmd == "replay" {
			args = append(args, "--candidate", atkCandidate(t), "--wait", "5s")
		}
		_, stdout, stderr, p := atkRun(strings.NewReader(""), args...)
		if p != nil {
			t.Fatalf("%s panicked: %v", cmd, p)
		}
		if strings.ContainsAny(stdout+stderr, "\x1b\x07") {
			t.Errorf("%s printed the control characters of a file name to the terminal:\nstderr: %q", cmd, stderr)
		}
	}
}

// atkPeakHeap samples the live heap every millisecond while f runs and
// returns the largest sample over the heap before f.
func atkPeakHeap(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	runtime.GC()
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peak uint64
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	f()
	close(stop)
	wg.Wait()
	if peak < base {
		return 0
	}
	return peak - base
}

// One line of a few MiB holds a report whose decoded form is about fifty
// times larger: "differences":[{},{},...] costs 3 bytes of JSON per
// element and about 140 bytes of heap once decoded (a *Difference and its
// pointer), and noise, requests and legacy_replies do the same. The
// documentation bounds the input by lines ("A line is at most 16 MiB ...
// Memory holds one line and one decoded report per file"), so a reader
// expects a few times 16 MiB per file; a 16 MiB line takes about 800 MiB,
// and since the merge holds the next report of every file at once, ten
// instance files that each start with such a line take 8 GiB before the
// first report is counted. The sink never writes such a report: the
// interceptor keeps at most interceptor.MaxStreamDifferences differences.
//
// Cause: cmd/parallelrun/reports.go, reportReader.decode unmarshals the
// whole line with protojson whatever it holds. Fix: bound what a line may
// decode to, before decoding: for instance a first pass with
// encoding/json's Decoder.Token (constant memory) that counts the
// elements of the report's lists and calls a line with more than the
// sink writes malformed; or a much smaller maxLineBytes with the
// amplification stated as the bound.
func TestAttackDecodedReportBoundedByLine(t *testing.T) {
	const elems = 1 << 20
	line := `{"method":"pkg.S/M","outcome":"OUTCOME_MISMATCH","time":"2026-03-02T15:00:00Z","differences":[` +
		strings.Repeat("{},", elems) + "{}]}\n"
	var code int
	var p any
	peak := atkPeakHeap(func() { code, _, _, p = atkRun(strings.NewReader(line), "summary", "--progress=false") })
	if p != nil {
		t.Fatalf("summary panicked: %v", p)
	}
	t.Logf("a line of %d KiB: exit %d, heap grew by %d MiB at most", len(line)>>10, code, peak>>20)
	if bound := uint64(8*len(line)) + 16<<20; peak > bound {
		t.Errorf("a line of %d KiB (a report with %d empty differences) took %d MiB of heap, %dx the line; more than 8x the line and 16 MiB",
			len(line)>>10, elems+1, peak>>20, peak/uint64(len(line)))
	}
}
