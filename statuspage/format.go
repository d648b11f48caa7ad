package statuspage

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// MaxShown is how many characters of a value the page shows: a longer one
// is cut to this length and ends in "…", and the whole value is in the
// element's title, shown on hover. Values come from the replies of an
// unfinished service and can be long (protodiff cuts them at 256 bytes);
// cut, they keep the tables readable.
const MaxShown = 80

// text is a value to show: Full is set only when Show was cut from it.
type text struct {
	Show, Full string
}

func cut(s string) text {
	// Invalid UTF-8 would be shown by the browser as replacement
	// characters anyway; replacing it here keeps the cut on a boundary.
	s = strings.ToValidUTF8(s, "\uFFFD")
	n := 0
	for i := range s {
		if n == MaxShown {
			return text{Show: s[:i] + "…", Full: s}
		}
		n++
	}
	return text{Show: s}
}

// count writes n with thousands separators: 12,345.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	digits := s
	if n < 0 {
		digits = s[1:]
	}
	if len(digits) <= 3 {
		return s
	}
	var b strings.Builder
	if n < 0 {
		b.WriteByte('-')
	}
	first := len(digits) % 3
	if first == 0 {
		first = 3
	}
	b.WriteString(digits[:first])
	for i := first; i < len(digits); i += 3 {
		b.WriteByte(',')
		b.WriteString(digits[i : i+3])
	}
	return b.String()
}

// percent writes a share in [0, 1] as a percentage with at most two
// decimals, never rounding a small non-zero share down to 0.
func percent(r float64) string {
	switch {
	case math.IsNaN(r) || math.IsInf(r, 0):
		return "–"
	case r == 0:
		return "0%"
	case r > 0 && r < 0.0001:
		return "<0.01%"
	}
	s := strconv.FormatFloat(r*100, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}

// latency writes d to three significant digits: 850µs, 12.3ms, 1.25s.
func latency(d time.Duration) string {
	if d <= 0 {
		return d.String()
	}
	unit := time.Duration(1)
	for d/unit >= 1000 && unit < time.Second {
		unit *= 10
	}
	return d.Round(unit).String()
}

// span writes a long duration in its two largest units: 3d4h, 2h5m, 45s.
func span(d time.Duration) string {
	if d < 0 {
		// -math.MinInt64 is itself: the most negative duration is shown
		// a nanosecond shorter.
		return "-" + span(-max(d, -math.MaxInt64))
	}
	if d < time.Second {
		return latency(d)
	}
	s := int64(d / time.Second)
	days, hours, mins, secs := s/86400, s/3600%24, s/60%60, s%60
	switch {
	case days > 0:
		return strconv.FormatInt(days, 10) + "d" + unitIf(hours, "h")
	case hours > 0:
		return strconv.FormatInt(hours, 10) + "h" + unitIf(mins, "m")
	case mins > 0:
		return strconv.FormatInt(mins, 10) + "m" + unitIf(secs, "s")
	}
	return strconv.FormatInt(secs, 10) + "s"
}

func unitIf(n int64, unit string) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10) + unit
}

// validTraceID reports whether id is a trace ID as W3C Trace Context and
// OpenTelemetry write it: 32 lowercase hex digits, not all zero. Only such
// an ID is put into a link, so that a hostile one cannot change the link's
// target.
func validTraceID(id string) bool {
	if len(id) != 32 {
		return false
	}
	zero := true
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		default:
			return false
		}
		if c != '0' {
			zero = false
		}
	}
	return !zero
}
