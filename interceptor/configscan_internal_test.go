package interceptor

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// The scan names every key, element and map entry by its JSON path, with
// JSON names whichever way the file spells them, on the line it is on.
func TestScanKeys(t *testing.T) {
	data := `{"disabled": false,
  "methods": [
    {"pattern": "*", "sample_rate": 1},
    {
      "pattern": "/a.B/C",
      "diff": {
        "ignored_paths": ["x",
          "y"],
        "listKeys": {"items": "sku", "a\"b": "id"},
        "floatTolerances": [{"path": "p"}]
      },
      "unknownKey": {"nested": [1, {"deeper": 2}]}
    }
  ]
}`
	var got []string
	scanKeys([]byte(data), func(path string, line int) bool {
		got = append(got, fmt.Sprintf("%d %s", line, path))
		return true
	})
	want := []string{
		"1 disabled",
		"2 methods",
		"3 methods[0]", "3 methods[0].pattern", "3 methods[0].sampleRate",
		"4 methods[1]", "5 methods[1].pattern", "6 methods[1].diff",
		"7 methods[1].diff.ignoredPaths", "7 methods[1].diff.ignoredPaths[0]", "8 methods[1].diff.ignoredPaths[1]",
		`9 methods[1].diff.listKeys`, `9 methods[1].diff.listKeys["items"]`, `9 methods[1].diff.listKeys["a\"b"]`,
		"10 methods[1].diff.floatTolerances", "10 methods[1].diff.floatTolerances[0]", "10 methods[1].diff.floatTolerances[0].path",
		"12 methods[1].unknownKey", "12 methods[1].unknownKey.nested", "12 methods[1].unknownKey.nested[0]",
		"12 methods[1].unknownKey.nested[1]", "12 methods[1].unknownKey.nested[1].deeper",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("scanned:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for path, line := range map[string]int{
		"methods[1].diff.ignoredPaths[1]": 8,
		"methods[1].sampleRate":           4, // not written: its rule's line
		"methods[7].pattern":              2, // no such rule: the list's
		"readiness":                       0,
	} {
		if got := lineOf([]byte(data), path); got != line {
			t.Errorf("lineOf(%s) = %d, want %d", path, got, line)
		}
	}
}

// The scan follows no deeper than its bound, on input no parser checked.
func TestScanKeysDepth(t *testing.T) {
	n := 0
	deep := strings.Repeat(`{"a": [`, 100_000)
	scanKeys([]byte(deep), func(string, int) bool { n++; return true })
	if n > 2*maxScanDepth {
		t.Errorf("%d keys visited", n)
	}
}

// What ParseConfig remembers of each configuration goes with it.
func TestOriginsGoWithTheirConfigurations(t *testing.T) {
	count := func() int {
		n := 0
		origins.Range(func(any, any) bool { n++; return true })
		return n
	}
	before := count()
	for i := range 1000 {
		if _, err := ParseConfig(fmt.Sprint("c", i, ".json"), []byte(`{"methods": [{"pattern": "*", "sampleRate": 1}]}`)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for count() > before+10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d origins still remembered after their configurations were collected", count()-before)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	cfg, err := ParseConfig("kept.json", []byte(`{"methods": [{"pattern": "*", "sampleRate": 1, "noise": {"probeRate": 1, "secondary": "b"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	if o := originOf(cfg); o == nil || o.file != "kept.json" || o.lines["methods[0].noise.secondary"] != 1 {
		t.Errorf("origin of a live configuration: %+v", o)
	}
	if o := originOf(&parallelrunv1.Config{}); o != nil {
		t.Errorf("origin of a configuration built in code: %+v", o)
	}
}
