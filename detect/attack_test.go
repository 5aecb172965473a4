package detect

// Attacks on order independence found in review: each feeds the same
// events in time order and in a hostile arrival order (late, reversed,
// evicted, duplicated, a flood of junk values) and compares the findings.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/detect/rule"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/internal/disorder"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// A: an in-memory late event whose group is then folded (advance/trim) leaves
// its records in the live window sum forever.
func TestAttackTrimLeaksWindowSum(t *testing.T) {
	a := dlEv("a", at(0), "u-1", 6000)
	x := readEvent("x", at(30*time.Minute), "u-2", "cust-home") // only moves the clock
	b := dlEv("b", at(5*time.Minute), "u-1", 1000)
	c := dlEv("c", at(31*time.Minute), "u-1", 4000)
	mk := func(h *harness) *Engine { return h.engine(Options{Lateness: time.Minute}) }
	want := runOrder(t, mk, one(a, b, x, c))
	got := runOrder(t, mk, one(a, x, b, c))
	compare(t, "b late within memory", want, got)
}

// B: a sequence whose steps arrive reversed (all within the lateness).
func TestAttackSequenceReversed(t *testing.T) {
	var evs []event.AccessEvent
	for i := range 50 {
		evs = append(evs, loginEv("f"+string(rune('A'+i/26))+string(rune('a'+i%26)), at(time.Duration(i)*time.Second), event.ActionLoginFailed))
	}
	evs = append(evs, loginEv("login", at(60*time.Second), event.ActionLogin), loginEv("read", at(90*time.Second), event.ActionRead))
	mk := func(h *harness) *Engine { return h.engine(Options{}) }
	want := runOrder(t, mk, one(evs...))
	var rev []event.AccessEvent
	for i := len(evs) - 1; i >= 0; i-- {
		rev = append(rev, evs[i])
	}
	got := runOrder(t, mk, one(rev...))
	if len(want) == 0 {
		t.Fatal("no finding in time order")
	}
	compare(t, "steps reversed", want, got)
}

// C: a group brought back from the store (it was evicted) evicts another
// group silently (table.put), whose history is then lost.
func TestAttackPutEvictsSilently(t *testing.T) {
	evs := []event.AccessEvent{
		dlEv("a1", at(0), "u-a", 6000),
		dlEv("b1", at(1*time.Minute), "u-b", 6000),
		dlEv("c1", at(2*time.Minute), "u-c", 1),
		dlEv("a2", at(3*time.Minute), "u-a", 6000),
		dlEv("b2", at(4*time.Minute), "u-b", 6000),
	}
	want := runOrder(t, func(h *harness) *Engine { return h.engine(Options{}) }, one(evs...))
	got := runOrder(t, func(h *harness) *Engine { return h.engine(Options{MaxGroups: 2}) }, one(evs...))
	compare(t, "MaxGroups=2", want, got)
}

// D: a group with an out-of-order event in a batch is evicted in the same
// batch before its replay: the correction is lost.
func TestAttackEvictedWhileStale(t *testing.T) {
	a1 := dlEv("a1", at(0), "u-a", 3000)
	a3 := dlEv("a3", at(4*time.Minute), "u-a", 6000)
	a2 := dlEv("a2", at(2*time.Minute), "u-a", 3000)
	b := dlEv("b", at(5*time.Minute), "u-b", 1)
	c := dlEv("c", at(5*time.Minute), "u-c", 1)
	want := runOrder(t, func(h *harness) *Engine { return h.engine(Options{}) }, one(a1, a2, a3, b, c))
	got := runOrder(t, func(h *harness) *Engine { return h.engine(Options{MaxGroups: 2}) },
		[]event.Batch{{Access: []event.AccessEvent{a1}}, {Access: []event.AccessEvent{a3}}, {Access: []event.AccessEvent{a2, b, c}}})
	compare(t, "evicted while stale", want, got)
}

const distinctRule = `format: 1
id: many
title: many
severity: high
source: access
kind: threshold
condition: action == "read"
group_by: [actor.id]
threshold:
  aggregate: distinct(tenant)
  window: 10m
  at_least: 3
`

func rd(id string, d time.Duration, tenant string) event.AccessEvent {
	return readEvent(id, at(d), "emp-1", tenant)
}

