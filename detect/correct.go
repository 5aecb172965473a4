package detect

import (
	"context"
	"math"
	"slices"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/detect/rule"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

// lateGroup is a group to re-evaluate from the store: an event came behind
// what the engine keeps of it.
type lateGroup struct {
	rule  *rule.Rule
	key   string
	from  int64 // the oldest event that called for it
	until int64 // the newest
	where []event.FieldValue
	// What to read: [lo, hi); from hi on the group's entries are those in
	// memory (mem), or, for a group not in memory, read on until it was
	// quiet for a gap.
	lo, hi int64
	mem    *group
	found  []entry // its entries, as read from the store
	// fill: only events a sequence group passed over are missing, all in
	// [lo, hi) and after its checkpoint: they are read and put in place
	// in memory (no rebuild). A late event that needs a rebuild turns a
	// fill into one.
	fill bool
}

func (e *Engine) queueLate(r *rule.Rule, key string, t int64, where func() []event.FieldValue) {
	e.m.late.Inc()
	id := groupID(r, key)
	if lg := e.late[id]; lg != nil {
		if lg.fill {
			*lg = lateGroup{rule: r, key: key, from: t, until: t, where: lg.where}
			return
		}
		lg.from, lg.until = min(lg.from, t), max(lg.until, t)
		return
	}
	e.late[id] = &lateGroup{rule: r, key: key, from: t, until: t, where: where()}
}

// queueFill has the events of a sequence group in [lo, hi) read from the
// store and put in place (see lateGroup.fill), unless the group is to be
// rebuilt anyway.
func (e *Engine) queueFill(g *group, lo, hi int64, where func() []event.FieldValue) {
	id := groupID(g.rule, g.key)
	if lg := e.late[id]; lg != nil {
		if lg.fill {
			lg.lo, lg.hi = min(lg.lo, lo), max(lg.hi, hi)
		}
		return
	}
	e.late[id] = &lateGroup{rule: g.rule, key: g.key, from: lo, until: hi - 1, lo: lo, hi: hi, fill: true, where: where()}
}

// bulkCorrection: with more late groups than this in one batch (a lagging
// partition, a backfill), the store is read once over their time instead
// of once per group.
const bulkCorrection = 32

// correct re-evaluates the late groups from the store: each over the run
// of its events around the late one (from a point where it was quiet for a
// gap, so that nothing before matters, to the state kept in memory or to
// the next quiet gap), and reports what changed against what was reported
// before. A group that cannot be read is kept as it is and tried again with
// its next late event.
func (e *Engine) correct(ctx context.Context) {
	if e.correcting {
		return
	}
	e.correcting = true
	defer func() { e.correcting = false }()
	start := time.Now()
	lates := make([]*lateGroup, 0, len(e.late))
	for _, lg := range e.late {
		lates = append(lates, lg)
	}
	clear(e.late)
	sort.Slice(lates, func(i, j int) bool {
		return groupID(lates[i].rule, lates[i].key) < groupID(lates[j].rule, lates[j].key)
	})
	if e.opts.Store == nil {
		for _, lg := range lates {
			e.beyondHorizon(math.MinInt64, lg.key) // cannot correct without a store
		}
		return
	}
	floor := int64(math.MinInt64)
	if e.wm != math.MinInt64 {
		floor = e.wm - int64(e.opts.Horizon)
	}
	lates = slices.DeleteFunc(lates, func(lg *lateGroup) bool {
		if !lg.fill {
			return false
		}
		if err := e.fillIn(ctx, lg); err != nil {
			e.correctionFailed([]*lateGroup{lg}, err)
		} else {
			e.m.corrected.Inc()
		}
		return true
	})
	for _, lg := range lates {
		gap, w := e.gap(lg.rule), reach(lg.rule)
		lg.lo = max(lg.from-gap-w, floor)
		switch g := e.groups.rules[lg.rule][lg.key]; {
		case g != nil && len(g.entries) > 0 && !g.held && !g.incomplete:
			// Every entry the engine took from the group's first kept
			// one on is in memory (the late ones are in the store).
			// The read starts before the first of them too, so that
			// the rebuild begins where the group was quiet (the state
			// before the first entry kept lives only in the checkpoint).
			lg.mem, lg.hi = g, max(g.entries[0].t, lg.until+1)
			lg.lo = max(min(lg.lo, g.entries[0].t-gap-w), floor)
		case g != nil && len(g.entries) > 0:
			// A group that may lack entries (held, or incomplete): read
			// all it holds from the store, and on for a gap and a window
			// (an incomplete sequence's later steps, passed over before
			// it existed, come after its first entries).
			lg.hi = max(g.lastSeen, lg.until) + 1
			if g.incomplete {
				lg.hi += gap + w
			}
		default:
			lg.hi = lg.until + gap + w + 1
		}
		lg.hi = max(lg.hi, lg.lo+1)
	}
	// The first read: groups of access rules in one scan when there are
	// many, the others (and changes of configuration, which are few) one
	// by one.
	single := lates
	if access := slices.DeleteFunc(slices.Clone(lates), func(lg *lateGroup) bool { return lg.rule.Source() == rule.SourceConfig }); len(access) > bulkCorrection {
		from, to := int64(math.MaxInt64), int64(math.MinInt64)
		byID := make(map[string]*lateGroup, len(access))
		for _, lg := range access {
			from, to = min(from, lg.lo), max(to, lg.hi)
			byID[groupID(lg.rule, lg.key)] = lg
		}
		err := e.scanAll(ctx, utc(from), utc(to), access, func(lg *lateGroup, en entry) {
			if en.t >= lg.lo && en.t < lg.hi {
				lg.found = append(lg.found, en)
			}
		}, byID)
		if err != nil {
			e.correctionFailed(lates, err)
			return
		}
		single = slices.DeleteFunc(slices.Clone(lates), func(lg *lateGroup) bool { return lg.rule.Source() != rule.SourceConfig })
	}
	for _, lg := range single {
		if err := e.scanGroup(ctx, lg, utc(lg.lo), utc(lg.hi), func(en entry) { lg.found = append(lg.found, en) }); err != nil {
			e.correctionFailed(lates, err)
			return
		}
	}
	for _, lg := range lates {
		if err := e.rebuild(ctx, lg, floor); err != nil {
			e.correctionFailed([]*lateGroup{lg}, err)
			continue
		}
		e.m.corrected.Inc()
	}
	e.m.corrSecs.Observe(time.Since(start).Seconds())
}

// fillIn reads the events a sequence group passed over from the store and
// evaluates the group again from its checkpoint with them in place.
func (e *Engine) fillIn(ctx context.Context, lg *lateGroup) error {
	var found []entry
	if err := e.scanGroup(ctx, lg, utc(lg.lo), utc(lg.hi), func(en entry) { found = append(found, en) }); err != nil {
		return err
	}
	g := e.groups.rules[lg.rule][lg.key]
	if g == nil || !g.incomplete || g.cold == nil {
		// Left memory meanwhile (its next event is evaluated from the
		// store), or replaced by a group read whole from it.
		return nil
	}
	w := g.whereValues()
	if w == nil {
		w = lg.where
	}
	where := func() []event.FieldValue { return w }
	if g.cold.reachedAt < g.cpAt {
		// The first step was met in what is folded into its checkpoint
		// meanwhile, without what it passed over: it is rebuilt from the
		// store instead (with the next batch).
		e.queueLate(g.rule, g.key, g.cpAt, where)
		return nil
	}
	for _, en := range found {
		if en.t >= g.cpAt && !g.has(en.id) {
			g.insert(en)
		}
	}
	if c := g.c(); c.filled == 0 || lg.lo < c.filled {
		c.filled = lg.lo
	}
	e.replay(g)
	e.settle(g, where)
	return nil
}

func (e *Engine) correctionFailed(lates []*lateGroup, err error) {
	e.log.Warn("could not re-evaluate groups from the store; they are tried again with their next late event, or by `breachwatch backfill`",
		zap.Int("groups", len(lates)), zap.Error(err))
}

// relevant turns an event read from the store into an entry of rule r, and
// says whether the rule looks at it at all.
func (e *Engine) relevant(r *rule.Rule, ev *event.AccessEvent) (entry, bool) {
	set := e.set.Load()
	e.env.AccessEvent = ev
	e.env.Store = e.storeInfo(set, ev.Resource.Store)
	defer func() { e.env.AccessEvent = nil }()
	if e.env.Store.Known && !e.env.Store.Personal {
		return entry{}, false
	}
	var steps uint32
	if r.Kind() == incident.KindSequence {
		for i := range r.Steps() {
			if e.step(r, i) {
				steps |= 1 << i
			}
		}
		if steps == 0 {
			return entry{}, false
		}
	} else {
		ok, err := r.MatchAccess(&e.ev, &e.env)
		if err != nil {
			e.evalError(r, err)
			return entry{}, false
		}
		if !ok {
			return entry{}, false
		}
	}
	en := e.accessEntry(r, ev, steps)
	en.id = clone(en.id)
	return en, true
}

// relevantConfig turns a configuration change read from the store into an
// entry of config rule r (of kind match or threshold) if the rule matches
// it and it belongs to the group key, as config does live.
func (e *Engine) relevantConfig(r *rule.Rule, key string, c *event.ConfigChange) (entry, bool) {
	set := e.set.Load()
	if storeDefaulted(c) {
		if s, ok := e.storeOf[c.Resource.ID]; ok {
			cc := *c
			cc.Resource.Store = s.store
			c = &cc
		}
	}
	env := rule.NewConfigEnv(c, set.Inventory())
	if env.Store.Known && !env.Store.Personal {
		return entry{}, false
	}
	ok, err := r.MatchConfig(&e.ev, env, c)
	if err != nil {
		e.evalError(r, err)
		return entry{}, false
	}
	if !ok || r.GroupKeyConfig(c) != key {
		return entry{}, false
	}
	return entry{t: c.Time.UnixNano(), id: clone(c.ID), store: e.intern.str(c.Resource.Store), cs: packCS(e.intern.set(env.Store.Categories), 0)}, true
}

// scanGroup reads the entries of one group in [from, to).
func (e *Engine) scanGroup(ctx context.Context, lg *lateGroup, from, to time.Time, fn func(entry)) error {
	if lg.rule.Source() == rule.SourceConfig {
		return e.opts.Store.ScanConfig(ctx, from, to, func(c *event.ConfigChange) error {
			if en, ok := e.relevantConfig(lg.rule, lg.key, c); ok {
				fn(en)
			}
			return nil
		})
	}
	return e.opts.Store.ScanAccessWhere(ctx, from, to, lg.where, func(ev *event.AccessEvent) error {
		en, ok := e.relevant(lg.rule, ev)
		if ok && string(lg.rule.AppendGroupKey(e.keyBuf[:0], ev)) == lg.key {
			fn(en)
		}
		return nil
	})
}

// scanAll reads every event in [from, to) once and hands each late group
// its entries.
func (e *Engine) scanAll(ctx context.Context, from, to time.Time, lates []*lateGroup, fn func(*lateGroup, entry), byID map[string]*lateGroup) error {
	rules := map[*rule.Rule]bool{}
	for _, lg := range lates {
		rules[lg.rule] = true
	}
	return e.opts.Store.ScanAccess(ctx, from, to, func(ev *event.AccessEvent) error {
		for r := range rules {
			key := r.AppendGroupKey(e.keyBuf[:0], ev)
			lg := byID[groupID(r, string(key))]
			if lg == nil {
				continue
			}
			if en, ok := e.relevant(r, ev); ok {
				fn(lg, en)
			}
		}
		return nil
	})
}

// rebuild evaluates a late group from the store: it reads back from the
// first read until a gap with no entry (the group was quiet: nothing before
// can matter) and forward until the state in memory (or, for a group not in
// memory, a gap with no entry: nothing after depends on this run),
// evaluates every entry in order, reconciles the findings with those in
// memory and in the store, and puts the group in place of the one in
// memory.
func (e *Engine) rebuild(ctx context.Context, lg *lateGroup, floor int64) error {
	r := lg.rule
	gap, w := e.gap(r), reach(r)
	lo := lg.lo
	for lo > floor {
		var band []entry
		if err := e.scanGroup(ctx, lg, utc(max(lo-gap-w, floor)), utc(lo), func(en entry) { band = append(band, en) }); err != nil {
			return err
		}
		if len(band) == 0 {
			break
		}
		lg.found = append(band, lg.found...)
		lo = band[0].t
	}
	if lo <= floor && floor != math.MinInt64 {
		e.log.Info("a group re-evaluated from the store reaches back to the correction horizon; its first finding may start later than it did",
			zap.String("rule", r.ID()), zap.Time("horizon", utc(floor)))
	}
	hi := lg.hi
	if lg.mem == nil {
		for {
			last := lg.until
			if n := len(lg.found); n > 0 {
				last = max(last, lg.found[n-1].t)
			}
			end := last + gap + w + 1
			if end <= hi {
				break // quiet for a gap after its last entry: the run ends
			}
			var band []entry
			if err := e.scanGroup(ctx, lg, utc(hi), utc(end), func(en entry) { band = append(band, en) }); err != nil {
				return err
			}
			lg.found = append(lg.found, band...)
			hi = end
		}
	}
	found := lg.found
	if lg.mem != nil {
		found = append(found, lg.mem.entries...)
	}
	sort.Slice(found, func(i, j int) bool { return before(found[i].t, found[i].id, found[j].t, found[j].id) })
	found = slices.CompactFunc(found, func(a, b entry) bool { return a.id == b.id && a.t == b.t })

	ng := &group{rule: r, key: lg.key, rebuilt: true}
	old := e.groups.rules[r][lg.key]
	for i := range found {
		ng.insert(found[i])
	}
	var run evalRun
	if len(ng.entries) > 0 {
		ng.cpAt = ng.entries[0].t
		for i := range ng.entries {
			e.stepKind(ng, &ng.live, i, &run)
		}
	} else {
		ng.cpAt = lo
	}
	ng.setEpisodes(run.touched)
	// The rebuild speaks for the episodes of the run it read, [lo, hi)
	// (and all later ones when it took the entries in memory): the old
	// group's episodes before it are final (the group was quiet for a gap
	// before lo), and a group in memory with entries at or after hi (the
	// run ends with a quiet gap) keeps its own state after it.
	end := int64(math.MaxInt64)
	keepOld, later := false, false
	if lg.mem == nil {
		end = hi
		keepOld = old != nil && old.lastSeen >= hi
		// An evicted group with entries after the run read: the run
		// does not stand for it, which stays out of memory (its next
		// event is evaluated from the store again).
		last, gone := e.evicted[groupID(r, lg.key)]
		later = gone && old == nil && last >= hi
	}
	var oldEps []*episode
	if old != nil {
		for _, ep := range old.episodes() {
			if ep.last >= lo && ep.start < end {
				oldEps = append(oldEps, ep)
			}
		}
	}
	// The findings stored for the run read: a group not in memory was read
	// up to hi (its later findings are another run's).
	until := to()
	if lg.mem == nil {
		until = utc(hi)
	}
	stored, err := e.storedOf(ctx, r, lg.key, "", utc(lo), until)
	if err != nil {
		return err
	}
	e.reconcile(owner{rule: r, key: lg.key, g: ng}, oldEps, ng.episodes(), stored)
	switch {
	case later:
		return nil
	case keepOld:
		old.setEpisodes(slices.DeleteFunc(old.episodes(), func(ep *episode) bool { return slices.Contains(oldEps, ep) }))
	case len(ng.entries) == 0 && len(ng.episodes()) == 0:
		if old != nil {
			e.groups.remove(old)
		}
	default:
		e.evict(e.groups.put(ng))
		if c := e.frozen(); c > ng.cpAt {
			e.advance(ng, c)
		}
	}
	delete(e.evicted, groupID(r, lg.key))
	if m := e.gone[r]; m != nil && e.groups.rules[r][lg.key] != nil {
		delete(m, lg.key)
	}
	return nil
}

func to() time.Time { return event.MaxTime() }

// storedOf is the latest report of each finding of a rule's group (and
// part) stored with a window starting in [from, to), retractions left out.
func (e *Engine) storedOf(ctx context.Context, r *rule.Rule, key, part string, from, until time.Time) ([]incident.Finding, error) {
	fs, err := e.opts.Store.FindingsOf(ctx, r.ID(), from, until)
	if err != nil {
		return nil, err
	}
	for i := range fs {
		e.lastVer = max(e.lastVer, fs[i].Version)
	}
	return slices.DeleteFunc(fs, func(f incident.Finding) bool {
		return f.GroupKey != key || f.Part != part || f.Retracted()
	}), nil
}
