package demo

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/event"
)

// hashEvents feeds n calls of g, at now = start + i*step, to a SHA-256 of
// the events' JSON, one a line.
func hashEvents(g *Generator, n int, step time.Duration) string {
	h := sha256.New()
	var buf []byte
	generate(g, n, step, func(a *event.AccessEvent, c *event.ConfigChange) {
		if a != nil {
			buf = a.AppendJSON(buf[:0])
		} else {
			buf = c.AppendJSON(buf[:0])
		}
		h.Write(append(buf, '\n'))
	})
	return hex.EncodeToString(h.Sum(nil))
}

// TestBreachOffUnchanged checks that without Options.Breach the output is
// byte for byte what the generator produced before breach injection
// existed. The sums were recorded with that generator; they also change if
// the event package's JSON encoding does.
func TestBreachOffUnchanged(t *testing.T) {
	golden := []struct {
		opts Options
		step time.Duration
		sum  string
	}{
		{Options{Seed: 42}, 10 * time.Millisecond, "04481c30b27c20b66ff536439f8d0b206cab6305b7f9511f79919dd20d98f601"},
		{Options{Seed: 42}, time.Second, "25dde618ec36b3abb88a434b18b594f78652f173b736dc4e78b1709adb0e1c4b"},
		{Options{Seed: 7, Tenants: 3}, 10 * time.Millisecond, "fdd8fb1ce6f11ab687726ad7b2ab6db25a4c55361d62dc59e5e035e6e0a6f683"},
		{Options{Seed: 7, Tenants: 3}, time.Second, "f124d8b25afc68bbb2c63487f3f7504aad65e7da9d5fec4ea5d430d993038020"},
		{Options{Seed: 1 << 63, Tenants: 300}, 10 * time.Millisecond, "e1ab1899db9ea3df862ed8b5256119b2e9d2eb241eeab1388521345c956684da"},
		{Options{Seed: 1 << 63, Tenants: 300}, time.Second, "e9780a432910b0f4cd9c4415f8c122c78c3d4799ad9566716a0d3c39f2346f8e"},
	}
	for _, tt := range golden {
		t.Run(fmt.Sprintf("%d-%d-%v", tt.opts.Seed, tt.opts.Tenants, tt.step), func(t *testing.T) {
			g := New(tt.opts)
			if got := hashEvents(g, 100_000, tt.step); got != tt.sum {
				t.Errorf("output changed: sha256 %s, want %s", got, tt.sum)
			}
			if inj := g.Injections(); inj != nil {
				t.Errorf("Injections() = %v without Breach", inj)
			}
		})
	}
	bad := 0
	generate(New(Options{Seed: 5}), 50_000, time.Second, func(a *event.AccessEvent, c *event.ConfigChange) {
		id := ""
		if a != nil {
			id = a.ID
		} else {
			id = c.ID
		}
		if strings.HasPrefix(id, "demo-5-b-") {
			bad++
		}
	})
	if bad > 0 {
		t.Errorf("%d injected events without Breach", bad)
	}
}

// emitted is one event the generator emitted.
type emitted struct {
	a *event.AccessEvent
	c *event.ConfigChange
}

func (e emitted) time() time.Time {
	if e.a != nil {
		return e.a.Time
	}
	return e.c.Time
}

// benignSum hashes benign events' JSON with the time left out.
func benignSum(h hash.Hash, buf []byte, a *event.AccessEvent, c *event.ConfigChange) []byte {
	if a != nil {
		x := *a
		x.Time = start
		buf = x.AppendJSON(buf[:0])
	} else {
		x := *c
		x.Time = start
		buf = x.AppendJSON(buf[:0])
	}
	h.Write(append(buf, '\n'))
	return buf
}

