package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/descriptorpb"
)

// shapeReport is a report line whose extra fields are given as JSON.
func shapeReport(extra string) string {
	return `{"method":"pkg.S/M","outcome":"OUTCOME_MISMATCH","time":"2026-03-02T15:00:00Z",` + extra + `}`
}

// elements is a JSON list of n copies of elem, joined by sep.
func elements(n int, elem, sep string) string {
	return "[" + strings.TrimSuffix(strings.Repeat(elem+sep, n), sep) + "]"
}

// nested is a JSON value nested depth levels of objects deep.
func nested(depth int) string {
	return strings.Repeat(`{"f":`, depth-1) + "{}" + strings.Repeat("}", depth-1)
}

func TestCheckShape(t *testing.T) {
	tooMany := "more than 10,000 elements in the report's lists"
	tooDeep := "nested more than 100 levels deep"
	for _, c := range []struct {
		name, line, want string
	}{
		{"plain", shapeReport(`"differences":[{"path":"a"}]`), ""},
		{"all lists at the bound", shapeReport(`"differences":` + elements(4000, "{}", ",") + `,"noise":` + elements(4000, "{}", ",") +
			`,"requests":` + elements(1000, `{"@type":"x/a.B"}`, ",") + `,"legacy_replies":` + elements(1000, "{}", ",")), ""},
		{"past the bound together", shapeReport(`"differences":` + elements(5000, "{}", ",") + `,"noise":` + elements(5001, "{}", ",")), tooMany},
		{"spaces between", shapeReport(`"differences": ` + elements(10_000, " {} ", " , ")), ""},
		{"spaces between, past the bound", shapeReport(`"differences": ` + elements(10_001, " {} ", " , ")), tooMany},
		{"a list given twice", shapeReport(`"differences":` + elements(6000, "{}", ",") + `,"differences":` + elements(6000, "{}", ",")), tooMany},
		{"scalars count too", shapeReport(`"differences":` + elements(10_001, "1", ",")), tooMany},
		{"empty lists", shapeReport(`"differences":[],"noise":[ ]`), ""},
		// Only the report's own lists count: the lists in a payload are
		// the service's, as long as its request limit lets them be.
		{"a payload's list", shapeReport(`"request":{"@type":"x/a.B","items":` + elements(50_000, "1", ",") + `}`), ""},
		{"brackets and commas in strings", shapeReport(`"error":"` + strings.Repeat(`[{,\"`, 30_000) + `","differences":[{}]`), ""},
		{"an escaped backslash ends no string", shapeReport(`"error":"\\","differences":` + elements(10_001, "{}", ",")), tooMany},
		{"at the depth bound", shapeReport(`"request":` + nested(99)), ""},
		{"past the depth bound", shapeReport(`"request":` + nested(100)), tooDeep},
		{"deep in lists", shapeReport(`"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100)), tooDeep},
		{"after the report", shapeReport("") + strings.Repeat("[", 200), ""},
		{"not JSON", "not a report", ""},
	} {
		err := checkShape([]byte(c.line))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

// The bounds hold when reports are read: a line past them is malformed,
// with a message that says which bound, and a line within them reads.
func TestReadBounds(t *testing.T) {
	path := writeFile(t, "bounds.jsonl",
		shapeReport(`"differences":`+elements(5000, `{"path":"a"}`, ",")+`,"noise":`+elements(5000, `{"path":"b"}`, ",")),
		shapeReport(`"differences":`+elements(5000, "{}", ",")+`,"noise":`+elements(5001, "{}", ",")),
		shapeReport(`"request":{"@type":"x/a.B","f":`+nested(99)+`}`),
		// Within what checkShape lets pass, but protojson counts the Any
		// and the message in it as two levels.
		shapeReport(`"request":{"@type":"x/a.B","f":`+nested(98)+`}`),
		shapeReport(`"request":{"@type":"x/a.B","f":`+nested(50)+`}`),
		// Long, and not JSON after a few thousand elements: protojson
		// says why.
		shapeReport(`"differences":`+elements(6000, "{}", ",")+`,"noise":[{} x]`),
	)
	got, diag, stderr := readAll(t, []string{path}, nil)
	if len(got) != 2 || got[0].line != 1 || got[1].line != 5 {
		t.Fatalf("read %d reports, want lines 1 and 5:\n%s", len(got), stderr)
	}
	if n, m := len(got[0].rep.GetDifferences()), len(got[0].rep.GetNoise()); n != 5000 || m != 5000 {
		t.Errorf("line 1 read with %d differences and %d noise, want 5,000 each", n, m)
	}
	if diag.malformedN != 4 {
		t.Errorf("%d malformed lines, want 4", diag.malformedN)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i, want := range []string{
		path + ":2: more than 10,000 elements in the report's lists",
		path + ":3: nested more than 100 levels deep",
		path + ":4: messages nested more than 100 levels deep",
		path + ":6: proto:",
	} {
		if i >= len(lines) || !strings.HasPrefix(lines[i], want) {
			t.Errorf("stderr line %d: want %q...\n%s", i+1, want, stderr)
		}
	}
}

// panickySource is a descriptor source that panics, as nothing in this
// command is known to do any more: it stands for whatever else may panic
// while a line is decoded.
type panickySource struct{}

func (panickySource) fileContaining(symbol string, _ func(string) bool) ([]*descriptorpb.FileDescriptorProto, error) {
	panic(fmt.Sprintf("asked for %s", symbol))
}

func (panickySource) describe() string { return "a source that panics" }

// A panic while one line is decoded makes that line malformed; the lines
// after it are read, and the registry, whose lock the panic went through,
// still serves.
func TestReadRecoversFromPanic(t *testing.T) {
	in := strings.Join([]string{
		shapeReport(`"request":{"@type":"type.googleapis.com/their.v1.Request","id":"1"}`),
		shapeReport(`"request":{"@type":"type.googleapis.com/google.protobuf.StringValue","value":"sku-1"}`),
	}, "\n")
	ins, err := openInputs(nil, strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	diag := &diagnostics{w: &errOut, progress: newProgress(&errOut, false, 0)}
	reg := newRegistry(panickySource{}, "test")
	rr := newReportReader(ins, newLenient(reg), diag, false)
	var got []record
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
	if len(got) != 1 || got[0].line != 2 || diag.malformedN != 1 {
		t.Fatalf("read %d reports and %d malformed lines, want line 2 and one malformed:\n%s", len(got), diag.malformedN, errOut.String())
	}
	if want := "stdin:1: the line could not be decoded (protojson panicked: asked for their.v1.Request)"; !strings.HasPrefix(errOut.String(), want) {
		t.Errorf("stderr %q, want %q...", errOut.String(), want)
	}
	if n := reg.fileCount(); n != 0 {
		t.Errorf("%d files registered", n)
	}
}
