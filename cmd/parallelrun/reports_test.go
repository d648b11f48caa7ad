package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// reportLine is one report as sink.JSONL writes it.
func reportLine(t testing.TB, method string, outcome parallelrunv1.Outcome, at time.Time) string {
	t.Helper()
	b, err := jsonOptions.Marshal(&parallelrunv1.Report{Method: method, Outcome: outcome, Time: timestamppb.New(at)})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t testing.TB, name string, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// readAll reads every report of the named inputs, as the commands do.
func readAll(t testing.TB, names []string, stdin io.Reader) (got []record, diag *diagnostics, stderr string) {
	t.Helper()
	ins, err := openInputs(names, stdin)
	if err != nil {
		t.Fatal(err)
	}
	defer closeInputs(ins)
	var errOut bytes.Buffer
	diag = &diagnostics{w: &errOut, progress: newProgress(&errOut, false, 0)}
	rr := newReportReader(ins, newLenient(nil), diag, false)
	for {
		rec, err := rr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec)
	}
	if cap(rr.buf) > maxLineBytes+2 {
		t.Errorf("the line buffer grew to %d bytes, past the bound", cap(rr.buf))
	}
	return got, diag, errOut.String()
}

var t0 = time.Date(2025, 11, 26, 10, 0, 0, 0, time.UTC)

func TestReadMergesByTime(t *testing.T) {
	const m = "pkg.S/M"
	match := parallelrunv1.Outcome_OUTCOME_MATCH
	a := writeFile(t, "a.jsonl", reportLine(t, m, match, t0), reportLine(t, m, match, t0.Add(2*time.Second)), reportLine(t, m, match, t0.Add(4*time.Second)))
	b := writeFile(t, "b.jsonl", reportLine(t, m, match, t0.Add(time.Second)), reportLine(t, m, match, t0.Add(2*time.Second)), reportLine(t, m, match, t0.Add(5*time.Second)))
	got, diag, _ := readAll(t, []string{a, b}, nil)
	var order []string
	for _, r := range got {
		order = append(order, fmt.Sprintf("%s:%d@%d", filepath.Base(r.in.name), r.line, r.rep.GetTime().AsTime().Sub(t0)/time.Second))
	}
	// Equal times keep the order of the files.
	want := "a.jsonl:1@0 b.jsonl:1@1 a.jsonl:2@2 b.jsonl:2@2 a.jsonl:3@4 b.jsonl:3@5"
	if strings.Join(order, " ") != want || diag.malformedN != 0 {
		t.Errorf("order %s, want %s (%d malformed)", strings.Join(order, " "), want, diag.malformedN)
	}
}

func TestReadMalformedLines(t *testing.T) {
	at := t0
	ok := reportLine(t, "pkg.S/M", parallelrunv1.Outcome_OUTCOME_MISMATCH, at)
	huge := `{"method":"pkg.S/M","outcome":"OUTCOME_MATCH","error":"` + strings.Repeat("x", 20<<20) + `"}`
	status := `{"time":"2026-11-26T10:00:00Z","methods":[{"method":"/pkg.S/M"}],"readiness":{"verdict":"VERDICT_READY"}}`
	path := writeFile(t, "r.jsonl",
		ok,
		`{"method": "pkg.S/M", "outcome": `, // cut short
		huge,
		status, // another message: no method, no outcome
		`{"method":"pkg.S/M","outcome":"OUTCOME_NO_SUCH","time":"2026-11-26T10:00:00Z"}`,
		`{"method":"pkg.S/M","outcome":"OUTCOME_MATCH","time":"2026-11-26T10:00:00Z","request":{"@type":"type.googleapis.com/their.v1.Request","id":"1","nested":{"a":[1,2]}}}`,
		"",
		"\x1b[2Jnot json",
		ok,
	)
	got, diag, stderr := readAll(t, []string{path}, nil)
	if len(got) != 3 || got[0].line != 1 || got[1].line != 6 || got[2].line != 9 {
		t.Fatalf("read %d reports, want lines 1, 6 and 9:\n%s", len(got), stderr)
	}
	if got[1].rep.GetRequest().GetTypeUrl() != "type.googleapis.com/their.v1.Request" || strings.Join(got[1].unresolved, " ") != "type.googleapis.com/their.v1.Request" {
		t.Errorf("a request of an unknown type reads as a placeholder: %v, unresolved %q", got[1].rep.GetRequest(), got[1].unresolved)
	}
	if diag.malformedN != 5 {
		t.Errorf("%d malformed lines, want 5", diag.malformedN)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i, prefix := range []string{
		path + ":2: proto:",
		path + ":3: line longer than 16 MiB, skipped",
		path + ":4: not a parallelrun.v1.Report: no method, no outcome",
		path + ":5: not a parallelrun.v1.Report: no outcome",
		path + `:8: proto:`,
	} {
		if i >= len(lines) || !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("stderr line %d: want %q...\n%s", i+1, prefix, stderr)
		}
	}
	if strings.Contains(stderr, "\x1b") {
		t.Errorf("an escape sequence of the input reached the terminal: %q", stderr)
	}
}