func TestBreachScenarios(t *testing.T) {
	const (
		step = 10 * time.Millisecond
		dur  = 35 * time.Minute
		n    = int(dur / step)
	)
	g := New(Options{Seed: 42, Breach: true})
	injected := map[string]emitted{}
	var order []string // injected ids, in emission order
	benign := 0
	bh := sha256.New()
	var buf []byte
	var last time.Time
	supportTenants := map[string]map[string]bool{}
	errs := 0
	fail := func(format string, args ...any) {
		t.Helper()
		if errs++; errs <= 30 {
			t.Errorf(format, args...)
		}
	}
	var b event.Batch
	for i := range n {
		now := start.Add(time.Duration(i) * step)
		b.Reset()
		g.Next(now, &b)
		if b.Len() != 1 {
			t.Fatalf("call %d: Next appended %d events", i, b.Len())
		}
		var e emitted
		var id string
		var err error
		if len(b.Access) == 1 {
			a := b.Access[0]
			e.a, id, err = &a, a.ID, a.Validate()
		} else {
			c := b.Config[0]
			e.c, id, err = &c, c.ID, c.Validate()
		}
		if err != nil {
			fail("%s: invalid: %v", id, err)
		}
		et := e.time()
		if et.Before(last) || et.After(now) {
			fail("%s at %v: after an event at %v, or after now %v", id, et, last, now)
		}
		last = et
		if strings.HasPrefix(id, "demo-2a-b-") {
			if _, dup := injected[id]; dup {
				fail("%s: duplicate id", id)
			}
			injected[id] = e
			order = append(order, id)
			continue
		}
		// Benign: the invariants of TestGenerate still hold.
		benign++
		buf = benignSum(bh, buf, e.a, e.c)
		if e.c != nil {
			if !strings.HasPrefix(id, "demo-2a-c-") {
				fail("%s: benign config id", id)
			}
			if w := weakening(e.c); w != "" {
				fail("%s: benign weakening change: %s", id, w)
			}
			continue
		}
		if !strings.HasPrefix(id, "demo-2a-a-") {
			fail("%s: benign access id", id)
		}
		for _, ck := range accessChecks {
			if msg := ck.check(e.a); msg != "" {
				fail("%s: %s: %s", id, ck.name, msg)
			}
		}
		if e.a.Actor.Type == event.ActorEmployee {
			m := supportTenants[e.a.Actor.ID]
			if m == nil {
				m = map[string]bool{}
				supportTenants[e.a.Actor.ID] = m
			}
			m[e.a.Tenant] = true
		}
	}
	for emp, m := range supportTenants { // the run is shorter than an hour
		if len(m) > maxTicketsPerHour {
			fail("benign %s read %d tenants", emp, len(m))
		}
	}
	t.Logf("%d events: %d injected, %d benign", n, len(injected), benign)

	// The benign events are exactly those of a generator without Breach,
	// only later by the calls the injected events took.
	off := New(Options{Seed: 42})
	oh := sha256.New()
	generate(off, benign, step, func(a *event.AccessEvent, c *event.ConfigChange) {
		buf = benignSum(oh, buf, a, c)
	})
	if !slices.Equal(bh.Sum(nil), oh.Sum(nil)) {
		t.Error("benign events differ from the traffic without Breach")
	}

	injs := g.Injections()
	listed := map[string]bool{}
	byScenario := map[string][]Injection{}
	for i, in := range injs {
		if i > 0 && in.Start.Before(injs[i-1].Start) {
			fail("Injections not in start order: %v after %v", in.Start, injs[i-1].Start)
		}
		if len(in.EventIDs) == 0 {
			fail("%s at %v: no events", in.Scenario, in.Start)
			continue
		}
		for j, id := range in.EventIDs {
			e, ok := injected[id]
			switch {
			case !ok:
				fail("%s: event %s was not emitted as injected", in.Scenario, id)
			case listed[id]:
				fail("%s: event %s listed twice", in.Scenario, id)
			case j == 0 && !e.time().Equal(in.Start):
				fail("%s: first event at %v, Start %v", in.Scenario, e.time(), in.Start)
			case j > 0 && e.time().Before(injected[in.EventIDs[j-1]].time()):
				fail("%s: events out of order", in.Scenario)
			}
			listed[id] = true
		}
		byScenario[in.Scenario] = append(byScenario[in.Scenario], in)
	}
	for _, id := range order {
		if !listed[id] && injected[id].time().Before(start.Add(30*time.Minute)) {
			fail("injected %s at %v belongs to no listed injection", id, injected[id].time())
		}
	}
	if len(byScenario) != len(Scenarios()) {
		fail("%d scenarios injected, want %d", len(byScenario), len(Scenarios()))
	}

	for si, name := range Scenarios() {
		runs := byScenario[name]
		t.Run(name, func(t *testing.T) {
			if len(runs) < 2 {
				t.Fatalf("%d complete runs, want at least 2", len(runs))
			}
			first := start.Add(scenarioFirst + time.Duration(si)*scenarioStagger)
			if first.Sub(start) > time.Minute {
				t.Errorf("first run starts after %v", first.Sub(start))
			}
			for k, in := range runs {
				if want := first.Add(time.Duration(k) * scenarioEvery); !in.Start.Equal(want) {
					t.Errorf("run %d starts at %v, want %v", k, in.Start, want)
				}
				var evs []emitted
				for _, id := range in.EventIDs {
					evs = append(evs, injected[id])
				}
				check := scenarioChecks[name]
				if check == nil {
					t.Fatalf("no check for %s", name)
				}
				if msg := check(in, evs, k); msg != "" {
					t.Errorf("run %d (%v): %s", k, in.Start, msg)
				}
			}
			// Repeats are new incidents: other actors, addresses or
			// victims; config windows closed before they reopen.
			for k := 1; k < len(runs); k++ {
				p, q := injected[runs[k-1].EventIDs[0]], injected[runs[k].EventIDs[0]]
				if p.a != nil {
					if p.a.Actor.ID == q.a.Actor.ID && p.a.SourceIP == q.a.SourceIP && slices.Equal(runs[k-1].Tenants, runs[k].Tenants) {
						t.Errorf("run %d repeats run %d: %s from %v on %q", k, k-1, q.a.Actor.ID, q.a.SourceIP, runs[k].Tenants)
					}
				} else {
					prev := runs[k-1].EventIDs
					if end := injected[prev[len(prev)-1]].time(); !end.Before(q.time()) {
						t.Errorf("run %d opens at %v before run %d closed at %v", k, q.time(), k-1, end)
					}
				}
			}
		})
	}
}

