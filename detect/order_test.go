package detect

import (
	"context"
	"fmt"
	"github.com/breachwatch/breachwatch/internal/testenv"
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
	"github.com/breachwatch/breachwatch/internal/disorder"
)

var dayStart = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

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
	n := 200_000
	if testenv.Race {
		n = 60_000 // the same day, thinner: -race makes evaluation several times slower
	}
	items, inj := disorder.Day(2026, n, dayStart, 24*time.Hour)
	newH := func() *harness { return &harness{t: t, st: newMemStore(), clock: dayStart.Add(25 * time.Hour)} }

	// (a) in time order.
	ha := newH()
	ha.feed(ha.engine(Options{}), disorder.Batches(items, 5000))
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
	for _, known := range []bool{true, false} {
		h := newH()
		eng := h.engine(Options{})
		if known {
			eng.Assigned(disorder.Sources())
		}
		h.feed(eng, disorder.Batches(disorder.PartitionAfterPartition(items), 5000))
		compare(t, fmt.Sprintf("(b) partitions one after another, assigned=%v", known), want, describe(h.st.live()))
	}

	// (c) a restart in the middle, then a backlog read from the
	// partitions in turn (as a consumer catching up fetches them), after
	// a redelivery of the last batches before the restart.
	hc := newH()
	half := len(items) / 2
	hc.feed(hc.engine(Options{}), disorder.Batches(items[:half], 5000))
	restarted := hc.engine(Options{})
	if _, err := restarted.Warm(context.Background(), items[half-1].Time(), 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	hc.feed(restarted, disorder.Batches(disorder.Backlog(items[half-20_000:half], items[half:], 1500), 5000))
	compare(t, "(c) restart, redelivery and backlog", want, describe(hc.st.live()))

	// (d) shuffled within each hour.
	hd := newH()
	hd.feed(hd.engine(Options{}), disorder.Batches(disorder.Shuffled(items, 1, time.Hour), 5000))
	compare(t, "(d) shuffled within each hour", want, describe(hd.st.live()))

	// (e) every batch twice.
	he := newH()
	eng := he.engine(Options{})
	for _, b := range disorder.Batches(items, 5000) {
		he.feed(eng, []event.Batch{b, b})
	}
	compare(t, "(e) every batch twice", want, describe(he.st.live()))

	// Every injected breach is in the findings.
	found := 0
	for _, in := range inj {
		if slices.ContainsFunc(ha.st.live(), func(f incident.Finding) bool {
			return f.RuleID == in.Scenario && !in.Start.Before(f.FirstSeen.Add(-time.Hour)) && !in.Start.After(f.LastSeen)
		}) {
			found++
		} else {
			t.Errorf("injected %s at %s was not found", in.Scenario, in.Start)
		}
	}
	t.Logf("%d findings over %d events; %d of %d injections found; rules: %v", len(want), len(items), found, len(inj), summary(byRule))
}

func summary(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
