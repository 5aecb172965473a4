//go:build knownbreaks

package detect

// Known breaks of the order-independence promise found by review and not
// fixed yet (issue #10's notes): each fails today. They are kept out of
// the default build so that CI stays meaningful, and run with
//
//	go test -tags knownbreaks -run TestKnownBreak ./detect/
//
// Move a test to prop2_min_test.go when its break is fixed.

import (
	"math/rand/v2"
	"testing"
)

// TestKnownBreakEvictionAllBusy: with a group limit of 2, every group in
// memory busy in the batch (episodes to report), one is evicted anyway;
// the correction of its next event leaves an extra finding (seed 351 of
// TestProp2Random).
func TestKnownBreakEvictionAllBusy(t *testing.T) {
	s := genScen(rand.New(rand.NewPCG(351, 99)), []string{"count", "sum", "dist", "match", "seq"})
	if !s.check(t) {
		t.Errorf("seed 351 differs from time order:\n%s", s)
	}
}