// scenarioChecks check one run of each scenario (its Injection, its events
// in order and its number), returning a complaint or "".
var scenarioChecks = map[string]func(in Injection, evs []emitted, k int) string{
	ScenarioCrossTenantRead: func(in Injection, evs []emitted, k int) string {
		as, msg := accesses(evs, 5, StoreMain)
		if msg != "" {
			return msg
		}
		if len(in.Tenants) != 1 || in.Store != StoreMain {
			return fmt.Sprintf("tenants %q, store %s", in.Tenants, in.Store)
		}
		actions := map[string]bool{}
		for _, a := range as {
			switch {
			case a.Actor.Type != event.ActorCustomerUser || a.Actor.ID != as[0].Actor.ID:
				return "actor " + a.Actor.ID
			case a.Actor.Tenant == "" || a.Actor.Tenant == a.Tenant || a.Tenant != in.Tenants[0]:
				return fmt.Sprintf("%s of %s reading %s (victim %s)", a.Actor.ID, a.Actor.Tenant, a.Tenant, in.Tenants[0])
			case a.Resource.Type != "booking" && a.Resource.Type != "contact":
				return "resource " + a.Resource.Type
			case a.SourceIP != as[0].SourceIP:
				return "several addresses"
			}
			actions[a.Action] = true
		}
		if !actions[event.ActionRead] || !actions[event.ActionList] || !actions[event.ActionExport] || len(actions) != 3 {
			return fmt.Sprintf("actions %v", actions)
		}
		if d := span(evs); d < 15*time.Second || d > 20*time.Second {
			return fmt.Sprintf("over %v", d)
		}
		return ""
	},
	ScenarioBulkExport: func(in Injection, evs []emitted, k int) string {
		as, msg := accesses(evs, 6, StoreExports)
		if msg != "" {
			return msg
		}
		if len(in.Tenants) != 1 || in.Store != StoreExports {
			return fmt.Sprintf("tenants %q, store %s", in.Tenants, in.Store)
		}
		var total int64
		files := map[string]bool{}
		for _, a := range as {
			switch {
			case a.Action != event.ActionDownload || a.Resource.Type != "file" || a.Resource.ID == "":
				return a.Action + " " + a.Resource.Type
			case a.Actor.Type != event.ActorCustomerUser || a.Actor.ID != as[0].Actor.ID:
				return "actor " + a.Actor.ID
			case a.Actor.Tenant != a.Tenant || a.Tenant != in.Tenants[0]:
				return "tenant " + a.Tenant + " by " + a.Actor.Tenant
			case a.Records < 4000 || a.Records > 6000:
				return fmt.Sprint(a.Records, " records")
			case a.SourceIP != as[0].SourceIP || !inPrefixes(a.SourceIP, "185.220.101.0/24"):
				return "address " + a.SourceIP.String()
			}
			total += a.Records
			files[a.Resource.ID] = true
		}
		if total < 24_000 || len(files) != 6 {
			return fmt.Sprintf("%d records in %d files", total, len(files))
		}
		if d := span(evs); d > 4*time.Minute {
			return fmt.Sprintf("over %v", d)
		}
		return ""
	},
	ScenarioStaffOutsideGroup: func(in Injection, evs []emitted, k int) string {
		return staffReads(in, evs, 6, "marketing", "contact", 10*time.Minute)
	},
	ScenarioStaffManyTenants: func(in Injection, evs []emitted, k int) string {
		return staffReads(in, evs, 25, "support", "booking", 20*time.Minute)
	},
	ScenarioAnonymousAccess: func(in Injection, evs []emitted, k int) string {
		as, msg := accesses(evs, 3, StoreExports)
		if msg != "" {
			return msg
		}
		if len(in.Tenants) != 1 || in.Store != StoreExports {
			return fmt.Sprintf("tenants %q, store %s", in.Tenants, in.Store)
		}
		for _, a := range as {
			switch {
			case !reflect.DeepEqual(a.Actor, event.Actor{ID: "anonymous", Type: event.ActorAnonymous}):
				return fmt.Sprintf("actor %+v", a.Actor)
			case a.Action != event.ActionDownload || a.Resource.Type != "file" || !strings.HasPrefix(a.Resource.ID, "exports/"+a.Tenant+"/"):
				return a.Action + " " + a.Resource.Type + " " + a.Resource.ID
			case a.Tenant != in.Tenants[0]:
				return "tenant " + a.Tenant
			case a.UserAgent != "python-requests/2.31.0":
				return "user agent " + a.UserAgent
			case !public(a.SourceIP):
				return "address " + a.SourceIP.String()
			case a.Records < 1:
				return "no records"
			}
		}
		return ""
	},
	ScenarioCredentialStuffing: func(in Injection, evs []emitted, k int) string {
		if len(evs) != 62 {
			return fmt.Sprintf("%d events, want 62", len(evs))
		}
		as := make([]*event.AccessEvent, len(evs))
		for i, e := range evs {
			if e.a == nil {
				return "a config change"
			}
			as[i] = e.a
		}
		if len(in.Tenants) != 1 || in.Store != StoreMain {
			return fmt.Sprintf("tenants %q, store %s", in.Tenants, in.Store)
		}
		ip := as[0].SourceIP
		accounts, tenants := map[string]bool{}, map[string]bool{}
		for _, a := range as[:60] {
			switch {
			case a.Action != event.ActionLoginFailed || a.Outcome != event.OutcomeDenied || a.Records != 0:
				return a.Action + " " + a.Outcome
			case a.Resource != event.Resource{Type: "account", ID: a.Actor.ID, Store: StoreAuth}:
				return fmt.Sprintf("resource %+v", a.Resource)
			case a.Actor.Type != event.ActorCustomerUser || a.Actor.Tenant == "" || a.Actor.Tenant != a.Tenant:
				return fmt.Sprintf("actor %+v of %s", a.Actor, a.Tenant)
			case a.SourceIP != ip:
				return "several addresses"
			}
			accounts[a.Actor.ID] = true
			tenants[a.Tenant] = true
		}
		if len(accounts) < 35 || len(accounts) > 45 || len(tenants) < 10 {
			return fmt.Sprintf("%d accounts of %d tenants", len(accounts), len(tenants))
		}
		if d := evs[59].time().Sub(evs[0].time()); d > 3*time.Minute {
			return fmt.Sprintf("failures over %v", d)
		}
		login, exp := as[60], as[61]
		switch {
		case login.Action != event.ActionLogin || login.Outcome != event.OutcomeSuccess || !accounts[login.Actor.ID]:
			return fmt.Sprintf("login %s %s of %s", login.Action, login.Outcome, login.Actor.ID)
		case login.Tenant != in.Tenants[0] || login.Actor.Tenant != in.Tenants[0] || login.SourceIP != ip:
			return "login of tenant " + login.Tenant + " from " + login.SourceIP.String()
		case exp.Action != event.ActionExport || exp.Outcome != event.OutcomeSuccess || exp.Records != 800:
			return fmt.Sprintf("then %s %s %d", exp.Action, exp.Outcome, exp.Records)
		case !reflect.DeepEqual(exp.Actor, login.Actor) || exp.Tenant != in.Tenants[0] || exp.SourceIP != ip:
			return fmt.Sprintf("export by %+v of %s from %v", exp.Actor, exp.Tenant, exp.SourceIP)
		case exp.Resource.Type != "booking" || exp.Resource.Store != StoreMain:
			return fmt.Sprintf("export of %+v", exp.Resource)
		case exp.Time.Sub(login.Time) > 5*time.Minute || !login.Time.After(as[59].Time):
			return "login or export out of time"
		}
		return ""
	},
	ScenarioStoreMadePublic: func(in Injection, evs []emitted, k int) string {
		msg := weakened(in, evs, event.ConfigResource{ID: "arn:aws:s3:::exports-eu", Type: "bucket", Store: StoreExports, Provider: "aws", Region: "eu-west-1"},
			"public_access", "false", "true")
		if msg == "" {
			c := evs[0].c
			if !reflect.DeepEqual(*c.Actor, event.Actor{ID: "arn:aws:iam::123456789012:user/ci-deployer", Type: event.ActorEmployee}) || c.Source != "cloudtrail" {
				return fmt.Sprintf("by %+v via %s", c.Actor, c.Source)
			}
		}
		return msg
	},
	ScenarioEncryptionDisabled: func(in Injection, evs []emitted, k int) string {
		msg := weakened(in, evs, event.ConfigResource{ID: StoreMain, Type: "database", Store: StoreMain, Provider: "aws", Region: "eu-west-1"},
			"encryption_at_rest", "true", "false")
		if msg == "" && evs[0].c.Source != "terraform" {
			return "source " + evs[0].c.Source
		}
		return msg
	},
	ScenarioTLSWeakened: func(in Injection, evs []emitted, k int) string {
		return weakened(in, evs, event.ConfigResource{ID: "api-eu", Type: "endpoint", Store: "api-eu", Provider: "aws", Region: "eu-west-1"},
			"tls_min_version", `"1.2"`, `"1.0"`)
	},
	ScenarioFirewallOpenPort: func(in Injection, evs []emitted, k int) string {
		id := "sg-0a1b2c3d4e5f"
		if k > 0 && len(evs) > 0 && evs[0].c != nil {
			id = evs[0].c.Resource.ID
			if !strings.HasPrefix(id, "sg-0a1b2c3d4e") || id == "sg-0a1b2c3d4e5f" || len(id) != len("sg-0a1b2c3d4e5f") {
				return "security group " + id
			}
		}
		return weakened(in, evs, event.ConfigResource{ID: id, Type: "firewall", Store: StoreMain, Provider: "aws", Region: "eu-west-1"},
			"public_ingress", "", `{"cidr":"0.0.0.0/0","protocol":"tcp","from_port":5432,"to_port":5432}`)
	},
	ScenarioSnapshotShared: func(in Injection, evs []emitted, k int) string {
		id := "postgres-eu-1-snap-" + in.Start.Format("2006-01-02-1504")
		return weakened(in, evs, event.ConfigResource{ID: id, Type: "snapshot", Store: StoreMain, Provider: "aws", Region: "eu-west-1"},
			"shared_with", "[]", `["all"]`)
	},
	ScenarioAuditLoggingOff: func(in Injection, evs []emitted, k int) string {
		return weakened(in, evs, event.ConfigResource{ID: "org-trail", Type: "log_sink", Store: "org-trail", Provider: "aws", Region: "eu-west-1"},
			"audit_logging", "true", "false")
	},
	ScenarioKeyDisabled: func(in Injection, evs []emitted, k int) string {
		return weakened(in, evs, event.ConfigResource{ID: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", Type: "key", Store: StoreMain, Provider: "aws", Region: "eu-west-1"},
			"key_state", `"Enabled"`, `"Disabled"`)
	},
}

// accesses checks that evs are n successful access events on store, with
// categories and a browser-like or scripted user agent, and returns them.
func accesses(evs []emitted, n int, store string) ([]*event.AccessEvent, string) {
	if len(evs) != n {
		return nil, fmt.Sprintf("%d events, want %d", len(evs), n)
	}
	as := make([]*event.AccessEvent, n)
	for i, e := range evs {
		a := e.a
		switch {
		case a == nil:
			return nil, "a config change"
		case a.Resource.Store != store:
			return nil, "store " + a.Resource.Store
		case a.Outcome != event.OutcomeSuccess || a.Records < 1:
			return nil, fmt.Sprintf("outcome %s, %d records", a.Outcome, a.Records)
		case len(a.Categories) == 0 || a.UserAgent == "" || !a.SourceIP.IsValid():
			return nil, "no categories, user agent or address"
		case inPrefixes(a.SourceIP, append([]string{"10.0.0.0/8"}, docRanges...)...):
			return nil, "address of the benign traffic " + a.SourceIP.String()
		case !strings.HasPrefix(a.RequestID, "req-") || len(a.RequestID) != 20:
			return nil, "request id " + a.RequestID
		}
		as[i] = a
	}
	return as, ""
}

// staffReads checks n reads of resource type res, one per tenant, by one
// employee of group within d.
func staffReads(in Injection, evs []emitted, n int, group, res string, d time.Duration) string {
	as, msg := accesses(evs, n, StoreMain)
	if msg != "" {
		return msg
	}
	tenants := make([]string, 0, n)
	for _, a := range as {
		switch {
		case a.Actor.Type != event.ActorEmployee || a.Actor.Tenant != "" || !slices.Equal(a.Actor.Groups, []string{group}):
			return fmt.Sprintf("actor %+v", a.Actor)
		case a.Actor.ID != as[0].Actor.ID || slices.Contains([]string{"emp-support-01", "emp-support-02", "emp-support-03", "emp-support-04"}, a.Actor.ID):
			return "actor " + a.Actor.ID
		case a.Action != event.ActionRead || a.Resource.Type != res || a.Records != 1:
			return a.Action + " " + a.Resource.Type
		}
		tenants = append(tenants, a.Tenant)
	}
	if !slices.Equal(tenants, in.Tenants) || in.Store != StoreMain {
		return fmt.Sprintf("read %q, Injection says %q in %s", tenants, in.Tenants, in.Store)
	}
	slices.Sort(tenants)
	if len(slices.Compact(tenants)) != n {
		return "a tenant read twice"
	}
	if got := span(evs); got > d {
		return fmt.Sprintf("over %v", got)
	}
	return ""
}

// weakened checks a config scenario: a change of setting on res from
// before ("" for absent) to after, then configRevert later the change back.
func weakened(in Injection, evs []emitted, res event.ConfigResource, setting, before, after string) string {
	if len(evs) != 2 || evs[0].c == nil || evs[1].c == nil {
		return fmt.Sprintf("%d events, want 2 config changes", len(evs))
	}
	if len(in.Tenants) != 0 || in.Store != res.Store {
		return fmt.Sprintf("tenants %q, store %s", in.Tenants, in.Store)
	}
	c, back := evs[0].c, evs[1].c
	switch {
	case c.Resource != res || back.Resource != res:
		return fmt.Sprintf("resource %+v", c.Resource)
	case c.Setting != setting || back.Setting != setting:
		return "setting " + c.Setting
	case string(c.Before) != before || string(c.After) != after:
		return fmt.Sprintf("%s → %s", c.Before, c.After)
	case string(back.Before) != after:
		return fmt.Sprintf("revert from %s", back.Before)
	case before == "" && string(back.After) != "null", before != "" && string(back.After) != before:
		return fmt.Sprintf("revert to %s", back.After)
	case back.Time.Sub(c.Time) != configRevert:
		return fmt.Sprintf("reverted after %v", back.Time.Sub(c.Time))
	case c.Actor == nil || c.Actor.ID == "deploy-bot" || c.Source == "":
		return "actor or source"
	}
	for _, v := range []json.RawMessage{c.Before, c.After, back.Before, back.After} {
		if v != nil && !json.Valid(v) {
			return "invalid JSON " + string(v)
		}
	}
	return ""
}

func span(evs []emitted) time.Duration { return evs[len(evs)-1].time().Sub(evs[0].time()) }

// public reports whether a is a routable public address.
func public(a netip.Addr) bool {
	return a.IsGlobalUnicast() && !a.IsPrivate() &&
		!inPrefixes(a, append([]string{"198.18.0.0/15", "100.64.0.0/10"}, docRanges...)...)
}

func TestBreachDeterministic(t *testing.T) {
	const n = 20 * 60 * 100 // 20 minutes at 10 ms
	run := func(seed uint64) (string, []Injection) {
		g := New(Options{Seed: seed, Breach: true})
		return hashEvents(g, n, 10*time.Millisecond), g.Injections()
	}
	h1, i1 := run(42)
	h2, i2 := run(42)
	if h1 != h2 || !reflect.DeepEqual(i1, i2) {
		t.Fatal("same seed, different events")
	}
	if len(i1) < numScenarios {
		t.Fatalf("%d injections in 20 minutes", len(i1))
	}
	_, i3 := run(43)
	if len(i3) == 0 || reflect.DeepEqual(i1[0].Tenants, i3[0].Tenants) && reflect.DeepEqual(i1[1].Tenants, i3[1].Tenants) {
		t.Error("seeds 42 and 43 inject the same victims")
	}
	// Injections is a copy.
	g := New(Options{Seed: 42, Breach: true})
	generate(g, 6000, 10*time.Millisecond, func(*event.AccessEvent, *event.ConfigChange) {})
	a := g.Injections()
	if len(a) == 0 {
		t.Fatal("no injection within a minute")
	}
	a[0].EventIDs[0], a[0].Tenants = "mutated", nil
	if b := g.Injections(); b[0].EventIDs[0] == "mutated" || b[0].Tenants == nil {
		t.Error("Injections returns the generator's own slices")
	}
}

// TestBreachOptions runs breach injection with few or many tenants and odd
// clocks: one event per call, all valid, in time order; the queue stays
// bounded and scenarios needing more tenants than there are are skipped.
func TestBreachOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		step    time.Duration
		n       int
		skipped []string
	}{
		{"one tenant", Options{Tenants: 1, Seed: 1, Breach: true}, 10 * time.Millisecond, 100_000,
			[]string{ScenarioCrossTenantRead, ScenarioStaffOutsideGroup, ScenarioStaffManyTenants}},
		{"ten tenants", Options{Tenants: 10, Seed: 2, Breach: true}, 10 * time.Millisecond, 100_000,
			[]string{ScenarioStaffManyTenants}},
		{"many tenants", Options{Tenants: 2000, Seed: 3, Breach: true}, 10 * time.Millisecond, 150_000, nil},
		{"slow clock", Options{Seed: 4, Breach: true}, time.Minute, 20_000, nil},
		{"second clock", Options{Seed: 5, Breach: true}, time.Second, 20_000, nil},
		{"frozen clock", Options{Seed: 6, Breach: true}, 0, 20_000, Scenarios()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := New(tt.opts)
			var last time.Time
			maxQueue, injected := 0, 0
			prefix := fmt.Sprintf("demo-%x-b-", tt.opts.Seed)
			ids := map[string]bool{}
			generate(g, tt.n, tt.step, func(a *event.AccessEvent, c *event.ConfigChange) {
				var err error
				var at time.Time
				var id string
				if a != nil {
					err, at, id = a.Validate(), a.Time, a.ID
				} else {
					err, at, id = c.Validate(), c.Time, c.ID
				}
				if err != nil {
					t.Fatalf("%s: %v", id, err)
				}
				if at.Before(last) {
					t.Fatalf("%s at %v after %v", id, at, last)
				}
				last = at
				if strings.HasPrefix(id, prefix) {
					injected++
					ids[id] = true
				}
				maxQueue = max(maxQueue, len(g.br.queue))
			})
			if maxQueue > 300 {
				t.Errorf("queue grew to %d events", maxQueue)
			}
			seen := map[string]bool{}
			for _, in := range g.Injections() {
				seen[in.Scenario] = true
				for _, id := range in.EventIDs {
					if !ids[id] {
						t.Fatalf("%s: %s not emitted", in.Scenario, id)
					}
				}
			}
			for _, s := range Scenarios() {
				if seen[s] == slices.Contains(tt.skipped, s) {
					t.Errorf("%s injected: %v", s, seen[s])
				}
			}
			t.Logf("%d injected events, %d injections, queue ≤ %d", injected, len(g.Injections()), maxQueue)
		})
	}
}
