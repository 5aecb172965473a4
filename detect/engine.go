// Package detect evaluates the compiled rule set on the event stream, in
// event time, and reports findings: single-event matches, thresholds over
// sliding windows, sequences, and exposure windows opened by a weakening
// configuration change and closed by its remedy.
//
// Results do not depend on the order events arrive in. Each rule's
// findings for a group are a function of the group's events in (time, id)
// order (see docs/rules.md, "Event time"): events that come in order are
// evaluated as they come; one that comes out of order within the state a
// group keeps makes the group replay from its checkpoint; one older than
// that has its group re-evaluated from the store. A finding whose start
// moves, or that merges with another, is reported again under its new
// fingerprint, naming the ones it supersedes, and those are retracted.
// Findings are deterministic (rule + group + episode start), so a replay,
// a restart or a backfill updates findings instead of duplicating them.
package detect

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/detect/rule"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

// Sink receives findings: the next stage (the incident tracker, through the
// store). Findings with the same fingerprint are the same finding, reported
// again with more evidence (a higher Version); a sink must treat a repeat as
// an update, and a report with SupersededBy set as the finding's
// retraction. Findings is called from one goroutine at a time, in the
// order the reports were made.
type Sink interface {
	Findings(ctx context.Context, fs []incident.Finding) error
}

// StoredSink is an optional interface of a Sink: after each batch it is
// told the event-time range the batch held (stored before it was
// evaluated), so that what was computed from the stored events of that
// time — an exposure's affected customers — can be computed again.
type StoredSink interface {
	Stored(ctx context.Context, from, to time.Time)
}

// Store is what the engine reads from the store: the ordered history of
// events, to warm its state at start and to re-evaluate a group when an
// event comes behind what it keeps in memory, and the findings reported
// before (to tell a changed finding from one reported already, and to keep
// open exposures open across restarts and retention).
type Store interface {
	// ScanAccess and ScanConfig call fn for each event with from ≤ time < to,
	// in (time, id) order.
	ScanAccess(ctx context.Context, from, to time.Time, fn func(*event.AccessEvent) error) error
	ScanConfig(ctx context.Context, from, to time.Time, fn func(*event.ConfigChange) error) error
	// ScanAccessWhere is ScanAccess restricted to the events whose fields
	// (named as in rules, e.g. "actor.id") have these values. A store may
	// return more events than asked (the engine checks), never fewer.
	ScanAccessWhere(ctx context.Context, from, to time.Time, where []event.FieldValue, fn func(*event.AccessEvent) error) error
	// FindingsOf lists the latest report of each finding of a rule whose
	// window starts in [from, to).
	FindingsOf(ctx context.Context, ruleID string, from, to time.Time) ([]incident.Finding, error)
}

// Options configure an Engine.
type Options struct {
	// Lateness is how far behind the watermark an event may come and
	// still be evaluated from the state kept in memory (default 5m); an
	// older one has its group re-evaluated from the store.
	Lateness time.Duration
	// Horizon is how far behind the watermark an event is still corrected
	// (default 7 days); older ones are counted and logged, and left to
	// `breachwatch backfill`.
	Horizon time.Duration
	// IdleTimeout: a partition that has delivered nothing this long (wall
	// clock) no longer holds the watermark back (default 1m).
	IdleTimeout time.Duration
	// MaxGroups bounds the groups kept for window rules; beyond it the
	// least recently updated group is evicted, and re-evaluated from the
	// store when its key comes back (default 1,000,000).
	MaxGroups int
	// MatchGap: matches of a match rule in the same group belong to one
	// finding until the group has been quiet this long (default 1h).
	MatchGap time.Duration
	Now      func() time.Time // the wall clock: DetectedAt, idle partitions (default time.Now)
	// Store is read to warm the state, to correct late events and to keep
	// open exposures; nil: events older than the state kept are counted as
	// beyond the horizon.
	Store Store
}

