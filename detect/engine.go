// Package detect evaluates the compiled rule set on the event stream, in
// event time, and reports findings: single-event matches, thresholds over
// sliding windows, sequences, and exposure windows opened by a weakening
// configuration change and closed by its remedy.
//
// Findings are deterministic (rule + group + episode start), so a replay of
// the same events, or a restart that warms the windows from the store,
// updates findings instead of duplicating them.
package detect

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/detect/rule"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

// Sink receives findings: the next stage (the incident tracker), or, until
// it exists, a store and the log. Findings with the same fingerprint are
// the same finding, reported again with more evidence; a sink must treat a
// repeat as an update. Findings is called from one goroutine at a time.
type Sink interface {
	Findings(ctx context.Context, fs []incident.Finding) error
}

// Options configure an Engine.
type Options struct {
	// Lateness is how far behind the newest event an event may be and
	// still count in the windows (default 5m).
	Lateness time.Duration
	// MaxGroups bounds the groups kept for window rules; beyond it the
	// least recently updated group is evicted (default 1,000,000).
	MaxGroups int
	// MatchGap: matches of a match rule in the same group belong to one
	// finding until the group has been quiet this long (default 1h).
	MatchGap time.Duration
	Now      func() time.Time // the wall clock, for DetectedAt (default time.Now)
}

// Engine evaluates rules. Handle and Process are safe for concurrent use:
// batches are evaluated one at a time, in the order they come.
type Engine struct {
	set  atomic.Pointer[rule.Set]
	sink Sink
	opts Options
	m    *Metrics
	log  *zap.Logger

	mu        sync.Mutex // guards everything below
	ev        rule.Evaluator
	groups    *table
	exposures map[string]*exposure
	maxTime   int64 // newest event time seen, unix nanoseconds
	out       []incident.Finding
	dirty     map[*episode]dirty // episodes updated in this batch, reported at its end
	env       rule.AccessEnv
	keyBuf    []byte          // group keys are built here
	intern    *interner       // stores and category sets of window entries
	seenRules map[string]bool // rule id+version in the current set
	failing   map[string]bool // rules whose evaluation failed (logged once)
	processed int
}

// New builds an engine running set, reporting to sink.
func New(set *rule.Set, sink Sink, o Options, reg prometheus.Registerer, log *zap.Logger) (*Engine, error) {
	if o.Lateness <= 0 {
		o.Lateness = 5 * time.Minute
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
	e := &Engine{sink: sink, opts: o, m: m, log: log, groups: newTable(o.MaxGroups),
		exposures: map[string]*exposure{}, failing: map[string]bool{}, dirty: map[*episode]dirty{}, intern: newInterner()}
	e.Swap(set)
	return e, nil
}

// Set is the rule set running now.
func (e *Engine) Set() *rule.Set { return e.set.Load() }

// Swap replaces the rule set atomically. The state of rules whose
// definition did not change carries over; changed and removed rules start
// afresh.
func (e *Engine) Swap(set *rule.Set) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.set.Store(set)
	current := map[string]bool{}
	byVersion := map[string]*rule.Rule{}
	for _, r := range set.Rules() {
		current[r.ID()+"\x00"+r.Version()] = true
		byVersion[r.ID()+"\x00"+r.Version()] = r
	}
	e.groups.each(func(g *group) {
		if r := byVersion[g.rule.ID()+"\x00"+g.rule.Version()]; r != nil {
			e.groups.rekey(g, r) // the same rule, compiled again: its state carries over
		} else {
			e.groups.remove(g)
		}
	})
	for id := range e.exposures {
		rv, _, _ := cut2(id)
		if !current[rv] {
			delete(e.exposures, id)
		}
	}
	e.seenRules = current
	e.m.rules.Set(float64(set.Len()))
	e.m.groups.Set(float64(e.groups.len()))
}

// cut2 splits "rule\x00version\x00key" into "rule\x00version" and key.
func cut2(id string) (ruleVersion, key string, ok bool) {
	n := 0
	for i := 0; i < len(id); i++ {
		if id[i] == 0 {
			if n++; n == 2 {
				return id[:i], id[i+1:], true
			}
		}
	}
	return id, "", false
}

