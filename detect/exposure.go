package detect

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/breachwatch/breachwatch/detect/rule"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

// An exposure rule's windows for one (resource, setting[, part]) are a
// function of the ordered history of its changes: a change to an unsafe
// value from a safe one (or from a value not given) opens a window, a
// change to a safe value closes it, and a change between two unsafe values
// opens nothing new. The history is kept whole (changes are few), so a
// change that arrives late — a close before its open, as CloudTrail files
// do — is put in its place and the windows derived again.
//
// Open windows outlive the events: at start the engine reads the windows
// its findings say are open (or were closed by a person) and keeps them
// until a remedy, or until a person closes them (CloseExposure).

// xchange is one change in an exposure's history.
type xchange struct {
	t            int64
	id           string
	unsafe       bool // the value after is not safe
	beforeUnsafe bool // the value before was given, and is not safe
	store        string
	cats         []string
	c            *event.ConfigChange   // the change (nil for seeds and closes): read again when the rule changes
	manual       *incident.ManualClose // a person closed the window here
	seed         *incident.Finding     // a window read from the store: its evidence, while its changes are not in the history
}

type exposure struct {
	rule      *rule.Rule
	key, part string
	hist      []xchange
	eps       []*episode // the windows that may still change
}

func exposureID(r *rule.Rule, key, part string) string {
	return groupID(r, key) + "\x00" + part
}

// fingerprint keys a window by its group and, if any, its part.
func (x *exposure) fingerprint(start int64) string {
	key := x.key
	if x.part != "" {
		key += "\x00" + x.part
	}
	return incident.Fingerprint(x.rule.ID(), key, utc(start))
}

func (e *Engine) config(set *rule.Set, c *event.ConfigChange) {
	specific, anyRules := set.ForConfig(c.Setting)
	if len(specific) == 0 && len(anyRules) == 0 {
		return
	}
	defaulted := storeDefaulted(c)
	if !defaulted {
		e.nameStore(set, c)
	} else if s, ok := e.storeOf[c.Resource.ID]; ok {
		// A change that names no store has the store named for its
		// resource by the latest change that named one (a flow log deleted
		// by its id, created on a VPC).
		cc := *c
		cc.Resource.Store = s.store
		c = &cc
	}
	env := rule.NewConfigEnv(c, set.Inventory())
	if env.Store.Known && !env.Store.Personal {
		return
	}
	t := c.Time.UnixNano()
	checked := false
	for _, list := range [2][]*rule.Rule{specific, anyRules} {
		for _, r := range list {
			ok, err := r.MatchConfig(&e.ev, env, c)
			if err != nil {
				e.evalError(r, err)
				continue
			}
			if !ok {
				continue
			}
			if !checked {
				if e.beyondHorizon(t, c.ID) {
					return
				}
				checked = true
			}
			key := r.GroupKeyConfig(c)
			if r.Kind() != incident.KindExposure {
				en := entry{t: t, id: c.ID, store: e.intern.str(c.Resource.Store), cs: packCS(e.intern.set(env.Store.Categories), 0)}
				e.add(r, []byte(key), en, func() []event.FieldValue { return nil })
				continue
			}
			id := e.change(r, key, c, env)
			if defaulted && id != "" {
				if e.defaulted[c.Resource.ID] == nil {
					e.defaulted[c.Resource.ID] = map[string]bool{}
				}
				e.defaulted[c.Resource.ID][id] = true
			}
		}
	}
}

// namedStore is the store a change named for its resource.
type namedStore struct {
	store string
	t     int64
	id    string
}