// Engine evaluates rules. Handle and Process are safe for concurrent use:
// batches are evaluated one at a time, and their findings reach the sink in
// the order they were reported.
type Engine struct {
	set  atomic.Pointer[rule.Set]
	sink Sink
	opts Options
	m    *Metrics
	log  *zap.Logger

	mu        sync.Mutex // guards everything below
	sinkMu    sync.Mutex // taken before mu is released: sink calls in report order
	ev        rule.Evaluator
	groups    *table
	exposures map[string]*exposure
	storeOf   map[string]namedStore // resource id → the store named for it by its latest change that named one
	// defaulted: resource id → the exposures holding changes of it that
	// named no store (re-read when a store is named for it).
	defaulted map[string]map[string]bool
	clocks    *clocks
	wm        int64 // the watermark for the batch being evaluated
	newest    map[*rule.Rule]int64
	evicted   map[string]int64 // rule+key of evicted groups → their newest entry
	// gone: keys of sequence groups evicted or swept (→ their newest
	// entry): a later step of one comes to the store, not passed over.
	gone map[*rule.Rule]map[string]int64
	// warmFrom: the warm-up read access events from here on; a later step
	// of a sequence older than it may belong to a group it did not read.
	warmFrom int64
	late     map[string]*lateGroup
	dirty    map[*episode]dirtyRef
	retracts []retraction
	out      []incident.Finding
	known    map[string]sig // warm-up and backfill: findings as stored
	// deferred: a warm-up's episodes to report, reported at its end as
	// they stand then (a finding stored whole would otherwise be reported
	// again as the part of it read so far, and then, whole again, taken
	// for "reported before").
	deferred map[*episode]dirtyRef
	// historyBatch: access events a warm-up or a backfill evaluates at a
	// time (5,000; tests make it small).
	historyBatch int
	hold         int64 // warm-up and backfill: groups starting before this are held
	env          rule.AccessEnv
	keyBuf       []byte
	lastStore    struct { // storeInfo's one-entry cache
		set  *rule.Set
		id   string
		info rule.StoreInfo
	}
	intern     *interner
	failing    map[string]bool
	processed  int
	span       [2]time.Time // the event times of the batch being evaluated
	order      []int32      // the batch's access events in (time, id) order
	stale      []*group     // groups to evaluate again at the end of the batch
	lastVer    uint64
	oldest     int64 // the oldest event beyond the horizon since it was last logged
	oldestLog  time.Time
	correcting bool
	// Backfill and replay: findings starting at or after reportBefore are
	// not reported; replayAll reports what is stored too; produced keeps
	// every finding a backfill holds, by fingerprint.
	reportBefore int64
	dirtySeq     uint64
	replayAll    bool
	produced     map[string]incident.Finding
}

// dirtyRef says whose an episode updated in this batch is.
type dirtyRef struct {
	owner
	force bool   // report even if its evidence did not change (it supersedes another)
	seq   uint64 // when it was marked: of two episodes with one fingerprint, the later evaluation's is reported
}

// retraction is a finding to retract at the end of the batch, and the
// episode that now holds its evidence (nil: none).
type retraction struct {
	f        incident.Finding
	succ     *episode
	reported sig       // what was last reported of it
	detected time.Time // when it was first detected
}

// revive cancels a pending retraction of episode ep's fingerprint, which a
// later evaluation in the same batch has again (a window merged away and
// split off again), and the successor's claim to it; ep takes over what was
// reported of it.
func (e *Engine) revive(ep *episode) {
	fp := ep.fp
	for i := 0; i < len(e.retracts); i++ {
		if r := e.retracts[i]; r.f.Fingerprint == fp {
			if ep.reported == (sig{}) {
				ep.reported, ep.detectedAt = r.reported, r.detected
			}
			if r.succ != nil {
				r.succ.supersedes = slices.DeleteFunc(r.succ.supersedes, func(s string) bool { return s == fp })
			}
			e.retracts = slices.Delete(e.retracts, i, i+1)
			i--
		}
	}
	for ep := range e.dirty { // the successor as a later evaluation made it
		ep.supersedes = slices.DeleteFunc(ep.supersedes, func(s string) bool { return s == fp })
	}
}

// owner is what an episode belongs to: a group, or an exposure's history.
type owner struct {
	rule      *rule.Rule
	key, part string
	g         *group // nil for exposures
}

