package tracker

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/breachwatch/breachwatch/demo"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/internal/testenv"
	"github.com/breachwatch/breachwatch/store/clickhouse"
	"github.com/breachwatch/breachwatch/store/sqlite"
)

// scopeEvents is how many events the scoping benchmark stores:
// BWBENCH_SCOPE_EVENTS, or def.
func scopeEvents(def int) int {
	if n, err := strconv.Atoi(os.Getenv("BWBENCH_SCOPE_EVENTS")); err == nil && n > 0 {
		return n
	}
	return def
}

// span is the time the benchmark's events cover.
const span = 30 * 24 * time.Hour

var benchStart = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

// benchScope scopes two incidents the way the tracker does, against a store
// holding the events: an exposure of the busiest store (postgres-eu-1,
// the busiest: 60% of the events) for one day in the middle of the month, and a
// cross-tenant read by its evidence. Reported: milliseconds per scoping.
func benchScope(b *testing.B, st interface {
	Store
	AccessSource
}) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		f    incident.Finding
	}{
		{"exposure-1d", incident.Finding{RuleID: "store-made-public", GroupKey: "resource.id=postgres-eu-1", Kind: incident.KindExposure,
			WindowStart: benchStart.Add(15 * 24 * time.Hour), WindowEnd: benchStart.Add(16 * 24 * time.Hour), Count: 1,
			Affected: incident.Affected{Scope: incident.ScopeStore, Stores: []string{"postgres-eu-1"}}}},
		{"exposure-7d", incident.Finding{RuleID: "store-made-public", GroupKey: "resource.id=postgres-eu-1", Kind: incident.KindExposure,
			WindowStart: benchStart.Add(10 * 24 * time.Hour), WindowEnd: benchStart.Add(17 * 24 * time.Hour), Count: 1,
			Affected: incident.Affected{Scope: incident.ScopeStore, Stores: []string{"postgres-eu-1"}}}},
		{"access-evidence", incident.Finding{RuleID: "cross-tenant-read", GroupKey: "actor.id=u-1", Kind: incident.KindMatch,
			WindowStart: benchStart.Add(20 * 24 * time.Hour), FirstSeen: benchStart.Add(20 * 24 * time.Hour),
			LastSeen: benchStart.Add(20*24*time.Hour + time.Hour), Count: 100, EventIDs: evidenceIDs(st),
			Affected: incident.Affected{Scope: incident.ScopeTenants}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tc.f.Fingerprint = incident.Fingerprint(tc.f.RuleID, tc.f.GroupKey, tc.f.WindowStart)
			tr, err := New(ctx, st, Options{Access: st, PrivilegedGroups: []string{"support", "db-admins"}, Now: time.Now})
			if err != nil {
				b.Fatal(err)
			}
			inc := &incident.Incident{Kind: tc.f.Kind}
			addEvidence(inc, &tc.f)
			var s incident.Scope
			for b.Loop() {
				if s, err = tr.scope(ctx, inc, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/scope")
			b.ReportMetric(float64(len(s.Tenants)), "tenants")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// evidenceIDs picks 100 stored event ids, 36 seconds apart, in the hour
// from day 20 on.
func evidenceIDs(st AccessSource) []string {
	var ids []string
	for i := range 100 {
		ids = append(ids, fmt.Sprintf("bench-%d", int64(float64(scopeEventsCurrent)*(20*24*3600+float64(i)*36)/span.Seconds())))
	}
	return ids
}

// scopeEventsCurrent is the size of the store being measured.
var scopeEventsCurrent int

// BenchmarkScopeClickHouse: 100M access events over 30 days in ClickHouse.
// The events are generated inside ClickHouse (INSERT … SELECT FROM
// numbers()) with the demo traffic's proportions, through the real schema
// and its materialized view; loading 100M events through breachwatch
// would take the benchmark many minutes.
func BenchmarkScopeClickHouse(b *testing.B) {
	ctx := context.Background()
	addr := testenv.ClickHouse(b)
	n := scopeEvents(100_000_000)
	scopeEventsCurrent = n
	db := testenv.Database(b, addr)
	st, err := clickhouse.Open(ctx, clickhouse.Options{Addr: []string{addr}, Database: db})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}, Settings: ch.Settings{"max_execution_time": 3600}})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	// Proportions as in the demo traffic: 500 tenants; reads mostly by the
	// tenant's own users, some by services, support staff and API keys, a
	// few by staff outside the privileged groups and anonymous callers;
	// the main database takes most of the traffic.
	h := func(salt int) string { return fmt.Sprintf("(cityHash64(number, %d) %% 100)", salt) }
	gen := `INSERT INTO ` + db + `.access_events (id, time, time_ns, tenant, actor_id, actor_type, actor_tenant, actor_groups,
		action, resource_type, resource_id, resource_store, records, categories, outcome, source_ip, country, user_agent, request_id, extra)
		SELECT concat('bench-', toString(number)), toDateTime(` + strconv.FormatInt(benchStart.Unix(), 10) + ` + intDiv(number * ` +
		strconv.FormatInt(int64(span.Seconds()), 10) + `, ` + strconv.Itoa(n) + `)), 0,
		concat('cust-', toString(1000 + cityHash64(number, 1) % 500)) AS tn,
		concat('u-', toString(cityHash64(number, 2) % 50000)),
		multiIf(` + h(3) + ` < 80, 'customer_user', ` + h(3) + ` < 90, 'service', ` + h(3) + ` < 97, 'employee', ` + h(3) + ` < 99, 'api_key', 'anonymous') AS at,
		if(at IN ('customer_user', 'api_key'), tn, ''),
		if(at = 'employee', if(` + h(4) + ` < 90, ['support'], ['marketing']), emptyArrayString()),
		if(` + h(5) + ` < 85, 'read', 'list'), 'booking', concat('bk-', toString(number % 1000000)),
		multiIf(` + h(6) + ` < 60, 'postgres-eu-1', ` + h(6) + ` < 80, 's3://exports-eu', ` + h(6) + ` < 90, 'auth-db', 'api-eu'),
		1 + cityHash64(number, 7) % 20, if(` + h(8) + ` < 50, ['booking', 'contact'], ['contact']),
		if(` + h(9) + ` < 97, 'success', 'denied'), '10.0.0.1', 'NL', 'Mozilla/5.0', '', ''
		FROM numbers(` + strconv.Itoa(n) + `)`
	if err := conn.Exec(ctx, gen); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d events generated in ClickHouse in %v", n, time.Since(start).Round(time.Second))
	b.Run(fmt.Sprintf("events=%dM", n/1_000_000), func(b *testing.B) { benchScope(b, st) })
}

// BenchmarkScopeSQLite: 10M access events over 30 days in the embedded
// store, written through its Write path (the demo traffic's events, their
// times spread over the month).
func BenchmarkScopeSQLite(b *testing.B) {
	ctx := context.Background()
	n := scopeEvents(10_000_000)
	scopeEventsCurrent = n
	st, err := sqlite.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	start := time.Now()
	g := demo.New(demo.Options{Seed: 5, Tenants: 500})
	var tmp event.Batch
	batch := &event.Batch{}
	step := span / time.Duration(n)
	for i := 0; i < n; {
		tmp.Reset()
		g.Next(benchStart.Add(time.Duration(i)*step), &tmp)
		for _, e := range tmp.Access {
			if i == n {
				break
			}
			e.ID = fmt.Sprintf("bench-%d", i)
			batch.Access = append(batch.Access, e)
			i++
		}
		if len(batch.Access) >= 20_000 || i == n {
			if err := st.Write(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch.Reset()
		}
	}
	b.Logf("%d events written to SQLite in %v", n, time.Since(start).Round(time.Second))
	b.Run(fmt.Sprintf("events=%dM", n/1_000_000), func(b *testing.B) { benchScope(b, st) })
}
