// Package storetest is the contract every breachwatch store passes: what is
// written reads back unchanged, writing an event twice stores it once, and
// retention drops whole days. store/sqlite and store/clickhouse run it
// against real databases.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/demo"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

// Store is what the suite exercises.
type Store interface {
	Write(ctx context.Context, b *event.Batch) error
	ScanAccess(ctx context.Context, from, to time.Time, fn func(*event.AccessEvent) error) error
	ScanConfig(ctx context.Context, from, to time.Time, fn func(*event.ConfigChange) error) error
	Count(ctx context.Context) (access, config int64, err error)
	DropBefore(ctx context.Context, day time.Time) (int, error)
	Ping(ctx context.Context) error
	Latest(ctx context.Context) (time.Time, error)
	SaveFindings(ctx context.Context, fs []incident.Finding) error
	Findings(ctx context.Context, since time.Time, limit int) ([]incident.Finding, error)
	FindingsOf(ctx context.Context, ruleID string, from, to time.Time) ([]incident.Finding, error)
	ScanAccessWhere(ctx context.Context, from, to time.Time, where []event.FieldValue, fn func(*event.AccessEvent) error) error
	AccessByTenant(ctx context.Context, q incident.AccessQuery) ([]incident.TenantAccess, error)
	AppendAudit(ctx context.Context, es []incident.AuditEntry) error
	ScanAudit(ctx context.Context, after int64, fn func(*incident.AuditEntry) error) error
	EnqueueDeliveries(ctx context.Context, ds []incident.Delivery) error
	UpdateDeliveries(ctx context.Context, ds []incident.Delivery) error
	Deliveries(ctx context.Context, q incident.DeliveryQuery, fn func(*incident.Delivery) error) error
	AddDeliveryEvents(ctx context.Context, es []incident.DeliveryEvent) ([]incident.DeliveryEvent, error)
	DeliveryEvents(ctx context.Context, inc, delivery string, fn func(*incident.DeliveryEvent) error) error
	RevokeToken(ctx context.Context, name, by, reason string, at time.Time) error
	RevokedTokens(ctx context.Context, fn func(name, by, reason string, at time.Time) error) error
}

