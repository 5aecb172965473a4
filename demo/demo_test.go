package demo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/event"
)

var start = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

// generate feeds n events of g, at now = start + i*step, to fn.
func generate(g *Generator, n int, step time.Duration, fn func(a *event.AccessEvent, c *event.ConfigChange)) {
	var b event.Batch
	for i := range n {
		b.Reset()
		g.Next(start.Add(time.Duration(i)*step), &b)
		if b.Len() != 1 {
			panic(fmt.Sprintf("Next appended %d events", b.Len()))
		}
		if len(b.Access) == 1 {
			fn(&b.Access[0], nil)
		} else {
			fn(nil, &b.Config[0])
		}
	}
}

func inPrefixes(a netip.Addr, prefixes ...string) bool {
	for _, p := range prefixes {
		if netip.MustParsePrefix(p).Contains(a) {
			return true
		}
	}
	return false
}

var docRanges = []string{"198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24", "2001:db8::/32"}

// accessChecks are invariants every generated access event must satisfy;
// each returns a complaint or "".
var accessChecks = []struct {
	name  string
	check func(e *event.AccessEvent) string
}{
	{"valid", func(e *event.AccessEvent) string {
		if err := e.Validate(); err != nil {
			return err.Error()
		}
		return ""
	}},
	{"tenant scope", func(e *event.AccessEvent) string {
		switch e.Actor.Type {
		case event.ActorCustomerUser, event.ActorAPIKey:
			if e.Actor.Tenant != e.Tenant {
				return "cross-tenant access"
			}
		case event.ActorEmployee, event.ActorService:
			if e.Actor.Tenant != "" {
				return "staff or service with a tenant"
			}
		default:
			return "unexpected actor type " + e.Actor.Type
		}
		return ""
	}},
	{"employees are support", func(e *event.AccessEvent) string {
		if e.Actor.Type == event.ActorEmployee && !slices.Equal(e.Actor.Groups, []string{"support"}) {
			return fmt.Sprintf("employee groups %q", e.Actor.Groups)
		}
		if e.Actor.Type == event.ActorEmployee && e.Action != event.ActionRead {
			return "support doing " + e.Action
		}
		if e.Actor.Type != event.ActorEmployee && e.Actor.Groups != nil {
			return "groups on a non-employee"
		}
		return ""
	}},
	{"source ip", func(e *event.AccessEvent) string {
		switch {
		case !e.SourceIP.IsValid():
			return "no source ip"
		case e.Actor.Type == event.ActorService && !inPrefixes(e.SourceIP, "10.0.0.0/8"):
			return "service outside 10/8: " + e.SourceIP.String()
		case e.Actor.Type != event.ActorService && !inPrefixes(e.SourceIP, docRanges...):
			return "outside documentation ranges: " + e.SourceIP.String()
		}
		return ""
	}},
	{"user agent", func(e *event.AccessEvent) string {
		ua := e.UserAgent
		switch e.Actor.Type {
		case event.ActorCustomerUser, event.ActorEmployee:
			if !strings.HasPrefix(ua, "Mozilla/5.0 (") {
				return "non-browser user agent " + ua
			}
		case event.ActorService:
			if !strings.HasPrefix(ua, e.Actor.ID+"/") {
				return "service user agent " + ua
			}
		}
		if ua == "" || strings.Contains(strings.ToLower(ua), "curl") {
			return "user agent " + ua
		}
		return ""
	}},
	{"request id", func(e *event.AccessEvent) string {
		if !strings.HasPrefix(e.RequestID, "req-") || len(e.RequestID) != 20 {
			return "request id " + e.RequestID
		}
		return ""
	}},
	{"records", func(e *event.AccessEvent) string {
		n := e.Records
		var lo, hi int64 = 1, 1
		switch {
		case e.Outcome != event.OutcomeSuccess || e.Action == event.ActionLoginFailed:
			lo, hi = 0, 0
		case e.Action == event.ActionExport || e.Action == event.ActionDownload:
			lo, hi = 50, 2000
		case e.Action == event.ActionList || e.Action == event.ActionSearch || e.Actor.Type == event.ActorService:
			hi = 50
		}
		if n < lo || n > hi {
			return fmt.Sprintf("%s %s: records %d outside [%d, %d]", e.Actor.ID, e.Action, n, lo, hi)
		}
		return ""
	}},
	{"resources", func(e *event.AccessEvent) string {
		want := map[string][2]string{ // type → store, categories
			"booking": {StoreMain, "booking,contact"}, "contact": {StoreMain, "contact"},
			"calendar": {StoreMain, "booking"}, "invoice": {StoreBilling, "contact,payment"},
			"payment_method": {StoreBilling, "payment"}, "account": {StoreAuth, ""},
			"file": {StoreExports, "booking,contact"},
		}[e.Resource.Type]
		if want[0] == "" {
			return "resource type " + e.Resource.Type
		}
		if e.Resource.Store != want[0] || strings.Join(e.Categories, ",") != want[1] {
			return fmt.Sprintf("%s in %s with %q", e.Resource.Type, e.Resource.Store, e.Categories)
		}
		if e.Categories != nil && len(e.Categories) == 0 {
			return "empty non-nil categories"
		}
		return ""
	}},
	{"actions by actor", func(e *event.AccessEvent) string {
		ok := false
		switch e.Actor.Type {
		case event.ActorCustomerUser:
			ok = slices.Contains([]string{"read", "list", "search", "update", "create", "login", "login_failed", "download"}, e.Action)
		case event.ActorAPIKey:
			ok = e.Action == event.ActionList && e.Resource.Type == "calendar" && e.Actor.ID == "key-"+e.Tenant+"-cal"
		case event.ActorService:
			ok = e.Action == event.ActionRead || e.Action == event.ActionList ||
				(e.Action == event.ActionExport && e.Actor.ID == "export-service")
		case event.ActorEmployee:
			ok = e.Action == event.ActionRead && (e.Resource.Type == "booking" || e.Resource.Type == "contact")
		}
		if !ok {
			return e.Actor.Type + " " + e.Actor.ID + " doing " + e.Action + " on " + e.Resource.Type
		}
		return ""
	}},
}

