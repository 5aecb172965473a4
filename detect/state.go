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

// entry is one event in a threshold window. It is kept small: a million
// live groups hold at least a million entries.
type entry struct {
	t        int64 // event time, unix nanoseconds
	v        int64 // the entry's part of the aggregate: 1, or the records
	records  int64
	id       string
	distinct string // the distinct value (shares tenant's memory when equal)
	tenant   string
	store    int32 // interned
	cats     int32 // interned set of categories
}

// interner gives small numbers to strings and string sets that repeat
// (stores, category sets), so window entries need not hold them.
type interner struct {
	ids    map[string]int32
	values []string
	sets   [][]string
}

func newInterner() *interner { return &interner{ids: map[string]int32{}} }

// maxInterned bounds the interner; past it, new values are not kept (-1).
const maxInterned = 1 << 16

func (in *interner) str(s string) int32 {
	if id, ok := in.ids[s]; ok {
		return id
	}
	if len(in.values) >= maxInterned {
		return -1
	}
	id := int32(len(in.values))
	s = strings.Clone(s)
	in.ids[s] = id
	in.values = append(in.values, s)
	in.sets = append(in.sets, nil)
	return id
}

// set interns a set of strings, by its members joined.
func (in *interner) set(ss []string) int32 {
	if len(ss) == 0 {
		return -1
	}
	key := "\x00set\x00" + strings.Join(ss, "\x00")
	if id, ok := in.ids[key]; ok {
		return id
	}
	id := in.str(key)
	if id < 0 {
		return -1
	}
	c := make([]string, len(ss))
	for i, s := range ss {
		c[i] = strings.Clone(s)
	}
	in.sets[id] = c
	return id
}

func (in *interner) get(id int32) string {
	if id < 0 {
		return ""
	}
	return in.values[id]
}

func (in *interner) getSet(id int32) []string {
	if id < 0 {
		return nil
	}
	return in.sets[id]
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

	seq *seqState // sequence rules only
}

// seqState is a sequence rule's attempt in progress for a group.
type seqState struct {
	step      int   // the step being waited for
	stepCount int64 // events seen for that step
	seqStart  time.Time
	seqEv     *episode // evidence of the attempt
}

// table holds the groups, per rule and group key, bounded by an LRU: the
// most recently updated at the head. It is not safe for concurrent use.
type table struct {
	rules      map[*rule.Rule]map[string]*group
	n          int
	head, tail *group
	max        int
}

func newTable(max int) *table {
	return &table{rules: map[*rule.Rule]map[string]*group{}, max: max}
}

func (t *table) len() int { return t.n }

// live reports how many groups rule r has.
func (t *table) live(r *rule.Rule) int { return len(t.rules[r]) }

// lookup finds a group without creating or touching it. The key may be a
// reused buffer: looking up allocates nothing.
func (t *table) lookup(r *rule.Rule, key []byte) *group {
	return t.rules[r][string(key)]
}

// get returns the group, creating it; evicted is the group pushed out to
// make room, if any.
func (t *table) get(r *rule.Rule, key []byte) (g *group, evicted *group) {
	m := t.rules[r]
	if g = m[string(key)]; g != nil {
		t.touch(g)
		return g, nil
	}
	if t.n >= t.max && t.tail != nil {
		evicted = t.tail
		t.remove(evicted)
	}
	if m == nil {
		m = map[string]*group{}
		t.rules[r] = m
	}
	g = &group{rule: r, key: string(key)}
	m[g.key] = g
	t.n++
	t.pushFront(g)
	return g, evicted
}

// rekey moves a group to r (the same rule from a reloaded set).
func (t *table) rekey(g *group, r *rule.Rule) {
	if g.rule == r {
		return
	}
	old := t.rules[g.rule]
	delete(old, g.key)
	if len(old) == 0 {
		delete(t.rules, g.rule)
	}
	m := t.rules[r]
	if m == nil {
		m = map[string]*group{}
		t.rules[r] = m
	}
	g.rule = r
	m[g.key] = g
}

// each calls fn for every group (fn may remove it).
func (t *table) each(fn func(*group)) {
	for g := t.head; g != nil; {
		next := g.next
		fn(g)
		g = next
	}
}

func (t *table) remove(g *group) {
	m := t.rules[g.rule]
	delete(m, g.key)
	if len(m) == 0 {
		delete(t.rules, g.rule)
	}
	t.n--
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
