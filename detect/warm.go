package detect

import (
	"context"
	"errors"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/breachwatch/breachwatch/detect/rule"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

// lookback is how far before the first access event it must evaluate a
// history reader starts reading access events: the longest gap and window.
func (e *Engine) lookback(set *rule.Set) time.Duration {
	d := time.Duration(0)
	for _, r := range set.Rules() {
		if r.Source() == rule.SourceAccess {
			d = max(d, time.Duration(e.gap(r)+reach(r)))
		}
	}
	return d
}

// Progress says how far a read of the stored history came.
type Progress struct {
	From, To time.Time // the event time being read
	Reached  time.Time // the newest event time read so far
	Events   int       // events read
	Findings int       // findings reported (new or changed)
	Retained int       // findings reported before and no longer produced, left as they were
	Live     int       // backfill: stored findings with evidence past the read, left to live detection
}

// readHistory evaluates stored events in [from, until) in time order:
// configuration changes from cfrom (exposure windows can stay open long),
// access events from afrom with groups that start within a window of
// afrom held until they are re-evaluated from a point where they were
// quiet. Findings are compared with those stored (known), so that what
// was reported before is not reported again. Called without e.mu held.
func (e *Engine) readHistory(ctx context.Context, cfrom, afrom, until time.Time, progress func(Progress)) (Progress, error) {
	st := e.opts.Store
	if st == nil {
		return Progress{}, errors.New("detect: reading the history needs a store")
	}
	set := e.set.Load()
	e.mu.Lock()
	_, err := e.seedExposures(ctx, set, cfrom, until)
	if err == nil {
		err = e.preload(ctx, set, afrom.Add(-e.lookback(set)), until)
	}
	e.hold = afrom.UnixNano()
	if e.produced == nil {
		e.deferred = map[*episode]dirtyRef{} // a backfill reports at its end its own way
	}
	e.mu.Unlock()
	p := Progress{From: afrom, To: until}
	if err != nil {
		return p, err
	}
	defer func() {
		e.mu.Lock()
		e.hold, e.known, e.deferred = math.MinInt64, nil, nil
		e.mu.Unlock()
	}()
	var b event.Batch
	flush := func(clock bool) error {
		if b.Len() == 0 {
			return nil
		}
		p.Events += b.Len()
		e.mu.Lock()
		if !clock {
			e.evaluateNoClock(ctx, &b)
		} else {
			e.evaluate(ctx, &b)
		}
		p.Findings += countReports(e.out)
		err := e.hand(ctx)
		b.Reset()
		if progress != nil {
			progress(p)
		}
		return err
	}
	// Configuration changes first, without moving the clock: exposure
	// histories do not depend on it, and access windows must not be
	// made late by them.
	err = st.ScanConfig(ctx, cfrom, until, func(c *event.ConfigChange) error {
		b.Config = append(b.Config, *c)
		if c.Time.After(p.Reached) {
			p.Reached = c.Time
		}
		if len(b.Config) >= 1000 {
			return flush(false)
		}
		return nil
	})
	if err == nil {
		err = flush(false)
	}
	if err != nil {
		return p, err
	}
	p.Reached = time.Time{}
	err = st.ScanAccess(ctx, afrom, until, func(a *event.AccessEvent) error {
		b.Access = append(b.Access, *a)
		p.Reached = a.Time
		if len(b.Access) >= e.historyBatch {
			return flush(true)
		}
		return nil
	})
	if err == nil {
		err = flush(true)
	}
	if err != nil {
		return p, err
	}
	// The held groups, from the store.
	e.mu.Lock()
	e.hold = math.MinInt64
	e.groups.each(func(g *group) {
		if g.held && len(g.entries) > 0 {
			id := groupID(g.rule, g.key)
			e.late[id] = &lateGroup{rule: g.rule, key: g.key, from: g.entries[0].t, until: g.entries[0].t, where: g.whereValues()}
		}
	})
	if len(e.late) > 0 {
		e.correct(ctx)
	}
	e.flush()
	// What the read found, reported once, as it stands at its end, against
	// what is stored.
	for ep, d := range e.deferred {
		if cur, ok := e.dirty[ep]; !ok || cur.seq < d.seq {
			e.dirty[ep] = d
		}
	}
	e.deferred = nil
	e.flush()
	e.shrink()
	p.Findings += countReports(e.out)
	err = e.hand(ctx)
	return p, err
}

func countReports(fs []incident.Finding) int {
	n := 0
	for i := range fs {
		if !fs[i].Retracted() {
			n++
		}
	}
	return n
}

// preload reads the findings stored with windows starting in [from,
// until), so that a warm-up or a backfill reports only what changed.
func (e *Engine) preload(ctx context.Context, set *rule.Set, from, until time.Time) error {
	if !e.replayAll {
		e.known = map[string]sig{}
	}
	for _, r := range set.Rules() {
		fs, err := e.opts.Store.FindingsOf(ctx, r.ID(), from, until.Add(time.Nanosecond))
		if err != nil {
			return err
		}
		for i := range fs {
			e.lastVer = max(e.lastVer, fs[i].Version) // versions go on from the stored ones, whatever the clock says
			if e.known != nil && !fs[i].Retracted() {
				e.known[fs[i].Fingerprint] = sigOf(&fs[i])
			}
		}
	}
	return nil
}

// Warm replays the stored tail of the stream into the engine before live
// events flow, so that a restart neither misses nor duplicates findings:
// open exposure windows from the findings that say so, configuration
// changes from exposureHorizon before until, and access events from the
// longest gap and window before until. What it finds that was reported
// before is not reported again.
func (e *Engine) Warm(ctx context.Context, until time.Time, exposureHorizon time.Duration) (int, error) {
	set := e.set.Load()
	afrom := until.Add(-e.lookback(set) - e.opts.Lateness)
	p, err := e.readHistory(ctx, until.Add(-exposureHorizon), afrom, until.Add(time.Nanosecond), nil)
	e.mu.Lock()
	if p.Events > 0 { // a history before the read may exist
		e.warmFrom = afrom.UnixNano()
	}
	// The watermark starts where the warm-up's read began (not unknown):
	// the correction horizon holds from the first batch, and what is
	// older than the read is evaluated from the store. (A store with no
	// history leaves it to the first events.)
	if err == nil && p.Events > 0 && e.clocks.wm < afrom.UnixNano() {
		e.clocks.wm = afrom.UnixNano()
		e.wm = e.clocks.wm
	}
	e.mu.Unlock()
	return p.Events, err
}

// Backfill evaluates the stored history from `from` on, as live detection
// would have, and reports the findings that start before `to` and are new
// or changed against those stored (so that running it twice changes
// nothing). It reads up to the newest stored event, so that a finding
// that begins before `to` is evaluated whole, and reports only at the end,
// each finding once, as it stands then. A stored finding whose evidence
// goes past what the backfill read (live detection took events since) is
// left to live detection (counted in Live). Run it on an engine of its own
// (a fresh one, with the live engine's rule set and options, reporting to
// the same sink). progress, if set, is called after every batch.
func (e *Engine) Backfill(ctx context.Context, from, to, latest time.Time, exposureHorizon time.Duration, progress func(Progress)) (Progress, error) {
	if !from.Before(to) {
		return Progress{}, errors.New("backfill: --from must be before --to")
	}
	end := latest.Add(time.Nanosecond)
	if end.Before(to) {
		end = to
	}
	e.mu.Lock()
	e.reportBefore = to.UnixNano()
	e.produced = map[string]incident.Finding{}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.reportBefore, e.produced = math.MaxInt64, nil
		e.mu.Unlock()
	}()
	p, err := e.readHistory(ctx, from.Add(-exposureHorizon), from, end, progress)
	if err != nil {
		return p, err
	}
	set := e.set.Load()
	e.mu.Lock()
	// A group busy across from was evaluated from where it was quiet:
	// its findings that end before from are not the backfill's.
	lo := from.Add(-e.lookback(set))
	for fp, f := range e.produced {
		if f.LastSeen.Before(from) && (f.WindowEnd.IsZero() && f.Kind != incident.KindExposure || !f.WindowEnd.IsZero() && f.WindowEnd.Before(from)) {
			delete(e.produced, fp)
		} else if f.WindowStart.Before(lo) {
			lo = f.WindowStart
		}
	}
	// What is stored now (live detection may have reported since the
	// read began), latest report of each finding.
	stored := map[string]incident.Finding{}
	for _, r := range set.Rules() {
		fs, err := e.opts.Store.FindingsOf(ctx, r.ID(), lo, to)
		if err != nil {
			e.mu.Unlock()
			return p, err
		}
		for i := range fs {
			e.lastVer = max(e.lastVer, fs[i].Version)
			stored[fs[i].Fingerprint] = fs[i]
		}
	}
	beyond := func(f *incident.Finding) bool { // evidence past the read
		return !f.LastSeen.Before(end) || !f.WindowEnd.IsZero() && !f.WindowEnd.Before(end)
	}
	// Findings stored for [from, to) that the history no longer yields:
	// one whose episode another now holds (it moved: events came late
	// when it was reported) is retracted and named by its successor;
	// others are left as they are, and counted.
	changed := map[string]bool{}
	var retracts []incident.Finding
	for _, fp := range slices.Sorted(maps.Keys(stored)) {
		f := stored[fp]
		if f.Retracted() || f.WindowStart.Before(from) || !f.WindowStart.Before(to) {
			continue
		}
		if _, ok := e.produced[fp]; ok {
			continue
		}
		if beyond(&f) {
			p.Live++
			continue
		}
		succ := successorOf(&f, e.produced)
		if succ == nil {
			p.Retained++
			continue
		}
		succ.Supersedes = union(succ.Supersedes, []string{f.Fingerprint})
		e.produced[succ.Fingerprint] = *succ
		changed[succ.Fingerprint] = true
		f.SupersededBy, f.Supersedes = succ.Fingerprint, nil
		retracts = append(retracts, f)
	}
	now := e.opts.Now().UTC()
	for _, fp := range slices.Sorted(maps.Keys(e.produced)) {
		f := e.produced[fp]
		if s, ok := stored[fp]; ok && !s.Retracted() {
			if sigOf(&s) == sigOf(&f) && !changed[fp] {
				continue // reported before as it is
			}
			if beyond(&s) {
				p.Live++ // live detection has seen more of it
				continue
			}
			f.DetectedAt = s.DetectedAt
			f.Supersedes = union(f.Supersedes, s.Supersedes)
		}
		if f.DetectedAt.IsZero() {
			f.DetectedAt = now
		}
		f.Version = e.version()
		e.out = append(e.out, f)
		p.Findings++
	}
	for _, f := range retracts {
		f.Version = e.version()
		e.out = append(e.out, f)
	}
	err = e.hand(ctx)
	if progress != nil {
		progress(p)
	}
	return p, err
}

