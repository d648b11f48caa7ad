package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
)

// jsonOptions are sink.JSONL's, so that what this command prints as JSON
// reads like the reports it reads.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true}

// count writes n with thousands separators: 1,234,567.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

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

// durationText writes a duration rounded to what a reader needs: 1.5ms,
// 2h3m0s.
func durationText(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
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
// short: control characters, invalid UTF-8 and other unprintable runes
// are escaped (a report file could hold escape sequences that rewrite the
// screen), and the result is cut after max runes. Values are printed as
// the reports hold them, already redacted: this only guards the terminal.
func clean(s string, max int) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); {
		if n == max {
			b.WriteString("…")
			break
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r):
			b.WriteRune(r)
		case r == '\u00a0':
			// protobuf's errors put a no-break space at random.
			b.WriteByte(' ')
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
		n++
	}
	return b.String()
}

// Lengths at which printed strings are cut.
const (
	maxNameLen  = 200 // methods, paths, trace IDs, signatures
	maxValueLen = 300 // rendered values (protodiff cuts them at 256 bytes already)
	maxErrLen   = 500 // error messages, which may quote the input
)
