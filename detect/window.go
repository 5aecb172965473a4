package detect

import (
	"math"
	"slices"
	"sort"

	"github.com/breachwatch/breachwatch/detect/rule"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

// What a rule's findings for a group are, as a function of the group's
// entries in (time, id) order (docs/rules.md, "What a finding is"):
//
//   - match: the entries, split where two follow each other more than
//     MatchGap apart; each part is a finding, starting at its first entry.
//   - threshold: an entry is hot when the window ending at it (the entries
//     at most the rule's window before it) reaches the threshold, and
//     contributing when it raised the aggregate (a count always; a sum when
//     it has records; a distinct count when its value was not yet in the
//     window). Hot contributing entries, split where two are more than a
//     window apart, are the findings; each starts where the shortest run of
//     entries ending at its first hot entry reaches the threshold, and holds
//     that run and its hot contributing entries.
//   - sequence: an entry meeting the last step completes the sequence when
//     the steps are met in order, each by its count of entries, within the
//     window ending at it (taken greedily, earliest first). Completing
//     entries, split where two are more than a window apart, are the
//     findings; each starts at the first entry of its first completion's
//     chain.
//
// Each is monotone: more entries only ever join, merge or move findings,
// never remove one, so a finding that moved has a successor.

// evalRun collects the episodes an evaluation touched.
type evalRun struct{ touched []*episode }

func (r *evalRun) touch(ep *episode) {
	if n := len(r.touched); n > 0 && r.touched[n-1] == ep || slices.Contains(r.touched, ep) {
		return
	}
	r.touched = append(r.touched, ep)
}

// gap is how far apart two entries of one finding may be.
func (e *Engine) gap(r *rule.Rule) int64 {
	if r.Kind() == incident.KindMatch {
		return int64(e.opts.MatchGap)
	}
	return int64(r.Window())
}

// reach is how far before an entry the entries that decide it lie.
func reach(r *rule.Rule) int64 {
	if r.Kind() == incident.KindMatch {
		return 0
	}
	return int64(r.Window())
}

// add evaluates an entry of rule r's group key (which may be e.keyBuf).
// where gives the values of the rule's group_by fields, should the group
// need re-evaluating from the store.
func (e *Engine) add(r *rule.Rule, key []byte, en entry, where func() []event.FieldValue) {
	g := e.groups.lookup(r, key)
	if g == nil {
		if r.Kind() == incident.KindSequence && en.steps()&1 == 0 {
			// A later step of a group that left memory, or older than
			// what a warm-up read (steps lets only those through): its
			// group is evaluated from the store.
			e.queueLate(r, string(key), en.t, where)
			return
		}
		k := string(key)
		if _, gone := e.evicted[groupID(r, k)]; gone || en.t < e.frozen() {
			// The group may have had entries folded or swept before:
			// re-evaluate it from the store.
			e.queueLate(r, k, en.t, where)
			return
		}
		var evicted *group
		g, _, evicted = e.groups.get(r, key)
		e.evict(evicted)
		g.cpAt = en.t
		if r.Kind() == incident.KindSequence && en.t <= e.newest[r] {
			g.incomplete = true
			g.c().passed = e.newest[r]
		}
		if en.t < e.hold+e.gap(r)+reach(r) {
			g.held = true
			g.c().where = where()
		}
	} else {
		e.groups.touch(g)
	}
	if en.t > e.newest[r] {
		e.newest[r] = en.t
	}
	if en.t < g.cpAt {
		if en.t < e.frozen() || g.held || g.rebuilt || g.cold != nil && g.cold.cp.started {
			e.queueLate(r, g.key, en.t, where)
			return
		}
		// Before the group's first entry, but nothing is folded into its
		// checkpoint yet and memory keeps this far back: it starts here
		// (as when its events of several partitions come in turn).
		if r.Kind() == incident.KindSequence && en.t <= e.newest[r] {
			// Events of later steps passed over before the group was
			// made, between here and its old start, may be of it: it is
			// incomplete up to there, as a group made now would be.
			g.incomplete = true
			c := g.c()
			c.passed = max(c.passed, min(e.newest[r], g.cpAt))
		}
		g.cpAt = en.t
	}
	if g.has(en.id) {
		return // delivered again
	}
	en.id = clone(en.id)
	i := g.insert(en)
	switch {
	case g.stale:
		// Evaluated again at the end of the batch.
	case i == len(g.entries)-1:
		var run evalRun
		e.stepKind(g, &g.live, i, &run)
		o := owner{rule: g.rule, key: g.key, g: g}
		for _, ep := range run.touched {
			if !slices.Contains(g.episodes(), ep) {
				c := g.c()
				c.eps = append(c.eps, ep)
			}
			e.report(o, ep, false)
		}
		e.settle(g, where)
	default:
		// Out of order: the group is evaluated again from its
		// checkpoint once, at the end of the batch, however many of its
		// events came out of order in it.
		e.m.reordered.Inc()
		g.stale = true
		if g.whereValues() == nil {
			g.c().where = where() // to read it from the store, should it be evicted first
		}
		e.stale = append(e.stale, g)
	}
}

// evict records a group pushed out of memory (nil: none): an event of it
// that comes later has it re-evaluated from the store.
func (e *Engine) evict(g *group) {
	if g == nil {
		return
	}
	e.m.evicted.Inc()
	e.evicted[groupID(g.rule, g.key)] = g.lastSeen
	e.markGone(g)
}

// settle folds what a group no longer needs into its checkpoint, and has
// an incomplete sequence group read from the store once it could complete
// with an event it passed over.
func (e *Engine) settle(g *group, where func() []event.FieldValue) {
	if c := e.frozen(); c > g.cpAt+int64(e.opts.Lateness) {
		e.advance(g, c)
	}
	if g.passedCanChain() {
		c := g.cold
		if c.reachedAt >= g.cpAt && !g.held {
			// What it passed over that can chain lies at or after the
			// first step was met, after its checkpoint: read that. Should
			// events behind meet the first step earlier (not before the
			// checkpoint), what lies between is read then.
			hi := c.passed + 1
			if c.filled != 0 {
				hi = min(hi, c.filled)
			}
			e.queueFill(g, c.reachedAt, hi, where)
			return
		}
		from := g.lastSeen
		if len(g.entries) > 0 {
			from = g.entries[0].t
		}
		e.queueLate(g.rule, g.key, from, where)
	}
}

// passedCanChain reports whether an incomplete sequence group has met its
// first step at or before an event it passed over that is not read back
// yet.
func (g *group) passedCanChain() bool {
	if !g.incomplete || !g.reached {
		return false
	}
	c := g.cold
	return c.passed >= c.reachedAt && (c.filled == 0 || c.reachedAt < c.filled)
}

// replayStale evaluates again the groups that had events out of order in
// the batch, each once.
func (e *Engine) replayStale() {
	for _, g := range e.stale {
		if !g.stale {
			continue
		}
		g.stale = false
		switch cur := e.groups.rules[g.rule][g.key]; {
		case cur == nil && len(g.entries) > 0:
			// Evicted before its turn: its events are in the store.
			w := g.whereValues()
			e.queueLate(g.rule, g.key, g.entries[0].t, func() []event.FieldValue { return w })
			lg := e.late[groupID(g.rule, g.key)]
			lg.until = max(lg.until, g.lastSeen)
			continue
		case cur != g:
			continue // replaced meanwhile (rebuilt from the store)
		}
		e.replay(g)
		w := g.whereValues()
		e.settle(g, func() []event.FieldValue { return w })
	}
	clear(e.stale)
	e.stale = e.stale[:0]
}

// frozen is the time before which a group's state may be folded into its
// checkpoint: the watermark less the lateness.
func (e *Engine) frozen() int64 {
	if e.wm == math.MinInt64 {
		return math.MinInt64
	}
	return e.wm - int64(e.opts.Lateness)
}

func clone(s string) string {
	if s == "" {
		return ""
	}
	return string(append([]byte(nil), s...))
}

// stepKind evaluates entry i on state st (the state after entries[:i]).
func (e *Engine) stepKind(g *group, st *gstate, i int, run *evalRun) {
	switch g.rule.Kind() {
	case incident.KindThreshold:
		e.stepThreshold(g, st, i, run)
	case incident.KindSequence:
		e.stepSequence(g, st, i, run)
	default:
		e.stepMatch(g, st, i, run)
	}
	st.started = true
}

func (e *Engine) newEpisode(g *group, start int64) *episode {
	return newEpisode(incident.Fingerprint(g.rule.ID(), g.key, utc(start)), start)
}

// addEntry adds an entry to an episode's evidence; records and tenant
// only when it touched data (not for earlier steps of a sequence).
func (e *Engine) addEntry(ep *episode, en *entry, data bool) {
	if data {
		ep.add(en.id, en.t, en.records, e.intern.get(en.tenant), e.intern.get(en.store), e.intern.getSet(en.cats()))
	} else {
		ep.add(en.id, en.t, 0, "", e.intern.get(en.store), nil)
	}
}

func (e *Engine) stepMatch(g *group, st *gstate, i int, run *evalRun) {
	en := &g.entries[i]
	if st.ep == nil || !st.started || en.t-st.last > int64(e.opts.MatchGap) {
		st.ep = e.newEpisode(g, en.t)
	}
	e.addEntry(st.ep, en, true)
	st.last = en.t
	run.touch(st.ep)
}

// slide moves a window state to end at entry i: the entries older than
// the window before entries[i] leave, entries[i] joins.
func (e *Engine) slide(g *group, st *gstate, i int) {
	e.leave(g, st, i)
	windowAdd(st, &g.entries[i])
}

// leave moves the entries older than the window before entries[i] out of
// the window state.
func (e *Engine) leave(g *group, st *gstate, i int) {
	w := int64(g.rule.Window())
	t := g.entries[i].t
	for st.lo < i && g.entries[st.lo].t < t-w {
		windowRemove(st, &g.entries[st.lo])
		st.lo++
	}
}

// chain moves a sequence's chain state past entry en: for each step it
// meets (the last first, so that one entry serves one step of a chain), it
// records the latest start of a chain of the steps before that it can
// follow.
func chain(r *rule.Rule, st *gstate, en *entry) {
	if en.steps() == 0 {
		return
	}
	if st.chains == nil {
		c := make([][]int64, r.Steps())
		st.chains = &c
	}
	for k := r.Steps() - 1; k >= 0; k-- {
		if en.steps()&(1<<k) == 0 {
			continue
		}
		start := en.t
		if k > 0 {
			if start = chainStart(r, st, k-1); start == math.MinInt64 {
				continue // no chain of the earlier steps yet
			}
		}
		ring, n := (*st.chains)[k], int(r.StepAtLeast(k))
		if len(ring) < n {
			ring = append(ring, start)
		} else {
			copy(ring, ring[1:])
			ring[n-1] = start
		}
		(*st.chains)[k] = ring
	}
}

// chainStart is the latest start of a chain of steps 0..k so far
// (math.MinInt64: none).
func chainStart(r *rule.Rule, st *gstate, k int) int64 {
	if st.chains == nil || len((*st.chains)[k]) < int(r.StepAtLeast(k)) {
		return math.MinInt64
	}
	return (*st.chains)[k][0]
}

func windowAdd(st *gstate, en *entry) {
	st.sum += en.records
	if en.distinct > 0 {
		if st.distinct == nil {
			st.distinct = map[int32]int32{}
		}
		st.distinct[en.distinct]++
	}
	if en.steps()&1 != 0 {
		st.first++
	}
}

func windowRemove(st *gstate, en *entry) {
	st.sum -= en.records
	if en.distinct > 0 {
		if st.distinct[en.distinct]--; st.distinct[en.distinct] <= 0 {
			delete(st.distinct, en.distinct)
		}
	}
	if en.steps()&1 != 0 {
		st.first--
	}
}

// initWindow sets st's window for a replay from entry i: the entries before
// i at or after from (the checkpoint less a window).
func initWindow(g *group, st *gstate, i int, from int64) {
	st.lo = sort.Search(i, func(k int) bool { return g.entries[k].t >= from })
	st.sum, st.distinct, st.first, st.chains = 0, nil, 0, nil
	seq := g.rule.Kind() == incident.KindSequence
	for k := st.lo; k < i; k++ {
		windowAdd(st, &g.entries[k])
		if seq {
			chain(g.rule, st, &g.entries[k])
		}
	}
}

func (e *Engine) stepThreshold(g *group, st *gstate, i int, run *evalRun) {
	r := g.rule
	agg, atLeast := r.Threshold()
	en := &g.entries[i]
	// Contributing is judged on the window ending at the entry, before it
	// joins.
	e.leave(g, st, i)
	contributing := true
	switch agg {
	case rule.AggSum:
		contributing = en.records > 0
	case rule.AggDistinct:
		contributing = en.distinct > 0 && st.distinct[en.distinct] == 0
	}
	windowAdd(st, en)
	value := int64(i - st.lo + 1)
	switch agg {
	case rule.AggSum:
		value = st.sum
	case rule.AggDistinct:
		value = int64(len(st.distinct))
	}
	if value < atLeast || !contributing {
		return
	}
	w := int64(r.Window())
	if st.ep == nil || en.t-st.last > w {
		// A new finding: from the shortest run of entries ending here that
		// reaches the threshold.
		j := crossing(g.entries[st.lo:i+1], agg, atLeast) + st.lo
		st.ep = e.newEpisode(g, g.entries[j].t)
		for k := j; k <= i; k++ {
			e.addEntry(st.ep, &g.entries[k], true)
		}
	} else {
		e.addEntry(st.ep, en, true)
	}
	st.ep.value = max(st.ep.value, value)
	st.last = en.t
	run.touch(st.ep)
}

// crossing is the index of the first entry of the shortest suffix of win
// whose aggregate reaches atLeast (win's aggregate does).
func crossing(win []entry, agg string, atLeast int64) int {
	var sum int64
	var seen map[int32]bool
	for k := len(win) - 1; k >= 0; k-- {
		switch agg {
		case rule.AggSum:
			sum += win[k].records
		case rule.AggDistinct:
			if d := win[k].distinct; d > 0 && !seen[d] {
				if seen == nil {
					seen = map[int32]bool{}
				}
				seen[d] = true
				sum++
			}
		default:
			sum++
		}
		if sum >= atLeast {
			return k
		}
	}
	return 0
}

func (e *Engine) stepSequence(g *group, st *gstate, i int, run *evalRun) {
	r := g.rule
	e.slide(g, st, i)
	en := &g.entries[i]
	chain(r, st, en)
	last := r.Steps() - 1
	w := int64(r.Window())
	if en.steps()&1 != 0 && chainStart(r, st, 0) >= en.t-w && (!g.reached || en.t < g.cold.reachedAt) {
		g.reached = true
		g.c().reachedAt = en.t
	}
	// It completes when some chain of every step ending here starts
	// within the window.
	if en.steps()&(1<<last) == 0 || chainStart(r, st, last) < en.t-w {
		return
	}
	if st.ep == nil || en.t-st.last > w {
		// A new finding: its evidence is the earliest chain of the window.
		links, ok := greedy(g.entries[st.lo:i+1], r)
		if !ok {
			return // cannot be: a chain exists within the window
		}
		st.ep = e.newEpisode(g, g.entries[st.lo+links[0].idx].t)
		for _, c := range links {
			e.addEntry(st.ep, &g.entries[st.lo+c.idx], c.step == last)
		}
		if links[len(links)-1].idx != i-st.lo {
			e.addEntry(st.ep, en, true)
		}
	} else {
		e.addEntry(st.ep, en, true)
	}
	st.last = en.t
	run.touch(st.ep)
}

type link struct{ idx, step int }

// greedy matches the steps of a sequence in order over win, each by its
// count of entries, earliest first; ok when every step is met.
func greedy(win []entry, r *rule.Rule) (chain []link, ok bool) {
	k, n := 0, int64(0)
	for idx := range win {
		if win[idx].steps()&(1<<k) == 0 {
			continue
		}
		chain = append(chain, link{idx, k})
		if n++; n >= r.StepAtLeast(k) {
			if k++; k == r.Steps() {
				return chain, true
			}
			n = 0
		}
	}
	return nil, false
}

// replay evaluates a group again from its checkpoint over every entry
// since, after an entry came out of order, and reports what changed.
func (e *Engine) replay(g *group) {
	var st gstate
	if g.cold != nil {
		st = g.cold.cp.clone()
	}
	var run evalRun
	if st.ep != nil {
		run.touch(st.ep)
	}
	i0 := sort.Search(len(g.entries), func(k int) bool { return g.entries[k].t >= g.cpAt })
	initWindow(g, &st, i0, g.cpAt-reach(g.rule))
	for i := i0; i < len(g.entries); i++ {
		e.stepKind(g, &st, i, &run)
	}
	old := g.episodes()
	g.live = st
	g.setEpisodes(run.touched)
	e.reconcile(owner{rule: g.rule, key: g.key, g: g}, old, run.touched, nil)
}

// advance folds the entries before c into the checkpoint and forgets what
// no later entry can change: entries out of every window from c on, and
// episodes that ended before (c may not pass the watermark less the
// lateness).
func (e *Engine) advance(g *group, c int64) {
	st := &g.c().cp
	var run evalRun
	i0 := sort.Search(len(g.entries), func(k int) bool { return g.entries[k].t >= g.cpAt })
	i1 := sort.Search(len(g.entries), func(k int) bool { return g.entries[k].t >= c })
	initWindow(g, st, i0, g.cpAt-reach(g.rule))
	for i := i0; i < i1; i++ {
		e.stepKind(g, st, i, &run)
	}
	st.distinct = nil
	g.cpAt = c
	cur := ""
	if st.ep != nil {
		cur = st.ep.fp
	}
	g.cold.eps = slices.DeleteFunc(g.cold.eps, func(ep *episode) bool { return ep.fp != cur && ep.last < c })
	g.trim(c - reach(g.rule))
}
