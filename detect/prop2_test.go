package detect

// Property tests from the second review: random small rule sets and
// random events, in time order and in hostile arrival orders, batch splits,
// clocks and group limits, must give the same findings (PROP_N, PROP_SEED,
// PROP_RULES, PROP_NOEVICT, PROP_NOCLOCK, PROP_LOG tune a longer run).

import (
	"context"
	"fmt"
	"github.com/breachwatch/breachwatch/internal/testenv"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/detect/rule"
	"github.com/breachwatch/breachwatch/event"
)

const pCount = `format: 1
id: p-count
title: c
severity: high
source: access
kind: threshold
condition: action == "download"
group_by: [actor.id]
threshold:
  aggregate: count
  window: 10m
  at_least: 3
affected: tenants
`

const pSum = `format: 1
id: p-sum
title: s
severity: high
source: access
kind: threshold
condition: action == "export"
group_by: [actor.id]
threshold:
  aggregate: sum(records)
  window: 10m
  at_least: 100
affected: tenants
`

const pDistinct = `format: 1
id: p-dist
title: d
severity: high
source: access
kind: threshold
condition: action == "read"
group_by: [actor.id]
threshold:
  aggregate: distinct(tenant)
  window: 10m
  at_least: 3
affected: tenants
`

const pMatch = `format: 1
id: p-match
title: m
severity: high
source: access
kind: match
condition: action == "list"
group_by: [actor.id]
affected: tenants
`

const pSeq = `format: 1
id: p-seq
title: q
severity: high
source: access
kind: sequence
group_by: [actor.id]
sequence:
  window: 10m
  steps:
    - {name: a, condition: 'action == "login_failed"', at_least: 2}
    - {name: b, condition: 'action == "login"'}
    - {name: c, condition: 'action in ["read", "list"]', at_least: 2}
affected: tenants
`

var propRules = map[string]string{"count": pCount, "sum": pSum, "dist": pDistinct, "match": pMatch, "seq": pSeq}

func propSet(t testing.TB, names ...string) *rule.Set {
	var rs []string
	for _, n := range names {
		rs = append(rs, propRules[n])
	}
	return customSet(t, rs...)
}

// pscen is a scenario: events in arrival order, batch cuts, partitions.
type pscen struct {
	rules  []string
	evs    []event.AccessEvent
	cut    []bool // a new batch starts at event i
	part   []int  // partition of each event (-1: batch without clocks)
	opts   Options
	assign bool
}

func (s pscen) batches() []event.Batch {
	var out []event.Batch
	var b event.Batch
	flush := func() {
		if b.Len() > 0 {
			out = append(out, b)
		}
		b = event.Batch{}
	}
	for i, ev := range s.evs {
		if i > 0 && s.cut[i] {
			flush()
		}
		b.Access = append(b.Access, ev)
		if s.part[i] >= 0 {
			b.Observe("p"+strconv.Itoa(s.part[i]), ev.Time)
		}
	}
	flush()
	return out
}

func pev(id string, d time.Duration, actor, action, tenant string, records int64) event.AccessEvent {
	return event.AccessEvent{ID: id, Time: at(d), Tenant: tenant, Actor: event.Actor{ID: actor, Type: event.ActorCustomerUser, Tenant: "cust-home"},
		Action: action, Resource: event.Resource{Type: "booking", Store: "postgres-eu-1"}, Records: records, Outcome: event.OutcomeSuccess}
}

func runScen(t *testing.T, s pscen, bs []event.Batch, o Options) []string {
	h := &harness{t: t, st: newMemStore(), clock: at(48 * time.Hour)}
	eng := h.engineSet(propSet(t, s.rules...), o)
	if s.assign {
		eng.Assigned([]string{"p0", "p1"})
	}
	if os.Getenv("PROP_RESTART") != "" && len(bs) > 1 {
		k := 1 + len(s.evs)%(len(bs)-1)
		h.feed(eng, bs[:k])
		var latest time.Time
		for _, a := range h.st.access {
			if a.Time.After(latest) {
				latest = a.Time
			}
		}
		eng = h.engineSet(propSet(t, s.rules...), o)
		eng.historyBatch = 1 + len(s.evs)%7 // the warm-up reads in several batches
		if _, err := eng.Warm(context.Background(), latest, 30*24*time.Hour); err != nil {
			t.Fatal(err)
		}
		if s.assign {
			eng.Assigned([]string{"p0", "p1"})
		}
		h.feed(eng, bs[k:])
		return describe(h.st.live())
	}
	if os.Getenv("PROP_WALL") != "" {
		for i := range bs {
			h.feed(eng, bs[i:i+1])
			h.clock = h.clock.Add(time.Duration(i%3) * 50 * time.Second)
		}
		return describe(h.st.live())
	}
	h.feed(eng, bs)
	return describe(h.st.live())
}