// New builds an engine running set, reporting to sink.
func New(set *rule.Set, sink Sink, o Options, reg prometheus.Registerer, log *zap.Logger) (*Engine, error) {
	if o.Lateness <= 0 {
		o.Lateness = 5 * time.Minute
	}
	if o.Horizon <= 0 {
		o.Horizon = 7 * 24 * time.Hour
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = time.Minute
	}
	if o.MaxGroups <= 0 {
		o.MaxGroups = 1_000_000
	}
	if o.MatchGap <= 0 {
		o.MatchGap = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	e := &Engine{sink: sink, opts: o, m: m, log: log, groups: newTable(o.MaxGroups), historyBatch: 5000,
		exposures: map[string]*exposure{}, storeOf: map[string]namedStore{}, defaulted: map[string]map[string]bool{}, clocks: newClocks(o.IdleTimeout),
		newest: map[*rule.Rule]int64{}, evicted: map[string]int64{}, gone: map[*rule.Rule]map[string]int64{}, warmFrom: math.MinInt64, late: map[string]*lateGroup{},
		failing: map[string]bool{}, dirty: map[*episode]dirtyRef{}, intern: newInterner(minInterned), wm: math.MinInt64, hold: math.MinInt64,
		reportBefore: math.MaxInt64}
	e.groups.busy = e.busy
	e.Swap(set)
	return e, nil
}

// shrink evicts groups beyond the limit, which the table holds when every
// group eviction looked at was busy in the batch (see table.victim).
func (e *Engine) shrink() {
	for e.groups.n > e.groups.max {
		g := e.groups.evictOne()
		if g == nil {
			return
		}
		e.evict(g)
	}
}

// busy says a group holds what the batch has not settled: an out-of-order
// event to replay, or episodes to report. Evicting it would lose them.
func (e *Engine) busy(g *group) bool {
	if g.stale {
		return true
	}
	for _, ep := range g.episodes() {
		if _, ok := e.dirty[ep]; ok {
			return true
		}
	}
	return false
}

// Set is the rule set running now.
func (e *Engine) Set() *rule.Set { return e.set.Load() }

// Swap replaces the rule set atomically. The state of rules whose
// definition did not change carries over. Window rules that changed start
// afresh; exposure rules that changed re-read the changes they had seen
// with their new definition, so that no open window is lost.
func (e *Engine) Swap(set *rule.Set) {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.set.Load()
	e.set.Store(set)
	byVersion := map[string]*rule.Rule{}
	for _, r := range set.Rules() {
		byVersion[r.ID()+"\x00"+r.Version()] = r
	}
	e.groups.each(func(g *group) {
		if r := byVersion[g.rule.ID()+"\x00"+g.rule.Version()]; r != nil {
			e.groups.rekey(g, r) // the same rule, compiled again: its state carries over
		} else {
			e.groups.remove(g)
		}
	})
	clear(e.newest)
	if old != nil {
		e.swapExposures(set, byVersion)
	}
	e.m.rules.Set(float64(set.Len()))
	e.m.groups.Set(float64(e.groups.len()))
}

// Handle evaluates a batch the store has acknowledged (ingest's Handoff).
// Findings the sink refuses are logged: the events are stored, and a
// restart or a backfill reports them again.
func (e *Engine) Handle(ctx context.Context, b *event.Batch) {
	if err := e.Process(ctx, b); err != nil && ctx.Err() == nil {
		e.log.Warn("could not report findings; a restart or `breachwatch backfill` reports them again", zap.Error(err))
	}
}

// Assigned and Revoked tell the engine which input partitions the consumer
// owns (ingest.PartitionAware): one assigned holds the watermark back until
// it delivers or goes idle.
func (e *Engine) Assigned(sources []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.clocks.assign(sources, e.opts.Now())
}

// Empty says which assigned partitions held no records when assigned:
// until they deliver, they do not hold the watermark back (a topic nobody
// writes to yet would otherwise hold it for the idle timeout).
func (e *Engine) Empty(sources []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.clocks.empty(sources)
}

// Revoked: see Assigned.
func (e *Engine) Revoked(sources []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.clocks.revoke(sources)
}

// Watermark is the engine's event-time watermark (zero until known).
func (e *Engine) Watermark() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.clocks.wm == math.MinInt64 {
		return time.Time{}
	}
	return utc(e.clocks.wm)
}

// batchSource names the clock of batches that carry no clocks of their
// own (tests, fixtures, warm-up): their newest event time.
const batchSource = "batch"

// Process evaluates a batch and hands the findings to the sink, returning
// the sink's error.
func (e *Engine) Process(ctx context.Context, b *event.Batch) error {
	e.mu.Lock()
	start := time.Now()
	e.evaluate(ctx, b)
	e.m.seconds.Observe(time.Since(start).Seconds())
	return e.hand(ctx)
}

// evaluate runs a batch through the rules and the corrections it calls
// for, leaving the reports in e.out. The batch is evaluated against the
// watermark of the batches before it; its own clocks move the watermark
// afterwards (a large batch of a backlog spans minutes of event time, and
// its first events are not late for its last). Called with e.mu held.
func (e *Engine) evaluate(ctx context.Context, b *event.Batch) {
	e.evaluateNoClock(ctx, b)
	now := e.opts.Now()
	if len(b.Clocks) > 0 {
		e.clocks.observe(b.Clocks, now)
	} else if b.Len() > 0 {
		var newest time.Time
		for i := range b.Access {
			if b.Access[i].Time.After(newest) {
				newest = b.Access[i].Time
			}
		}
		for i := range b.Config {
			if b.Config[i].Time.After(newest) {
				newest = b.Config[i].Time
			}
		}
		e.clocks.observe([]event.Clock{{Source: batchSource, Newest: newest}}, now)
	}
	e.wm = e.clocks.watermark(now)
	if e.wm != math.MinInt64 {
		e.m.watermark.Set(float64(e.wm) / 1e9)
	}
}

// evaluateNoClock evaluates a batch without moving the clocks.
func (e *Engine) evaluateNoClock(ctx context.Context, b *event.Batch) {
	set := e.set.Load()
	e.wm = e.clocks.watermark(e.opts.Now())
	e.span = [2]time.Time{}
	for i := range b.Access {
		e.widen(b.Access[i].Time)
	}
	for i := range b.Config {
		e.widen(b.Config[i].Time)
	}
	if e.intern.full() {
		e.compactInterner()
	}
	// In (time, id) order: a batch of several partitions interleaves their
	// times, and events in order are the cheap case (results do not depend
	// on it).
	e.order = e.order[:0]
	sorted := true
	for i := range b.Access {
		e.order = append(e.order, int32(i))
		if i > 0 && sorted {
			p, c := &b.Access[i-1], &b.Access[i]
			sorted = !before(c.Time.UnixNano(), c.ID, p.Time.UnixNano(), p.ID)
		}
	}
	if !sorted {
		slices.SortFunc(e.order, func(i, j int32) int {
			a, c := &b.Access[i], &b.Access[j]
			if x := a.Time.Compare(c.Time); x != 0 {
				return x
			}
			return strings.Compare(a.ID, c.ID)
		})
	}
	for _, i := range e.order {
		e.access(set, &b.Access[i])
	}
	for i := range b.Config {
		e.config(set, &b.Config[i])
	}
	if len(e.stale) > 0 {
		e.replayStale()
	}
	if len(e.late) > 0 {
		e.correct(ctx)
	}
	e.flush()
	e.shrink()
	e.processed += b.Len()
	if e.processed >= 4096 {
		e.processed = 0
		e.sweep()
	}
	e.m.events.WithLabelValues(rule.SourceAccess).Add(float64(len(b.Access)))
	e.m.events.WithLabelValues(rule.SourceConfig).Add(float64(len(b.Config)))
	e.m.groups.Set(float64(e.groups.len()))
}

