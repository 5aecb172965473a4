package incident

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestSaturatingSums(t *testing.T) {
	for _, c := range []struct{ a, b, want int64 }{
		{1, 2, 3}, {math.MaxInt64, 1, math.MaxInt64}, {math.MaxInt64, math.MaxInt64, math.MaxInt64},
		{math.MinInt64, -1, math.MinInt64}, {math.MaxInt64, math.MinInt64, -1}, {-5, 3, -2}, {0, 0, 0},
	} {
		if got := SatAdd(c.a, c.b); got != c.want {
			t.Errorf("SatAdd(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	// Against big-number arithmetic in float for random operands.
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		a, b := int64(r.Uint64()), int64(r.Uint64())
		exact := float64(a) + float64(b)
		got := SatAdd(a, b)
		switch {
		case exact >= math.MaxInt64 && got != math.MaxInt64, exact < math.MinInt64 && got != math.MinInt64:
			t.Fatalf("SatAdd(%d, %d) = %d, the sum %g is out of range", a, b, got, exact)
		case exact > math.MinInt64 && exact < math.MaxInt64 && math.Abs(float64(got)-exact) > 4096:
			t.Fatalf("SatAdd(%d, %d) = %d, want about %g", a, b, got, exact)
		}
	}
	if SatUint64(math.MaxUint64) != math.MaxInt64 || SatUint64(42) != 42 {
		t.Error("SatUint64")
	}
	if SatFloat(1e30) != math.MaxInt64 || SatFloat(-1e30) != math.MinInt64 || SatFloat(math.NaN()) != 0 || SatFloat(1800) != 1800 {
		t.Error("SatFloat")
	}
	s := Scope{Tenants: []AffectedTenant{{Records: math.MaxInt64}, {Records: 10}}}
	if s.Records() != math.MaxInt64 {
		t.Errorf("Scope.Records() = %d, overflowed", s.Records())
	}
}