// weakening says how a change weakens protection, or "".
func weakening(c *event.ConfigChange) string {
	if !slices.Contains([]string{"endpoint", "database", "bucket"}, c.Resource.Type) {
		return "resource type " + c.Resource.Type
	}
	if !slices.Contains([]string{StoreMain, StoreBilling, StoreAuth, StoreExports}, c.Resource.Store) {
		return "store " + c.Resource.Store
	}
	if c.Actor == nil || c.Actor.ID != "deploy-bot" || c.Actor.Type != event.ActorService || c.Source != "terraform" {
		return "not the deploy bot via terraform"
	}
	if !json.Valid(c.Before) || !json.Valid(c.After) {
		return "invalid JSON"
	}
	var buf bytes.Buffer
	for _, v := range []json.RawMessage{c.Before, c.After} {
		buf.Reset()
		if json.Compact(&buf, v) != nil || !bytes.Equal(buf.Bytes(), v) {
			return "not compact: " + string(v)
		}
	}
	before, after := string(c.Before), string(c.After)
	num := func(s string) float64 {
		s, _ = strings.CutPrefix(strings.TrimSuffix(s, `"`), `"`)
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return -1
		}
		return f
	}
	switch c.Setting {
	case "public_access":
		if after != "false" {
			return "public_access → " + after
		}
	case "encryption_at_rest", "audit_logging", "versioning":
		if after != "true" {
			return c.Setting + " → " + after
		}
	case "tls_min_version", "backup_retention_days", "hsts_max_age":
		if num(after) < num(before) || num(before) < 0 {
			return c.Setting + " " + before + " → " + after
		}
	case "tags":
		if !strings.HasPrefix(after, "{") {
			return "tags " + after
		}
	default:
		return "unexpected setting " + c.Setting
	}
	return ""
}

