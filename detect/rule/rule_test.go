package rule

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

func TestDefaultRulesLoad(t *testing.T) {
	inv, err := LoadInventory("../../rules/testdata/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := Load("../../rules", inv)
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() < 12 {
		t.Errorf("%d rules loaded, want the default set of at least 12", set.Len())
	}
	for _, r := range set.Rules() {
		if !strings.HasPrefix(r.Where(), "../../rules/"+r.ID()+".yaml:") {
			t.Errorf("rule %s is defined at %s; each default rule lives in a file named after it", r.ID(), r.Where())
		}
		if fi, err := os.Stat(filepath.Join("../../rules/testdata", r.ID())); err != nil || !fi.IsDir() {
			t.Errorf("rule %s has no fixture folder rules/testdata/%s", r.ID(), r.ID())
		}
	}
	if set.MaxWindow() != time.Hour {
		t.Errorf("MaxWindow = %v, want 1h (staff-many-tenants)", set.MaxWindow())
	}
	// The index: a read meets the rules that can match reads, not the bulk
	// export rule.
	specific, any := set.ForAccess("read")
	ids := ruleIDs(append(specific, any...))
	for _, want := range []string{"cross-tenant-read", "staff-outside-privileged-group", "staff-many-tenants", "anonymous-access", "credential-stuffing"} {
		if !slices.Contains(ids, want) {
			t.Errorf("a read does not meet %s (it meets %v)", want, ids)
		}
	}
	if slices.Contains(ids, "bulk-export") {
		t.Errorf("a read meets bulk-export, which only counts exports and downloads")
	}
	specific, any = set.ForConfig("public_access")
	if ids := ruleIDs(append(specific, any...)); !slices.Equal(ids, []string{"store-made-public"}) {
		t.Errorf("a public_access change meets %v", ids)
	}
}

func ruleIDs(rs []*Rule) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID())
	}
	slices.Sort(out)
	return out
}