// nameStore learns the store a change names for its resource. When that
// changes what the resource's changes without a store resolve to, those
// changes are read again, so that the result does not depend on whether
// the change naming the store came first.
func (e *Engine) nameStore(set *rule.Set, c *event.ConfigChange) {
	t := c.Time.UnixNano()
	cur, ok := e.storeOf[c.Resource.ID]
	if ok && !before(cur.t, cur.id, t, c.ID) {
		return // a later change named the store already
	}
	e.storeOf[c.Resource.ID] = namedStore{store: strings.Clone(c.Resource.Store), t: t, id: strings.Clone(c.ID)}
	if ok && cur.store == c.Resource.Store {
		return
	}
	ids := e.defaulted[c.Resource.ID]
	if len(ids) == 0 {
		return
	}
	delete(e.defaulted, c.Resource.ID)
	var again []*event.ConfigChange
	for id := range ids {
		x := e.exposures[id]
		if x == nil {
			continue
		}
		kept := x.hist[:0]
		for _, h := range x.hist {
			if h.c != nil && h.c.Resource.ID == c.Resource.ID && storeDefaulted(h.c) {
				again = append(again, h.c)
			} else {
				kept = append(kept, h)
			}
		}
		x.hist = kept
		e.derive(x, nil)
	}
	for _, a := range again {
		e.config(set, a)
	}
}

// storeDefaulted reports whether a change's store was not named by its
// producer (it defaulted to the resource id). The stores keep the store as
// resolved, not the flag: a change read back from the store whose store
// equals its id counts as defaulted too.
func storeDefaulted(c *event.ConfigChange) bool {
	return c.StoreDefaulted || c.Resource.Store == c.Resource.ID
}

// change puts a change of an exposure rule in its history, and returns
// the exposure's id ("" when the rule could not read it).
func (e *Engine) change(r *rule.Rule, key string, c *event.ConfigChange, env *rule.ConfigEnv) string {
	xc, part, err := e.xchangeOf(r, c, env)
	if err != nil {
		e.evalError(r, err)
		return ""
	}
	id := exposureID(r, key, part)
	x := e.exposures[id]
	if x == nil {
		x = &exposure{rule: r, key: key, part: part}
		e.exposures[id] = x
	}
	if x.insert(xc) {
		e.derive(x, nil)
	}
	return id
}

// xchangeOf reads a change as an exposure rule sees it.
func (e *Engine) xchangeOf(r *rule.Rule, c *event.ConfigChange, env *rule.ConfigEnv) (xchange, string, error) {
	safeAfter, err := r.Safe(&e.ev, env.After, c)
	if err != nil {
		return xchange{}, "", err
	}
	beforeUnsafe := false
	if len(c.Before) > 0 {
		safe, err := r.Safe(&e.ev, env.Before, c)
		if err != nil {
			return xchange{}, "", err
		}
		beforeUnsafe = !safe
	}
	var part string
	if r.HasPer() {
		v := env.After
		if v == nil {
			v = env.Before
		}
		if part, err = r.Per(&e.ev, v, c); err != nil {
			return xchange{}, "", err
		}
	}
	cc := *c
	return xchange{t: c.Time.UnixNano(), id: strings.Clone(c.ID), unsafe: !safeAfter, beforeUnsafe: beforeUnsafe,
		store: strings.Clone(c.Resource.Store), cats: slices.Clone(env.Store.Categories), c: &cc}, part, nil
}

// insert puts a change in its place; false when the history had it.
func (x *exposure) insert(c xchange) bool {
	i := sort.Search(len(x.hist), func(i int) bool { return !before(x.hist[i].t, x.hist[i].id, c.t, c.id) })
	if i < len(x.hist) && x.hist[i].id == c.id {
		if x.hist[i].c == nil && c.c != nil && x.hist[i].manual == nil {
			x.hist[i] = c // a seed meets its change
			return true
		}
		return false
	}
	for _, h := range x.hist {
		if h.id == c.id && h.manual == nil {
			return false // the same change at another time: the first stands
		}
	}
	x.hist = slices.Insert(x.hist, i, c)
	return true
}