// Handle evaluates a batch the store has acknowledged (ingest's Handoff).
// Findings the sink refuses are logged: the events are stored, and a replay
// or a restart reports them again.
func (e *Engine) Handle(ctx context.Context, b *event.Batch) {
	if err := e.Process(ctx, b); err != nil && ctx.Err() == nil {
		e.log.Warn("could not report findings; they will be reported again on the next restart or replay", zap.Error(err))
	}
}

// Process evaluates a batch and hands the findings to the sink,
// returning the sink's error.
func (e *Engine) Process(ctx context.Context, b *event.Batch) error {
	e.mu.Lock()
	set := e.set.Load()
	start := time.Now()
	for i := range b.Access {
		e.access(set, &b.Access[i])
	}
	for i := range b.Config {
		e.config(set, &b.Config[i])
	}
	e.flushDirty()
	e.processed += b.Len()
	if e.processed >= 4096 {
		e.processed = 0
		e.sweep()
	}
	e.m.events.WithLabelValues(rule.SourceAccess).Add(float64(len(b.Access)))
	e.m.events.WithLabelValues(rule.SourceConfig).Add(float64(len(b.Config)))
	e.m.groups.Set(float64(e.groups.len()))
	e.m.seconds.Observe(time.Since(start).Seconds())
	out := e.out
	e.out = nil
	e.mu.Unlock()
	if len(out) == 0 {
		return nil
	}
	for i := range out {
		e.m.findings.WithLabelValues(out[i].RuleID, out[i].Severity).Inc()
	}
	return e.sink.Findings(ctx, out)
}

func (e *Engine) observeTime(t time.Time) {
	if n := t.UnixNano(); n > e.maxTime {
		e.maxTime = n
	}
}

// tooLate reports whether an event at t is beyond the lateness allowed for
// a window of w.
func (e *Engine) tooLate(t time.Time, w time.Duration) bool {
	return t.UnixNano() < e.maxTime-int64(e.opts.Lateness)-int64(w)
}

func (e *Engine) evalError(r *rule.Rule, err error) {
	e.m.evalErrors.WithLabelValues(r.ID()).Inc()
	if !e.failing[r.ID()] {
		e.failing[r.ID()] = true
		e.log.Warn("rule evaluation failed; the event counts as not matching (logged once per rule)",
			zap.String("rule", r.ID()), zap.String("where", r.Where()), zap.Error(err))
	}
}

func (e *Engine) access(set *rule.Set, ev *event.AccessEvent) {
	e.observeTime(ev.Time)
	specific, anyRules := set.ForAccess(ev.Action)
	if len(specific) == 0 && len(anyRules) == 0 {
		return
	}
	e.env.AccessEvent = ev
	e.env.Store = rule.NewStoreInfo(set.Inventory(), ev.Resource.Store)
	if e.env.Store.Known && !e.env.Store.Personal {
		return // a store without personal data never yields a finding
	}
	for _, list := range [2][]*rule.Rule{specific, anyRules} {
		for _, r := range list {
			switch r.Kind() {
			case incident.KindSequence:
				e.sequence(r, ev)
				continue
			}
			ok, err := r.MatchAccess(&e.ev, &e.env)
			if err != nil {
				e.evalError(r, err)
				continue
			}
			if !ok {
				continue
			}
			switch r.Kind() {
			case incident.KindMatch:
				e.match(r, ev)
			case incident.KindThreshold:
				e.threshold(r, ev)
			}
		}
	}
	e.env.AccessEvent = nil
}

// categories are what an event touched: its own, or its store's.
func (e *Engine) categories(ev *event.AccessEvent) []string {
	if len(ev.Categories) > 0 {
		return ev.Categories
	}
	return e.env.Store.Categories
}

// dirty says which rule and group an updated episode belongs to.
type dirty struct {
	rule *rule.Rule
	key  string
}

