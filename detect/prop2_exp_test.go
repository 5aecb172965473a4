package detect

// Exposure property tests from the second review: exposure histories in
// any order, with restarts and seeding, give the same windows.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/event"
)

const pExp = `format: 1
id: p-exp
title: e
severity: high
source: config
kind: exposure
condition: setting == "public_access"
exposure:
  safe: value != true
affected: store
`

type xscen struct {
	cs      []event.ConfigChange // arrival order
	cut     []bool
	restart int // batch index before which the engine restarts (-1: none)
	dropAt  time.Duration
}

func (s xscen) batches() []event.Batch {
	var out []event.Batch
	var b event.Batch
	for i, c := range s.cs {
		if i > 0 && s.cut[i] && b.Len() > 0 {
			out = append(out, b)
			b = event.Batch{}
		}
		b.Config = append(b.Config, c)
	}
	if b.Len() > 0 {
		out = append(out, b)
	}
	return out
}

func (s xscen) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "restart before batch %d, retention drops before +%v\n", s.restart, s.dropAt)
	bi := 0
	for i, c := range s.cs {
		m := " "
		if i == 0 || s.cut[i] {
			m = "|"
			if i > 0 {
				bi++
			}
		}
		fmt.Fprintf(&b, "  %s b%d %s t=+%v res=%s %s->%s\n", m, bi, c.ID, c.Time.Sub(t0), c.Resource.ID, c.Before, c.After)
	}
	return b.String()
}

func genX(rng *rand.Rand) xscen {
	var s xscen
	nres := 1 + rng.IntN(2)
	vals := []any{false, true}
	id := 0
	for r := range nres {
		res := fmt.Sprintf("res-%d", r)
		var state any
		if rng.IntN(2) == 0 {
			state = vals[rng.IntN(2)]
		}
		tm := time.Duration(0)
		for range 1 + rng.IntN(6) {
			if os.Getenv("PROP_XLONG") != "" {
				tm += time.Duration(1+rng.IntN(20*24)) * time.Hour
			} else {
				tm += time.Duration(1+rng.IntN(120)) * time.Minute
			}
			next := vals[rng.IntN(2)]
			before := state
			if rng.IntN(6) == 0 && os.Getenv("PROP_XCONSIST") == "" {
				before = nil
			}
			s.cs = append(s.cs, change(fmt.Sprintf("c%02d", id), at(tm), res, "public_access", before, next))
			id++
			state = next
		}
	}
	mode := rng.IntN(3)
	if os.Getenv("PROP_XLONG") != "" {
		mode = 1
	}
	switch mode {
	case 0:
		rng.Shuffle(len(s.cs), func(i, j int) { s.cs[i], s.cs[j] = s.cs[j], s.cs[i] })
	case 1:
		slices.SortFunc(s.cs, func(a, b event.ConfigChange) int { return a.Time.Compare(b.Time) })
	}
	if rng.IntN(4) == 0 { // a duplicate
		s.cs = append(s.cs, s.cs[rng.IntN(len(s.cs))])
	}
	s.cut = make([]bool, len(s.cs))
	for i := range s.cut {
		s.cut[i] = rng.IntN(2) == 0
	}
	s.restart = rng.IntN(len(s.batches()) + 1)
	if os.Getenv("PROP_XLONG") != "" && rng.IntN(2) == 0 {
		s.dropAt = time.Duration(rng.IntN(60*24)) * time.Hour
	}
	return s
}

func xref(t *testing.T, s xscen) []string {
	h := &harness{t: t, st: newMemStore(), clock: at(200 * 24 * time.Hour)}
	sorted := slices.Clone(s.cs)
	slices.SortStableFunc(sorted, func(a, b event.ConfigChange) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	h.feed(h.engineSet(customSet(t, pExp), Options{}), []event.Batch{{Config: sorted}})
	return describe(h.st.live())
}

func xrun(t *testing.T, s xscen, logit bool) []string {
	h := &harness{t: t, st: newMemStore(), clock: at(200 * 24 * time.Hour)}
	set := customSet(t, pExp)
	eng := h.engineSet(set, Options{})
	for i, b := range s.batches() {
		if i == s.restart {
			var newest time.Time
			for _, b := range s.batches()[:i] {
				for _, c := range b.Config {
					if c.Time.After(newest) {
						newest = c.Time
					}
				}
			}
			if s.dropAt > 0 && at(s.dropAt).Before(newest.Add(-31*24*time.Hour)) {
				h.st.DropBefore(at(s.dropAt))
			}
			eng = h.engineSet(set, Options{})
			var latest time.Time
			for _, b := range s.batches()[:i] {
				for _, c := range b.Config {
					if c.Time.After(latest) {
						latest = c.Time
					}
				}
			}
			if !latest.IsZero() {
				n := len(h.st.reports)
				if _, err := eng.Warm(context.Background(), latest, 30*24*time.Hour); err != nil {
					t.Fatal(err)
				}
				if logit {
					t.Logf("restart (warm up to +%v)", latest.Sub(t0))
					logReports(t, h, n)
				}
			}
		}
		n := len(h.st.reports)
		h.feed(eng, []event.Batch{b})
		if logit {
			t.Logf("batch %d", i)
			logReports(t, h, n)
		}
	}
	return describe(h.st.live())
}

func (s xscen) without(i int) xscen {
	c := s
	c.cs = slices.Delete(slices.Clone(s.cs), i, i+1)
	c.cut = slices.Delete(slices.Clone(s.cut), i, i+1)
	if c.restart > len(c.batches()) {
		c.restart = len(c.batches())
	}
	return c
}

func TestProp2ExposureRestart(t *testing.T) {
	n := 500
	if v := os.Getenv("PROP_N"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	fails := 0
	for k := range n {
		seed := uint64(k + 1)
		rng := rand.New(rand.NewPCG(seed, 3))
		s := genX(rng)
		bad := func(c xscen) bool { return c.valid() && !slices.Equal(xref(t, c), xrun(t, c, false)) }
		if !bad(s) {
			continue
		}
		for changed := true; changed; {
			changed = false
			for i := 0; i < len(s.cs); i++ {
				if c := s.without(i); len(c.cs) > 0 && bad(c) {
					s, changed = c, true
					i--
				}
			}
			for i := 1; i < len(s.cs); i++ {
				if s.cut[i] {
					c := s
					c.cut = slices.Clone(s.cut)
					c.cut[i] = false
					if c.restart > len(c.batches()) {
						c.restart = len(c.batches())
					}
					if bad(c) {
						s, changed = c, true
					}
				}
			}
		}
		fails++
		t.Errorf("seed %d: minimal:\n%s", seed, s)
		xrun(t, s, true)
		compare(t, "exposure", xref(t, s), xrun(t, s, false))
		if fails >= 4 {
			break
		}
	}
}

// valid: no change arrives (first) beyond the correction horizon behind
// the ones before it (documented: not evaluated).
func (s xscen) valid() bool {
	var newest time.Time
	seen := map[string]bool{}
	for _, b := range s.batches() {
		for _, c := range b.Config {
			if !seen[c.ID] && c.Time.Before(newest.Add(-7*24*time.Hour)) {
				return false
			}
			seen[c.ID] = true
		}
		for _, c := range b.Config {
			if c.Time.After(newest) {
				newest = c.Time
			}
		}
	}
	return true
}
