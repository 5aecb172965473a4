package detect

import (
	"sort"
	"strings"
	"time"

	"github.com/breachwatch/breachwatch/detect/rule"
	"github.com/breachwatch/breachwatch/incident"
)

// maxDedupe bounds the event ids an episode remembers to recognise a
// redelivered event; beyond it, a redelivery may count twice.
const maxDedupe = 10_000

// episode is one finding in the making: the evidence of a group's current
// match, threshold crossing, completed sequence or open exposure.
type episode struct {
	start, first, last time.Time
	end                time.Time // exposures: when it closed
	count, records     int64
	value              int64    // threshold: the aggregate
	ids                []string // the first half of the evidence
	tail               []string // the latest half, a ring
	tailNext           int
	seen               map[string]struct{}
	tenants, stores    map[string]struct{}
	categories         map[string]struct{}
	detectedAt         time.Time
	reported           int64 // count+value at the last report
}

func newEpisode(start time.Time) *episode {
	return &episode{start: start, first: start, last: start, seen: map[string]struct{}{},
		tenants: map[string]struct{}{}, stores: map[string]struct{}{}, categories: map[string]struct{}{}}
}

// has reports whether the episode already holds the event.
func (ep *episode) has(id string) bool {
	_, ok := ep.seen[id]
	return ok
}

// add records one event as evidence. tenant may be "" (no tenant to
// report); cats are the categories touched.
func (ep *episode) add(id string, t time.Time, records int64, tenant, store string, cats []string) {
	if len(ep.seen) < maxDedupe {
		ep.seen[strings.Clone(id)] = struct{}{}
	}
	// Evidence: the first events and the latest ones.
	switch half := incident.MaxEvidence / 2; {
	case len(ep.ids) < half:
		ep.ids = append(ep.ids, strings.Clone(id))
	case len(ep.tail) < half:
		ep.tail = append(ep.tail, strings.Clone(id))
	default:
		ep.tail[ep.tailNext] = strings.Clone(id)
		ep.tailNext = (ep.tailNext + 1) % half
	}
	ep.count++
	ep.records += records
	if t.Before(ep.first) {
		ep.first = t
	}
	if t.After(ep.last) {
		ep.last = t
	}
	if tenant != "" {
		if _, ok := ep.tenants[tenant]; !ok {
			ep.tenants[strings.Clone(tenant)] = struct{}{}
		}
	}
	if store != "" {
		if _, ok := ep.stores[store]; !ok {
			ep.stores[strings.Clone(store)] = struct{}{}
		}
	}
	for _, c := range cats {
		if _, ok := ep.categories[c]; !ok {
			ep.categories[strings.Clone(c)] = struct{}{}
		}
	}
}

// evidence lists the event ids kept, oldest first.
func (ep *episode) evidence() []string {
	out := make([]string, 0, len(ep.ids)+len(ep.tail))
	out = append(out, ep.ids...)
	out = append(out, ep.tail[ep.tailNext:]...)
	return append(out, ep.tail[:ep.tailNext]...)
}

func keys(m map[string]struct{}) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// finding is the episode as a finding of rule r for group key.
func (ep *episode) finding(r *rule.Rule, key string) incident.Finding {
	f := incident.Finding{
		Fingerprint: incident.Fingerprint(r.ID(), key, ep.start),
		RuleID:      r.ID(), RuleVersion: r.Version(), Title: r.Title(), Severity: r.Severity(), Kind: r.Kind(),
		Tags: r.Tags(), GroupKey: key, WindowStart: ep.start, WindowEnd: ep.end,
		FirstSeen: ep.first, LastSeen: ep.last, Count: ep.count, Records: ep.records, Value: ep.value,
		EventIDs: ep.evidence(), DetectedAt: ep.detectedAt,
		Affected: incident.Affected{Scope: r.Affected(), Stores: keys(ep.stores), Categories: keys(ep.categories)},
	}
	if r.Affected() == incident.ScopeTenants {
		f.Affected.Tenants = keys(ep.tenants)
	}
	return f
}

// entry is one event in a threshold window.
type entry struct {
	t        int64 // event time, unix nanoseconds
	v        int64 // the entry's part of the aggregate: 1, or the records
	records  int64
	id       string
	distinct string
	tenant   string
	store    string
	cats     []string
}

// group is the state of one rule for one group key. Groups of window
// rules sit in an LRU list so that the table stays bounded.
type group struct {
	rule       *rule.Rule
	key        string
	prev, next *group
	lastSeen   int64 // latest event time, unix nanoseconds

	ep *episode // the current episode (match, threshold, sequence)

	// threshold
	entries  []entry
	sum      int64
	distinct map[string]int32
	ids      map[string]struct{} // built once the window is large

	// sequence
	step      int   // the step being waited for
	stepCount int64 // events seen for that step
	seqStart  time.Time
	seqEv     *episode // evidence of the attempt in progress
}

// table holds the groups, bounded by an LRU: the most recently updated at
// the head. It is not safe for concurrent use.
type table struct {
	groups     map[string]*group
	head, tail *group
	max        int
	perRule    map[*rule.Rule]int // live groups per rule
}

func newTable(max int) *table {
	return &table{groups: map[string]*group{}, max: max, perRule: map[*rule.Rule]int{}}
}

// lookup finds a group without creating or touching it.
func (t *table) lookup(r *rule.Rule, key string) *group {
	return t.groups[r.ID()+"\x00"+r.Version()+"\x00"+key]
}

func (t *table) len() int { return len(t.groups) }

// get returns the group, creating it; evicted is the group pushed out to
// make room, if any.
func (t *table) get(r *rule.Rule, key string) (g *group, evicted *group) {
	id := r.ID() + "\x00" + r.Version() + "\x00" + key
	if g = t.groups[id]; g != nil {
		t.touch(g)
		return g, nil
	}
	if len(t.groups) >= t.max && t.tail != nil {
		evicted = t.tail
		t.remove(evicted)
	}
	g = &group{rule: r, key: strings.Clone(key)}
	t.groups[id] = g
	t.perRule[r]++
	t.pushFront(g)
	return g, evicted
}

func (t *table) id(g *group) string { return g.rule.ID() + "\x00" + g.rule.Version() + "\x00" + g.key }

func (t *table) remove(g *group) {
	delete(t.groups, t.id(g))
	if t.perRule[g.rule]--; t.perRule[g.rule] <= 0 {
		delete(t.perRule, g.rule)
	}
	if g.prev != nil {
		g.prev.next = g.next
	} else {
		t.head = g.next
	}
	if g.next != nil {
		g.next.prev = g.prev
	} else {
		t.tail = g.prev
	}
	g.prev, g.next = nil, nil
}

func (t *table) pushFront(g *group) {
	g.prev, g.next = nil, t.head
	if t.head != nil {
		t.head.prev = g
	}
	t.head = g
	if t.tail == nil {
		t.tail = g
	}
}

func (t *table) touch(g *group) {
	if t.head == g {
		return
	}
	// unlink
	if g.prev != nil {
		g.prev.next = g.next
	}
	if g.next != nil {
		g.next.prev = g.prev
	} else {
		t.tail = g.prev
	}
	t.pushFront(g)
}

// exposure is the state of one exposure rule for one group (usually a
// resource and setting): the open window, if any.
type exposure struct {
	open       *episode
	lastChange time.Time
}