// report queues the episode's finding: at once when now is set (a new
// finding, an exposure closing), otherwise once at the end of the batch, so
// that a finding is reported at most once per batch with all its evidence.
func (e *Engine) report(r *rule.Rule, key string, ep *episode, now bool) {
	if !now {
		e.dirty[ep] = dirty{r, key}
		return
	}
	delete(e.dirty, ep)
	e.emit(r, key, ep)
}

func (e *Engine) emit(r *rule.Rule, key string, ep *episode) {
	if ep.detectedAt.IsZero() {
		ep.detectedAt = e.opts.Now().UTC()
	}
	ep.reported = ep.count + ep.value
	e.out = append(e.out, ep.finding(r, key))
}

// flushDirty reports the episodes whose evidence changed since their last
// report, in a stable order.
func (e *Engine) flushDirty() {
	if len(e.dirty) == 0 {
		return
	}
	eps := make([]*episode, 0, len(e.dirty))
	for ep := range e.dirty {
		if ep.count+ep.value != ep.reported {
			eps = append(eps, ep)
		}
	}
	sort.Slice(eps, func(i, j int) bool {
		a, b := e.dirty[eps[i]], e.dirty[eps[j]]
		if a.rule.ID() != b.rule.ID() {
			return a.rule.ID() < b.rule.ID()
		}
		return a.key < b.key
	})
	for _, ep := range eps {
		d := e.dirty[ep]
		e.emit(d.rule, d.key, ep)
	}
	clear(e.dirty)
}

// group finds or creates the group of key (which may be e.keyBuf).
func (e *Engine) group(r *rule.Rule, key []byte, t time.Time) *group {
	g, evicted := e.groups.get(r, key)
	if evicted != nil {
		e.m.evicted.Inc()
	}
	if n := t.UnixNano(); n > g.lastSeen {
		g.lastSeen = n
	}
	return g
}

func (e *Engine) match(r *rule.Rule, ev *event.AccessEvent) {
	if e.tooLate(ev.Time, e.opts.MatchGap) {
		e.m.late.Inc()
		return
	}
	e.keyBuf = r.AppendGroupKey(e.keyBuf[:0], ev)
	g := e.group(r, e.keyBuf, ev.Time)
	if g.ep != nil && g.ep.has(ev.ID) {
		return
	}
	fresh := g.ep == nil || ev.Time.Sub(g.ep.last) > e.opts.MatchGap
	if fresh {
		g.ep = newEpisode(ev.Time)
	}
	g.ep.add(ev.ID, ev.Time, ev.Records, ev.Tenant, ev.Resource.Store, e.categories(ev))
	e.report(r, g.key, g.ep, fresh)
}

func (e *Engine) threshold(r *rule.Rule, ev *event.AccessEvent) {
	w := r.Window()
	if e.tooLate(ev.Time, w) {
		e.m.late.Inc()
		return
	}
	e.keyBuf = r.AppendGroupKey(e.keyBuf[:0], ev)
	g := e.group(r, e.keyBuf, ev.Time)
	agg, atLeast := r.Threshold()
	t := ev.Time.UnixNano()

	// A redelivered or replayed event counts once.
	if g.has(ev.ID) {
		return
	}
	newest := t
	if n := len(g.entries); n > 0 && g.entries[n-1].t > newest {
		newest = g.entries[n-1].t
	}
	if t < newest-int64(w) {
		e.m.late.Inc() // older than the window of this group
		return
	}
	// The episode ends after a quiet window.
	if g.ep != nil && t-g.ep.last.UnixNano() > int64(w) {
		g.ep = nil
	}
	g.evict(newest - int64(w))
	v := int64(1)
	if agg == rule.AggSum {
		v = ev.Records
	}
	en := entry{t: t, v: v, records: ev.Records, id: clone(ev.ID), tenant: clone(ev.Tenant),
		store: e.intern.str(ev.Resource.Store), cats: e.intern.set(e.categories(ev))}
	if agg == rule.AggDistinct {
		if d := r.DistinctValue(ev); d == ev.Tenant {
			en.distinct = en.tenant
		} else {
			en.distinct = clone(d)
		}
	}
	g.insert(en)

	value := int64(len(g.entries))
	switch agg {
	case rule.AggSum:
		value = g.sum
	case rule.AggDistinct:
		value = int64(len(g.distinct))
	}
	switch {
	case value >= atLeast && g.ep == nil:
		// The episode starts with the window that crossed the threshold.
		g.ep = newEpisode(time.Unix(0, g.entries[0].t).UTC())
		for _, x := range g.entries {
			g.ep.add(x.id, time.Unix(0, x.t).UTC(), x.records, x.tenant, e.intern.get(x.store), e.intern.getSet(x.cats))
		}
		g.ep.value = value
		e.report(r, g.key, g.ep, true)
	case g.ep != nil:
		g.ep.add(ev.ID, ev.Time, ev.Records, ev.Tenant, ev.Resource.Store, e.categories(ev))
		g.ep.value = max(g.ep.value, value)
		e.report(r, g.key, g.ep, false)
	}
}