// reference: every distinct event, in time order, in one batch.
func (s pscen) reference(t *testing.T) []string {
	var u []event.AccessEvent
	seen := map[string]bool{}
	for _, ev := range s.evs {
		if !seen[ev.ID] {
			seen[ev.ID] = true
			u = append(u, ev)
		}
	}
	sortAccess(u)
	o := s.opts
	o.MaxGroups = 0
	return runScen(t, pscen{rules: s.rules}, []event.Batch{{Access: u}}, o)
}

func (s pscen) check(t *testing.T) bool {
	want := s.reference(t)
	got := runScen(t, s, s.batches(), s.opts)
	return slices.Equal(want, got)
}

var actions = []string{"download", "export", "read", "list", "login_failed", "login"}

func genScen(rng *rand.Rand, rules []string) pscen {
	s := pscen{rules: rules}
	n := 4 + rng.IntN(26)
	nact := 1 + rng.IntN(3)
	span := time.Duration(10+rng.IntN(180)) * time.Minute
	if os.Getenv("PROP_DENSE") != "" {
		n = 10 + rng.IntN(70)
		nact = 1 + rng.IntN(2)
		span = time.Duration(5+rng.IntN(40)) * time.Minute
	}
	for i := range n {
		d := time.Duration(rng.Int64N(int64(span))).Truncate(time.Second)
		if rng.IntN(8) == 0 {
			d = time.Duration(rng.IntN(6)) * time.Hour // far-away events: move the watermark
		}
		actor := fmt.Sprintf("u%d", rng.IntN(nact))
		act := actions[rng.IntN(len(actions))]
		s.evs = append(s.evs, pev(fmt.Sprintf("e%02d", i), d, actor, act, fmt.Sprintf("t%d", rng.IntN(4)), int64(rng.IntN(70))))
	}
	// duplicates
	for range rng.IntN(3) {
		s.evs = append(s.evs, s.evs[rng.IntN(len(s.evs))])
	}
	// arrival order
	switch rng.IntN(3) {
	case 0:
		rng.Shuffle(len(s.evs), func(i, j int) { s.evs[i], s.evs[j] = s.evs[j], s.evs[i] })
	case 1: // sorted then a few swaps
		sortAccess(s.evs)
		for range 1 + rng.IntN(4) {
			i, j := rng.IntN(len(s.evs)), rng.IntN(len(s.evs))
			s.evs[i], s.evs[j] = s.evs[j], s.evs[i]
		}
	case 2: // reverse
		sortAccess(s.evs)
		slices.Reverse(s.evs)
	}
	s.cut = make([]bool, len(s.evs))
	s.part = make([]int, len(s.evs))
	bp := []float64{1, 0.5, 0.2}[rng.IntN(3)]
	clocks := rng.IntN(2) == 0
	for i := range s.evs {
		s.cut[i] = rng.Float64() < bp
		s.part[i] = -1
		if clocks {
			s.part[i] = rng.IntN(2)
		}
	}
	s.assign = clocks && rng.IntN(2) == 0
	s.opts.Lateness = []time.Duration{0, time.Minute, time.Nanosecond}[rng.IntN(3)]
	if rng.IntN(2) == 0 {
		s.opts.MaxGroups = 1 + rng.IntN(5)
	}
	s.opts.MatchGap = []time.Duration{0, 20 * time.Minute}[rng.IntN(2)]
	return s
}

func (s pscen) clone() pscen {
	c := s
	c.evs = slices.Clone(s.evs)
	c.cut = slices.Clone(s.cut)
	c.part = slices.Clone(s.part)
	c.rules = slices.Clone(s.rules)
	return c
}

func (s pscen) without(i int) pscen {
	c := s.clone()
	c.evs = slices.Delete(c.evs, i, i+1)
	c.cut = slices.Delete(c.cut, i, i+1)
	c.part = slices.Delete(c.part, i, i+1)
	return c
}