// derive computes an exposure's windows from its history and reports what
// changed; stored are findings not in memory to reconcile with.
func (e *Engine) derive(x *exposure, stored []incident.Finding) {
	var news []*episode
	var open *episode
	var seeded map[string]bool // the evidence of a window read from the store
	for i := range x.hist {
		c := &x.hist[i]
		if open != nil && seeded[c.id] {
			if !c.unsafe && c.manual == nil {
				open.end = c.t
				open = nil
			}
			continue
		}
		switch {
		case c.manual != nil:
			if open != nil {
				open.end, open.closed = c.t, c.manual
				open = nil
			}
		case c.unsafe && open == nil && !c.beforeUnsafe:
			open = newEpisode(x.fingerprint(c.t), c.t)
			seeded = nil
			if c.seed != nil {
				seedEvidence(open, c.seed)
				seeded = map[string]bool{}
				for _, id := range c.seed.EventIDs {
					seeded[id] = true
				}
			} else {
				open.add(c.id, c.t, 0, "", c.store, c.cats)
			}
			news = append(news, open)
		case c.unsafe && open != nil:
			open.add(c.id, c.t, 0, "", c.store, nil)
		case !c.unsafe && open != nil:
			open.add(c.id, c.t, 0, "", c.store, nil)
			open.end = c.t
			open = nil
		}
	}
	old := x.eps
	x.eps = news
	e.reconcile(owner{rule: x.rule, key: x.key, part: x.part}, old, news, stored)
}

// sweepExposures forgets the history that no change within the horizon
// can matter to: changes before the horizon that leave no window open.
func (e *Engine) sweepExposures() {
	if e.wm == math.MinInt64 {
		return
	}
	floor := e.wm - int64(e.opts.Horizon)
	for id, x := range e.exposures {
		cut := 0
		open := false
		for i, c := range x.hist {
			if c.t >= floor {
				break
			}
			switch {
			case c.manual != nil, !c.unsafe:
				open = false
			case !c.beforeUnsafe || open:
				open = true
			}
			if !open {
				cut = i + 1
			}
		}
		if cut > 0 {
			x.hist = slices.Delete(x.hist, 0, cut)
			x.eps = slices.DeleteFunc(x.eps, func(ep *episode) bool { return ep.end != 0 && ep.end < floor })
		}
		if len(x.hist) == 0 && len(x.eps) == 0 {
			delete(e.exposures, id)
		}
	}
}

// swapExposures carries the exposures over a rule reload: unchanged rules
// keep theirs; a changed rule reads its changes again.
func (e *Engine) swapExposures(set *rule.Set, byVersion map[string]*rule.Rule) {
	var again []xchange
	var seeds []*exposure
	for id, x := range e.exposures {
		if r := byVersion[x.rule.ID()+"\x00"+x.rule.Version()]; r != nil {
			x.rule = r
			continue
		}
		delete(e.exposures, id)
		for _, h := range x.hist {
			if h.c != nil {
				again = append(again, h)
			}
		}
		if set.Rule(x.rule.ID()) != nil {
			seeds = append(seeds, x) // its seeds and closes go to the new rule
		}
	}
	for _, x := range seeds {
		r := set.Rule(x.rule.ID())
		if r.Kind() != incident.KindExposure {
			continue
		}
		nx := &exposure{rule: r, key: x.key, part: x.part}
		for _, h := range x.hist {
			if h.c == nil {
				nx.insert(h)
			}
		}
		nx.eps = x.eps
		for _, ep := range nx.eps {
			ep.fp = nx.fingerprint(ep.start)
		}
		if len(nx.hist) > 0 {
			e.exposures[exposureID(r, nx.key, nx.part)] = nx
		}
	}
	sort.Slice(again, func(i, j int) bool { return before(again[i].t, again[i].id, again[j].t, again[j].id) })
	for _, h := range again {
		e.config(set, h.c)
	}
}