func clone(s string) string {
	if s == "" {
		return ""
	}
	return string(append([]byte(nil), s...))
}

// has reports whether the window holds the event.
func (g *group) has(id string) bool {
	if g.ids != nil {
		_, ok := g.ids[id]
		return ok
	}
	for i := range g.entries {
		if g.entries[i].id == id {
			return true
		}
	}
	return false
}

// insert adds an entry in time order.
func (g *group) insert(en entry) {
	i := len(g.entries)
	for i > 0 && g.entries[i-1].t > en.t {
		i--
	}
	g.entries = append(g.entries, entry{})
	copy(g.entries[i+1:], g.entries[i:])
	g.entries[i] = en
	g.sum += en.v
	if en.distinct != "" {
		if g.distinct == nil {
			g.distinct = map[string]int32{}
		}
		g.distinct[en.distinct]++
	}
	switch {
	case g.ids != nil:
		g.ids[en.id] = struct{}{}
	case len(g.entries) > 32:
		g.ids = make(map[string]struct{}, len(g.entries))
		for _, x := range g.entries {
			g.ids[x.id] = struct{}{}
		}
	}
}

// evict drops the entries older than from.
func (g *group) evict(from int64) {
	n := 0
	for n < len(g.entries) && g.entries[n].t < from {
		x := &g.entries[n]
		g.sum -= x.v
		if x.distinct != "" {
			if g.distinct[x.distinct]--; g.distinct[x.distinct] <= 0 {
				delete(g.distinct, x.distinct)
			}
		}
		if g.ids != nil {
			delete(g.ids, x.id)
		}
		n++
	}
	if n > 0 {
		clear(g.entries[:n])
		g.entries = g.entries[n:]
	}
}