func writeRules(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const goodRule = `format: 1
id: r1
title: a rule
severity: high
source: access
kind: match
condition: action == "read"
`

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		where string // file:line
		field string
		msg   string
	}{
		{"unknown key", goodRule + "sevrity: low\n", "r.yaml:8", "sevrity", "unknown key"},
		{"bad severity", strings.Replace(goodRule, "severity: high", "severity: hgh", 1), "r.yaml:4", "severity", `want one of critical, high, medium, low; got "hgh"`},
		{"misspelled field", strings.Replace(goodRule, `action == "read"`, `actor.tenat != tenant`, 1), "r.yaml:7", "condition", "has no field tenat"},
		{"not boolean", strings.Replace(goodRule, `action == "read"`, `records + 1`, 1), "r.yaml:7", "condition", "expected bool"},
		{"syntax", strings.Replace(goodRule, `action == "read"`, `action == `, 1), "r.yaml:7", "condition", "unexpected"},
		{"wrong type", strings.Replace(goodRule, `action == "read"`, `records == "many"`, 1), "r.yaml:7", "condition", "mismatched types"},
		{"unknown function", strings.Replace(goodRule, `action == "read"`, `in_cidrr(source_ip, "10.0.0.0/8")`, 1), "r.yaml:7", "condition", "unknown name in_cidrr"},
		{"missing kind", strings.Replace(goodRule, "kind: match\n", "", 1), "r.yaml:1", "kind", "required"},
		{"kind for source", strings.Replace(goodRule, "kind: match", "kind: exposure", 1), "r.yaml:6", "kind", "for source access"},
		{"missing block", strings.Replace(goodRule, "kind: match", "kind: threshold", 1), "r.yaml:1", "threshold", "needs a threshold block"},
		{"wrong block", goodRule + "sequence:\n  window: 5m\n", "r.yaml:8", "sequence", "only a sequence rule"},
		{"bad window", strings.Replace(goodRule, "kind: match", "kind: threshold", 1) + "threshold:\n  aggregate: count\n  window: soon\n  at_least: 3\n", "r.yaml:10", "threshold.window", "want a duration"},
		{"bad aggregate", strings.Replace(goodRule, "kind: match", "kind: threshold", 1) + "threshold:\n  aggregate: avg(records)\n  window: 5m\n  at_least: 3\n", "r.yaml:9", "threshold.aggregate", "want count, sum(records) or distinct(FIELD)"},
		{"bad distinct", strings.Replace(goodRule, "kind: match", "kind: threshold", 1) + "threshold:\n  aggregate: distinct(tenants)\n  window: 5m\n  at_least: 3\n", "r.yaml:9", "threshold.aggregate", `unknown field "tenants"`},
		{"bad group_by", goodRule + "group_by: [actor.id, actor.name]\n", "r.yaml:8", "group_by[1]", `unknown field "actor.name"`},
		{"exception arity", goodRule + "exceptions:\n  - name: x\n    fields: [actor.id, tenant]\n    values: [[a]]\n", "r.yaml:11", "exceptions[0].values[0]", "has 1 values for 2 fields"},
		{"exception empty", goodRule + "exceptions:\n  - name: x\n", "r.yaml:9", "exceptions[0]", "needs fields and values, or a condition"},
		{"bad id", strings.Replace(goodRule, "id: r1", "id: Rule One", 1), "r.yaml:2", "id", "lower-case letters"},
		{"wrong format", strings.Replace(goodRule, "format: 1", "format: 2", 1), "r.yaml:1", "format", "want 1"},
		{"config affects tenants", "format: 1\nid: c1\ntitle: t\nseverity: low\nsource: config\nkind: match\ncondition: setting == \"x\"\naffected: tenants\n", "r.yaml:8", "affected", "use store"},
		{"one step", "format: 1\nid: s1\ntitle: t\nseverity: low\nsource: access\nkind: sequence\nsequence:\n  window: 5m\n  steps:\n    - name: a\n      condition: action == \"login\"\n", "r.yaml:9", "sequence.steps", "at least 2 steps"},
		{"list and single", goodRule + "rules:\n  - id: r2\n", "r.yaml:8", "rules", "not both"},
		{"list item", "format: 1\nrules:\n  - " + strings.ReplaceAll(strings.TrimPrefix(goodRule, "format: 1\n"), "\n", "\n    ") + "\n  - id: r2\n    title: x\n    severity: low\n    source: access\n    kind: match\n    condition: tenant\n", "r.yaml:15", "rules[1].condition", "expected bool"},
		{"yaml syntax", "format: 1\nid: [\n", "r.yaml:2", "", "did not find expected node content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeRules(t, map[string]string{"r.yaml": tt.text})
			_, err := Load(dir, nil)
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("got %v, want a *LoadError", err)
			}
			where := filepath.Base(le.File) + ":" + strconv.Itoa(le.Line)
			if where != tt.where || le.Field != tt.field || !strings.Contains(le.Msg, tt.msg) {
				t.Errorf("got %s field %q: %s\nwant %s field %q containing %q", where, le.Field, le.Msg, tt.where, tt.field, tt.msg)
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, "r.yaml")+":") {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
}

