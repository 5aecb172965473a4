package detect

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/breachwatch/breachwatch/detect/rule"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/internal/yamlstrict"
)

// Fixture is one test case of a rule: events in, the rule's findings out.
// Fixtures live in rules/testdata/<rule-id>/<case>.yaml.
type Fixture struct {
	Description string `yaml:"description"`
	// Access and Config are newline-delimited JSON: access events, and
	// configuration changes (or CloudTrail records). Access events are
	// evaluated first, then configuration changes, each in the order given.
	Access string `yaml:"access"`
	Config string `yaml:"config"`
	// Expect are the findings of the fixture's rule, by window start (then
	// group and part), each as last reported; empty for a negative case.
	// Retracted findings (superseded by another) are not listed.
	Expect []ExpectedFinding `yaml:"expect"`
}

// ExpectedFinding is what a fixture checks of a finding. Fields left out
// are not checked.
type ExpectedFinding struct {
	Group       string    `yaml:"group"`
	WindowStart time.Time `yaml:"window_start"`
	LastSeen    time.Time `yaml:"last_seen"` // event time of the latest evidence
	Count       *int64    `yaml:"count"`
	Records     *int64    `yaml:"records"`
	Value       *int64    `yaml:"value"`
	Tenants     []string  `yaml:"tenants"`
	Stores      []string  `yaml:"stores"`
	Open        *bool     `yaml:"open"` // exposures: still open at the end
	EventIDs    []string  `yaml:"event_ids"`
}

// FixtureResult is the outcome of one fixture.
type FixtureResult struct {
	Rule, Case string
	Positive   bool     // the fixture expects findings
	Problems   []string // empty when it passed
}

// RunFixtures runs every fixture under dir (one folder per rule id) against
// set, each case in an engine of its own. It reports an error for a rule
// without fixtures, a rule without a positive or a negative case, and a
// folder that names no rule.
func RunFixtures(dir string, set *rule.Set) ([]FixtureResult, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("fixtures: %w", err)
	}
	var results []FixtureResult
	var problems []string
	covered := map[string]bool{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		id := e.Name()
		if set.Rule(id) == nil {
			problems = append(problems, fmt.Sprintf("%s: no rule %q in the set", filepath.Join(dir, id), id))
			continue
		}
		covered[id] = true
		cases, _ := filepath.Glob(filepath.Join(dir, id, "*.yaml"))
		sort.Strings(cases)
		var pos, neg bool
		for _, path := range cases {
			res := runFixture(path, id, set)
			pos, neg = pos || res.Positive, neg || !res.Positive
			results = append(results, res)
		}
		if !pos || !neg {
			problems = append(problems, fmt.Sprintf("%s: a rule needs a positive and a negative fixture", filepath.Join(dir, id)))
		}
	}
	for _, r := range set.Rules() {
		if !covered[r.ID()] {
			problems = append(problems, fmt.Sprintf("rule %s (%s) has no fixtures in %s", r.ID(), r.Where(), filepath.Join(dir, r.ID())))
		}
	}
	if len(problems) > 0 {
		return results, fmt.Errorf("fixtures:\n  %s", strings.Join(problems, "\n  "))
	}
	return results, nil
}

// collect is a sink that keeps every report.
type collect struct{ fs []incident.Finding }

func (c *collect) Findings(_ context.Context, fs []incident.Finding) error {
	c.fs = append(c.fs, fs...)
	return nil
}

// Latest reduces reports to one finding per fingerprint (the last report),
// in the order of first report.
func Latest(reports []incident.Finding) []incident.Finding {
	var order []string
	last := map[string]incident.Finding{}
	for _, f := range reports {
		if _, ok := last[f.Fingerprint]; !ok {
			order = append(order, f.Fingerprint)
		}
		last[f.Fingerprint] = f
	}
	out := make([]incident.Finding, len(order))
	for i, fp := range order {
		out[i] = last[fp]
	}
	return out
}