func TestGenerate(t *testing.T) {
	const n = 200_000
	g := New(Options{Seed: 42})
	tenants := g.Tenants()
	if len(tenants) != DefaultTenants || tenants[0] != "cust-0001" || tenants[49] != "cust-0050" {
		t.Fatalf("Tenants() = %q", tenants)
	}

	ids := make(map[string]bool, n)
	seen := map[string]int{} // tenant → events
	count := map[string]int{}
	var configs, exportRecs, downloadRecs int
	failures := map[string]int{}        // user → login_failed in a row
	exports := map[string]int64{}       // tenant → records of an export not yet downloaded
	support := map[string][]time.Time{} // "employee tenant" → read times
	var buf []byte
	var dec event.Decoder
	errs := 0
	fail := func(id, format string, args ...any) {
		t.Helper()
		if errs++; errs <= 20 {
			t.Errorf("%s: "+format, append([]any{id}, args...)...)
		}
	}

	generate(g, n, 25*time.Millisecond, func(a *event.AccessEvent, c *event.ConfigChange) {
		if c != nil {
			configs++
			if ids[c.ID] {
				fail(c.ID, "duplicate id")
			}
			ids[c.ID] = true
			if err := c.Validate(); err != nil {
				fail(c.ID, "invalid: %v", err)
			}
			if w := weakening(c); w != "" {
				fail(c.ID, "weakening change: %s", w)
			}
			buf = c.AppendJSON(buf[:0])
			var back event.ConfigChange
			if err := dec.Config(buf, &back); err != nil {
				fail(c.ID, "decode: %v\n%s", err, buf)
			} else if !reflect.DeepEqual(&back, c) {
				fail(c.ID, "round trip differs:\n%+v\n%+v", back, *c)
			}
			return
		}
		if ids[a.ID] {
			fail(a.ID, "duplicate id")
		}
		ids[a.ID] = true
		if !strings.HasPrefix(a.ID, "demo-2a-a-") {
			fail(a.ID, "id does not carry the seed")
		}
		for _, ck := range accessChecks {
			if msg := ck.check(a); msg != "" {
				fail(a.ID, "%s: %s", ck.name, msg)
			}
		}
		buf = a.AppendJSON(buf[:0])
		var back event.AccessEvent
		if err := dec.Access(buf, &back); err != nil {
			fail(a.ID, "decode: %v\n%s", err, buf)
		} else if !reflect.DeepEqual(&back, a) {
			fail(a.ID, "round trip differs:\n%+v\n%+v", back, *a)
		}

		seen[a.Tenant]++
		count[a.Action]++
		count["actor:"+a.Actor.Type]++
		count["outcome:"+a.Outcome]++
		if a.Actor.Type == event.ActorService {
			count["service:"+a.Actor.ID]++
		}

		// Logins: at most two typos in a row, and nothing else between
		// them and the successful login.
		if a.Actor.Type == event.ActorCustomerUser {
			u := a.Actor.ID
			switch {
			case a.Action == event.ActionLoginFailed:
				failures[u]++
				if failures[u] > 2 {
					fail(a.ID, "%d login failures in a row for %s", failures[u], u)
				}
			case a.Action == event.ActionLogin:
				failures[u] = 0
			case failures[u] > 0:
				fail(a.ID, "%s does %s after a failed login", u, a.Action)
			}
		}

		// Exports: modest, and followed by the tenant's own download.
		switch a.Action {
		case event.ActionExport:
			if _, dup := exports[a.Tenant]; dup {
				fail(a.ID, "second export of %s before the download", a.Tenant)
			}
			exports[a.Tenant] = a.Records
			exportRecs += int(a.Records)
		case event.ActionDownload:
			want, ok := exports[a.Tenant]
			if !ok || want != a.Records || a.Actor.Type != event.ActorCustomerUser {
				fail(a.ID, "download of %d records without a matching export (%d, %v)", a.Records, want, ok)
			}
			delete(exports, a.Tenant)
			downloadRecs += int(a.Records)
		}

		// Support: a few reads per ticket, a few tenants per hour.
		if a.Actor.Type == event.ActorEmployee {
			k := a.Actor.ID + " " + a.Tenant
			support[k] = append(support[k], a.Time)
		}
	})

	// Distinct tenants each employee touched in any sliding hour.
	type touch struct {
		at     time.Time
		tenant string
	}
	byEmp := map[string][]touch{}
	for k, times := range support {
		emp, tn, _ := strings.Cut(k, " ")
		for _, at := range times {
			byEmp[emp] = append(byEmp[emp], touch{at, tn})
		}
	}
	for emp, ts := range byEmp {
		slices.SortFunc(ts, func(a, b touch) int { return a.at.Compare(b.at) })
		for i := range ts {
			distinct := map[string]bool{}
			for j := i; j < len(ts) && ts[j].at.Sub(ts[i].at) < time.Hour; j++ {
				distinct[ts[j].tenant] = true
			}
			if len(distinct) > maxTicketsPerHour {
				t.Errorf("%s read %d tenants within an hour from %v", emp, len(distinct), ts[i].at)
			}
		}
	}
	for k, times := range support {
		if len(times) > 4*3 { // at most 4 reads a ticket, a few tickets
			t.Errorf("support %s: %d reads", k, len(times))
		}
	}

	share := func(k string) float64 { return 100 * float64(count[k]) / n }
	cfgShare := 100 * float64(configs) / n
	t.Logf("config changes %.3f%%", cfgShare)
	for _, k := range []string{
		"actor:customer_user", "actor:api_key", "actor:service", "actor:employee",
		"service:reminder-service", "service:billing-service", "service:search-indexer", "service:export-service",
		"read", "list", "search", "update", "create", "login", "login_failed", "export", "download",
		"outcome:success", "outcome:denied", "outcome:error",
	} {
		t.Logf("%-26s %7d  %6.3f%%", k, count[k], share(k))
	}
	t.Logf("exports: %d records exported, %d downloaded", exportRecs, downloadRecs)

	mix := []struct {
		name   string
		got    float64
		lo, hi float64 // percent
	}{
		{"config changes", cfgShare, 0.01, 0.2},
		{"exports and downloads", share("export") + share("download"), 0.001, 1},
		{"login_failed", share("login_failed"), 0.05, 2},
		{"logins", share("login"), 2, 15},
		{"customer users", share("actor:customer_user"), 60, 95},
		{"api keys", share("actor:api_key"), 1, 10},
		{"services", share("actor:service"), 3, 20},
		{"support", share("actor:employee"), 0.001, 1},
		{"denied", share("outcome:denied"), 0.01, 1},
		{"error", share("outcome:error"), 0.01, 1},
	}
	for _, m := range mix {
		if m.got < m.lo || m.got > m.hi {
			t.Errorf("%s: %.3f%% of events, want %.3f%%..%.3f%%", m.name, m.got, m.lo, m.hi)
		}
	}
	for _, tn := range tenants {
		if seen[tn] == 0 {
			t.Errorf("tenant %s never appears", tn)
		}
	}
	if len(seen) != len(tenants) {
		t.Errorf("events for %d tenants, want %d", len(seen), len(tenants))
	}
}

