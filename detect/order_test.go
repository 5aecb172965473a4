package detect

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/demo"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

// day is a generated day of demo traffic with its injected breaches.
type day struct {
	access []event.AccessEvent
	config []event.ConfigChange
	inj    []demo.Injection
}

func genDay(n int) day {
	g := demo.New(demo.Options{Seed: 2026, Breach: true})
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	step := 24 * time.Hour / time.Duration(n)
	var d day
	var b event.Batch
	for i := range n {
		b.Reset()
		g.Next(start.Add(time.Duration(i)*step), &b)
		d.access = append(d.access, b.Access...)
		d.config = append(d.config, b.Config...)
	}
	d.inj = g.Injections()
	return d
}

// item is one event of the day with the partition it went to.
type item struct {
	a      *event.AccessEvent
	c      *event.ConfigChange
	source string
}

func (it item) time() time.Time {
	if it.a != nil {
		return it.a.Time
	}
	return it.c.Time
}

func partition(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// items lays the day out as Kafka would hold it: access events keyed by
// tenant over 4 partitions, changes keyed by resource over 4, each
// partition in the order it was produced (time order).
func (d day) items() []item {
	var out []item
	for i := range d.access {
		a := &d.access[i]
		out = append(out, item{a: a, source: fmt.Sprintf("kafka:access/%d", partition(a.Tenant, 4))})
	}
	for i := range d.config {
		c := &d.config[i]
		out = append(out, item{c: c, source: fmt.Sprintf("kafka:config/%d", partition(c.Resource.ID, 4))})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].time().Before(out[j].time()) })
	return out
}

func sources() []string {
	var out []string
	for _, t := range []string{"access", "config"} {
		for p := range 4 {
			out = append(out, fmt.Sprintf("kafka:%s/%d", t, p))
		}
	}
	return out
}

// batches cuts items into batches of n, each with its partitions' clocks.
func batches(items []item, n int) []event.Batch {
	var out []event.Batch
	for i := 0; i < len(items); i += n {
		var b event.Batch
		for _, it := range items[i:min(i+n, len(items))] {
			if it.a != nil {
				b.Access = append(b.Access, *it.a)
			} else {
				b.Config = append(b.Config, *it.c)
			}
			b.Observe(it.source, it.time())
		}
		out = append(out, b)
	}
	return out
}

type harness struct {
	t     testing.TB
	st    *memStore
	clock time.Time
}

func (h *harness) engine(o Options) *Engine {
	h.t.Helper()
	o.Store, o.Now = h.st, func() time.Time { return h.clock }
	eng, err := New(defaultSet(h.t), h.st, o, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		h.t.Fatal(err)
	}
	return eng
}

// feed stores each batch, then hands it to the engine, as ingest does.
func (h *harness) feed(eng *Engine, bs []event.Batch) {
	h.t.Helper()
	for i := range bs {
		h.st.Write(&bs[i])
		if err := eng.Process(context.Background(), &bs[i]); err != nil {
			h.t.Fatal(err)
		}
	}
}

// describe is what must not depend on the order: every finding's identity,
// window, evidence and whom it concerns.
func describe(fs []incident.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s %s part=%q fp=%s start=%s end=%s first=%s last=%s count=%d records=%d value=%d tenants=%v stores=%v ids=%v",
			f.RuleID, f.GroupKey, f.Part, f.Fingerprint, f.WindowStart.Format(time.RFC3339Nano), f.WindowEnd.Format(time.RFC3339Nano),
			f.FirstSeen.Format(time.RFC3339Nano), f.LastSeen.Format(time.RFC3339Nano), f.Count, f.Records, f.Value,
			f.Affected.Tenants, f.Affected.Stores, f.EventIDs))
	}
	sort.Strings(out)
	return out
}

func compare(t *testing.T, name string, want, got []string) {
	t.Helper()
	if slices.Equal(want, got) {
		return
	}
	w, g := map[string]bool{}, map[string]bool{}
	for _, s := range want {
		w[s] = true
	}
	for _, s := range got {
		g[s] = true
	}
	n := 0
	for _, s := range want {
		if !g[s] && n < 8 {
			t.Errorf("%s: missing %s", name, s)
			n++
		}
	}
	for _, s := range got {
		if !w[s] && n < 16 {
			t.Errorf("%s: extra   %s", name, s)
			n++
		}
	}
	t.Errorf("%s: %d findings, want %d (%d differ)", name, len(got), len(want), n)
}