func (e *Engine) sequence(r *rule.Rule, ev *event.AccessEvent) {
	w := r.Window()
	if e.tooLate(ev.Time, w) {
		e.m.late.Inc()
		return
	}
	matches := func(i int) bool {
		ok, err := r.StepAccess(&e.ev, &e.env, i)
		if err != nil {
			e.evalError(r, err)
			return false
		}
		return ok
	}
	first := matches(0)
	e.keyBuf = e.keyBuf[:0]
	if !first {
		// Not a first step: only of interest to a group already under way
		// (looked up without allocating).
		if e.groups.live(r) == 0 {
			return
		}
		e.keyBuf = r.AppendGroupKey(e.keyBuf, ev)
		if e.groups.lookup(r, e.keyBuf) == nil {
			return
		}
	} else {
		e.keyBuf = r.AppendGroupKey(e.keyBuf, ev)
	}
	g := e.group(r, e.keyBuf, ev.Time)
	if g.seq == nil {
		g.seq = &seqState{}
	}
	q := g.seq
	// An attempt (or a completed sequence) lasts one window from its start.
	if q.seqEv != nil && ev.Time.Sub(q.seqStart) > w {
		*q = seqState{}
		g.ep = nil
	}
	if q.seqEv != nil && q.seqEv.has(ev.ID) {
		return
	}
	last := r.Steps() - 1
	switch {
	case g.ep != nil: // completed: more of the last step is more evidence
		if matches(last) {
			g.ep.add(ev.ID, ev.Time, ev.Records, ev.Tenant, ev.Resource.Store, e.categories(ev))
			e.report(r, g.key, g.ep, false)
		}
		return
	case q.step > 0 && matches(q.step):
	case q.step == 0 && first:
		if q.seqEv == nil {
			q.seqStart = ev.Time
			q.seqEv = newEpisode(ev.Time)
		}
	case first && q.seqEv != nil:
		// More of the first step while waiting for a later one: evidence.
		q.seqEv.add(ev.ID, ev.Time, 0, "", ev.Resource.Store, nil)
		return
	default:
		return
	}
	// The event counts for the step awaited.
	if q.step == last { // only the final step's data was accessed
		q.seqEv.add(ev.ID, ev.Time, ev.Records, ev.Tenant, ev.Resource.Store, e.categories(ev))
	} else { // earlier steps (failed logins, the login) touch no records
		q.seqEv.add(ev.ID, ev.Time, 0, "", ev.Resource.Store, nil)
	}
	q.stepCount++
	if q.stepCount < r.StepAtLeast(q.step) {
		return
	}
	if q.step < last {
		q.step++
		q.stepCount = 0
		return
	}
	g.ep = q.seqEv
	g.ep.start = q.seqStart
	e.report(r, g.key, g.ep, true)
}

func (e *Engine) config(set *rule.Set, c *event.ConfigChange) {
	e.observeTime(c.Time)
	specific, anyRules := set.ForConfig(c.Setting)
	if len(specific) == 0 && len(anyRules) == 0 {
		return
	}
	env := rule.NewConfigEnv(c, set.Inventory())
	if env.Store.Known && !env.Store.Personal {
		return
	}
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
			key := r.GroupKeyConfig(c)
			if r.Kind() == incident.KindMatch {
				g := e.group(r, []byte(key), c.Time)
				fresh := g.ep == nil || c.Time.Sub(g.ep.last) > e.opts.MatchGap
				if fresh {
					g.ep = newEpisode(c.Time)
				}
				if !g.ep.has(c.ID) {
					g.ep.add(c.ID, c.Time, 0, "", c.Resource.Store, env.Store.Categories)
					e.report(r, key, g.ep, fresh)
				}
				continue
			}
			e.exposure(r, key, c, env)
		}
	}
}

// exposure applies a change to an exposure rule's window: a change from a
// safe (or unknown) value to an unsafe one opens the window; a change to a
// safe value closes it. A change between two unsafe values — hardening that
// is not yet enough, or further weakening — opens nothing new.
func (e *Engine) exposure(r *rule.Rule, key string, c *event.ConfigChange, env *rule.ConfigEnv) {
	id := r.ID() + "\x00" + r.Version() + "\x00" + key
	x := e.exposures[id]
	if x == nil {
		x = &exposure{}
		e.exposures[id] = x
	}
	if c.Time.Before(x.lastChange) {
		e.m.late.Inc() // an older change than one already applied
		return
	}
	if x.open != nil && x.open.has(c.ID) {
		return
	}
	safeAfter, err := r.Safe(&e.ev, env.After, c)
	if err != nil {
		e.evalError(r, err)
		return
	}
	safeBefore := true // unknown: the change may be what exposed it
	if len(c.Before) > 0 {
		if safeBefore, err = r.Safe(&e.ev, env.Before, c); err != nil {
			e.evalError(r, err)
			return
		}
	}
	x.lastChange = c.Time
	switch {
	case !safeAfter && x.open == nil && safeBefore:
		x.open = newEpisode(c.Time)
		x.open.add(c.ID, c.Time, 0, "", c.Resource.Store, env.Store.Categories)
		e.report(r, key, x.open, true)
	case !safeAfter && x.open != nil:
		x.open.add(c.ID, c.Time, 0, "", c.Resource.Store, nil)
		e.report(r, key, x.open, false)
	case safeAfter && x.open != nil:
		x.open.add(c.ID, c.Time, 0, "", c.Resource.Store, nil)
		x.open.end = c.Time
		e.report(r, key, x.open, true)
		x.open = nil
	}
}

