package main

import (
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/parallelrun/grpc-parallelrun/internal/termtext"
)

// jsonOptions are sink.JSONL's, so that what this command prints as JSON
// reads like the reports it reads.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true}

// count writes n with thousands separators: 1,234,567.
func count(n int64) string { return termtext.Count(n) }

// percent writes a rate in [0, 1] as a percentage with enough digits to
// tell a rare mismatch from none: 0%, 0.0012%, 0.85%, 1.5%, 100%.
func percent(r float64) string {
	var s string
	switch {
	case r == 0:
		return "0%"
	case r < 0.0001:
		s = strconv.FormatFloat(100*r, 'g', 2, 64)
	case r < 0.01:
		s = strconv.FormatFloat(100*r, 'f', 3, 64)
	default:
		s = strconv.FormatFloat(100*r, 'f', 1, 64)
	}
	if strings.Contains(s, ".") && !strings.Contains(s, "e") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s + "%"
}

// bytesText writes a size in bytes for the progress line.
func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// clean makes a string from the input safe to print on a terminal and
// short: a report file could hold escape sequences that rewrite the
// screen. Values are printed as the reports hold them, already redacted:
// this only guards the terminal.
func clean(s string, max int) string { return termtext.Clean(s, max) }

// Lengths at which printed strings are cut.
const (
	maxNameLen  = 200 // methods, paths, trace IDs, signatures
	maxValueLen = 300 // rendered values (protodiff cuts them at 256 bytes already)
	maxErrLen   = 500 // error messages, which may quote the input
)
