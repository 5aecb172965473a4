package detect

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/demo"
	"github.com/breachwatch/breachwatch/detect/rule"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

func defaultSet(t testing.TB) *rule.Set {
	t.Helper()
	set, err := LoadSet("../rules", "../rules/testdata/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// runDay feeds a day of demo traffic (n events, evenly spread over 24h)
// through the default rules, in batches as ingest would, and returns the
// findings (each as last reported) and what the generator injected.
func runDay(t testing.TB, n int, breach bool) ([]incident.Finding, []demo.Injection) {
	t.Helper()
	sink := &collect{}
	eng, err := New(defaultSet(t), sink, Options{}, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	g := demo.New(demo.Options{Seed: 2026, Breach: breach})
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	step := 24 * time.Hour / time.Duration(n)
	var b event.Batch
	for i := range n {
		g.Next(start.Add(time.Duration(i)*step), &b)
		if b.Len() >= 5000 || i == n-1 {
			if err := eng.Process(context.Background(), &b); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
	return Latest(sink.fs), g.Injections()
}

// TestNoFindingsOnADayOfNormalTraffic: a day of realistic, benign traffic
// of the demo product (over a million events) yields no finding at all.
func TestNoFindingsOnADayOfNormalTraffic(t *testing.T) {
	n := 1_100_000
	if testing.Short() {
		n = 200_000
	}
	findings, _ := runDay(t, n, false)
	for _, f := range findings {
		t.Errorf("false positive: %s %s from %s: %d events, ids %v", f.RuleID, f.GroupKey, f.WindowStart, f.Count, f.EventIDs[:min(5, len(f.EventIDs))])
	}
}

// TestEveryInjectedBreachIsFound: with the demo's breach scenarios injected
// among a day of traffic, every injection is found by its rule, and every
// finding rests on injected events.
func TestEveryInjectedBreachIsFound(t *testing.T) {
	n := 1_100_000
	if testing.Short() {
		n = 200_000
	}
	findings, injections := runDay(t, n, true)
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	if len(injections) < len(demo.Scenarios())*10 {
		t.Fatalf("only %d injections in a day", len(injections))
	}
	injected := map[string]string{} // event id → scenario
	for _, in := range injections {
		for _, id := range in.EventIDs {
			injected[id] = in.Scenario
		}
	}
	// Every finding rests on injected events of its own scenario.
	for _, f := range findings {
		ok := false
		for _, id := range f.EventIDs {
			// Injected events carry "-b-" in their ids; a run still in
			// progress at the end of the day is not in Injections() yet.
			if injected[id] == f.RuleID || injected[id] == "" && strings.Contains(id, "-b-") && f.LastSeen.After(start.Add(23*time.Hour)) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("finding %s %s from %s is not about an injected %s (ids %v)", f.RuleID, f.GroupKey, f.WindowStart, f.RuleID, f.EventIDs[:min(5, len(f.EventIDs))])
		}
	}
	// Every injection is found: a finding of its rule covers its time and,
	// where the finding keeps few enough ids to say, names its events.
	perScenario := map[string]int{}
	for _, in := range injections {
		perScenario[in.Scenario]++
		found := false
		for _, f := range findings {
			if f.RuleID != in.Scenario || in.Start.Before(f.FirstSeen.Add(-time.Hour)) || in.Start.After(f.LastSeen) {
				continue
			}
			if f.Count < incident.MaxEvidence && !slices.ContainsFunc(in.EventIDs, func(id string) bool { return slices.Contains(f.EventIDs, id) }) {
				continue
			}
			found = true
			break
		}
		if !found {
			t.Errorf("injected %s at %s (tenants %v, store %s) was not found", in.Scenario, in.Start, in.Tenants, in.Store)
		}
	}
	for _, s := range demo.Scenarios() {
		if perScenario[s] == 0 {
			t.Errorf("scenario %s was never injected", s)
		}
		if set := defaultSet(t); set.Rule(s) == nil {
			t.Errorf("scenario %s has no rule of that id", s)
		}
	}
	t.Logf("%d injections of %d scenarios found by %d findings", len(injections), len(perScenario), len(findings))
}
