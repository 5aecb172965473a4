package app

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

	"github.com/breachwatch/breachwatch/detect"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/internal/disorder"
	"github.com/breachwatch/breachwatch/store/sqlite"
	"github.com/breachwatch/breachwatch/tracker"
)

// pipeline is detection and tracking as breachwatch wires them — the rules
// engine, the embedded store, the incident tracker — fed batch by batch as
// ingest hands them over (each stored before it is evaluated). The clock
// stands still, so that deadlines compare across runs.
type pipeline struct {
	t   *testing.T
	st  *sqlite.Store
	eng *detect.Engine
	tr  *tracker.Tracker
	now time.Time
}

// stored saves findings and hands them to the tracker, as findingSink and
// the tracker feed do (synchronously here).
type stored struct{ p *pipeline }

func (s stored) Findings(ctx context.Context, fs []incident.Finding) error {
	if err := s.p.st.SaveFindings(ctx, fs); err != nil {
		return err
	}
	_, err := s.p.tr.Findings(ctx, fs)
	return err
}

func (s stored) Stored(ctx context.Context, from, to time.Time) {
	s.p.tr.Stored(from, to)
	if err := s.p.tr.Rescope(ctx); err != nil {
		s.p.t.Error(err)
	}
}

func newPipeline(t *testing.T, dir string, now time.Time) *pipeline {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	set, err := detect.LoadSet("../rules", "../rules/testdata/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	regimes, err := tracker.DefaultRegimes()
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{t: t, st: st, now: now}
	clock := func() time.Time { return p.now }
	if p.tr, err = tracker.New(ctx, st, tracker.Options{Regimes: regimes, Apply: []string{"gdpr"}, Access: st,
		Inventory: set.Inventory, PrivilegedGroups: []string{"support", "db-admins"}, Now: clock}); err != nil {
		t.Fatal(err)
	}
	if p.eng, err = detect.New(set, stored{p}, detect.Options{Store: st, Now: clock}, prometheus.NewRegistry(), zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *pipeline) feed(bs []event.Batch) {
	p.t.Helper()
	ctx := context.Background()
	for i := range bs {
		if err := p.st.Write(ctx, &bs[i]); err != nil {
			p.t.Fatal(err)
		}
		if err := p.eng.Process(ctx, &bs[i]); err != nil {
			p.t.Fatal(err)
		}
	}
}

// incidents describes what must not depend on arrival order: each
// incident's rule and group, the findings it holds with their windows, its
// affected customers (how, records, categories) and its deadlines.
func (p *pipeline) incidents() []string {
	var out []string
	for _, inc := range p.tr.List("") {
		var ev []string
		for _, e := range inc.Evidence {
			ev = append(ev, fmt.Sprintf("%s[%s..%s end=%s n=%d r=%d]", e.Fingerprint, e.WindowStart.Format(time.RFC3339Nano),
				e.LastSeen.Format(time.RFC3339Nano), e.WindowEnd.Format(time.RFC3339Nano), e.Count, e.Records))
		}
		sort.Strings(ev)
		var who []string
		for _, a := range inc.Scope.Tenants {
			who = append(who, fmt.Sprintf("%s:%s:%d:%v", a.Tenant, a.How, a.Records, a.Categories))
		}
		sort.Strings(who)
		var due []string
		for _, o := range inc.Obligations {
			due = append(due, o.ID+"@"+o.DueAt.Format(time.RFC3339))
		}
		sort.Strings(due)
		out = append(out, fmt.Sprintf("%s %s status=%s exposure=%s..%s evidence=%v affected=%v partial=%v due=%v", inc.RuleID, inc.GroupKey,
			inc.Status, inc.ExposureFrom.Format(time.RFC3339), inc.ExposureTo.Format(time.RFC3339), ev, who, inc.Scope.Partial, due))
	}
	sort.Strings(out)
	return out
}

// TestIncidentsDoNotDependOnArrivalOrder: half a day of traffic with its
// breaches, through the rules engine, the embedded store and the incident
// tracker, fed in time order, one partition after another (the later ones
// arrive far behind and are corrected from the store), across a restart of
// both with a redelivery and a backlog, and shuffled within each hour,
// yields the same incidents: the same findings with the same windows, the
// same affected customers, the same deadlines.
func TestIncidentsDoNotDependOnArrivalOrder(t *testing.T) {
	start := time.Date(2026, 11, 20, 6, 0, 0, 0, time.UTC)
	now := start.Add(13 * time.Hour)
	n := 60_000
	if testenv.Race {
		n = 20_000 // the same half day, thinner: -race makes evaluation several times slower
	}
	items, _ := disorder.Day(31, n, start, 12*time.Hour)

	run := func(name string, feed func(dir string) *pipeline) []string {
		p := feed(t.TempDir())
		got := p.incidents()
		if len(got) == 0 {
			t.Fatalf("%s: no incidents", name)
		}
		return got
	}
	want := run("in time order", func(dir string) *pipeline {
		p := newPipeline(t, dir, now)
		p.feed(disorder.Batches(items, 4000))
		return p
	})
	rules := map[string]bool{}
	for _, s := range want {
		rules[strings.Fields(s)[0]] = true
	}
	if len(rules) < 12 {
		t.Errorf("incidents of %d rules only: %v", len(rules), rules)
	}
	for name, feed := range map[string]func(dir string) *pipeline{
		"one partition after another": func(dir string) *pipeline {
			p := newPipeline(t, dir, now)
			p.feed(disorder.Batches(disorder.PartitionAfterPartition(items), 4000))
			return p
		},
		"restart, redelivery and backlog": func(dir string) *pipeline {
			half := len(items) / 2
			p := newPipeline(t, dir, now)
			p.feed(disorder.Batches(items[:half], 4000))
			p.st.Close()
			p = newPipeline(t, dir, now) // the engine and the tracker start again from the store
			if _, err := p.eng.Warm(context.Background(), items[half-1].Time(), 30*24*time.Hour); err != nil {
				t.Fatal(err)
			}
			p.feed(disorder.Batches(disorder.Backlog(items[half-5000:half], items[half:], 800), 4000))
			return p
		},
		"shuffled within each hour": func(dir string) *pipeline {
			p := newPipeline(t, dir, now)
			p.feed(disorder.Batches(disorder.Shuffled(items, 7, time.Hour), 4000))
			return p
		},
	} {
		got := run(name, feed)
		if !slices.Equal(want, got) {
			n := 0
			for _, w := range want {
				if !slices.Contains(got, w) && n < 5 {
					t.Errorf("%s: missing %s", name, w)
					n++
				}
			}
			for _, g := range got {
				if !slices.Contains(want, g) && n < 10 {
					t.Errorf("%s: extra   %s", name, g)
					n++
				}
			}
			t.Errorf("%s: %d incidents, want %d", name, len(got), len(want))
		}
	}
	t.Logf("%d incidents of %d rules over %d events", len(want), len(rules), len(items))
}