func TestReadStdin(t *testing.T) {
	in := strings.NewReader(reportLine(t, "pkg.S/M", parallelrunv1.Outcome_OUTCOME_MATCH, t0) + "\n" +
		reportLine(t, "pkg.S/N", parallelrunv1.Outcome_OUTCOME_MATCH, t0)) // no final newline
	for _, names := range [][]string{nil, {"-"}} {
		got, _, _ := readAll(t, names, strings.NewReader(""))
		if len(got) != 0 {
			t.Fatalf("empty stdin: %d reports", len(got))
		}
		in.Seek(0, io.SeekStart)
		got, diag, _ := readAll(t, names, in)
		if len(got) != 2 || got[1].rep.GetMethod() != "pkg.S/N" || got[1].in.name != "stdin" || diag.malformedN != 0 {
			t.Fatalf("names %q: %d reports", names, len(got))
		}
	}
	if _, err := openInputs([]string{"-", "-"}, strings.NewReader("")); err == nil {
		t.Error("standard input twice must be an error")
	}
	if _, err := openInputs([]string{t.TempDir()}, nil); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("a directory: %v", err)
	}
}

// The names of inputs are printed cleaned, in the errors of opening them
// too, where the os package's error would repeat them raw.
func TestInputNamesCleaned(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "\x1b]0;title\x07missing.jsonl")
	_, err := openInputs([]string{missing}, nil)
	want := clean(missing, maxNameLen) + ": open: no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	long := filepath.Join(dir, strings.Repeat("n", 150), strings.Repeat("n", 150), "\x1b[2J.jsonl")
	if err := os.MkdirAll(filepath.Dir(long), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(long, []byte("not a report\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, diag, stderr := readAll(t, []string{long}, nil)
	if want := clean(long, maxNameLen) + ":1: proto:"; diag.malformedN != 1 || !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr %q, want %q...", stderr, want)
	}
}

func TestProgress(t *testing.T) {
	var w bytes.Buffer
	now := t0
	p := newProgress(&w, true, 2<<20)
	p.now = func() time.Time { return now }
	p.update(1<<20, 1234)
	p.update(1<<20+1, 1235) // within 100 ms: not drawn
	now = now.Add(progressInterval)
	p.update(2<<20, 2000)
	p.clear()
	want := "\rreading: 1.0 MiB of 2.0 MiB (50%), 1,234 reports\x1b[K" +
		"\rreading: 2.0 MiB of 2.0 MiB (100%), 2,000 reports\x1b[K" +
		"\r\x1b[K"
	if w.String() != want {
		t.Errorf("progress wrote %q, want %q", w.String(), want)
	}
	var off bytes.Buffer
	p = newProgress(&off, false, 0)
	p.update(1, 1)
	p.clear()
	if off.Len() != 0 {
		t.Errorf("progress off wrote %q", off.String())
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567", 100000: "100,000"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestPercent(t *testing.T) {
	for r, want := range map[float64]string{0: "0%", 1: "100%", 0.5: "50%", 0.015: "1.5%", 0.0085: "0.85%", 0.00012: "0.012%", 0.000001: "0.0001%", 1e-9: "1e-07%"} {
		if got := percent(r); got != want {
			t.Errorf("percent(%v) = %q, want %q", r, got, want)
		}
	}
}