func runFixture(path, ruleID string, set *rule.Set) FixtureResult {
	res := FixtureResult{Rule: ruleID, Case: strings.TrimSuffix(filepath.Base(path), ".yaml")}
	fail := func(format string, args ...any) FixtureResult {
		res.Problems = append(res.Problems, fmt.Sprintf(format, args...))
		return res
	}
	var fx Fixture
	data, err := os.ReadFile(path)
	if err != nil {
		return fail("%v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return fail("%s: not a YAML fixture: %v", path, err)
	}
	if err := yamlstrict.Decode(doc.Content[0], &fx, nil); err != nil {
		return fail("%s: %v", path, err)
	}
	res.Positive = len(fx.Expect) > 0
	var b event.Batch
	var dec event.Decoder
	for i, line := range lines(fx.Access) {
		var ev event.AccessEvent
		if err := dec.Access(line, &ev); err != nil {
			return fail("%s: access line %d: %v", path, i+1, err)
		}
		b.Access = append(b.Access, ev)
	}
	for i, line := range lines(fx.Config) {
		if b.Config, err = dec.ConfigRecord(line, b.Config); err != nil {
			return fail("%s: config line %d: %v", path, i+1, err)
		}
	}
	sink := &collect{}
	clock := func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }
	eng, err := New(set, sink, Options{Now: clock}, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		return fail("%v", err)
	}
	// Access events first, then configuration changes, as documented.
	if err := eng.Process(context.Background(), &event.Batch{Access: b.Access}); err != nil {
		return fail("%v", err)
	}
	if err := eng.Process(context.Background(), &event.Batch{Config: b.Config}); err != nil {
		return fail("%v", err)
	}
	var got []incident.Finding
	for _, f := range Latest(sink.fs) {
		if f.RuleID == ruleID && !f.Retracted() {
			got = append(got, f)
		}
	}
	SortFindings(got)
	if len(got) != len(fx.Expect) {
		res.Problems = append(res.Problems, fmt.Sprintf("%d findings, want %d", len(got), len(fx.Expect)))
		for _, f := range got {
			res.Problems = append(res.Problems, fmt.Sprintf("  got: group %q from %s, %d events, %d records, value %d, tenants %v",
				f.GroupKey, f.WindowStart.Format(time.RFC3339Nano), f.Count, f.Records, f.Value, f.Affected.Tenants))
		}
		return res
	}
	for i, want := range fx.Expect {
		f := &got[i]
		check := func(what string, ok bool, gotV, wantV any) {
			if !ok {
				res.Problems = append(res.Problems, fmt.Sprintf("finding %d: %s is %v, want %v", i+1, what, gotV, wantV))
			}
		}
		if want.Group != "" {
			check("group", f.GroupKey == want.Group, f.GroupKey, want.Group)
		}
		if !want.WindowStart.IsZero() {
			check("window_start", f.WindowStart.Equal(want.WindowStart), f.WindowStart, want.WindowStart)
		}
		if !want.LastSeen.IsZero() {
			check("last_seen", f.LastSeen.Equal(want.LastSeen), f.LastSeen, want.LastSeen)
		}
		if want.Count != nil {
			check("count", f.Count == *want.Count, f.Count, *want.Count)
		}
		if want.Records != nil {
			check("records", f.Records == *want.Records, f.Records, *want.Records)
		}
		if want.Value != nil {
			check("value", f.Value == *want.Value, f.Value, *want.Value)
		}
		if want.Tenants != nil {
			check("tenants", slices.Equal(f.Affected.Tenants, sorted(want.Tenants)), f.Affected.Tenants, want.Tenants)
		}
		if want.Stores != nil {
			check("stores", slices.Equal(f.Affected.Stores, sorted(want.Stores)), f.Affected.Stores, want.Stores)
		}
		if want.Open != nil {
			check("open", f.Open() == *want.Open, f.Open(), *want.Open)
		}
		if want.EventIDs != nil {
			check("event_ids", slices.Equal(f.EventIDs, want.EventIDs), f.EventIDs, want.EventIDs)
		}
	}
	return res
}

// SortFindings orders findings by window start, then group, then part:
// an order that does not depend on the order events arrived in.
func SortFindings(fs []incident.Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := &fs[i], &fs[j]
		if !a.WindowStart.Equal(b.WindowStart) {
			return a.WindowStart.Before(b.WindowStart)
		}
		if a.GroupKey != b.GroupKey {
			return a.GroupKey < b.GroupKey
		}
		return a.Part < b.Part
	})
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func lines(s string) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split([]byte(s), []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}