// E: distinct: whether an entry is "contributing" is decided on the window
// before the slide; a replay from a checkpoint starts from a different
// window, so the result depends on where the checkpoint was.
func TestAttackDistinctReplayFromCheckpoint(t *testing.T) {
	P, Q, S := rd("P", 0, "X"), rd("Q", 9*time.Minute, "Y"), rd("S", 10*time.Minute, "Z")
	R, U, T := rd("R", 11*time.Minute, "X"), rd("U", 12*time.Minute, "Y"), rd("T", 11*time.Minute+30*time.Second, "Y")
	mk := func(h *harness) *Engine {
		return h.engineSet(customSet(t, distinctRule), Options{Lateness: 30 * time.Second})
	}
	want := runOrder(t, mk, []event.Batch{{Access: []event.AccessEvent{P, Q, S}}, {Access: []event.AccessEvent{R}}, {Access: []event.AccessEvent{T}}, {Access: []event.AccessEvent{U}}})
	got := runOrder(t, mk, []event.Batch{{Access: []event.AccessEvent{P, Q, S}}, {Access: []event.AccessEvent{R}}, {Access: []event.AccessEvent{U}}, {Access: []event.AccessEvent{T}}})
	t.Logf("want %v", want)
	compare(t, "T after U", want, got)
}

// F: the interner is capped; once a hostile stream has used 65536 store
// names, a real breach on a new store loses its stores (and categories).
func TestAttackInternerExhaustion(t *testing.T) {
	breach := readEvent("breach", at(0), "u-1", "cust-7")
	breach.Resource.Store = "s3://brand-new-bucket"
	var noise []event.AccessEvent
	for i := range 1 << 16 {
		ev := readEvent(fmt.Sprintf("n%d", i), at(time.Hour+time.Duration(i)*time.Millisecond), "u-evil", "cust-9")
		ev.Resource.Store = fmt.Sprintf("junk-%d", i)
		noise = append(noise, ev)
	}
	mk := func(h *harness) *Engine { return h.engine(Options{}) }
	filter := func(fs []string) []string {
		var out []string
		for _, f := range fs {
			if len(f) > 0 && contains(f, "u-1,") {
				out = append(out, f)
			}
		}
		return out
	}
	want := filter(runOrder(t, mk, []event.Batch{{Access: []event.AccessEvent{breach}}, {Access: noise}}))
	got := filter(runOrder(t, mk, []event.Batch{{Access: noise}, {Access: []event.AccessEvent{breach}}}))
	compare(t, "noise first", want, got)
}

func contains(s, sub string) bool {
	return len(s) >= len(sub) && (func() bool {
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				return true
			}
		}
		return false
	})()
}

// G: the same id twice with different times in one group: counted twice in
// a small group (has() looks by time), once in a big one; the store keeps one.
func TestAttackDuplicateIDDifferentTime(t *testing.T) {
	d1 := dlEv("dup", at(0), "u-1", 6000)
	d2 := dlEv("dup", at(time.Minute), "u-1", 6000)
	h := &harness{t: t, st: newMemStore(), clock: at(48 * time.Hour)}
	h.feed(h.engine(Options{}), one(d1, d2))
	live := describe(h.st.live())
	// What the store holds, evaluated afresh (a backfill / restart).
	h2 := &harness{t: t, st: newMemStore(), clock: at(48 * time.Hour)}
	h2.feed(h2.engine(Options{}), one(d1))
	compare(t, "same id twice vs store content", describe(h2.st.live()), live)
}

const configMatchRule = `format: 1
id: cfg-match
title: cfg
severity: high
source: config
kind: match
condition: setting == "mfa"
group_by: [resource.id]
`

// H: a config rule of kind match: a late change is "corrected" from the
// store by reading access events.
func TestAttackConfigMatchLate(t *testing.T) {
	c1 := change("c1", at(0), "res-1", "mfa", true, false)
	c2 := change("c2", at(time.Hour), "res-1", "mfa", true, false)
	c3 := change("c3", at(2*time.Hour), "res-1", "mfa", true, false)
	x := readEvent("x", at(3*time.Hour), "u-2", "cust-home")
	mk := func(h *harness) *Engine { return h.engineSet(customSet(t, configMatchRule), Options{}) }
	cb := func(c event.ConfigChange) event.Batch { return event.Batch{Config: []event.ConfigChange{c}} }
	xb := event.Batch{Access: []event.AccessEvent{x}}
	want := runOrder(t, mk, []event.Batch{cb(c1), cb(c2), cb(c3), xb})
	got := runOrder(t, mk, []event.Batch{cb(c1), xb, cb(c3), cb(c2)})
	t.Logf("want %v", want)
	compare(t, "config match late", want, got)
}