// successorOf is the finding among fs of the same rule, group and part
// whose time overlaps f's (the earliest), or nil.
func successorOf(f *incident.Finding, fs map[string]incident.Finding) *incident.Finding {
	end := f.WindowEnd
	if end.IsZero() {
		end = f.LastSeen
	}
	var best *incident.Finding
	for _, c := range fs {
		if c.RuleID != f.RuleID || c.GroupKey != f.GroupKey || c.Part != f.Part {
			continue
		}
		cend := c.WindowEnd
		if cend.IsZero() {
			cend = c.LastSeen
		}
		if c.WindowStart.After(end) || f.WindowStart.After(cend) {
			continue
		}
		if best == nil || c.WindowStart.Before(best.WindowStart) {
			cc := c
			best = &cc
		}
	}
	return best
}

// Replay is the dry run of Backfill: it evaluates the stored history from
// from on (up to the newest stored event, latest, as Backfill does, so that
// a finding crossing to is taken whole) and reports, once each at its end,
// every finding that starts before to, and every exposure window open
// during [from, to), whether stored or not.
func (e *Engine) Replay(ctx context.Context, from, to, latest time.Time, exposureHorizon time.Duration, progress func(Progress)) (Progress, error) {
	e.mu.Lock()
	e.replayAll = true
	e.reportBefore = to.UnixNano()
	e.produced = map[string]incident.Finding{}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.replayAll, e.reportBefore, e.produced = false, math.MaxInt64, nil
		e.mu.Unlock()
	}()
	end := latest.Add(time.Nanosecond)
	if end.Before(to) {
		end = to
	}
	p, err := e.readHistory(ctx, from.Add(-exposureHorizon), from, end, progress)
	if err != nil {
		return p, err
	}
	e.mu.Lock()
	lo, hi := from.UnixNano(), to.UnixNano()
	for _, x := range e.exposures {
		for _, ep := range x.eps {
			if _, ok := e.produced[ep.fp]; ok || ep.start >= hi || ep.end != 0 && ep.end < lo {
				continue
			}
			e.produced[ep.fp] = ep.finding(x.rule, x.key, x.part)
		}
	}
	fs := slices.Collect(maps.Values(e.produced))
	SortFindings(fs)
	for i := range fs {
		fs[i].Version = e.version()
	}
	e.out = append(e.out, fs...)
	p.Findings = len(fs)
	err = e.hand(ctx)
	return p, err
}
