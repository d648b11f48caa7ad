package statuspage

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0", 7: "7", 999: "999", 1000: "1,000", 12345: "12,345", 123456: "123,456", 1234567: "1,234,567",
		-1: "-1", -1000: "-1,000", -123456: "-123,456",
		math.MaxInt64: "9,223,372,036,854,775,807", math.MinInt64: "-9,223,372,036,854,775,808",
	} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		r    float64
		want string
	}{
		{0, "0%"}, {1, "100%"}, {0.5, "50%"}, {0.0123, "1.23%"}, {0.001, "0.1%"}, {41.0 / 9911, "0.41%"},
		{0.0001, "0.01%"}, {0.00001, "<0.01%"}, {math.SmallestNonzeroFloat64, "<0.01%"},
		{math.NaN(), "–"}, {math.Inf(1), "–"}, {math.Inf(-1), "–"},
		{-0.5, "-50%"},
	} {
		if got := percent(tc.r); got != tc.want {
			t.Errorf("percent(%v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestLatency(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                         "0s",
		-time.Millisecond:         "-1ms",
		850 * time.Nanosecond:     "850ns",
		850 * time.Microsecond:    "850µs",
		12345600:                  "12.3ms",
		123456789:                 "123ms",
		1234567890:                "1.23s",
		81 * time.Millisecond:     "81ms",
		2*time.Minute + 5*1e8 + 7: "2m1s",
	} {
		if got := latency(d); got != want {
			t.Errorf("latency(%d) = %q, want %q", d, got, want)
		}
	}
}

func TestSpan(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                "0s",
		500 * time.Millisecond:           "500ms",
		45 * time.Second:                 "45s",
		4*time.Minute + 12*time.Second:   "4m12s",
		time.Hour:                        "1h",
		6*time.Hour + 30*time.Minute:     "6h30m",
		50*time.Hour + 59*time.Minute:    "2d2h",
		-(90 * time.Second):              "-1m30s",
		time.Duration(math.MaxInt64):     "106751d23h",
		time.Duration(math.MinInt64 + 1): "-106751d23h",
	} {
		if got := span(d); got != want {
			t.Errorf("span(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestCut(t *testing.T) {
	exact := strings.Repeat("é", MaxShown)
	for _, tc := range []struct {
		in   string
		want text
	}{
		{"", text{}},
		{"abc", text{Show: "abc"}},
		{exact, text{Show: exact}},
		{exact + "x", text{Show: exact + "…", Full: exact + "x"}},
		{"a\xffb", text{Show: "a\uFFFDb"}},
	} {
		if got := cut(tc.in); got != tc.want {
			t.Errorf("cut(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestValidTraceID(t *testing.T) {
	for id, want := range map[string]bool{
		"4bf92f3577b34da6a3ce929d0e0e4736":  true,
		"00000000000000000000000000000001":  true,
		"00000000000000000000000000000000":  false,
		"4BF92F3577B34DA6A3CE929D0E0E4736":  false,
		"4bf92f3577b34da6a3ce929d0e0e473":   false,
		"4bf92f3577b34da6a3ce929d0e0e47366": false,
		"4bf92f3577b34da6a3ce929d0e0e473g":  false,
		"":                                  false,
	} {
		if got := validTraceID(id); got != want {
			t.Errorf("validTraceID(%q) = %v, want %v", id, got, want)
		}
	}
}