// seed puts an exposure finding read from the store in the history: a
// window it says is open (with its opening change, should retention have
// dropped it), closed by a person, or closed inside the history read
// (whose closing change the history holds).
func (e *Engine) seed(r *rule.Rule, f *incident.Finding) {
	if f.Retracted() || len(f.EventIDs) == 0 {
		return
	}
	id := exposureID(r, f.GroupKey, f.Part)
	x := e.exposures[id]
	if x == nil {
		x = &exposure{rule: r, key: f.GroupKey, part: f.Part}
		e.exposures[id] = x
	}
	store := ""
	if len(f.Affected.Stores) > 0 {
		store = f.Affected.Stores[0]
	}
	seed := *f
	x.insert(xchange{t: f.WindowStart.UnixNano(), id: f.EventIDs[0], unsafe: true, store: store, cats: f.Affected.Categories, seed: &seed})
	if f.Closed != nil {
		x.insert(xchange{t: f.WindowEnd.UnixNano(), id: "closed-by-hand:" + f.Fingerprint, manual: f.Closed})
	}
	e.derive(x, []incident.Finding{*f})
}

// ErrNoOpenExposure: CloseExposure found no open window of that fingerprint.
var ErrNoOpenExposure = errors.New("no open exposure window has that fingerprint")

// CloseExposure closes an open exposure window by hand, at a point in time,
// for a reason a person gives (the resource was decommissioned, say): for
// windows no change will ever close. The closing is kept with the finding,
// so that a restart or a backfill keeps the window closed.
func (e *Engine) CloseExposure(ctx context.Context, fingerprint string, by incident.ManualClose) error {
	if strings.TrimSpace(by.Reason) == "" || strings.TrimSpace(by.By) == "" {
		return errors.New("closing an exposure window by hand needs a person and a reason")
	}
	e.mu.Lock()
	var x *exposure
	var ep *episode
	for _, cand := range e.exposures {
		for _, w := range cand.eps {
			if w.fp == fingerprint {
				x, ep = cand, w
			}
		}
	}
	if x == nil || ep.end != 0 {
		e.mu.Unlock()
		return ErrNoOpenExposure
	}
	at := by.At.UTC().UnixNano()
	if at < ep.last {
		e.mu.Unlock()
		return fmt.Errorf("the window was still changing at %s, after %s: close it at a later time",
			utc(ep.last).Format(time.RFC3339), by.At.UTC().Format(time.RFC3339))
	}
	by.At = by.At.UTC()
	x.insert(xchange{t: at, id: "closed-by-hand:" + fingerprint, manual: &by})
	e.derive(x, nil)
	e.flush()
	return e.hand(ctx)
}

// seedExposures reads the open (and hand-closed) windows of every
// exposure rule from the store, and the closed ones that end inside the
// history read from cfrom on: that history then knows the setting was
// already unsafe when it begins (a change re-asserting it is not an
// opening).
func (e *Engine) seedExposures(ctx context.Context, set *rule.Set, cfrom, until time.Time) (int, error) {
	n := 0
	for _, r := range set.Rules() {
		if r.Kind() != incident.KindExposure {
			continue
		}
		fs, err := e.opts.Store.FindingsOf(ctx, r.ID(), time.Unix(0, 0), until.Add(time.Nanosecond))
		if err != nil {
			return n, err
		}
		for i := range fs {
			e.lastVer = max(e.lastVer, fs[i].Version)
			closedInRead := !fs[i].WindowEnd.IsZero() && !fs[i].WindowEnd.Before(cfrom) && fs[i].WindowStart.Before(cfrom)
			if fs[i].Kind == incident.KindExposure && (fs[i].Open() || fs[i].Closed != nil || closedInRead) && !fs[i].Retracted() {
				e.seed(r, &fs[i])
				n++
			}
		}
	}
	return n, nil
}

// seedEvidence gives a window read from the store the evidence its
// finding kept, up to its last change (changes after it are in the
// history and are added again).
func seedEvidence(ep *episode, f *incident.Finding) {
	for _, id := range f.EventIDs {
		ep.add(id, f.WindowStart.UnixNano(), 0, "", "", nil)
	}
	ep.count = f.Count
	ep.first, ep.last = f.FirstSeen.UnixNano(), f.LastSeen.UnixNano()
	for _, s := range f.Affected.Stores {
		ep.stores[s] = struct{}{}
	}
	for _, c := range f.Affected.Categories {
		ep.categories[c] = struct{}{}
	}
}
