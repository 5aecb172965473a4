package detect

import (
	"hash/maphash"
	"slices"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/breachwatch/breachwatch/detect/rule"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

// entry is one event of a group that a rule looks at (a matching event of a
// match or threshold rule, an event meeting any step of a sequence). A
// group keeps its entries in (time, id) order. Entries are kept small: a
// million live groups hold at least a million of them.
type entry struct {
	t        int64 // event time, unix nanoseconds
	records  int64 // also the entry's part of a sum
	id       string
	tenant   int32 // interned (0: none)
	distinct int32 // interned: the value a distinct(FIELD) threshold counts (0: none)
	store    int32 // interned
	// cs packs the interned set of categories (low 24 bits: the interner
	// holds at most maxInterned values) and, for sequence rules, the steps
	// the event meets (high 8 bits: bit i for step i; at most 8 steps), so
	// that an entry takes 48 bytes.
	cs uint32
}

func packCS(cats int32, steps uint32) uint32 {
	if cats < 0 {
		cats = 0 // the interner was full: no categories
	}
	return uint32(cats)&(1<<24-1) | steps<<24
}

func (en *entry) cats() int32   { return int32(en.cs & (1<<24 - 1)) }
func (en *entry) steps() uint32 { return en.cs >> 24 }

// before orders entries (and events) by time, then id: the one order every
// evaluation follows, whatever order the events arrived in.
func before(at int64, aid string, bt int64, bid string) bool {
	return at < bt || at == bt && aid < bid
}

// interner gives small numbers to strings and string sets that repeat
// (stores, category sets), so window entries need not hold them.
type interner struct {
	ids    map[string]int32
	values []string
	sets   [][]string
	limit  int // past it, new values are not kept (-1)
	// lastSet is the set interned last (-1: none), checked first.
	lastSet int32
}

func newInterner(limit int) *interner {
	// Value 0 is "" (and the empty set): an entry's zero fields mean none.
	return &interner{ids: map[string]int32{"": 0}, values: []string{""}, sets: [][]string{nil}, limit: limit, lastSet: -1}
}

// The interner starts bounded by minInterned values. When it is three
// quarters full it is compacted to the values live entries use (at the
// start of a batch, so that a stream of ever new store names cannot
// exhaust it), and its bound doubles, up to maxInterned, when those are
// more than half of it.
const minInterned, maxInterned = 1 << 16, 1 << 22

func (in *interner) full() bool { return len(in.values) >= in.limit*3/4 }

func (in *interner) str(s string) int32 {
	if id, ok := in.ids[s]; ok {
		return id
	}
	if len(in.values) >= in.limit {
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
	if in.lastSet >= 0 && slices.Equal(in.sets[in.lastSet], ss) {
		return in.lastSet // traffic repeats the same few sets
	}
	key := "\x00set\x00" + strings.Join(ss, "\x00")
	if id, ok := in.ids[key]; ok {
		in.lastSet = id
		return id
	}
	id := in.str(key)
	if id < 0 {
		return -1
	}
	if in.sets[id] == nil {
		c := make([]string, len(ss))
		for i, s := range ss {
			c[i] = strings.Clone(s)
		}
		in.sets[id] = c
	}
	in.lastSet = id
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

// sig is what a report of an episode says; a change of it is reported.
type sig struct {
	start, first, last, end int64
	count, records, value   int64
	tenants, ids            int
	idsum                   uint64 // which events the evidence names
	closed                  bool
}

// episode is one finding in the making: the evidence of one match cluster,
// threshold crossing, completed sequence or exposure window. Its evidence is
// a function of the events it holds, not of the order they came in: the
// events are added in (time, id) order (a group replays them when one comes
// out of order), so the ids kept are the earliest and the latest.
type episode struct {
	fp              string // fingerprint: rule, group (and part), start
	start           int64
	first, last     int64
	end             int64 // exposures: when the window closed (0: open)
	closed          *incident.ManualClose
	count, records  int64
	value           int64    // threshold: the aggregate
	ids             []string // the earliest half of the evidence
	tail            []string // the latest half, a ring
	tailNext        int
	tenants, stores map[string]struct{}
	categories      map[string]struct{}
	// The last tenant, store and category set added: the same again (most
	// events of a group name the ones before) skips the maps' hashing.
	lastTenant, lastStore string
	lastCats              []string
	detectedAt            time.Time
	reported              sig // what the last report said (zero: never reported)
	supersedes            []string
}

func newEpisode(fp string, start int64) *episode {
	return &episode{fp: fp, start: start, first: start, last: start,
		tenants: map[string]struct{}{}, stores: map[string]struct{}{}, categories: map[string]struct{}{}}
}

// clone copies an episode, so that replaying a group from its checkpoint
// never changes the checkpoint.
func (ep *episode) clone() *episode {
	c := *ep
	c.ids = slices.Clone(ep.ids)
	c.tail = slices.Clone(ep.tail)
	c.tenants = cloneSet(ep.tenants)
	c.stores = cloneSet(ep.stores)
	c.categories = cloneSet(ep.categories)
	c.supersedes = slices.Clone(ep.supersedes)
	return &c
}

func cloneSet(m map[string]struct{}) map[string]struct{} {
	c := make(map[string]struct{}, len(m))
	for k := range m {
		c[k] = struct{}{}
	}
	return c
}

// add records one event as evidence. tenant may be "" (no tenant to
// report); cats are the categories touched. Events come in (time, id)
// order within an evaluation. The strings must not change afterwards
// (they come from a group's entries, the interner or a stored finding,
// which own theirs): they are kept, not copied.
func (ep *episode) add(id string, t, records int64, tenant, store string, cats []string) {
	// Evidence: the first events and the latest ones.
	switch half := incident.MaxEvidence / 2; {
	case len(ep.ids) < half:
		ep.ids = append(ep.ids, id)
	case len(ep.tail) < half:
		ep.tail = append(ep.tail, id)
	default:
		ep.tail[ep.tailNext] = id
		ep.tailNext = (ep.tailNext + 1) % half
	}
	ep.count++
	ep.records += records
	if t < ep.first {
		ep.first = t
	}
	if t > ep.last {
		ep.last = t
	}
	if tenant != "" && tenant != ep.lastTenant {
		ep.tenants[tenant] = struct{}{}
		ep.lastTenant = tenant
	}
	if store != "" && store != ep.lastStore {
		ep.stores[store] = struct{}{}
		ep.lastStore = store
	}
	if len(cats) > 0 && (len(cats) != len(ep.lastCats) || unsafe.SliceData(cats) != unsafe.SliceData(ep.lastCats)) {
		// Category sets are interned: the same set is the same slice.
		for _, c := range cats {
			ep.categories[c] = struct{}{}
		}
		ep.lastCats = cats
	}
}

func (ep *episode) sig() sig {
	s := sig{start: ep.start, first: ep.first, last: ep.last, end: ep.end, count: ep.count, records: ep.records,
		value: ep.value, tenants: len(ep.tenants), ids: len(ep.ids) + len(ep.tail), closed: ep.closed != nil}
	s.idsum = idsum(ep.evidence())
	return s
}

// idsum hashes a list of event ids (FNV-1a).
func idsum(ids []string) uint64 {
	h := uint64(14695981039346656037)
	for _, id := range ids {
		for i := 0; i < len(id); i++ {
			h ^= uint64(id[i])
			h *= 1099511628211
		}
		h ^= 0xff
		h *= 1099511628211
	}
	return h
}

// evidence lists the event ids kept, oldest first.
func (ep *episode) evidence() []string {
	out := make([]string, 0, len(ep.ids)+len(ep.tail))
	out = append(out, ep.ids...)
	out = append(out, ep.tail[ep.tailNext:]...)
	return append(out, ep.tail[:ep.tailNext]...)
}

// overlaps reports whether two episodes share any time.
func (ep *episode) overlaps(o *episode) bool {
	return ep.start <= o.spanEnd() && o.start <= ep.spanEnd()
}

func (ep *episode) spanEnd() int64 {
	if ep.end != 0 {
		return ep.end
	}
	return ep.last
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

func utc(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// finding is the episode as a finding of rule r for group key (and part).
func (ep *episode) finding(r *rule.Rule, key, part string) incident.Finding {
	f := incident.Finding{
		Fingerprint: ep.fp, RuleID: r.ID(), RuleVersion: r.Version(), Title: r.Title(), Severity: r.Severity(), Kind: r.Kind(),
		Tags: r.Tags(), GroupKey: key, IncidentKey: r.IncidentKey(key), Part: part, WindowStart: utc(ep.start),
		FirstSeen: utc(ep.first), LastSeen: utc(ep.last), Count: ep.count, Records: ep.records, Value: ep.value,
		EventIDs: ep.evidence(), DetectedAt: ep.detectedAt, Supersedes: slices.Clone(ep.supersedes), Closed: ep.closed,
		Affected: incident.Affected{Scope: r.Affected(), Stores: keys(ep.stores), Categories: keys(ep.categories)},
	}
	if ep.end != 0 {
		f.WindowEnd = utc(ep.end)
	}
	if r.Affected() == incident.ScopeTenants {
		f.Affected.Tenants = keys(ep.tenants)
	}
	return f
}

// gstate is the state of a rule's evaluation of one group after some
// prefix of its entries: what a group's checkpoint holds, and what its live
// evaluation holds after every entry.
type gstate struct {
	ep   *episode // the current episode, if any: later events may join it
	last int64    // match: the latest entry; threshold, sequence: the latest hot or completing entry of ep
	// The window (threshold, sequence): the entries with t ≥ the newest
	// evaluated entry's t - window. lo indexes the group's entries.
	lo       int
	sum      int64
	distinct map[int32]int32 // interned value → entries of the window with it
	// Sequence: chains[k] holds, for the latest entries meeting step k (as
	// many as the step needs), the latest start of a chain of the steps
	// before it that those entries could follow, oldest first; when full,
	// its first value is the latest start of a chain of steps 0..k.
	chains  *[][]int64 // (a pointer: only sequences have it)
	first   int32      // sequence: entries of the window meeting the first step
	started bool       // at least one entry has been evaluated
}

// clone copies a state (the episode too).
func (s *gstate) clone() gstate {
	c := *s
	if s.ep != nil {
		c.ep = s.ep.clone()
	}
	c.distinct = nil // rebuilt from the entries when a replay starts
	c.chains = nil   // likewise
	return c
}

// group is the state of one rule for one group key: its entries since the
// checkpoint (and one window before it), the evaluation state at the
// checkpoint, and the live state after every entry. Groups sit in an LRU
// list so that the table stays bounded.
type group struct {
	rule       *rule.Rule
	key        string
	prev, next *group
	lastSeen   int64 // the newest entry's time

	entries []entry
	ids     map[uint64]struct{} // hashes of the entries' ids (idHash), once there are many
	cpAt    int64               // the checkpoint: cold.cp is the state after every entry before cpAt
	live    gstate
	// cold holds what most groups (one or two events, no finding) never
	// need, allocated when first needed: a million groups stay small.
	cold *groupCold
	// incomplete: events of later steps of a sequence may have been
	// passed over (before this group existed, or while it was dormant);
	// the group is rebuilt from the store if one of them could be part of
	// a chain (see groupCold.passed).
	incomplete bool
	// held: the group's start may lie before the history read (a warm-up
	// or a backfill began inside it); it reports nothing until it has
	// been rebuilt from the store from a point where it was quiet.
	held bool
	// stale: an entry came out of order in this batch; the live state is
	// evaluated again at the end of the batch.
	stale bool
	// rebuilt: read from the store by a correction (its state is known
	// from where the read began, not from its first entry).
	rebuilt bool
	// reached: an evaluation of this sequence group (live, replayed or
	// folded into the checkpoint) has met the first step within a window.
	// Until then no chain of it is past the first step.
	reached bool
}

// idSeed keys idHash: event ids are chosen by producers, so the hash of a
// group's id set is seeded per process (no crafted ids collide on purpose).
var idSeed = maphash.MakeSeed()

// idHash is an event id as a group's id set holds it: 64 bits, so a lookup
// hashes the id once and the set holds no strings. Two different ids of
// one group sharing a hash (odds about n²/2⁶⁵ for n entries) would count
// as one.
func idHash(id string) uint64 { return maphash.String(idSeed, id) }

// groupCold is the part of a group most groups never use.
type groupCold struct {
	cp gstate // the checkpoint's state (zero until the group first folds entries)
	// eps are the episodes of this group reported or to report that a
	// later event may still change: those since the checkpoint, and the
	// one open at it.
	eps []*episode
	// where are the values of the group's group_by fields, kept for a held
	// or reordered group (to read it from the store).
	where []event.FieldValue
	// An incomplete sequence group: passed is the latest time of an event
	// passed over that may be of this group. reachedAt is the earliest
	// time at which an evaluation met the first step within a window
	// (when reached): an event of a later step before it cannot be part
	// of a chain, so only an event passed over at or after it needs the
	// group read from the store.
	passed, reachedAt int64
	// filled: the events passed over from here on have been read from the
	// store and put in place (0: none yet; see Engine.settle).
	filled int64
}

// c returns the group's cold part, making it.
func (g *group) c() *groupCold {
	if g.cold == nil {
		g.cold = &groupCold{}
	}
	return g.cold
}

func (g *group) episodes() []*episode {
	if g.cold == nil {
		return nil
	}
	return g.cold.eps
}

func (g *group) setEpisodes(eps []*episode) {
	if g.cold != nil || len(eps) > 0 {
		g.c().eps = eps
	}
}

func (g *group) whereValues() []event.FieldValue {
	if g.cold == nil {
		return nil
	}
	return g.cold.where
}

// has reports whether the group holds an event of this id, whatever its
// time: an id is one event, and its first copy counts (as the store keeps
// it).
func (g *group) has(id string) bool {
	if g.ids != nil {
		_, ok := g.ids[idHash(id)]
		return ok
	}
	for i := range g.entries {
		if g.entries[i].id == id {
			return true
		}
	}
	return false
}

// insert adds an entry in (time, id) order and returns its index.
func (g *group) insert(en entry) int {
	i := len(g.entries)
	for i > 0 && before(en.t, en.id, g.entries[i-1].t, g.entries[i-1].id) {
		i--
	}
	g.entries = slices.Insert(g.entries, i, en)
	switch {
	case g.ids != nil:
		g.ids[idHash(en.id)] = struct{}{}
	case len(g.entries) > 32:
		g.ids = make(map[uint64]struct{}, 2*len(g.entries))
		for _, x := range g.entries {
			g.ids[idHash(x.id)] = struct{}{}
		}
	}
	if en.t > g.lastSeen {
		g.lastSeen = en.t
	}
	return i
}

// trim drops the entries before from.
func (g *group) trim(from int64) {
	n := 0
	for n < len(g.entries) && g.entries[n].t < from {
		if g.ids != nil {
			delete(g.ids, idHash(g.entries[n].id))
		}
		n++
	}
	if n == 0 {
		return
	}
	// Entries the live window still counts leave it: every later entry is
	// at or after the checkpoint, so its window would drop them anyway.
	for k := g.live.lo; k < n; k++ {
		windowRemove(&g.live, &g.entries[k])
	}
	clear(g.entries[:n])
	g.entries = g.entries[n:]
	g.live.lo = max(g.live.lo-n, 0)
	if len(g.entries) == 0 {
		g.entries = nil
	}
	if len(g.entries) <= 32 {
		g.ids = nil
	}
}

// table holds the groups, per rule and group key, bounded by an LRU: the
// most recently updated at the head. It is not safe for concurrent use.
type table struct {
	rules      map[*rule.Rule]map[string]*group
	n          int
	head, tail *group
	max        int
	// busy says a group has state the batch has not settled yet
	// (episodes to report, a replay to do): eviction passes it over.
	busy func(*group) bool
}

// victim is the group to evict: the least recently updated that is not
// busy (looking at most 64 back); nil when those are all busy — the table
// then holds more than its limit until the batch has settled them (see
// Engine.shrink): evicting a busy group would lose what it has to report.
func (t *table) victim() *group {
	g := t.tail
	for n := 0; g != nil && n < 64; n, g = n+1, g.prev {
		if t.busy == nil || !t.busy(g) {
			return g
		}
	}
	return nil
}

// evictOne removes the victim and returns it (nil: none, see victim).
func (t *table) evictOne() *group {
	g := t.victim()
	if g != nil {
		t.remove(g)
	}
	return g
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
func (t *table) get(r *rule.Rule, key []byte) (g *group, created bool, evicted *group) {
	if g = t.rules[r][string(key)]; g != nil {
		t.touch(g)
		return g, false, nil
	}
	if t.n >= t.max {
		evicted = t.evictOne()
	}
	// Looked up after the eviction: evicting a rule's last group removes
	// that rule's map.
	m := t.rules[r]
	if m == nil {
		m = map[string]*group{}
		t.rules[r] = m
	}
	g = &group{rule: r, key: string(key)}
	m[g.key] = g
	t.n++
	t.pushFront(g)
	return g, true, evicted
}

// put installs g (a group rebuilt from the store) in place of the group of
// its rule and key, if any; evicted is the group pushed out to make room.
func (t *table) put(g *group) (evicted *group) {
	if old := t.rules[g.rule][g.key]; old != nil {
		t.remove(old)
	}
	if t.n >= t.max {
		evicted = t.evictOne()
	}
	m := t.rules[g.rule]
	if m == nil {
		m = map[string]*group{}
		t.rules[g.rule] = m
	}
	m[g.key] = g
	t.n++
	t.pushFront(g)
	return evicted
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

// The category set's id must fit the 24 bits packCS gives it.
const _ = uint(1<<24 - maxInterned)
