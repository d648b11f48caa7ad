package readiness

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/parallelrun/grpc-parallelrun/internal/termtext"
)

// count writes n with thousands separators: 12,340.
func count(n int64) string { return termtext.Count(n) }

// duration writes d as precisely as a person reads it: minutes for hours
// (3h12m, 2h), seconds for minutes (12m5s), two decimals below (1.25s,
// 35.12ms).
func duration(d time.Duration) string {
	var s string
	switch a := d.Abs(); {
	case a >= time.Hour:
		s = d.Round(time.Minute).String()
	case a >= time.Minute:
		s = d.Round(time.Second).String()
	case a >= time.Second:
		s = d.Round(10 * time.Millisecond).String()
	case a >= time.Millisecond:
		s = d.Round(10 * time.Microsecond).String()
	case a >= time.Microsecond:
		s = d.Round(10 * time.Nanosecond).String()
	default:
		s = d.String()
	}
	// 2h0m0s reads 2h, 12m0s 12m.
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// percent writes a share as a percentage with two decimals, or two
// significant digits when smaller than 1%, so that a small rate never
// reads as 0%: 12.5%, 0.52%, 0.0012%.
func percent(r float64) string {
	v := r * 100
	prec := 2
	if v > 0 && v < 1 {
		prec = 1 - int(math.Floor(math.Log10(v)))
	}
	return trimZeros(strconv.FormatFloat(v, 'f', prec, 64)) + "%"
}

// ratio writes a ratio with two decimals: 2.4x.
func ratio(r float64) string {
	return trimZeros(strconv.FormatFloat(r, 'f', 2, 64)) + "x"
}

func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}