// compactInterner keeps of the interner only the values that the entries
// in memory use, and renumbers them.
func (e *Engine) compactInterner() {
	old := e.intern
	ni := newInterner(old.limit)
	str := func(id int32) int32 {
		if id <= 0 {
			return id
		}
		return ni.str(old.values[id])
	}
	e.groups.each(func(g *group) {
		for i := range g.entries {
			en := &g.entries[i]
			en.store, en.tenant, en.distinct = str(en.store), str(en.tenant), str(en.distinct)
			if c := en.cats(); c > 0 {
				en.cs = packCS(ni.set(old.sets[c]), en.steps())
			}
		}
		if d := g.live.distinct; d != nil {
			g.live.distinct = make(map[int32]int32, len(d))
			for k, n := range d {
				g.live.distinct[str(k)] = n
			}
		}
	})
	if len(ni.values) > ni.limit/2 && ni.limit < maxInterned {
		ni.limit *= 2
	}
	e.intern = ni
	if len(ni.values) >= ni.limit*3/4 {
		e.log.Warn("detection keeps the store names and category sets of more than three quarters of its limit in memory; past the limit a finding's evidence lacks them",
			zap.Int("values", len(ni.values)), zap.Int("limit", ni.limit))
	}
}

func (e *Engine) widen(t time.Time) {
	if e.span[0].IsZero() || t.Before(e.span[0]) {
		e.span[0] = t
	}
	if t.After(e.span[1]) {
		e.span[1] = t
	}
}

// hand passes e.out to the sink, and the batch's time span to a
// StoredSink. Called with e.mu held; releases it.
func (e *Engine) hand(ctx context.Context) error {
	out, span := e.out, e.span
	e.out, e.span = nil, [2]time.Time{}
	if ss, ok := e.sink.(StoredSink); ok && !span[0].IsZero() {
		defer ss.Stored(ctx, span[0], span[1])
	}
	if len(out) == 0 {
		e.mu.Unlock()
		return nil
	}
	// The sink lock is taken before the engine lock is released, so that
	// reports reach the sink in the order they were made.
	e.sinkMu.Lock()
	e.mu.Unlock()
	defer e.sinkMu.Unlock()
	for i := range out {
		if out[i].Retracted() {
			e.m.superseded.Inc()
			continue
		}
		e.m.findings.WithLabelValues(out[i].RuleID, out[i].Severity).Inc()
	}
	return e.sink.Findings(ctx, out)
}

func (e *Engine) evalError(r *rule.Rule, err error) {
	e.m.evalErrors.WithLabelValues(r.ID()).Inc()
	if !e.failing[r.ID()] {
		e.failing[r.ID()] = true
		e.log.Warn("rule evaluation failed; the event counts as not matching (logged once per rule)",
			zap.String("rule", r.ID()), zap.String("where", r.Where()), zap.Error(err))
	}
}

// beyondHorizon counts an event too old to correct and logs the oldest such
// event at most once a minute.
func (e *Engine) beyondHorizon(t int64, id string) bool {
	if e.wm == math.MinInt64 || t >= e.wm-int64(e.opts.Horizon) {
		return false
	}
	e.m.beyond.Inc()
	if e.oldest == 0 || t < e.oldest {
		e.oldest = t
	}
	if now := e.opts.Now(); now.Sub(e.oldestLog) >= time.Minute {
		e.oldestLog = now
		e.log.Warn("events older than the correction horizon were stored but not evaluated; run `breachwatch backfill` over their time to evaluate them",
			zap.Time("oldest", utc(e.oldest)), zap.String("example_id", id),
			zap.Duration("horizon", e.opts.Horizon), zap.Time("watermark", utc(e.wm)))
		e.oldest = 0
	}
	return true
}