// sweep drops the groups whose windows can no longer hold anything: those
// not updated within their rule's window (plus lateness) of the newest
// event. Exposure windows are never swept: they stay open until closed.
func (e *Engine) sweep() {
	for g := e.groups.tail; g != nil; {
		prev := g.prev
		w := g.rule.Window()
		if g.rule.Kind() == incident.KindMatch {
			w = e.opts.MatchGap
		}
		if g.lastSeen < e.maxTime-int64(e.opts.Lateness)-int64(w) {
			e.groups.remove(g)
		}
		g = prev
	}
}

// OpenExposures lists the exposures open now, as findings, newest first.
func (e *Engine) OpenExposures() []incident.Finding {
	e.mu.Lock()
	defer e.mu.Unlock()
	set := e.set.Load()
	var out []incident.Finding
	for id, x := range e.exposures {
		if x.open == nil {
			continue
		}
		rv, key, _ := cut2(id)
		for _, r := range set.Rules() {
			if r.ID()+"\x00"+r.Version() == rv {
				out = append(out, x.open.finding(r, key))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].WindowStart.After(out[j].WindowStart) })
	return out
}

// Store is what warming the windows needs from the store.
type Store interface {
	ScanAccess(ctx context.Context, from, to time.Time, fn func(*event.AccessEvent) error) error
	ScanConfig(ctx context.Context, from, to time.Time, fn func(*event.ConfigChange) error) error
}

// Warm replays stored events into the windows before live events flow, so
// that a restart neither misses nor duplicates findings: access events from
// one window (the longest, plus lateness) before until, and configuration
// changes from exposureHorizon before (exposure windows can stay open for
// long). Findings the replay produces are reported; they carry the same
// fingerprints as before the restart.
func (e *Engine) Warm(ctx context.Context, st Store, until time.Time, exposureHorizon time.Duration) (int, error) {
	set := e.set.Load()
	n := 0
	var b event.Batch
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		n += b.Len()
		err := e.Process(ctx, &b)
		b.Reset()
		return err
	}
	from := until.Add(-exposureHorizon)
	err := st.ScanConfig(ctx, from, until.Add(time.Nanosecond), func(c *event.ConfigChange) error {
		b.Config = append(b.Config, *c)
		if len(b.Config) >= 1000 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return n, err
	}
	if set.MaxWindow() == 0 && !hasMatch(set) {
		return n, nil
	}
	from = until.Add(-max(set.MaxWindow(), e.opts.MatchGap) - e.opts.Lateness)
	err = st.ScanAccess(ctx, from, until.Add(time.Nanosecond), func(a *event.AccessEvent) error {
		b.Access = append(b.Access, *a)
		if len(b.Access) >= 5000 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return n, err
}

func hasMatch(s *rule.Set) bool {
	for _, r := range s.Rules() {
		if r.Kind() == incident.KindMatch {
			return true
		}
	}
	return false
}

// Metrics are the engine's Prometheus metrics.
type Metrics struct {
	events     *prometheus.CounterVec // source
	findings   *prometheus.CounterVec // rule, severity
	evalErrors *prometheus.CounterVec // rule
	groups     prometheus.Gauge
	evicted    prometheus.Counter
	late       prometheus.Counter
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
			Help: "Window groups evicted because the group limit was reached."}),
		late: prometheus.NewCounter(prometheus.CounterOpts{Name: "breachwatch_detect_late_events_total",
			Help: "Events too late for a window they would have counted in."}),
		rules: prometheus.NewGauge(prometheus.GaugeOpts{Name: "breachwatch_detect_rules",
			Help: "Rules in the running set."}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "breachwatch_detect_batch_seconds",
			Help: "Time to evaluate a batch.", Buckets: prometheus.ExponentialBuckets(0.0001, 3, 10)}),
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.events, m.findings, m.evalErrors, m.groups, m.evicted, m.late, m.rules, m.seconds} {
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
