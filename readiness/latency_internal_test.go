package readiness

import (
	"math"
	"testing"
	"time"
)

// Every latency from 1µs to the last bin's start is within 2% of what its
// bin stands for: 1.96% by construction, plus the rounding of the
// midpoint to a whole nanosecond; and the bins are in order.
func TestBinError(t *testing.T) {
	worst := 0.0
	top := int64(float64(minLatency) * math.Pow(gamma, numBins-1))
	for v := float64(minLatency); int64(v) < top; v *= 1.0003 {
		ns := int64(v)
		e := math.Abs(float64(binValue[binOf(ns)]-ns)) / float64(ns)
		worst = max(worst, e)
		if e > 0.02 {
			t.Fatalf("%v in bin %d, which stands for %v: %.3f%% off", time.Duration(ns), binOf(ns), time.Duration(binValue[binOf(ns)]), 100*e)
		}
	}
	t.Logf("worst error %.3f%%; the last bin starts at %v", 100*worst, time.Duration(top))
	for i := 1; i < numBins; i++ {
		if binValue[i] <= binValue[i-1] {
			t.Fatalf("bin %d stands for %d, bin %d for %d", i-1, binValue[i-1], i, binValue[i])
		}
	}
	if binOf(0) != 0 || binOf(-1) != 0 || binOf(math.MaxInt64) != numBins-1 {
		t.Error("a latency out of range is not in an end bin")
	}
}

// A bin whose count reaches the largest uint32 goes on in a second one.
func TestHistOverflow(t *testing.T) {
	h := hist{{i: 7, n: math.MaxUint32 - 1}}
	h.add(int64(binValue[7]))
	h.add(int64(binValue[7]))
	h.add(int64(binValue[3]))
	want := hist{{i: 3, n: 1}, {i: 7, n: math.MaxUint32}, {i: 7, n: 1}}
	if len(h) != len(want) {
		t.Fatalf("%v, want %v", h, want)
	}
	for i := range h {
		if h[i] != want[i] {
			t.Fatalf("%v, want %v", h, want)
		}
	}
	var acc [numBins]uint64
	if n := h.addTo(&acc); n != math.MaxUint32+2 || acc[7] != math.MaxUint32+1 {
		t.Errorf("%d latencies, %d in bin 7", n, acc[7])
	}
	if m := (hist{}).merge(h); len(m) != 3 || m[1].n != math.MaxUint32 {
		t.Errorf("merged: %v", m)
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{count(0), "0"},
		{count(999), "999"},
		{count(1000), "1,000"},
		{count(12340), "12,340"},
		{count(-1234567), "-1,234,567"},
		{count(math.MaxInt64), "9,223,372,036,854,775,807"},
		{duration(2 * time.Hour), "2h"},
		{duration(3*time.Hour + 12*time.Minute + 31*time.Second), "3h13m"},
		{duration(12 * time.Minute), "12m"},
		{duration(12*time.Minute + 5*time.Second + 300*time.Millisecond), "12m5s"},
		{duration(1254 * time.Millisecond), "1.25s"},
		{duration(35123456 * time.Nanosecond), "35.12ms"},
		{duration(850 * time.Microsecond), "850µs"},
		{duration(0), "0s"},
		{percent(0), "0%"},
		{percent(1), "100%"},
		{percent(0.125), "12.5%"},
		{percent(1.0 / 7), "14.29%"},
		{percent(0.0052), "0.52%"},
		{percent(0.000012), "0.0012%"},
		{ratio(2.4), "2.4x"},
		{ratio(3), "3x"},
		{ratio(1.005), "1x"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