// shrink removes what is not needed for the failure.
func shrink(t *testing.T, s pscen, fails func(pscen) bool) pscen {
	for changed := true; changed; {
		changed = false
		for i := 0; i < len(s.evs); i++ {
			if c := s.without(i); len(c.evs) > 0 && fails(c) {
				s, changed = c, true
				i--
			}
		}
		for i := 1; i < len(s.evs); i++ {
			if s.cut[i] {
				c := s.clone()
				c.cut[i] = false
				if fails(c) {
					s, changed = c, true
				}
			}
		}
		for i := range s.evs {
			if s.part[i] >= 0 {
				c := s.clone()
				for k := range c.part {
					c.part[k] = -1
				}
				if fails(c) {
					s, changed = c, true
				}
				break
			}
		}
		if s.assign {
			c := s.clone()
			c.assign = false
			if fails(c) {
				s, changed = c, true
			}
		}
		if len(s.rules) > 1 {
			for i := range s.rules {
				c := s.clone()
				c.rules = slices.Delete(c.rules, i, i+1)
				if fails(c) {
					s, changed = c, true
					break
				}
			}
		}
		if s.opts.MaxGroups > 0 {
			c := s.clone()
			c.opts.MaxGroups = 0
			if fails(c) {
				s, changed = c, true
			}
		}
		if s.opts.MatchGap > 0 {
			c := s.clone()
			c.opts.MatchGap = 0
			if fails(c) {
				s, changed = c, true
			}
		}
		// simplify times toward whole minutes
		for i := range s.evs {
			c := s.clone()
			tt := c.evs[i].Time.Truncate(time.Minute)
			if tt.Equal(c.evs[i].Time) {
				continue
			}
			id := c.evs[i].ID
			for k := range c.evs {
				if c.evs[k].ID == id {
					c.evs[k].Time = tt
				}
			}
			if fails(c) {
				s, changed = c, true
			}
		}
	}
	return s
}

func (s pscen) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rules=%v lateness=%v maxgroups=%d matchgap=%v assign=%v\n", s.rules, s.opts.Lateness, s.opts.MaxGroups, s.opts.MatchGap, s.assign)
	for i, ev := range s.evs {
		c := " "
		if s.cut[i] || i == 0 {
			c = "|"
		}
		fmt.Fprintf(&b, "  %s %s t=+%v actor=%s %s tenant=%s rec=%d part=%d\n", c, ev.ID, ev.Time.Sub(t0), ev.Actor.ID, ev.Action, ev.Tenant, ev.Records, s.part[i])
	}
	return b.String()
}

func TestProp2Random(t *testing.T) {
	n := 300
	if testenv.Race {
		n = 100
	}
	if v := os.Getenv("PROP_N"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	seed0 := uint64(1)
	if v := os.Getenv("PROP_SEED"); v != "" {
		x, _ := strconv.Atoi(v)
		seed0 = uint64(x)
	}
	only := os.Getenv("PROP_RULES")
	fails, nf := 0, 0
	defer func() { t.Logf("%d reference findings over %d scenarios", nf, n) }()
	for k := range n {
		seed := seed0 + uint64(k)
		rng := rand.New(rand.NewPCG(seed, 99))
		rules := []string{"count", "sum", "dist", "match", "seq"}
		if only != "" {
			rules = strings.Split(only, ",")
		}
		s := genScen(rng, rules)
		if os.Getenv("PROP_NOEVICT") != "" {
			s.opts.MaxGroups = 0
		}
		if os.Getenv("PROP_NOCLOCK") != "" {
			for i := range s.part {
				s.part[i] = -1
			}
			s.assign = false
		}
		nf += len(s.reference(t))
		if s.check(t) {
			continue
		}
		fails++
		m := shrink(t, s, func(c pscen) bool { return !c.check(t) })
		want := m.reference(t)
		got := runScen(t, m, m.batches(), m.opts)
		if os.Getenv("PROP_LOG") != "" {
			h := &harness{t: t, st: newMemStore(), clock: at(48 * time.Hour)}
			eng := h.engineSet(propSet(t, m.rules...), m.opts)
			if m.assign {
				eng.Assigned([]string{"p0", "p1"})
			}
			feedLog(t, h, eng, m.batches())
		}
		t.Errorf("seed %d: minimal case:\n%s", seed, m)
		compare(t, "minimal", want, got)
		if fails >= 4 {
			break
		}
	}
}

var _ = context.Background