// TestFindingsDoNotDependOnArrivalOrder: a generated day with its injected
// breaches, fed (a) in time order, (b) keyed over 4 partitions one
// partition after another — with the partitions known from the start,
// and not (so that the later ones arrive far behind the watermark and are
// corrected from the store), (c) half of it, then a restart (warm-up from
// the store), a redelivery of what came before the restart and the rest as
// a backlog read from the 4 partitions in turn, (d) shuffled within each
// hour, (e) every batch delivered twice, gives the same findings: same
// fingerprints, windows, evidence and tenants.
func TestFindingsDoNotDependOnArrivalOrder(t *testing.T) {
	d := genDay(200_000)
	items := d.items()
	newH := func() *harness {
		return &harness{t: t, st: newMemStore(), clock: time.Date(2026, 11, 21, 1, 0, 0, 0, time.UTC)}
	}

	// (a) in time order.
	ha := newH()
	ha.feed(ha.engine(Options{}), batches(items, 5000))
	want := describe(ha.st.live())
	if len(want) < 50 {
		t.Fatalf("only %d findings in a day with breaches", len(want))
	}
	byRule := map[string]int{}
	for _, f := range ha.st.live() {
		byRule[f.RuleID]++
	}
	for _, s := range demo.Scenarios() {
		if byRule[s] == 0 {
			t.Errorf("in time order, no finding of %s", s)
		}
	}

	// (b) one partition after another.
	var perPart []item
	for _, src := range sources() {
		for _, it := range items {
			if it.source == src {
				perPart = append(perPart, it)
			}
		}
	}
	for _, known := range []bool{true, false} {
		h := newH()
		eng := h.engine(Options{})
		if known {
			eng.Assigned(sources())
		}
		h.feed(eng, batches(perPart, 5000))
		compare(t, fmt.Sprintf("(b) partitions one after another, assigned=%v", known), want, describe(h.st.live()))
	}

	// (c) a restart in the middle, then a backlog read from the
	// partitions in turn (as a consumer catching up fetches them), after
	// a redelivery of the last batches before the restart.
	hc := newH()
	half := len(items) / 2
	hc.feed(hc.engine(Options{}), batches(items[:half], 5000))
	restarted := hc.engine(Options{})
	if _, err := restarted.Warm(context.Background(), items[half-1].time(), 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	var backlog []item
	backlog = append(backlog, items[half-20_000:half]...) // redelivered: never committed
	queues := map[string][]item{}
	for _, it := range items[half:] {
		queues[it.source] = append(queues[it.source], it)
	}
	for len(queues) > 0 {
		for _, src := range sources() {
			q := queues[src]
			n := min(len(q), 1500)
			backlog = append(backlog, q[:n]...)
			if q = q[n:]; len(q) == 0 {
				delete(queues, src)
			} else {
				queues[src] = q
			}
		}
	}
	hc.feed(restarted, batches(backlog, 5000))
	compare(t, "(c) restart, redelivery and backlog", want, describe(hc.st.live()))

	// (d) shuffled within each hour.
	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := slices.Clone(items)
	for lo := 0; lo < len(shuffled); {
		hour := shuffled[lo].time().Truncate(time.Hour)
		hi := lo
		for hi < len(shuffled) && shuffled[hi].time().Truncate(time.Hour).Equal(hour) {
			hi++
		}
		rng.Shuffle(hi-lo, func(i, j int) { shuffled[lo+i], shuffled[lo+j] = shuffled[lo+j], shuffled[lo+i] })
		lo = hi
	}
	hd := newH()
	hd.feed(hd.engine(Options{}), batches(shuffled, 5000))
	compare(t, "(d) shuffled within each hour", want, describe(hd.st.live()))

	// (e) every batch twice.
	he := newH()
	eng := he.engine(Options{})
	for _, b := range batches(items, 5000) {
		he.feed(eng, []event.Batch{b, b})
	}
	compare(t, "(e) every batch twice", want, describe(he.st.live()))

	// Every injected breach is in the findings of every order.
	found := 0
	for _, in := range d.inj {
		if slices.ContainsFunc(ha.st.live(), func(f incident.Finding) bool {
			return f.RuleID == in.Scenario && !in.Start.Before(f.FirstSeen.Add(-time.Hour)) && !in.Start.After(f.LastSeen)
		}) {
			found++
		} else {
			t.Errorf("injected %s at %s was not found", in.Scenario, in.Start)
		}
	}
	t.Logf("%d findings over %d events; %d of %d injections found; rules: %v", len(want), len(items), found, len(d.inj), summary(byRule))
}

func summary(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
