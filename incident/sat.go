package incident

import "math"

// Sums of records saturate at the largest int64 instead of overflowing:
// one hostile event (records are bounded per event, not per sum) must not
// turn a total negative or make a store scan fail.

// SatAdd returns a+b, or the int64 bound it would overflow.
func SatAdd(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}

// SatUint64 converts an unsigned sum (ClickHouse's sum of a UInt64
// column), saturating at the largest int64.
func SatUint64(u uint64) int64 {
	if u > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(u)
}

// SatFloat converts a sum computed in floating point (SQLite's total()),
// saturating at the int64 bounds; NaN is 0.
func SatFloat(f float64) int64 {
	switch {
	case f != f:
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}