func encodeAll(g *Generator, n int) [][]byte {
	out := make([][]byte, 0, n)
	generate(g, n, 40*time.Millisecond, func(a *event.AccessEvent, c *event.ConfigChange) {
		if a != nil {
			out = append(out, a.AppendJSON(nil))
		} else {
			out = append(out, c.AppendJSON(nil))
		}
	})
	return out
}

func TestDeterministic(t *testing.T) {
	for _, seed := range []uint64{0, 1, 42, 1 << 63} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			a := encodeAll(New(Options{Seed: seed}), 10_000)
			b := encodeAll(New(Options{Seed: seed}), 10_000)
			for i := range a {
				if !bytes.Equal(a[i], b[i]) {
					t.Fatalf("event %d differs:\n%s\n%s", i, a[i], b[i])
				}
			}
		})
	}
}

func TestSeedsDisjoint(t *testing.T) {
	tests := []struct{ a, b uint64 }{{1, 2}, {0, 1}, {42, 43}, {0x10, 0x100}, {0, 1 << 63}}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%x-%x", tt.a, tt.b), func(t *testing.T) {
			idsOf := func(seed uint64) map[string]bool {
				ids := map[string]bool{}
				generate(New(Options{Seed: seed}), 20_000, time.Second, func(a *event.AccessEvent, c *event.ConfigChange) {
					if a != nil {
						ids[a.ID] = true
					} else {
						ids[c.ID] = true
					}
				})
				return ids
			}
			a, b := idsOf(tt.a), idsOf(tt.b)
			for id := range a {
				if b[id] {
					t.Fatalf("id %s produced by both seeds", id)
				}
			}
			// Different seeds also give different traffic, not just ids.
			ea, eb := encodeAll(New(Options{Seed: tt.a}), 50), encodeAll(New(Options{Seed: tt.b}), 50)
			same := 0
			for i := range ea {
				x := strings.Replace(string(ea[i]), fmt.Sprintf("demo-%x-", tt.a), "", 1)
				y := strings.Replace(string(eb[i]), fmt.Sprintf("demo-%x-", tt.b), "", 1)
				if x == y {
					same++
				}
			}
			if same == len(ea) {
				t.Errorf("seeds %d and %d give the same traffic", tt.a, tt.b)
			}
		})
	}
}

