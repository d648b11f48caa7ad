package readiness

import (
	"math"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	parallelrunv1 "github.com/parallelrun/grpc-parallelrun/proto/parallelrun/v1"
)

// Latencies are counted in a log-scale histogram: bin i holds the
// latencies in [1µs·γ^i, 1µs·γ^(i+1)) and stands for their harmonic
// midpoint 2LU/(L+U), which is within (γ-1)/(γ+1) = 1.96% of every value
// of the bin (2% once rounded to the nanosecond). numBins bins reach 1µs·γ^numBins, about 4.4h; latencies
// below 1µs count in the first bin and those above in the last.
const (
	gamma      = 1.04
	numBins    = 600
	minLatency = int64(time.Microsecond)
)

var (
	logGamma = math.Log(gamma)
	// binValue is what each bin stands for, in nanoseconds.
	binValue = func() (v [numBins]int64) {
		for i := range v {
			low := float64(minLatency) * math.Pow(gamma, float64(i))
			v[i] = int64(math.Round(low * 2 * gamma / (1 + gamma)))
		}
		return v
	}()
)

// binOf is the bin of a latency of ns nanoseconds.
func binOf(ns int64) int {
	if ns <= minLatency {
		return 0
	}
	i := int(math.Log(float64(ns)/float64(minLatency)) / logGamma)
	return min(max(i, 0), numBins-1)
}

// bin counts the latencies of one histogram bin.
type bin struct {
	i uint16
	n uint32
}

// hist is a sparse histogram: the bins that hold a latency, in order of
// i. Real latencies fill a few dozen bins, so a time bucket costs a few
// hundred bytes rather than the 2.4 KiB of a dense one; at most it holds
// every bin, 4.8 KiB. A bin that reaches the largest uint32 is followed
// by another of the same i, so that counts stay exact.
type hist []bin

func (h *hist) add(ns int64) {
	i := uint16(binOf(ns))
	s := *h
	j, _ := slices.BinarySearchFunc(s, i, func(b bin, i uint16) int { return int(b.i) - int(i) })
	for j < len(s) && s[j].i == i {
		if s[j].n < math.MaxUint32 {
			s[j].n++
			return
		}
		j++
	}
	*h = slices.Insert(s, j, bin{i: i, n: 1})
}

// addTo adds the bins of h to acc, and returns how many latencies they
// held.
func (h hist) addTo(acc *[numBins]uint64) uint64 {
	var n uint64
	for _, b := range h {
		acc[b.i] += uint64(b.n)
		n += uint64(b.n)
	}
	return n
}

// summary gives the percentiles of the latencies in acc, n of them. A
// percentile q is the value at rank ceil(q·n) in sorted order (the
// nearest-rank definition), given as the midpoint of its bin.
func summary(acc *[numBins]uint64, n uint64) *parallelrunv1.LatencySummary {
	s := &parallelrunv1.LatencySummary{Count: int64(min(n, math.MaxInt64))}
	if n == 0 {
		return s
	}
	qs := [...]uint64{50, 90, 99}
	var out [len(qs)]*durationpb.Duration
	var seen uint64
	k := 0
	for i := 0; i < numBins && k < len(qs); i++ {
		seen += acc[i]
		for k < len(qs) && seen >= rank(qs[k], n) {
			out[k] = durationpb.New(time.Duration(binValue[i]))
			k++
		}
	}
	s.P50, s.P90, s.P99 = out[0], out[1], out[2]
	return s
}

// rank is ceil(p·n/100), at least 1: the nearest-rank position of the
// p-th percentile of n values, in integers so that 0.9·10 is 9, not 9.000…1
// rounded up to 10, and without overflow.
func rank(p, n uint64) uint64 {
	r := n/100*p + (n%100*p+99)/100
	return max(r, 1)
}