// RunReopen checks that a store closed and opened again on the same data
// keeps what was written and opens its existing schema without complaint.
// open must open the same underlying store each call.
func RunReopen(t *testing.T, open func(t *testing.T) interface {
	Store
	Close() error
}) {
	ctx := context.Background()
	s := open(t)
	if err := s.Write(ctx, &event.Batch{Access: Access("k", Day0, 10)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t)
	defer s.Close()
	if a, _, err := s.Count(ctx); err != nil || a != 10 {
		t.Fatalf("after reopening: Count = %d, %v; want 10", a, err)
	}
}

// Run runs the suite. open must return a new, empty store each call.
func Run(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Idempotent", testIdempotent},
		{"ConcurrentWriters", testConcurrent},
		{"TimeRange", testTimeRange},
		{"Retention", testRetention},
		{"LargeBatch", testLargeBatch},
		{"Findings", testFindings},
		{"FindingsByVersion", testFindingsByVersion},
		{"ScanAccessWhere", testScanAccessWhere},
		{"AuditLog", testAudit},
		{"AccessByTenant", testAccessByTenant},
		{"HugeRecords", testHugeRecords},
		{"Outbox", testOutbox},
		{"RevokedTokens", testRevokedTokens},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// Day0 is the UTC midnight the suite's fixtures are dated from.
var Day0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// Access returns n valid access events from start, one a second, with ids
// prefix-0, prefix-1, ...
func Access(prefix string, start time.Time, n int) []event.AccessEvent {
	evs := make([]event.AccessEvent, n)
	for i := range evs {
		evs[i] = event.AccessEvent{
			ID: fmt.Sprintf("%s-%d", prefix, i), Time: start.Add(time.Duration(i) * time.Second),
			Tenant: fmt.Sprintf("cust-%04d", i%37), Actor: event.Actor{ID: fmt.Sprintf("u-%d", i%101), Type: event.ActorCustomerUser,
				Tenant: fmt.Sprintf("cust-%04d", i%37)},
			Action: event.ActionRead, Resource: event.Resource{Type: "booking", ID: fmt.Sprintf("bk-%d", i), Store: "postgres-eu-1"},
			Records: 1, Outcome: event.OutcomeSuccess,
		}
	}
	return evs
}

// richBatch exercises every field, empty and full, across two days.
func richBatch() *event.Batch {
	t1 := Day0.Add(9*time.Hour + 15*time.Minute + 2*time.Second + 113_456_789)
	t2 := Day0.Add(24*time.Hour + 30*time.Minute)
	return &event.Batch{
		Access: []event.AccessEvent{
			{ID: "a-full", Time: t1, Tenant: "cust-0042",
				Actor:  event.Actor{ID: "e-17", Type: event.ActorEmployee, Groups: []string{"support", "db-admins"}},
				Action: event.ActionExport, Resource: event.Resource{Type: "booking", ID: "bk-1", Store: "postgres-eu-1"},
				Records: 1800, Categories: []string{"contact", "booking"}, Outcome: event.OutcomeSuccess,
				SourceIP: netip.MustParseAddr("2001:db8::17"), Country: "NL",
				UserAgent: `Mozilla/5.0 "<script>alert(1)</script>" ☃ مرحبا`, RequestID: "req-1",
				Extra: json.RawMessage(`{"trace":{"span":"abc"},"actor":{"badge":7}}`)},
			{ID: "a-min", Time: t1, Tenant: "cust-0007", Actor: event.Actor{ID: "anonymous", Type: event.ActorAnonymous},
				Action: event.ActionDownload, Resource: event.Resource{Type: "file", Store: "s3://exports-eu"},
				Records: 0, Outcome: event.OutcomeDenied, SourceIP: netip.MustParseAddr("198.51.100.23")},
			{ID: "a-next-day", Time: t2, Tenant: "cust-0001",
				Actor:  event.Actor{ID: "k-1", Type: event.ActorAPIKey, Tenant: "cust-0001"},
				Action: event.ActionLoginFailed, Resource: event.Resource{Type: "account", Store: "auth"},
				Records: 1, Outcome: event.OutcomeError},
		},
		Config: []event.ConfigChange{
			{ID: "c-full", Time: t1, Resource: event.ConfigResource{ID: "arn:aws:s3:::exports-eu", Type: "bucket",
				Store: "s3://exports-eu", Provider: "aws", Region: "eu-west-1"}, Setting: "public_access",
				Before: json.RawMessage(`false`), After: json.RawMessage(`{"acl":["AllUsers"],"n":1.5}`),
				Actor:  &event.Actor{ID: "deploy-bot", Type: event.ActorService, Groups: []string{"ci"}},
				Source: "terraform", Extra: json.RawMessage(`{"ticket":"OPS-1"}`)},
			{ID: "c-min", Time: t2, Resource: event.ConfigResource{ID: "pg-1", Type: "database", Store: "pg-1"},
				Setting: "encryption_at_rest", After: json.RawMessage(`null`)},
		},
	}
}

func scanAll(t *testing.T, s Store) ([]event.AccessEvent, []event.ConfigChange) {
	t.Helper()
	ctx := context.Background()
	var as []event.AccessEvent
	var cs []event.ConfigChange
	if err := s.ScanAccess(ctx, event.MinTime(), event.MaxTime(), func(e *event.AccessEvent) error {
		as = append(as, *e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.ScanConfig(ctx, event.MinTime(), event.MaxTime(), func(c *event.ConfigChange) error {
		cs = append(cs, *c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return as, cs
}

func sorted[T any](xs []T, key func(*T) (time.Time, string)) []T {
	out := slices.Clone(xs)
	slices.SortFunc(out, func(a, b T) int {
		ta, ia := key(&a)
		tb, ib := key(&b)
		if c := ta.Compare(tb); c != 0 {
			return c
		}
		if ia < ib {
			return -1
		}
		if ia > ib {
			return 1
		}
		return 0
	})
	return out
}

func accessKey(e *event.AccessEvent) (time.Time, string)  { return e.Time, e.ID }
func configKey(c *event.ConfigChange) (time.Time, string) { return c.Time, c.ID }

func testRoundTrip(t *testing.T, s Store) {
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if l, err := s.Latest(ctx); err != nil || !l.IsZero() {
		t.Errorf("Latest of an empty store = %v, %v; want the zero time", l, err)
	}
	if err := s.Write(ctx, &event.Batch{}); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	b := richBatch()
	for i := range b.Access {
		if err := b.Access[i].Validate(); err != nil {
			t.Fatalf("fixture %s: %v", b.Access[i].ID, err)
		}
	}
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	as, cs := scanAll(t, s)
	if want := sorted(b.Access, accessKey); !reflect.DeepEqual(as, want) {
		t.Errorf("access events read back differ:\n got %+v\nwant %+v", as, want)
	}
	if want := sorted(b.Config, configKey); !reflect.DeepEqual(cs, want) {
		t.Errorf("config changes read back differ:\n got %+v\nwant %+v", cs, want)
	}
	a, c, err := s.Count(ctx)
	if err != nil || a != 3 || c != 2 {
		t.Errorf("Count = %d, %d, %v; want 3, 2", a, c, err)
	}
	// The newest event is a-next-day and c-min, at Day0+24h30m (to the second).
	if l, err := s.Latest(ctx); err != nil || !l.Equal(Day0.Add(24*time.Hour+30*time.Minute)) {
		t.Errorf("Latest = %v, %v", l, err)
	}
}

func testIdempotent(t *testing.T, s Store) {
	ctx := context.Background()
	first := &event.Batch{Access: Access("x", Day0, 100)}
	for range 2 {
		if err := s.Write(ctx, first); err != nil {
			t.Fatal(err)
		}
	}
	// A later batch that overlaps the first by half, with a config change
	// written twice in the same batch.
	overlap := &event.Batch{Access: Access("x", Day0.Add(50*time.Second), 100)}
	for i := range overlap.Access {
		overlap.Access[i].ID = fmt.Sprintf("x-%d", i+50)
	}
	c := richBatch().Config[0]
	overlap.Config = []event.ConfigChange{c, c}
	if err := s.Write(ctx, overlap); err != nil {
		t.Fatal(err)
	}
	a, n, err := s.Count(ctx)
	if err != nil || a != 150 || n != 1 {
		t.Fatalf("Count = %d, %d, %v; want 150 distinct access events and 1 change", a, n, err)
	}
	as, cs := scanAll(t, s)
	seen := map[string]int{}
	for _, e := range as {
		seen[e.ID]++
	}
	if len(as) != 150 || len(seen) != 150 || len(cs) != 1 {
		t.Errorf("scan returned %d access events (%d distinct) and %d changes; want 150, 150, 1", len(as), len(seen), len(cs))
	}
}

func testConcurrent(t *testing.T, s Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Writers 0-3 and 4-7 write the same two sets of ids.
			b := &event.Batch{Access: Access(fmt.Sprintf("w%d", w%4), Day0, 250)}
			errs <- s.Write(ctx, b)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if a, _, err := s.Count(ctx); err != nil || a != 1000 {
		t.Errorf("Count = %d, %v; want 1000", a, err)
	}
}

func testTimeRange(t *testing.T, s Store) {
	ctx := context.Background()
	base := Day0.Add(10 * time.Hour)
	evs := Access("r", base, 5)
	for i := range evs {
		evs[i].Time = base.Add(time.Duration(i) * 250 * time.Millisecond) // four in one second
	}
	if err := s.Write(ctx, &event.Batch{Access: evs}); err != nil {
		t.Fatal(err)
	}
	var got []string
	from, to := evs[1].Time, evs[3].Time
	if err := s.ScanAccess(ctx, from, to, func(e *event.AccessEvent) error {
		got = append(got, e.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"r-1", "r-2"}; !slices.Equal(got, want) {
		t.Errorf("scan [%v, %v) = %v, want %v", from, to, got, want)
	}
	stop := fmt.Errorf("stop")
	n := 0
	err := s.ScanAccess(ctx, event.MinTime(), event.MaxTime(), func(*event.AccessEvent) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("scan did not stop at the callback's error: n=%d err=%v", n, err)
	}
}

func testRetention(t *testing.T, s Store) {
	ctx := context.Background()
	b := &event.Batch{}
	for d := range 4 { // days Day0-3 .. Day0
		at := Day0.AddDate(0, 0, d-3).Add(12 * time.Hour)
		b.Access = append(b.Access, Access(fmt.Sprintf("d%d", d), at, 10)...)
		c := richBatch().Config[1]
		c.ID, c.Time = fmt.Sprintf("c-d%d", d), at
		b.Config = append(b.Config, c)
	}
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	n, err := s.DropBefore(ctx, Day0.AddDate(0, 0, -1))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("DropBefore dropped %d days, want 2", n)
	}
	as, cs := scanAll(t, s)
	if len(as) != 20 || len(cs) != 2 {
		t.Fatalf("after retention: %d access events, %d changes; want 20, 2", len(as), len(cs))
	}
	for _, e := range as {
		if e.Time.Before(Day0.AddDate(0, 0, -1)) {
			t.Errorf("event %s at %v survived retention", e.ID, e.Time)
		}
	}
	if n, err := s.DropBefore(ctx, Day0.AddDate(0, 0, -1)); err != nil || n != 0 {
		t.Errorf("second DropBefore = %d, %v; want 0", n, err)
	}
}

func testLargeBatch(t *testing.T, s Store) {
	ctx := context.Background()
	const n = 20_000
	b := &event.Batch{Access: Access("big", Day0.Add(23*time.Hour), n)} // crosses midnight
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	if a, _, err := s.Count(ctx); err != nil || a != n {
		t.Errorf("Count = %d, %v; want %d", a, err, n)
	}
}

// DemoBatches returns n realistic access events from the demo generator,
// all on one day, in batches of size, for benchmarks.
func DemoBatches(n, size int) []*event.Batch {
	g := demo.New(demo.Options{Seed: 11})
	var out []*event.Batch
	var tmp event.Batch
	cur := &event.Batch{}
	for i := 0; i < n; {
		tmp.Reset()
		g.Next(Day0.Add(time.Duration(i)*time.Millisecond), &tmp)
		for _, e := range tmp.Access {
			cur.Access = append(cur.Access, e)
			i++
			if len(cur.Access) == size {
				out = append(out, cur)
				cur = &event.Batch{}
			}
		}
	}
	if len(cur.Access) > 0 {
		out = append(out, cur)
	}
	return out
}

func testFindings(t *testing.T, s Store) {
	ctx := context.Background()
	first := time.Date(2026, 11, 20, 9, 0, 1, 123_000_000, time.UTC)
	f := incident.Finding{RuleID: "bulk-export", RuleVersion: "v1", Title: "Bulk export", Severity: incident.SeverityHigh,
		Kind: incident.KindThreshold, GroupKey: "actor.id=u-1", WindowStart: Day0.Add(9 * time.Hour), FirstSeen: Day0.Add(9 * time.Hour),
		LastSeen: Day0.Add(9*time.Hour + time.Minute), Count: 3, Records: 9000, Value: 9000, EventIDs: []string{"a", "b", "c"},
		Affected: incident.Affected{Scope: incident.ScopeTenants, Tenants: []string{"cust-1"}, Stores: []string{"s3://x"}}, DetectedAt: first}
	f.Fingerprint = incident.Fingerprint(f.RuleID, f.GroupKey, f.WindowStart)
	other := f
	other.RuleID, other.GroupKey, other.DetectedAt = "cross-tenant-read", "actor.id=u-2", first.Add(time.Hour)
	other.Fingerprint = incident.Fingerprint(other.RuleID, other.GroupKey, other.WindowStart)
	if err := s.SaveFindings(ctx, []incident.Finding{f, other}); err != nil {
		t.Fatal(err)
	}
	// The same finding reported again with more evidence, and (as after a
	// restart) a later detection time: the evidence updates, the first
	// detection stays.
	more := f
	more.Count, more.Records, more.EventIDs, more.DetectedAt = 4, 12000, []string{"a", "b", "c", "d"}, first.Add(2*time.Hour)
	if err := s.SaveFindings(ctx, []incident.Finding{more}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Findings(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Fingerprint != other.Fingerprint {
		t.Fatalf("findings: %+v; want 2, newest first", got)
	}
	want := more
	want.DetectedAt = first
	if !reflect.DeepEqual(got[1], want) {
		t.Errorf("finding read back:\n got %+v\nwant %+v", got[1], want)
	}
	if got, err := s.Findings(ctx, first.Add(30*time.Minute), 0); err != nil || len(got) != 1 || got[0].RuleID != "cross-tenant-read" {
		t.Errorf("findings since: %+v, %v", got, err)
	}
	if got, err := s.Findings(ctx, time.Time{}, 1); err != nil || len(got) != 1 {
		t.Errorf("findings limit 1: %d, %v", len(got), err)
	}
}

// testFindingsByVersion: the report with the highest version is kept,
// whatever order reports are written in (reports of one finding may reach
// a store out of order); FindingsOf lists a rule's findings by window.
func testFindingsByVersion(t *testing.T, s Store) {
	ctx := context.Background()
	start := Day0.Add(9 * time.Hour)
	mk := func(rule, group string, ws time.Time, version uint64, count int64) incident.Finding {
		return incident.Finding{Fingerprint: incident.Fingerprint(rule, group, ws), RuleID: rule, Title: rule, Severity: incident.SeverityHigh,
			Kind: incident.KindMatch, GroupKey: group, WindowStart: ws, FirstSeen: ws, LastSeen: ws, Count: count,
			EventIDs: []string{"e1"}, DetectedAt: start, Version: version}
	}
	newer, older := mk("bulk-export", "actor.id=u-1", start, 20, 7), mk("bulk-export", "actor.id=u-1", start, 10, 3)
	// The newer report first, then a stale one (a batch put back after a
	// failure, say): the newer stays.
	for _, f := range []incident.Finding{newer, older} {
		if err := s.SaveFindings(ctx, []incident.Finding{f}); err != nil {
			t.Fatal(err)
		}
	}
	retracted := mk("bulk-export", "actor.id=u-2", start.Add(time.Hour), 5, 1)
	retracted.SupersededBy = newer.Fingerprint
	other := mk("cross-tenant-read", "actor.id=u-1", start.Add(time.Hour), 1, 1)
	late := mk("bulk-export", "actor.id=u-3", start.Add(3*time.Hour), 1, 1)
	if err := s.SaveFindings(ctx, []incident.Finding{retracted, other, late}); err != nil {
		t.Fatal(err)
	}
	got, err := s.FindingsOf(ctx, "bulk-export", start, start.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Fingerprint != newer.Fingerprint || got[0].Count != 7 || got[0].Version != 20 ||
		got[1].SupersededBy != newer.Fingerprint {
		t.Fatalf("FindingsOf: %+v; want the newer report of u-1 and u-2's retraction, by window start", got)
	}
	if got, err := s.FindingsOf(ctx, "bulk-export", start.Add(time.Nanosecond), start.Add(time.Hour)); err != nil || len(got) != 0 {
		t.Errorf("FindingsOf from after the window start: %+v, %v", got, err)
	}
}

// testScanAccessWhere: ScanAccessWhere selects a group's events (it may
// return more, never fewer), in time order.
func testScanAccessWhere(t *testing.T, s Store) {
	ctx := context.Background()
	evs := Access("w", Day0, 500)
	if err := s.Write(ctx, &event.Batch{Access: evs}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range evs {
		if e.Actor.ID == "u-7" && e.Tenant == "cust-0007" {
			want = append(want, e.ID)
		}
	}
	var got []string
	err := s.ScanAccessWhere(ctx, Day0, Day0.Add(time.Hour), []event.FieldValue{{Field: "actor.id", Value: "u-7"}, {Field: "tenant", Value: "cust-0007"}},
		func(e *event.AccessEvent) error {
			if e.Actor.ID == "u-7" && e.Tenant == "cust-0007" {
				got = append(got, e.ID)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("ScanAccessWhere: %v, want %v", got, want)
	}
}

// AuditChain returns n sealed audit entries, a chain from the first.
func AuditChain(n int) []incident.AuditEntry {
	es := make([]incident.AuditEntry, n)
	for i := range es {
		es[i] = incident.AuditEntry{At: Day0.Add(time.Duration(i)*time.Minute + 123456789), Incident: fmt.Sprintf("inc-%d", i%3),
			Actor: "token:alice", Action: incident.ActNote, Reason: fmt.Sprintf("note %d <b>&</b> ünïcode", i)}
		if i%2 == 0 {
			es[i].Data = json.RawMessage(fmt.Sprintf(`{"n":%d,"s":"x"}`, i))
		}
		var prev *incident.AuditEntry
		if i > 0 {
			prev = &es[i-1]
		}
		es[i].Seal(prev)
	}
	return es
}

func readAudit(t *testing.T, s Store, after int64) []incident.AuditEntry {
	t.Helper()
	var got []incident.AuditEntry
	if err := s.ScanAudit(context.Background(), after, func(e *incident.AuditEntry) error {
		got = append(got, *e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func testAudit(t *testing.T, s Store) {
	ctx := context.Background()
	if got := readAudit(t, s, 0); len(got) != 0 {
		t.Fatalf("empty store has %d audit entries", len(got))
	}
	es := AuditChain(50)
	if err := s.AppendAudit(ctx, es[:30]); err != nil {
		t.Fatal(err)
	}
	// Appending again what is already there (a retry after a timeout)
	// changes nothing.
	if err := s.AppendAudit(ctx, es[20:]); err != nil {
		t.Fatal(err)
	}
	got := readAudit(t, s, 0)
	if !reflect.DeepEqual(got, es) {
		t.Fatalf("audit log read back differs:\n got %+v\nwant %+v", got, es)
	}
	var v incident.ChainVerifier
	for _, e := range got {
		if err := v.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	if got := readAudit(t, s, 45); len(got) != 5 || got[0].Seq != 46 {
		t.Fatalf("entries after 45: %d, first %+v", len(got), got)
	}
}

func testAccessByTenant(t *testing.T, s Store) {
	ctx := context.Background()
	at := Day0.Add(10 * time.Hour)
	ev := func(id string, d time.Duration, tenant, actorType, actorTenant string, groups []string, store string, records int64, outcome string, cats ...string) event.AccessEvent {
		return event.AccessEvent{ID: id, Time: at.Add(d), Tenant: tenant,
			Actor: event.Actor{ID: "a-" + id, Type: actorType, Tenant: actorTenant, Groups: groups}, Action: event.ActionRead,
			Resource: event.Resource{Type: "contact", ID: "r-" + id, Store: store}, Records: records, Categories: cats, Outcome: outcome}
	}
	const bucket, other = "s3://exports", "postgres-eu-1"
	evs := []event.AccessEvent{
		ev("own", 0, "cust-a", event.ActorCustomerUser, "cust-a", nil, bucket, 10, event.OutcomeSuccess, "contact"),
		ev("anon", time.Minute, "cust-a", event.ActorAnonymous, "", nil, bucket, 100, event.OutcomeSuccess, "contact", "booking"),
		ev("cross", 2*time.Minute, "cust-a", event.ActorCustomerUser, "cust-b", nil, bucket, 5, event.OutcomeSuccess, "booking"),
		ev("apikey", 3*time.Minute, "cust-b", event.ActorAPIKey, "cust-b", nil, bucket, 7, event.OutcomeSuccess),
		ev("support", 4*time.Minute, "cust-b", event.ActorEmployee, "", []string{"support"}, bucket, 3, event.OutcomeSuccess, "contact"),
		ev("marketing", 5*time.Minute, "cust-c", event.ActorEmployee, "", []string{"marketing", "staff"}, bucket, 4, event.OutcomeSuccess, "health"),
		ev("service", 6*time.Minute, "cust-c", event.ActorService, "", nil, bucket, 1000, event.OutcomeSuccess),
		ev("denied", 7*time.Minute, "cust-c", event.ActorAnonymous, "", nil, bucket, 50, event.OutcomeDenied),
		ev("elsewhere", 8*time.Minute, "cust-d", event.ActorAnonymous, "", nil, other, 9, event.OutcomeSuccess),
		ev("before", -time.Hour, "cust-e", event.ActorAnonymous, "", nil, bucket, 9, event.OutcomeSuccess),
		ev("after", 2*time.Hour, "cust-e", event.ActorAnonymous, "", nil, bucket, 9, event.OutcomeSuccess),
	}
	// Written twice: the aggregate counts each event once.
	for range 2 {
		if err := s.Write(ctx, &event.Batch{Access: evs}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.AccessByTenant(ctx, incident.AccessQuery{Stores: []string{bucket}, From: at, To: at.Add(time.Hour),
		PrivilegedGroups: []string{"support", "db-admins"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []incident.TenantAccess{
		{Tenant: "cust-a", Events: 3, Records: 115, Categories: []string{"booking", "contact"},
			BadEvents: 2, BadRecords: 105, BadCategories: []string{"booking", "contact"}},
		// Their events without categories name their store (its inventory
		// categories are theirs alone).
		{Tenant: "cust-b", Events: 2, Records: 10, Categories: []string{"contact"}, Unlabelled: []string{bucket}},
		{Tenant: "cust-c", Events: 2, Records: 1004, Categories: []string{"health"},
			BadEvents: 1, BadRecords: 4, BadCategories: []string{"health"}, Unlabelled: []string{bucket}},
	}
	if !reflect.DeepEqual(normAccess(got), normAccess(want)) {
		t.Errorf("by store and window:\n got %+v\nwant %+v", got, want)
	}
	// Only the unauthorized reads.
	got, err = s.AccessByTenant(ctx, incident.AccessQuery{Stores: []string{bucket}, From: at, To: at.Add(time.Hour),
		PrivilegedGroups: []string{"support", "db-admins"}, BadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	want = []incident.TenantAccess{
		{Tenant: "cust-a", Events: 2, Records: 105, Categories: []string{"booking", "contact"},
			BadEvents: 2, BadRecords: 105, BadCategories: []string{"booking", "contact"}},
		{Tenant: "cust-c", Events: 1, Records: 4, Categories: []string{"health"}, BadEvents: 1, BadRecords: 4, BadCategories: []string{"health"}},
	}
	if !reflect.DeepEqual(normAccess(got), normAccess(want)) {
		t.Errorf("bad only:\n got %+v\nwant %+v", got, want)
	}
	// Without privileged groups every employee is an outsider.
	got, err = s.AccessByTenant(ctx, incident.AccessQuery{Stores: []string{bucket}, From: at, To: at.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1].BadEvents != 1 || got[1].BadRecords != 3 {
		t.Errorf("no privileged groups: %+v", got)
	}
	// By event ids (an incident's evidence), whatever the store.
	got, err = s.AccessByTenant(ctx, incident.AccessQuery{IDs: []string{"cross", "elsewhere", "denied", "no-such-event", "x' OR 1=1 --"}})
	if err != nil {
		t.Fatal(err)
	}
	want = []incident.TenantAccess{
		{Tenant: "cust-a", Events: 1, Records: 5, Categories: []string{"booking"}, BadEvents: 1, BadRecords: 5, BadCategories: []string{"booking"}},
		{Tenant: "cust-d", Events: 1, Records: 9, BadEvents: 1, BadRecords: 9, Unlabelled: []string{"postgres-eu-1"}, BadUnlabelled: []string{"postgres-eu-1"}},
	}
	if !reflect.DeepEqual(normAccess(got), normAccess(want)) {
		t.Errorf("by ids:\n got %+v\nwant %+v", got, want)
	}
	// Everything on the store up to a time, from the beginning.
	got, err = s.AccessByTenant(ctx, incident.AccessQuery{Stores: []string{bucket}, To: at.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[3].Tenant != "cust-e" || got[3].Events != 1 {
		t.Errorf("from the beginning: %+v", got)
	}
	// Whose data the bucket holds (any outcome, up to To: cust-e's event
	// two hours on does not count yet).
	got, err = s.AccessByTenant(ctx, incident.AccessQuery{Stores: []string{bucket}, To: at.Add(time.Hour), Holders: true})
	if err != nil {
		t.Fatal(err)
	}
	want = []incident.TenantAccess{
		{Tenant: "cust-a", Events: 3, Records: 115}, {Tenant: "cust-b", Events: 2, Records: 10},
		{Tenant: "cust-c", Events: 3, Records: 1054}, {Tenant: "cust-e", Events: 1, Records: 9},
	}
	// The tenants are exact; events and records are an estimate that an
	// event delivered twice may count twice (ClickHouse sums on insert).
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].Tenant == want[i].Tenant && got[i].Events >= want[i].Events && got[i].Events <= 2*want[i].Events &&
			got[i].Records >= want[i].Records && got[i].Records <= 2*want[i].Records
	}
	if !ok {
		t.Errorf("holders:\n got %+v\nwant %+v (events and records up to twice)", got, want)
	}
	// Up to the later event, inclusive, it counts.
	if got, err := s.AccessByTenant(ctx, incident.AccessQuery{Stores: []string{bucket}, To: at.Add(2 * time.Hour), Holders: true}); err != nil ||
		len(got) != 4 || got[3].Tenant != "cust-e" || got[3].Events < 2 || got[3].Records < 18 {
		t.Errorf("holders up to the later event: %+v, %v", got, err)
	}
	if got, err := s.AccessByTenant(ctx, incident.AccessQuery{Stores: []string{bucket}, To: Day0.Add(-time.Second), Holders: true}); err != nil || len(got) != 0 {
		t.Errorf("holders before any event: %+v, %v", got, err)
	}
}

// normAccess makes empty lists nil, for comparison.
// testHugeRecords: events whose records add up past int64 (written before
// ingest bounded records, or at the bound in great number) neither fail a
// scoping read nor come back negative: the sums saturate. Days before the
// last are read from the per-day summary, the last from the events.
func testHugeRecords(t *testing.T, s Store) {
	ctx := context.Background()
	const store = "s3://huge"
	var evs []event.AccessEvent
	for d := range 2 {
		for i := range 2 {
			evs = append(evs, event.AccessEvent{ID: fmt.Sprintf("huge-%d-%d", d, i), Time: Day0.Add(time.Duration(d)*24*time.Hour + time.Duration(i)*time.Minute),
				Tenant: "cust-h", Actor: event.Actor{ID: "anonymous", Type: event.ActorAnonymous}, Action: event.ActionRead,
				Resource: event.Resource{Type: "file", Store: store}, Records: math.MaxInt64, Outcome: event.OutcomeSuccess})
		}
	}
	evs = append(evs, event.AccessEvent{ID: "small", Time: Day0.Add(time.Hour), Tenant: "cust-s",
		Actor: event.Actor{ID: "anonymous", Type: event.ActorAnonymous}, Action: event.ActionRead,
		Resource: event.Resource{Type: "file", Store: store}, Records: 3, Outcome: event.OutcomeSuccess})
	if err := s.Write(ctx, &event.Batch{Access: evs}); err != nil {
		t.Fatal(err)
	}
	to := Day0.Add(24*time.Hour + time.Hour)
	for _, q := range []incident.AccessQuery{
		{Stores: []string{store}, From: Day0, To: to},
		{Stores: []string{store}, To: to, Holders: true},
		{IDs: []string{"huge-0-0", "huge-0-1", "huge-1-0", "small"}, From: Day0, To: to},
	} {
		got, err := s.AccessByTenant(ctx, q)
		if err != nil {
			t.Fatalf("holders %v: %v", q.Holders, err)
		}
		byTenant := map[string]incident.TenantAccess{}
		for _, ta := range got {
			byTenant[ta.Tenant] = ta
		}
		if h := byTenant["cust-h"]; h.Records != math.MaxInt64 || h.Events < 2 {
			t.Errorf("holders %v ids %v: cust-h %+v, want records saturated at %d", q.Holders, len(q.IDs) > 0, h, int64(math.MaxInt64))
		}
		if sm := byTenant["cust-s"]; sm.Records != 3 {
			t.Errorf("holders %v ids %v: cust-s %+v, want 3 records", q.Holders, len(q.IDs) > 0, sm)
		}
	}
}

func normAccess(ts []incident.TenantAccess) []incident.TenantAccess {
	out := slices.Clone(ts)
	for i := range out {
		if len(out[i].Categories) == 0 {
			out[i].Categories = nil
		}
		if len(out[i].BadCategories) == 0 {
			out[i].BadCategories = nil
		}
		if len(out[i].Unlabelled) == 0 {
			out[i].Unlabelled = nil
		}
		if len(out[i].BadUnlabelled) == 0 {
			out[i].BadUnlabelled = nil
		}
	}
	return out
}

func outboxRows(inc string, version, n int, at time.Time) []incident.Delivery {
	ds := make([]incident.Delivery, n)
	for i := range ds {
		tenant := fmt.Sprintf("cust-%04d", i)
		rcpt := fmt.Sprintf("owner@%04d.example", i)
		ds[i] = incident.Delivery{ID: incident.DeliveryID(inc, version, tenant, rcpt, incident.ChannelEmail), Incident: inc, Version: version,
			Tenant: tenant, Recipient: rcpt, Channel: incident.ChannelEmail, State: incident.DeliveryPending, CreatedAt: at, UpdatedAt: at,
			Facts: incident.AffectedTenant{Tenant: tenant, Records: int64(i), Categories: []string{"contact"}, How: incident.HowExposed,
				Locale: "nl", TimeZone: "Europe/Amsterdam"}}
	}
	return ds
}

func readOutbox(t *testing.T, s Store, q incident.DeliveryQuery) map[string]incident.Delivery {
	t.Helper()
	out := map[string]incident.Delivery{}
	if err := s.Deliveries(context.Background(), q, func(d *incident.Delivery) error {
		if _, dup := out[d.ID]; dup {
			return fmt.Errorf("delivery %s read twice", d.ID)
		}
		out[d.ID] = *d
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// testOutbox: rows are written once however often they are enqueued; a
// later state wins over an earlier one and over a re-enqueue; queries
// select by incident, version, tenant, channel and state; delivery events
// are kept once per id.
func testOutbox(t *testing.T, s Store) {
	ctx := context.Background()
	at := Day0.Add(9*time.Hour + 123456789)
	ds := outboxRows("inc-a", 1, 50, at)
	if err := s.EnqueueDeliveries(ctx, ds); err != nil {
		t.Fatal(err)
	}
	got := readOutbox(t, s, incident.DeliveryQuery{Incident: "inc-a"})
	if len(got) != 50 || !reflect.DeepEqual(got[ds[7].ID], ds[7]) {
		t.Fatalf("read back %d rows; row 7 = %+v, want %+v", len(got), got[ds[7].ID], ds[7])
	}
	// Claim, then record the outcome, then enqueue everything again: the
	// outcome stands.
	upd := slices.Clone(ds[:10])
	for i := range upd {
		upd[i].State, upd[i].Attempts, upd[i].Batch, upd[i].UpdatedAt = incident.DeliverySending, 1, "b-1", at.Add(time.Second)
	}
	if err := s.UpdateDeliveries(ctx, upd); err != nil {
		t.Fatal(err)
	}
	for i := range upd {
		upd[i].State, upd[i].SentAt, upd[i].UpdatedAt = incident.DeliverySent, at.Add(2*time.Second), at.Add(2*time.Second)
	}
	upd[9].State, upd[9].SentAt, upd[9].Error = incident.DeliveryFailed, time.Time{}, "rejected: 400"
	if err := s.UpdateDeliveries(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if err := s.EnqueueDeliveries(ctx, outboxRows("inc-a", 1, 60, at.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	got = readOutbox(t, s, incident.DeliveryQuery{Incident: "inc-a"})
	if len(got) != 60 {
		t.Fatalf("%d rows after re-enqueueing 60 (50 known); want 60", len(got))
	}
	if g := got[upd[3].ID]; !reflect.DeepEqual(g, upd[3]) {
		t.Errorf("sent row = %+v\nwant %+v", g, upd[3])
	}
	if g := got[ds[20].ID]; !g.CreatedAt.Equal(at) {
		t.Errorf("re-enqueueing rewrote a pending row: created %v, want %v", g.CreatedAt, at)
	}
	sent := readOutbox(t, s, incident.DeliveryQuery{Incident: "inc-a", Version: 1, States: []string{incident.DeliverySent}})
	failed := readOutbox(t, s, incident.DeliveryQuery{Incident: "inc-a", States: []string{incident.DeliveryFailed, incident.DeliverySending}})
	if len(sent) != 9 || len(failed) != 1 || failed[upd[9].ID].Error != "rejected: 400" {
		t.Errorf("by state: %d sent, %d failed", len(sent), len(failed))
	}
	if err := s.EnqueueDeliveries(ctx, outboxRows("inc-b", 2, 3, at)); err != nil {
		t.Fatal(err)
	}
	if n := len(readOutbox(t, s, incident.DeliveryQuery{Tenant: "cust-0001"})); n != 2 {
		t.Errorf("tenant cust-0001 has %d rows over both incidents; want 2", n)
	}
	if n := len(readOutbox(t, s, incident.DeliveryQuery{Incident: "inc-b", Version: 1})); n != 0 {
		t.Errorf("inc-b version 1: %d rows; want 0", n)
	}
	if n := len(readOutbox(t, s, incident.DeliveryQuery{Channel: incident.ChannelInApp})); n != 0 {
		t.Errorf("in-app rows: %d; want 0", n)
	}

	// Delivery events: once per id, whatever the replays.
	evs := []incident.DeliveryEvent{
		{ID: "sg-1", Delivery: ds[0].ID, Incident: "inc-a", Tenant: ds[0].Tenant, Type: incident.EventDelivered, At: at.Add(time.Minute)},
		{ID: "sg-2", Delivery: ds[1].ID, Incident: "inc-a", Tenant: ds[1].Tenant, Type: incident.EventBounce, At: at.Add(2 * time.Minute), Detail: "invalid"},
	}
	added, err := s.AddDeliveryEvents(ctx, evs)
	if err != nil || len(added) != 2 {
		t.Fatalf("added %d, %v; want 2", len(added), err)
	}
	evs = append(evs, incident.DeliveryEvent{ID: "sg-3", Delivery: ds[0].ID, Incident: "inc-a", Tenant: ds[0].Tenant, Type: incident.EventRead, At: at.Add(3 * time.Minute)})
	added, err = s.AddDeliveryEvents(ctx, evs)
	if err != nil || len(added) != 1 || added[0].ID != "sg-3" {
		t.Fatalf("replay added %v, %v; want only sg-3", added, err)
	}
	var all, one []incident.DeliveryEvent
	if err := s.DeliveryEvents(ctx, "inc-a", "", func(e *incident.DeliveryEvent) error { all = append(all, *e); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.DeliveryEvents(ctx, "inc-a", ds[0].ID, func(e *incident.DeliveryEvent) error { one = append(one, *e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || !reflect.DeepEqual(all[1], evs[1]) || len(one) != 2 || one[1].Type != incident.EventRead {
		t.Errorf("events: all %+v\none %+v", all, one)
	}
}

// testRevokedTokens: revocations read back; the first one of a name stands.
func testRevokedTokens(t *testing.T, s Store) {
	ctx := context.Background()
	at := Day0.Add(10*time.Hour + 5)
	if err := s.RevokeToken(ctx, "shipper", "console:ada", "leaked in a log", at); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, "shipper", "console:bob", "again", at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, "oncall", "console:ada", "left the team", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.RevokedTokens(ctx, func(name, by, reason string, when time.Time) error {
		got = append(got, fmt.Sprintf("%s|%s|%s|%s", name, by, reason, when.Format(time.RFC3339Nano)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"oncall|console:ada|left the team|" + at.Add(time.Minute).Format(time.RFC3339Nano),
		"shipper|console:ada|leaked in a log|" + at.Format(time.RFC3339Nano)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("revoked tokens:\n%q\nwant\n%q", got, want)
	}
}