func TestLoadRejectsTheWholeSet(t *testing.T) {
	dir := writeRules(t, map[string]string{
		"a.yaml": goodRule,
		"b.yaml": strings.Replace(goodRule, "severity: high", "severity: none", 1),
		"c.yaml": goodRule, // r1 again
	})
	set, err := Load(dir, nil)
	if set != nil || err == nil {
		t.Fatal("a set with errors was accepted")
	}
	for _, want := range []string{"b.yaml:4: severity:", `c.yaml:2: id: rule "r1" is already defined at`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := Load(t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "no rule files") {
		t.Errorf("empty folder: %v", err)
	}
	disabled := writeRules(t, map[string]string{"a.yaml": goodRule + "enabled: false\n", "b.yaml": strings.Replace(goodRule, "id: r1", "id: r2", 1)})
	set, err = Load(disabled, nil)
	if err != nil || set.Len() != 1 || set.Rule("r2") == nil {
		t.Errorf("disabled rule: %v %v", set, err)
	}
}

func TestEvaluate(t *testing.T) {
	dir := writeRules(t, map[string]string{"r.yaml": `format: 1
rules:
  - id: cross
    title: cross
    severity: critical
    source: access
    kind: match
    condition: actor.tenant != "" && actor.tenant != tenant && in_cidr(source_ip, "198.51.100.0/24") && store.personal
    exceptions:
      - name: partner
        fields: [actor.id, tenant]
        values: [[u-partner, cust-2]]
      - name: calendar
        condition: resource.type == "calendar"
    group_by: [actor.id, tenant]
`})
	inv := incident.NewInventory([]incident.Store{{ID: "pg", Categories: []string{"contact"}}}, false)
	set, err := Load(dir, inv)
	if err != nil {
		t.Fatal(err)
	}
	r := set.Rule("cross")
	var ev Evaluator
	base := event.AccessEvent{ID: "e", Tenant: "cust-2", Actor: event.Actor{ID: "u-1", Type: "customer_user", Tenant: "cust-1"},
		Action: "read", Resource: event.Resource{Type: "booking", Store: "pg"}, SourceIP: netip.MustParseAddr("198.51.100.7")}
	tests := []struct {
		name string
		edit func(*event.AccessEvent)
		want bool
	}{
		{"matches", func(*event.AccessEvent) {}, true},
		{"same tenant", func(e *event.AccessEvent) { e.Actor.Tenant = "cust-2" }, false},
		{"other network", func(e *event.AccessEvent) { e.SourceIP = netip.MustParseAddr("10.0.0.1") }, false},
		{"no address", func(e *event.AccessEvent) { e.SourceIP = netip.Addr{} }, false},
		{"exception by values", func(e *event.AccessEvent) { e.Actor.ID = "u-partner" }, false},
		{"exception tuple needs every field", func(e *event.AccessEvent) { e.Actor.ID = "u-partner"; e.Tenant = "cust-3" }, true},
		{"exception by condition", func(e *event.AccessEvent) { e.Resource.Type = "calendar" }, false},
		{"store without personal data", func(e *event.AccessEvent) { e.Resource.Store = "unlisted" }, false},
	}
	for _, tt := range tests {
		e := base
		tt.edit(&e)
		got, err := r.MatchAccess(&ev, &AccessEnv{AccessEvent: &e, Store: NewStoreInfo(inv, e.Resource.Store)})
		if err != nil || got != tt.want {
			t.Errorf("%s: got %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	if k := r.GroupKeyAccess(&base); k != "actor.id=u-1,tenant=cust-2" {
		t.Errorf("group key %q", k)
	}
}

func TestTLSVersion(t *testing.T) {
	for in, want := range map[any]float64{"1.2": 1.2, "TLSv1.2": 1.2, "TLS1_2": 1.2, "tls1.3": 1.3, "TLSv1": 1, 1.1: 1.1,
		"off": 0, false: 0, nil: 0, "TLS_1_0": 1} {
		if got := TLSVersion(in); got != want {
			t.Errorf("TLSVersion(%#v) = %v, want %v", in, got, want)
		}
	}
}

func TestInventory(t *testing.T) {
	inv, err := LoadInventory("../../rules/testdata/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, known := inv.Lookup("s3://exports-eu")
	if !known || !s.Personal() {
		t.Errorf("exports bucket: %+v %v", s, known)
	}
	if s, known := inv.Lookup("arn:aws:s3:::exports-eu"); !known || s.ID != "s3://exports-eu" {
		t.Errorf("alias: %+v %v", s, known)
	}
	if s, known := inv.Lookup("nowhere"); known || !s.Personal() {
		t.Errorf("an unlisted store is taken to hold personal data: %+v", s)
	}
	bad := []struct{ text, want string }{
		{"format: 1\nstores:\n  - id: a\n    holders: some\n", `i.yaml:4: stores[0].holders: want all, list or seen; got "some"`},
		{"format: 1\nstores:\n  - id: a\n    holders: list\n", "i.yaml:3: stores[0].tenants: holders: list needs the tenants"},
		{"format: 1\nstores:\n  - id: a\n  - id: b\n    aliases: [a]\n", `i.yaml:4: stores[1]: "a" is already used by stores[0]`},
		{"format: 1\nstores:\n  - id: a\n    categorys: [x]\n", `i.yaml:4: stores[0].categorys: unknown key`},
		{"format: 1\nunknown_stores: maybe\n", `i.yaml:2: unknown_stores: want personal or none`},
	}
	for _, b := range bad {
		dir := writeRules(t, map[string]string{"i.yaml": b.text})
		_, err := LoadInventory(filepath.Join(dir, "i.yaml"))
		if err == nil || !strings.HasSuffix(err.Error(), b.want) && !strings.Contains(err.Error(), b.want) {
			t.Errorf("got %v, want %q", err, b.want)
		}
	}
}