func (e *Engine) access(set *rule.Set, ev *event.AccessEvent) {
	specific, anyRules := set.ForAccess(ev.Action)
	if len(specific) == 0 && len(anyRules) == 0 {
		return
	}
	e.env.AccessEvent = ev
	e.env.Store = e.storeInfo(set, ev.Resource.Store)
	if e.env.Store.Known && !e.env.Store.Personal {
		e.env.AccessEvent = nil
		return // a store without personal data never yields a finding
	}
	checked := false
	var base entry // what every rule's entry of this event shares, made once
	for _, list := range [2][]*rule.Rule{specific, anyRules} {
		for _, r := range list {
			var steps uint32
			if r.Kind() == incident.KindSequence {
				if steps = e.steps(r, ev); steps == 0 {
					continue
				}
			} else {
				ok, err := r.MatchAccess(&e.ev, &e.env)
				if err != nil {
					e.evalError(r, err)
					continue
				}
				if !ok {
					continue
				}
			}
			if !checked {
				if e.beyondHorizon(ev.Time.UnixNano(), ev.ID) {
					e.env.AccessEvent = nil
					return
				}
				checked = true
			}
			e.keyBuf = r.AppendGroupKey(e.keyBuf[:0], ev)
			if base.id == "" {
				base = e.accessEntry(nil, ev, 0)
			}
			e.add(r, e.keyBuf, e.ruleEntry(r, ev, base, steps), func() []event.FieldValue { return r.GroupValues(ev) })
		}
	}
	e.env.AccessEvent = nil
}

// storeInfo is rule.NewStoreInfo remembering the last store asked for
// (events in a row mostly name the same store).
func (e *Engine) storeInfo(set *rule.Set, id string) rule.StoreInfo {
	c := &e.lastStore
	if c.set != set || c.id != id {
		c.set, c.id, c.info = set, strings.Clone(id), rule.NewStoreInfo(set.Inventory(), id)
	}
	return c.info
}

// steps evaluates which steps of a sequence an event meets. Only groups
// that have met the first step look at the later steps: an event that does
// not meet the first step is passed over when its key has no group yet (a
// group made later is marked incomplete) or a dormant one (marked
// incomplete); an incomplete group is rebuilt from the store once it meets
// the first step, before it can complete.
func (e *Engine) steps(r *rule.Rule, ev *event.AccessEvent) uint32 {
	var mask uint32
	if e.step(r, 0) {
		mask = 1
	} else {
		t := ev.Time.UnixNano()
		keyed := false
		passed := e.groups.live(r) == 0
		if !passed {
			e.keyBuf, keyed = r.AppendGroupKey(e.keyBuf[:0], ev), true
			g := e.groups.lookup(r, e.keyBuf)
			if g != nil && t >= g.cpAt && e.dormant(g) {
				// No chain of this group can be past its first step:
				// the event waits in the store (most events that meet a
				// later step come from addresses that never get that
				// far), and the group is read from it if it gets there.
				// (One before its checkpoint is late: a run the group no
				// longer holds may have met the first step; it goes the
				// way of late events.)
				g.incomplete = true
				c := g.c()
				c.passed = max(c.passed, t)
				e.newest[r] = max(e.newest[r], t)
				return 0
			}
			passed = g == nil
		}
		if passed {
			// It may meet a later step of a group made later (from
			// events that come behind it): that group starts incomplete.
			e.newest[r] = max(e.newest[r], t)
			// Or of a group that left memory (evicted, swept) or that a
			// warm-up did not read: then it is evaluated from the store.
			gone := e.gone[r]
			if len(gone) == 0 && t >= e.warmFrom {
				return 0
			}
			if !keyed {
				e.keyBuf = r.AppendGroupKey(e.keyBuf[:0], ev)
			}
			if _, ok := gone[string(e.keyBuf)]; !ok && t >= e.warmFrom {
				return 0
			}
		}
	}
	for i := 1; i < r.Steps(); i++ {
		if e.step(r, i) {
			mask |= 1 << i
		}
	}
	return mask
}

// dormant reports whether no evaluation of a sequence group has met its
// first step within a window yet (so none of its chains is past it, in
// memory or in its checkpoint), and an event that meets only later steps
// may therefore be passed over: only with a store to read it back from
// (settle has the group read from it once the first step is met), and not
// for a held group.
func (e *Engine) dormant(g *group) bool {
	return e.opts.Store != nil && !g.held && !g.reached
}

func (e *Engine) step(r *rule.Rule, i int) bool {
	ok, err := r.StepAccess(&e.ev, &e.env, i)
	if err != nil {
		e.evalError(r, err)
		return false
	}
	return ok
}

// accessEntry is an event as a group of rule r keeps it (r nil: what the
// entries of every rule share).
func (e *Engine) accessEntry(r *rule.Rule, ev *event.AccessEvent, steps uint32) entry {
	en := entry{t: ev.Time.UnixNano(), records: min(ev.Records, maxRecords), id: ev.ID, tenant: e.intern.str(ev.Tenant),
		store: e.intern.str(ev.Resource.Store), cs: packCS(e.intern.set(e.categories(ev)), 0)}
	if r == nil {
		return en
	}
	return e.ruleEntry(r, ev, en, steps)
}

// maxRecords bounds what one event counts toward sums: a hostile
// "records": 9223372036854775807 must not overflow a window's sum (and
// hide a breach) — 2^40 per event, 2^23 of them, still fit an int64.
const maxRecords = 1 << 40

// ruleEntry completes base (accessEntry's shared part) for rule r.
func (e *Engine) ruleEntry(r *rule.Rule, ev *event.AccessEvent, base entry, steps uint32) entry {
	en := base
	en.cs = packCS(en.cats(), steps)
	if agg, _ := r.Threshold(); agg == rule.AggDistinct {
		if d := r.DistinctValue(ev); d == ev.Tenant {
			en.distinct = en.tenant
		} else {
			en.distinct = e.intern.str(d)
		}
	}
	return en
}

