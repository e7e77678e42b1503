package main

import (
	"math"
	"slices"
	"time"
)

// Dist summarises a set of durations, in milliseconds.
type Dist struct {
	N    int     `json:"n"`
	Min  float64 `json:"min_ms"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

// ms converts a duration to fractional milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// round3 keeps JSON readable: microsecond resolution is plenty.
func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// percentile is the nearest-rank percentile of sorted values (p in 0..100).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

// summarize computes a Dist over values in milliseconds.
func summarize(values []float64) Dist {
	if len(values) == 0 {
		return Dist{}
	}
	s := slices.Clone(values)
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	return Dist{
		N:    len(s),
		Min:  round3(s[0]),
		Mean: round3(sum / float64(len(s))),
		P50:  round3(percentile(s, 50)),
		P90:  round3(percentile(s, 90)),
		P99:  round3(percentile(s, 99)),
		Max:  round3(s[len(s)-1]),
	}
}

// field extracts one float per sample.
func field[T any](samples []T, f func(T) float64) []float64 {
	out := make([]float64, 0, len(samples))
	for _, s := range samples {
		out = append(out, f(s))
	}
	return out
}