func perms(n int) [][]int {
	var out [][]int
	var rec func(p []int, used []bool)
	rec = func(p []int, used []bool) {
		if len(p) == n {
			out = append(out, slices.Clone(p))
			return
		}
		for i := 0; i < n; i++ {
			if !used[i] {
				used[i] = true
				rec(append(p, i), used)
				used[i] = false
			}
		}
	}
	rec(nil, make([]bool, n))
	return out
}

// I: exposure opened/closed/re-opened, a close with no open, unsafe->unsafe,
// and a duplicate, in every order.
func TestAttackExposureEveryOrder(t *testing.T) {
	bucket := "arn:aws:s3:::exports-eu"
	mk := func(id string, d time.Duration, before, after any) event.ConfigChange {
		c := change(id, at(d), bucket, "public_access", before, after)
		c.Resource.Type, c.Resource.Store = "bucket", "s3://exports-eu"
		return c
	}
	cs := []event.ConfigChange{
		mk("close0", 0, true, false), // close with no open
		mk("open1", 10*time.Minute, false, true),
		mk("close1", 20*time.Minute, true, false),
		mk("open2", 30*time.Minute, nil, true),   // before unknown
		mk("open2b", 31*time.Minute, true, true), // unsafe -> unsafe
		mk("close2", 40*time.Minute, true, false),
	}
	cs = append(cs, cs[2]) // close1 delivered twice
	run := func(order []int) []string {
		h := &harness{t: t, st: newMemStore(), clock: at(48 * time.Hour)}
		eng := h.engine(Options{})
		for _, k := range order {
			h.feed(eng, []event.Batch{{Config: []event.ConfigChange{cs[k]}}})
		}
		return describe(h.st.live())
	}
	want := run([]int{0, 1, 2, 6, 3, 4, 5})
	t.Logf("want %v", want)
	bad := 0
	for _, p := range perms(len(cs)) {
		got := run(p)
		if !slices.Equal(got, want) {
			if bad < 3 {
				compare(t, fmt.Sprint(p), want, got)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d orders differ", bad)
	}
}

// J: a partition goes idle, the others move on, then it comes back with
// old data; then a rebalance revokes and re-assigns it.
func TestAttackIdlePartitionComesBack(t *testing.T) {
	h := &harness{t: t, st: newMemStore(), clock: at(48 * time.Hour)}
	eng := h.engine(Options{})
	eng.Assigned([]string{"p0", "p1"})
	mkb := func(src string, evs ...event.AccessEvent) event.Batch {
		b := event.Batch{Access: evs}
		for _, e := range evs {
			b.Observe(src, e.Time)
		}
		return b
	}
	var p0, p1 []event.AccessEvent
	for i := range 6 {
		p0 = append(p0, dlEv(fmt.Sprintf("p0-%d", i), at(time.Duration(i)*time.Minute), "u-1", 1000))
		p1 = append(p1, dlEv(fmt.Sprintf("p1-%d", i), at(time.Duration(i)*time.Minute+30*time.Second), "u-1", 1000))
	}
	// time order reference
	hw := &harness{t: t, st: newMemStore(), clock: at(48 * time.Hour)}
	all := append(slices.Clone(p0), p1...)
	hw.feed(hw.engine(Options{}), []event.Batch{{Access: all}})
	want := describe(hw.st.live())

	h.feed(eng, []event.Batch{mkb("p1", p1[0])})
	h.clock = h.clock.Add(2 * time.Minute) // p1 idle
	h.feed(eng, []event.Batch{mkb("p0", p0...), mkb("p0", readEvent("far", at(5*time.Hour), "u-9", "cust-home"))})
	eng.Revoked([]string{"p1"})
	eng.Assigned([]string{"p1"})
	h.feed(eng, []event.Batch{mkb("p1", p1[1:]...)})
	got := describe(h.st.live())
	var gotU []string
	for _, s := range got {
		if contains(s, "u-1") {
			gotU = append(gotU, s)
		}
	}
	compare(t, "idle partition back", want, gotU)
	t.Logf("wm %v", eng.Watermark())
}

// K: a value cannot pose as another group_by field: the actor
// "u-1,tenant=cust-7" reading tenant "x" and the actor "u-1" reading
// tenant "cust-7,tenant=x" are two groups (two findings), in any order.
func TestAttackGroupKeyCollision(t *testing.T) {
	a := readEvent("a", at(0), "u-1,tenant=cust-7", "x")
	b := readEvent("b", at(30*time.Minute), "u-1", "cust-7,tenant=x")
	fill := readEvent("f", at(5*time.Hour), "u-2", "cust-home")
	mk := func(h *harness) *Engine { return h.engine(Options{}) }
	want := runOrder(t, mk, one(a, b, fill))
	keys := map[string]bool{}
	for _, d := range want {
		if strings.HasPrefix(d, "cross-tenant-read ") && !strings.Contains(d, "u-2") {
			keys[strings.Fields(d)[1]] = true
		}
	}
	if len(keys) != 2 {
		t.Fatalf("the two actors share a group: %v", want)
	}
	compare(t, "b late", want, runOrder(t, mk, one(a, fill, b)))
	compare(t, "a late", want, runOrder(t, mk, one(b, fill, a)))
}

// G3: same id, different time, in a group with more than 32 entries: counted once.
func TestAttackDuplicateIDBigGroup(t *testing.T) {
	var evs []event.AccessEvent
	for i := range 40 {
		evs = append(evs, dlEv(fmt.Sprintf("e%d", i), at(time.Duration(i)*time.Second), "u-1", 100))
	}
	d1 := dlEv("dup", at(time.Minute), "u-1", 3000)
	d2 := dlEv("dup", at(2*time.Minute), "u-1", 3000)
	mk := func(h *harness) *Engine { return h.engine(Options{}) }
	small := runOrder(t, mk, one(d1, d2, dlEv("z", at(3*time.Minute), "u-1", 4001)))
	big := runOrder(t, mk, append(one(evs...), one(d1, d2, dlEv("z", at(3*time.Minute), "u-1", 4001))...))
	t.Logf("small group: %v", small)
	t.Logf("big group:   %v", big)
}

// B2: reversed sequence, then hours of unrelated traffic: still nothing.
func TestAttackSequenceReversedStays(t *testing.T) {
	var evs []event.AccessEvent
	for i := range 50 {
		evs = append(evs, loginEv(fmt.Sprintf("f%02d", i), at(time.Duration(i)*time.Second), event.ActionLoginFailed))
	}
	evs = append(evs, loginEv("login", at(60*time.Second), event.ActionLogin), loginEv("read", at(90*time.Second), event.ActionRead))
	var rev []event.AccessEvent
	for i := len(evs) - 1; i >= 0; i-- {
		rev = append(rev, evs[i])
	}
	rev = append(rev, readEvent("later", at(3*time.Hour), "u-2", "cust-home"))
	got := runOrder(t, func(h *harness) *Engine { return h.engine(Options{}) }, one(rev...))
	if len(got) == 0 {
		t.Errorf("reversed credential stuffing never found")
	}
}

// Random arrival orders of match-rule traffic (cross-tenant reads) with
// small lateness: compare with time order.
func TestAttackRandomMatchOrders(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var evs []event.AccessEvent
	for i := range 400 {
		actor := fmt.Sprintf("u-%d", rng.IntN(4))
		tenant := fmt.Sprintf("cust-%d", rng.IntN(3))
		d := time.Duration(rng.Int64N(int64(12 * time.Hour)))
		evs = append(evs, readEvent(fmt.Sprintf("r%03d", i), at(d), actor, tenant))
	}
	sorted := append([]event.AccessEvent(nil), evs...)
	sortAccess(sorted)
	mk := func(h *harness) *Engine { return h.engine(Options{Lateness: time.Minute}) }
	want := runOrder(t, mk, batchesOf(sorted, 7))
	for trial := range 20 {
		sh := append([]event.AccessEvent(nil), evs...)
		rng.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
		got := runOrder(t, mk, batchesOf(sh, 1+rng.IntN(20)))
		compare(t, fmt.Sprintf("trial %d", trial), want, got)
	}
}

func sortAccess(evs []event.AccessEvent) {
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && before(evs[j].Time.UnixNano(), evs[j].ID, evs[j-1].Time.UnixNano(), evs[j-1].ID); j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
}

func batchesOf(evs []event.AccessEvent, n int) []event.Batch {
	var out []event.Batch
	for i := 0; i < len(evs); i += n {
		out = append(out, event.Batch{Access: append([]event.AccessEvent(nil), evs[i:min(i+n, len(evs))]...)})
	}
	return out
}

// L: two late events of one group, more than a gap apart, in separate
// batches (in time order among themselves): the second correction retracts
// the finding of the first.
func TestAttackSecondCorrectionRetractsFirst(t *testing.T) {
	clockMover := readEvent("other", at(10*time.Hour), "u-3", "cust-0")
	r1 := readEvent("r1", at(4*time.Hour), "u-2", "cust-0")
	r2 := readEvent("r2", at(7*time.Hour), "u-2", "cust-0")
	mk := func(h *harness) *Engine { return h.engine(Options{}) }
	want := runOrder(t, mk, one(r1, r2, clockMover))
	h := &harness{t: t, st: newMemStore(), clock: at(48 * time.Hour)}
	eng := mk(h)
	for _, b := range one(clockMover, r1, r2) {
		n := len(h.st.reports)
		h.feed(eng, []event.Batch{b})
		for _, f := range h.st.reports[n:] {
			t.Logf("after %s: fp=%s start=%s ids=%v superseded_by=%q supersedes=%v", b.Access[0].ID, f.Fingerprint[:8], f.WindowStart.Format("15:04"), f.EventIDs, f.SupersededBy, f.Supersedes)
		}
	}
	compare(t, "r1 then r2, both late", want, describe(h.st.live()))
}

// The existing scenario (b), with batches of 200 instead of 5000.
func TestAttackPartitionAfterPartitionSmallBatches(t *testing.T) {
	items, _ := disorder.Day(2026, 40_000, dayStart, 24*time.Hour)
	newH := func() *harness { return &harness{t: t, st: newMemStore(), clock: dayStart.Add(25 * time.Hour)} }
	ha := newH()
	ha.feed(ha.engine(Options{}), disorder.Batches(items, 200))
	want := describe(ha.st.live())
	h := newH()
	h.feed(h.engine(Options{}), disorder.Batches(disorder.PartitionAfterPartition(items), 200))
	compare(t, "partition after partition, batches of 200", want, describe(h.st.live()))
	t.Logf("%d findings in time order", len(want))
}

func customSet(t testing.TB, rules ...string) *rule.Set {
	t.Helper()
	dir := t.TempDir()
	for i, r := range rules {
		if err := os.WriteFile(filepath.Join(dir, "r"+string(rune('a'+i))+".yaml"), []byte(r), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := LoadSet(dir, "../rules/testdata/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func (h *harness) engineSet(set *rule.Set, o Options) *Engine {
	h.t.Helper()
	o.Store, o.Now = h.st, func() time.Time { return h.clock }
	eng, err := New(set, h.st, o, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		h.t.Fatal(err)
	}
	return eng
}

func dlEv(id string, when time.Time, actor string, records int64) event.AccessEvent {
	return event.AccessEvent{ID: id, Time: when, Tenant: "cust-1", Actor: event.Actor{ID: actor, Type: event.ActorCustomerUser, Tenant: "cust-1"},
		Action: event.ActionDownload, Resource: event.Resource{Type: "file", Store: "s3://exports-eu"}, Records: records, Outcome: event.OutcomeSuccess}
}

func one(evs ...event.AccessEvent) []event.Batch {
	var bs []event.Batch
	for _, ev := range evs {
		bs = append(bs, event.Batch{Access: []event.AccessEvent{ev}})
	}
	return bs
}

var attackIP = netip.MustParseAddr("203.0.113.9")

func loginEv(id string, when time.Time, action string) event.AccessEvent {
	return event.AccessEvent{ID: id, Time: when, Tenant: "cust-1", Actor: event.Actor{ID: "u-victim", Type: event.ActorCustomerUser, Tenant: "cust-1"},
		Action: action, Resource: event.Resource{Type: "booking", Store: "postgres-eu-1"}, Records: 1, Outcome: event.OutcomeSuccess, SourceIP: attackIP}
}

// run feeds batches to a fresh engine and returns the live findings.
func runOrder(t *testing.T, mk func(h *harness) *Engine, bs []event.Batch) []string {
	h := &harness{t: t, st: newMemStore(), clock: at(48 * time.Hour)}
	eng := mk(h)
	h.feed(eng, bs)
	return describe(h.st.live())
}

// A hostile event with the largest records value does not overflow a
// window's sum: the real export after it still crosses the threshold, in
// any order.
func TestAttackRecordsOverflow(t *testing.T) {
	huge := dlEv("huge", at(0), "u-1", math.MaxInt64)
	real := dlEv("real", at(time.Minute), "u-1", 12000)
	mk := func(h *harness) *Engine { return h.engine(Options{}) }
	want := runOrder(t, mk, one(huge, real))
	if len(want) != 1 || !strings.Contains(want[0], "bulk-export") || !strings.Contains(want[0], "ids=[huge real]") {
		t.Fatalf("findings %v, want one bulk export of both", want)
	}
	compare(t, "reversed", want, runOrder(t, mk, one(real, huge)))
}