// categories are what an event touched: its own, or its store's.
func (e *Engine) categories(ev *event.AccessEvent) []string {
	if len(ev.Categories) > 0 {
		return ev.Categories
	}
	return e.env.Store.Categories
}

// report marks an episode to be reported at the end of the batch.
func (e *Engine) report(o owner, ep *episode, force bool) {
	if d, ok := e.dirty[ep]; ok {
		force = force || d.force
	}
	e.dirtySeq++
	e.dirty[ep] = dirtyRef{o, force, e.dirtySeq}
}

// version is the next report version: increasing, and ahead of the wall
// clock's nanoseconds so that versions also increase across restarts.
func (e *Engine) version() uint64 {
	v := uint64(max(e.opts.Now().UnixNano(), 0))
	if v <= e.lastVer {
		v = e.lastVer + 1
	}
	e.lastVer = v
	return v
}

// flush reports the episodes whose evidence changed in this batch, in a
// stable order, then the retractions of the findings they superseded.
func (e *Engine) flush() {
	if len(e.dirty) == 0 && len(e.retracts) == 0 {
		return
	}
	type item struct {
		ep *episode
		d  dirtyRef
	}
	items := make([]item, 0, len(e.dirty))
	for ep, d := range e.dirty {
		if d.g != nil && d.g.held {
			continue // reported once rebuilt from the store
		}
		if ep.start >= e.reportBefore {
			continue // a backfill's findings start before its end
		}
		if e.produced != nil {
			// A backfill reports at its end, what each finding is then.
			f := ep.finding(d.rule, d.key, d.part)
			f.DetectedAt = ep.detectedAt
			e.produced[ep.fp] = f
			continue
		}
		if e.deferred != nil {
			if prev, ok := e.deferred[ep]; ok {
				d.force = d.force || prev.force
			}
			e.deferred[ep] = d
			continue
		}
		if !d.force && ep.sig() == ep.reported {
			continue
		}
		if known, ok := e.known[ep.fp]; ok && !d.force && known == ep.sig() {
			ep.reported = known // reported before (a warm-up or a backfill): nothing new
			continue
		}
		items = append(items, item{ep, d})
	}
	// An episode evaluated twice in the batch (replayed, then rebuilt
	// from the store after its group folded it) is reported once, as the
	// later evaluation has it.
	latest := make(map[string]uint64, len(items))
	for _, it := range items {
		latest[it.ep.fp] = max(latest[it.ep.fp], it.d.seq)
	}
	items = slices.DeleteFunc(items, func(it item) bool { return it.d.seq < latest[it.ep.fp] })
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.d.rule.ID() != b.d.rule.ID() {
			return a.d.rule.ID() < b.d.rule.ID()
		}
		if a.d.key != b.d.key {
			return a.d.key < b.d.key
		}
		if a.d.part != b.d.part {
			return a.d.part < b.d.part
		}
		return a.ep.start < b.ep.start
	})
	now := e.opts.Now().UTC()
	for _, it := range items {
		if it.ep.detectedAt.IsZero() {
			it.ep.detectedAt = now
		}
		it.ep.reported = it.ep.sig()
		f := it.ep.finding(it.d.rule, it.d.key, it.d.part)
		f.Version = e.version()
		e.out = append(e.out, f)
	}
	if e.produced != nil {
		e.retracts = e.retracts[:0] // a backfill retracts stored findings at its end
	}
	for i := range e.retracts {
		f := e.retracts[i].f
		f.Version = e.version()
		e.out = append(e.out, f)
	}
	e.retracts = e.retracts[:0]
	clear(e.dirty)
}

// reconcile replaces an owner's episodes that may still change (old) by
// those of a new evaluation (news): an episode with the same fingerprint
// keeps its first detection and what was last reported of it, and is
// reported if it changed; one that is gone was superseded by the new
// episode it overlaps, which reports the old one in its Supersedes, and
// is retracted. Stored findings not in memory (a correction, a backfill)
// come in stored.
func (e *Engine) reconcile(o owner, old, news []*episode, stored []incident.Finding) {
	byFP := make(map[string]*episode, len(old))
	for _, ep := range old {
		byFP[ep.fp] = ep
	}
	for _, ep := range news {
		force := false
		if prev := byFP[ep.fp]; prev != nil {
			delete(byFP, ep.fp)
			if ep != prev {
				ep.detectedAt, ep.reported = prev.detectedAt, prev.reported
				ep.supersedes = union(ep.supersedes, prev.supersedes)
				if d, ok := e.dirty[prev]; ok {
					force = d.force
					delete(e.dirty, prev) // the new evaluation's episode reports for it
				}
			}
		} else if i := slices.IndexFunc(stored, func(f incident.Finding) bool { return f.Fingerprint == ep.fp }); i >= 0 {
			ep.detectedAt, ep.reported = stored[i].DetectedAt, sigOf(&stored[i])
			ep.supersedes = union(ep.supersedes, stored[i].Supersedes)
			stored = slices.Delete(stored, i, i+1)
		}
		if len(e.retracts) > 0 {
			e.revive(ep)
		}
		e.report(o, ep, force)
	}
	for _, prev := range old {
		if byFP[prev.fp] == nil {
			continue // still there
		}
		delete(e.dirty, prev) // gone: whatever it was about to say is void
		if prev.reported == (sig{}) {
			continue // never reported: nothing to retract
		}
		f := prev.finding(o.rule, o.key, o.part)
		e.supersede(o, f, prev.detectedAt, prev.reported, news)
	}
	for i := range stored {
		if stored[i].Retracted() || slices.ContainsFunc(old, func(ep *episode) bool { return ep.fp == stored[i].Fingerprint }) {
			continue
		}
		e.supersede(o, stored[i], stored[i].DetectedAt, sigOf(&stored[i]), news)
	}
}