// TestOptions runs generators of several sizes and clock behaviours: every
// event must validate and stay inside the generator's tenants.
func TestOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		step    time.Duration
		tenants int
	}{
		{"default", Options{}, time.Second, 50},
		{"negative", Options{Tenants: -3, Seed: 7}, time.Second, 50},
		{"one tenant", Options{Tenants: 1, Seed: 1}, time.Second, 1},
		{"three tenants", Options{Tenants: 3, Seed: 3}, time.Millisecond, 3},
		{"many tenants", Options{Tenants: 2000, Seed: 9}, time.Millisecond, 2000},
		{"frozen clock", Options{Tenants: 10, Seed: 5}, 0, 10},
		{"slow clock", Options{Tenants: 10, Seed: 6}, time.Minute, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := New(tt.opts)
			tenants := g.Tenants()
			if len(tenants) != tt.tenants {
				t.Fatalf("%d tenants, want %d", len(tenants), tt.tenants)
			}
			tenants[0] = "mutated"
			if g.Tenants()[0] == "mutated" {
				t.Fatal("Tenants returns the generator's own slice")
			}
			known := map[string]bool{}
			for _, id := range g.Tenants() {
				known[id] = true
			}
			support, exports := 0, 0
			generate(g, 30_000, tt.step, func(a *event.AccessEvent, c *event.ConfigChange) {
				if c != nil {
					if err := c.Validate(); err != nil {
						t.Fatalf("%s: %v", c.ID, err)
					}
					if w := weakening(c); w != "" {
						t.Fatalf("%s: %s", c.ID, w)
					}
					return
				}
				for _, ck := range accessChecks {
					if msg := ck.check(a); msg != "" {
						t.Fatalf("%s: %s: %s", a.ID, ck.name, msg)
					}
				}
				if !known[a.Tenant] {
					t.Fatalf("%s: unknown tenant %s", a.ID, a.Tenant)
				}
				if a.Actor.Type == event.ActorEmployee {
					support++
				}
				if a.Action == event.ActionExport {
					exports++
				}
			})
			if tt.step == 0 {
				// A frozen clock caps the rate-limited scenarios.
				if max := 4 * maxTicketsPerHour * 4; support > max {
					t.Errorf("%d support reads at one instant, want ≤ %d", support, max)
				}
				if exports > tt.tenants {
					t.Errorf("%d exports at one instant, want ≤ %d", exports, tt.tenants)
				}
			}
		})
	}
}

// TestBatchAppends checks that Next appends to, and does not disturb, a
// batch already holding events.
func TestBatchAppends(t *testing.T) {
	g := New(Options{Seed: 3})
	var b event.Batch
	for i := range 5000 {
		g.Next(start.Add(time.Duration(i)*time.Second), &b)
	}
	if b.Len() != 5000 {
		t.Fatalf("batch holds %d events, want 5000", b.Len())
	}
	first := b.Access[0].AppendJSON(nil)
	g.Next(start.Add(time.Hour*2), &b)
	if !bytes.Equal(first, b.Access[0].AppendJSON(nil)) {
		t.Fatal("Next changed an earlier event")
	}
}

func BenchmarkNext(b *testing.B) {
	g := New(Options{Seed: 1})
	var batch event.Batch
	now := start
	b.ReportAllocs()
	for b.Loop() {
		if batch.Len() >= 1024 {
			batch.Reset()
		}
		now = now.Add(10 * time.Millisecond)
		g.Next(now, &batch)
	}
}
