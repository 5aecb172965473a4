package rule

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/demo"
	"github.com/breachwatch/breachwatch/event"
)

// TestPrefiltersChangeNoResult: for every default rule and step, on demo
// traffic with breaches, checking the native prefilters first gives the
// same answer as running the whole condition.
func TestPrefiltersChangeNoResult(t *testing.T) {
	inv, err := LoadInventory("../../rules/testdata/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := Load("../../rules", inv)
	if err != nil {
		t.Fatal(err)
	}
	withPre := 0
	for _, r := range set.Rules() {
		withPre += len(r.pre)
	}
	if withPre == 0 {
		t.Fatal("no rule has prefilters; the test would prove nothing")
	}
	g := demo.New(demo.Options{Seed: 5, Breach: true, Tenants: 40})
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var b event.Batch
	var ev Evaluator
	checked, matched := 0, 0
	for i := range 150_000 {
		b.Reset()
		g.Next(start.Add(time.Duration(i)*20*time.Millisecond), &b)
		for j := range b.Access {
			e := &b.Access[j]
			env := &AccessEnv{AccessEvent: e, Store: NewStoreInfo(inv, e.Resource.Store)}
			for _, r := range set.Rules() {
				if r.source != SourceAccess {
					continue
				}
				if r.cond != nil {
					got, err1 := r.MatchAccess(&ev, env)
					want, err2 := ev.run(r.cond, env)
					if (err1 == nil) != (err2 == nil) || got != want {
						t.Fatalf("rule %s on %s: with prefilters %v (%v), plain %v (%v)", r.id, mustJSON(e), got, err1, want, err2)
					}
					checked++
					if got {
						matched++
					}
				}
				for k := range r.steps {
					got, _ := r.StepAccess(&ev, env, k)
					want, _ := ev.run(r.steps[k].cond, env)
					if got != want {
						t.Fatalf("rule %s step %d on %s: with prefilters %v, plain %v", r.id, k, mustJSON(e), got, want)
					}
				}
			}
		}
		for j := range b.Config {
			c := &b.Config[j]
			env := NewConfigEnv(c, inv)
			for _, r := range set.Rules() {
				if r.source == SourceConfig {
					got, _ := r.MatchConfig(&ev, env, c)
					want, _ := ev.run(r.cond, env)
					if got != want {
						t.Fatalf("rule %s on %s: with prefilters %v, plain %v", r.id, mustJSON(c), got, want)
					}
				}
			}
		}
	}
	if matched == 0 {
		t.Fatalf("no event matched any rule in %d checks; the traffic should hold breaches", checked)
	}
	t.Logf("%d checks, %d matches, %d prefilters", checked, matched, withPre)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestCoveredConditionsAgreeWithTheMachine: a condition made only of
// terms the prefilters check (so the expression machine is not run) gives
// the machine's answer on awkward values: empty, case, prefixes, long
// lists (a map) and short ones (compared in turn).
func TestCoveredConditionsAgreeWithTheMachine(t *testing.T) {
	long := `["a1","a2","a3","a4","a5","a6","a7","a8","a9","read"]`
	conds := map[string]bool{ // condition → covered
		`action == "read"`: true,
		`action != "read"`: true,
		`action in ["read", "list"] && outcome == "success"`: true,
		`action not in ["read", "list"]`:                     true,
		`action in ` + long:                                  true,
		`action not in ` + long + ` and actor.type != ""`:    true,
		`action == "read" && actor.tenant != tenant`:         true,
		`actor.tenant == tenant`:                             true,
		`!(actor.tenant == tenant) && outcome != ""`:         true,
		`actor.tenant != actor.type`:                         true,
		`action == "read" || outcome == "success"`:           false,
		`not (action == "read" && outcome == "success")`:     false,
		`!(action in ["read"])`:                              true,
		`action == "read" && store.public`:                   false,
	}
	actions := []string{"", "read", "READ", "rea", "reads", "list", "a9", "a10", "login"}
	outcomes := []string{"", "success", "Success", "denied"}
	var ev Evaluator
	for c, wantCovered := range conds {
		p, err := compileExpr("condition", c, AccessEnv{})
		if err != nil {
			t.Errorf("%s: %v", c, err)
			continue
		}
		pre, covered := prefilters(p.Node(), SourceAccess)
		if covered != wantCovered {
			t.Errorf("%s: covered %v, want %v", c, covered, wantCovered)
			continue
		}
		r := &Rule{id: "t", source: SourceAccess, cond: p, pre: pre, covered: covered}
		for _, a := range actions {
			for _, o := range outcomes {
				for _, home := range []string{"t1", "t2", "", a} {
					e := &event.AccessEvent{Action: a, Outcome: o, Tenant: "t1", Actor: event.Actor{Type: a, Tenant: home}}
					env := &AccessEnv{AccessEvent: e}
					got, err1 := r.MatchAccess(&ev, env)
					want, err2 := ev.run(p, env)
					if err1 != nil || err2 != nil || got != want {
						t.Errorf("%s on action %q outcome %q home %q: %v (%v), the machine says %v (%v)", c, a, o, home, got, err1, want, err2)
					}
				}
			}
		}
	}
}