// supersede retracts finding f (gone from a new evaluation), naming the
// new episode that now holds its evidence.
func (e *Engine) supersede(o owner, f incident.Finding, detected time.Time, reported sig, news []*episode) {
	var succ *episode
	old := &episode{start: f.WindowStart.UnixNano(), last: f.LastSeen.UnixNano()}
	if !f.WindowEnd.IsZero() {
		old.end = f.WindowEnd.UnixNano()
	}
	for _, ep := range news {
		if ep.overlaps(old) && (succ == nil || ep.start < succ.start) {
			succ = ep
		}
	}
	if succ == nil { // none overlaps: the nearest
		for _, ep := range news {
			if succ == nil || abs(ep.start-old.start) < abs(succ.start-old.start) {
				succ = ep
			}
		}
	}
	f.SupersededBy = "retracted"
	if succ != nil {
		f.SupersededBy = succ.fp
		if !slices.Contains(succ.supersedes, f.Fingerprint) {
			succ.supersedes = append(succ.supersedes, f.Fingerprint)
		}
		if !detected.IsZero() && (succ.detectedAt.IsZero() || detected.Before(succ.detectedAt)) {
			succ.detectedAt = detected
		}
		e.report(o, succ, true)
	}
	f.Supersedes = nil
	if e.produced != nil {
		delete(e.produced, f.Fingerprint) // a backfill's episode that moved: not a finding
	}
	e.retracts = append(e.retracts, retraction{f: f, succ: succ, reported: reported, detected: detected})
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func union(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

// sigOf is what a stored report of a finding said.
func sigOf(f *incident.Finding) sig {
	s := sig{start: f.WindowStart.UnixNano(), first: f.FirstSeen.UnixNano(), last: f.LastSeen.UnixNano(),
		count: f.Count, records: f.Records, value: f.Value, tenants: len(f.Affected.Tenants), ids: len(f.EventIDs),
		closed: f.Closed != nil, idsum: idsum(f.EventIDs)}
	if !f.WindowEnd.IsZero() {
		s.end = f.WindowEnd.UnixNano()
	}
	return s
}

// markGone records a sequence group that leaves memory (see gone).
func (e *Engine) markGone(g *group) {
	if g.rule.Kind() != incident.KindSequence {
		return
	}
	m := e.gone[g.rule]
	if m == nil {
		m = map[string]int64{}
		e.gone[g.rule] = m
	}
	m[g.key] = max(m[g.key], g.lastSeen)
}

// sweep drops groups whose every finding is final: those whose newest
// entry is older than the watermark by more than the lateness, a gap and a
// window (no event in memory's reach can join them). It walks from the
// least recently updated and stops after a bounded number of visits.
func (e *Engine) sweep() {
	if e.wm == math.MinInt64 {
		return
	}
	visits := 0
	for g := e.groups.tail; g != nil && visits < 4096; visits++ {
		prev := g.prev
		if !g.held && g.lastSeen < e.wm-int64(e.opts.Lateness)-e.gap(g.rule)-reach(g.rule) {
			e.groups.remove(g)
			e.markGone(g)
		}
		g = prev
	}
	for k, t := range e.evicted {
		if t < e.wm-int64(e.opts.Horizon) {
			delete(e.evicted, k)
		}
	}
	for r, m := range e.gone {
		for k, t := range m {
			if t < e.wm-int64(e.opts.Horizon) {
				delete(m, k)
			}
		}
		if len(m) == 0 {
			delete(e.gone, r)
		}
	}
	e.sweepExposures()
}

// OpenExposures lists the exposures open now, as findings, newest first.
func (e *Engine) OpenExposures() []incident.Finding {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []incident.Finding
	for _, x := range e.exposures {
		for _, ep := range x.eps {
			if ep.end == 0 && ep.reported != (sig{}) {
				out = append(out, ep.finding(x.rule, x.key, x.part))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].WindowStart.Equal(out[j].WindowStart) {
			return out[i].WindowStart.After(out[j].WindowStart)
		}
		return out[i].Fingerprint < out[j].Fingerprint
	})
	return out
}

// Metrics are the engine's Prometheus metrics.
type Metrics struct {
	events     *prometheus.CounterVec // source
	findings   *prometheus.CounterVec // rule, severity
	evalErrors *prometheus.CounterVec // rule
	groups     prometheus.Gauge
	evicted    prometheus.Counter
	late       prometheus.Counter
	reordered  prometheus.Counter
	beyond     prometheus.Counter
	superseded prometheus.Counter
	corrected  prometheus.Counter
	corrSecs   prometheus.Histogram
	watermark  prometheus.Gauge
	rules      prometheus.Gauge
	seconds    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breachwatch_detect_events_total",
			Help: "Events evaluated by the rules engine."}, []string{"source"}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breachwatch_detect_findings_total",
			Help: "Finding reports (a finding reported again with more evidence counts again)."}, []string{"rule", "severity"}),
		evalErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breachwatch_detect_rule_errors_total",
			Help: "Rule evaluations that failed at run time (the event counted as not matching)."}, []string{"rule"}),
		groups: prometheus.NewGauge(prometheus.GaugeOpts{Name: "breachwatch_detect_groups",
			Help: "Live window groups (per rule and group key)."}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{Name: "breachwatch_detect_groups_evicted_total",
			Help: "Window groups evicted because the group limit was reached (re-evaluated from the store if their key comes back)."}),
		late: prometheus.NewCounter(prometheus.CounterOpts{Name: "breachwatch_detect_late_events_total",
			Help: "Events that came behind the state a group keeps in memory: corrected by re-evaluating the group from the store."}),
		reordered: prometheus.NewCounter(prometheus.CounterOpts{Name: "breachwatch_detect_reordered_events_total",
			Help: "Events that came out of order within a group's state in memory: the group was evaluated again from its checkpoint."}),
		beyond: prometheus.NewCounter(prometheus.CounterOpts{Name: "breachwatch_detect_beyond_horizon_events_total",
			Help: "Events older than the correction horizon behind the watermark: stored, not evaluated (see breachwatch backfill)."}),
		superseded: prometheus.NewCounter(prometheus.CounterOpts{Name: "breachwatch_detect_findings_superseded_total",
			Help: "Findings retracted because late events moved or merged their episode (each names its successor)."}),
		corrected: prometheus.NewCounter(prometheus.CounterOpts{Name: "breachwatch_detect_corrections_total",
			Help: "Groups re-evaluated from the store."}),
		corrSecs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "breachwatch_detect_correction_seconds",
			Help: "Time to re-evaluate the groups of one batch from the store.", Buckets: prometheus.ExponentialBuckets(0.001, 3, 10)}),
		watermark: prometheus.NewGauge(prometheus.GaugeOpts{Name: "breachwatch_detect_watermark_seconds",
			Help: "The engine's event-time watermark (unix seconds): the oldest newest-event time over the active input partitions."}),
		rules: prometheus.NewGauge(prometheus.GaugeOpts{Name: "breachwatch_detect_rules",
			Help: "Rules in the running set."}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "breachwatch_detect_batch_seconds",
			Help: "Time to evaluate a batch.", Buckets: prometheus.ExponentialBuckets(0.0001, 3, 10)}),
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.events, m.findings, m.evalErrors, m.groups, m.evicted, m.late, m.reordered,
		m.beyond, m.superseded, m.corrected, m.corrSecs, m.watermark, m.rules, m.seconds} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}

