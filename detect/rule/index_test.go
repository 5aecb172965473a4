package rule

import (
	"fmt"
	"strings"
	"testing"
)

// TestIndexFindsEveryKey: the rules of every word are found, whether the
// index compares in turn (few words) or hashes (many), and nothing else.
func TestIndexFindsEveryKey(t *testing.T) {
	for _, n := range []int{1, 3, indexScan, indexScan + 1, 40} {
		var x index
		rules := map[string][]*Rule{}
		for i := range n {
			k := fmt.Sprintf("action-%d", i)
			for j := range i%3 + 1 {
				r := &Rule{id: fmt.Sprintf("%s/%d", k, j)}
				x.add(k, r)
				rules[k] = append(rules[k], r)
			}
		}
		for k, want := range rules {
			got := x.get(k)
			if len(got) != len(want) {
				t.Fatalf("n=%d: %s has %d rules, want %d", n, k, len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("n=%d: %s rule %d is %s, want %s", n, k, i, got[i].id, want[i].id)
				}
			}
		}
		for _, k := range []string{"", "action-", "action-1x", "ACTION-1", fmt.Sprintf("action-%d", n)} {
			if got := x.get(k); got != nil {
				t.Fatalf("n=%d: %q finds %d rules", n, k, len(got))
			}
		}
	}
}

// TestIncidentKey: the incident key keeps the incident_by fields of a
// group key (escaped values stay whole), by default all but the victim for
// access rules and the resource for exposures.
func TestIncidentKey(t *testing.T) {
	access := func(groupBy, incidentBy []string) *Spec {
		return &Spec{ID: "tt", Title: "t", Severity: "low", Source: SourceAccess, Kind: "match", Condition: "true", GroupBy: groupBy, IncidentBy: incidentBy}
	}
	for _, tt := range []struct {
		spec      *Spec
		key, want string
	}{
		{access([]string{"actor.id", "tenant"}, nil), `actor.id=u-1\,tenant\=x,tenant=cust-a`, `actor.id=u-1\,tenant\=x`},
		{access([]string{"actor.id", "tenant"}, []string{"tenant"}), "actor.id=u-1,tenant=cust-a", "tenant=cust-a"},
		{access([]string{"tenant"}, nil), "tenant=cust-a", "*"},
		{access([]string{"actor.id"}, nil), "actor.id=u-1", "actor.id=u-1"},
		{&Spec{ID: "tt", Title: "t", Severity: "low", Source: SourceConfig, Kind: "exposure", Condition: "true", Exposure: &ExposureSpec{Safe: "true"}},
			"resource.id=b,setting=public_access", "resource.id=b"},
	} {
		r, err := compile(tt.spec)
		if err != nil {
			t.Fatalf("%+v: %v", tt.spec, err)
		}
		if got := r.IncidentKey(tt.key); got != tt.want {
			t.Errorf("%q: incident key %q, want %q", tt.key, got, tt.want)
		}
	}
	if _, err := compile(access([]string{"actor.id"}, []string{"tenant"})); err == nil ||
		!strings.Contains(err.Error(), `"tenant" is not one of group_by (actor.id)`) {
		t.Errorf("incident_by outside group_by: %v", err)
	}
}