// LogSink writes findings to the log; it is the sink of `breachwatch
// replay` and a building block of others. Titles and keys come from rules
// and events; zap escapes them.
type LogSink struct{ Log *zap.Logger }

// Findings logs each finding.
func (s LogSink) Findings(_ context.Context, fs []incident.Finding) error {
	for i := range fs {
		f := &fs[i]
		if f.Retracted() {
			s.Log.Info("finding superseded", zap.String("rule", f.RuleID), zap.String("fingerprint", f.Fingerprint),
				zap.String("by", f.SupersededBy), zap.String("group", f.GroupKey))
			continue
		}
		s.Log.Warn("finding", zap.String("rule", f.RuleID), zap.String("severity", f.Severity),
			zap.String("fingerprint", f.Fingerprint), zap.String("group", f.GroupKey),
			zap.Time("window_start", f.WindowStart), zap.Int64("events", f.Count), zap.Int64("records", f.Records),
			zap.Int("tenants", len(f.Affected.Tenants)), zap.Strings("stores", f.Affected.Stores), zap.Bool("open", f.Open()))
	}
	return nil
}

// JSONSink writes each finding as one JSON line.
type JSONSink struct{ Enc *json.Encoder }

// Findings encodes each finding.
func (s JSONSink) Findings(_ context.Context, fs []incident.Finding) error {
	for i := range fs {
		if err := s.Enc.Encode(&fs[i]); err != nil {
			return err
		}
	}
	return nil
}

// groupID names a rule's group across rule reloads (rule id and version).
func groupID(r *rule.Rule, key string) string {
	var b strings.Builder
	b.Grow(len(r.ID()) + len(r.Version()) + len(key) + 2)
	b.WriteString(r.ID())
	b.WriteByte(0)
	b.WriteString(r.Version())
	b.WriteByte(0)
	b.WriteString(key)
	return b.String()
}
