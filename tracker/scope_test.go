package tracker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

// TestExposureScope: a bucket holding the data of the tenants seen on it is
// public for two hours. Tenants whose data someone who should not have
// read in that window are accessed; the other holders are exposed; reads
// before the window, denied reads and reads by the privileged are not
// access; a second, listed store adds its tenants.
func TestExposureScope(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, t.TempDir())
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	n := 0
	ev := func(at time.Duration, tenant, actorType, actorTenant string, groups []string, store, outcome string, records int64) event.AccessEvent {
		n++
		return event.AccessEvent{ID: "e" + string(rune('a'+n)), Time: t0.Add(at), Tenant: tenant,
			Actor: event.Actor{ID: "x", Type: actorType, Tenant: actorTenant, Groups: groups}, Action: event.ActionDownload,
			Resource: event.Resource{Type: "file", ID: "f", Store: store}, Records: records, Categories: []string{"contact"}, Outcome: outcome}
	}
	const bucket, listed = "s3://exports-eu", "postgres-eu-1"
	evs := []event.AccessEvent{
		// Before the window: the tenants' own exports put their data in the bucket.
		ev(-48*time.Hour, "cust-a", event.ActorCustomerUser, "cust-a", nil, bucket, event.OutcomeSuccess, 500),
		ev(-24*time.Hour, "cust-b", event.ActorCustomerUser, "cust-b", nil, bucket, event.OutcomeSuccess, 300),
		ev(-24*time.Hour, "cust-c", event.ActorService, "", nil, bucket, event.OutcomeSuccess, 200),
		ev(-time.Hour, "cust-d", event.ActorAnonymous, "", nil, bucket, event.OutcomeSuccess, 10), // before the window: not access in it
		// In the window.
		ev(30*time.Minute, "cust-a", event.ActorAnonymous, "", nil, bucket, event.OutcomeSuccess, 120),
		ev(40*time.Minute, "cust-b", event.ActorAnonymous, "", nil, bucket, event.OutcomeDenied, 99),
		ev(50*time.Minute, "cust-c", event.ActorEmployee, "", []string{"support"}, bucket, event.OutcomeSuccess, 7),
		ev(60*time.Minute, "cust-c", event.ActorEmployee, "", []string{"sales"}, bucket, event.OutcomeSuccess, 3),
		// After the window closed.
		ev(3*time.Hour, "cust-b", event.ActorAnonymous, "", nil, bucket, event.OutcomeSuccess, 50),
	}
	if err := st.Write(ctx, &event.Batch{Access: evs}); err != nil {
		t.Fatal(err)
	}
	inv := incident.NewInventory([]incident.Store{
		{ID: bucket, Categories: []string{"contact", "booking"}, Holders: incident.HoldersSeen},
		{ID: listed, Categories: []string{"health"}, Holders: incident.HoldersList, Tenants: []string{"cust-x", "cust-a"}},
	}, true)
	c := &clock{t0.Add(4 * time.Hour)}
	tr, err := New(ctx, st, Options{Access: st, Inventory: func() *incident.Inventory { return inv },
		PrivilegedGroups: []string{"support"}, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	f := incident.Finding{RuleID: "store-made-public", GroupKey: "resource.id=" + bucket, Kind: incident.KindExposure,
		WindowStart: t0, WindowEnd: t0.Add(2 * time.Hour), FirstSeen: t0, LastSeen: t0.Add(2 * time.Hour), Count: 2,
		Affected: incident.Affected{Scope: incident.ScopeStore, Stores: []string{bucket, listed}}}
	f.Fingerprint = incident.Fingerprint(f.RuleID, f.GroupKey, f.WindowStart)
	ids, err := tr.Findings(ctx, []incident.Finding{f})
	if err != nil {
		t.Fatal(err)
	}
	inc, _ := tr.Get(ids[0])
	want := []incident.AffectedTenant{
		{Tenant: "cust-a", Records: 120, Categories: []string{"contact"}, How: incident.HowAccessed},
		{Tenant: "cust-c", Records: 3, Categories: []string{"contact"}, How: incident.HowAccessed},
		// Exposed records count what the store held up to the window's end:
		// the read at 13:00, after the window closed, is not counted.
		{Tenant: "cust-b", Records: 300 + 99, Categories: []string{"booking", "contact"}, How: incident.HowExposed},
		{Tenant: "cust-d", Records: 10, Categories: []string{"booking", "contact"}, How: incident.HowExposed},
		{Tenant: "cust-x", Records: 0, Categories: []string{"health"}, How: incident.HowExposed},
	}
	got := inc.Scope.Tenants
	if len(got) != len(want) {
		t.Fatalf("scope:\n got %+v\nwant %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Tenant != w.Tenant || g.How != w.How || g.Records != w.Records || !equalStrings(g.Categories, w.Categories) {
			t.Errorf("tenant %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	if inc.Scope.Partial {
		t.Error("scope marked partial")
	}
	// A scope recorded once: the same finding again changes nothing.
	seq := inc.Seq
	if _, err := tr.Findings(ctx, []incident.Finding{f}); err != nil {
		t.Fatal(err)
	}
	if inc, _ := tr.Get(ids[0]); inc.Seq != seq {
		t.Error("a replay rescoped")
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRolesForEveryCommand: each role may give exactly the documented
// commands.
func TestRolesForEveryCommand(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	tr := newTracker(t, openStore(t, t.TempDir()), c)
	ids, err := tr.Findings(ctx, []incident.Finding{finding("r", "g", c.t, 1, "cust-nl")})
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string][]string{
		"engineer": {CmdAcknowledge, CmdConfirm, CmdDismiss, CmdReopen, CmdStatus, CmdAssign, CmdNote},
		"dpo":      {CmdAcknowledge, CmdConfirm, CmdDismiss, CmdReopen, CmdStatus, CmdAssign, CmdNote, CmdAwareness, CmdDetermine, CmdFile},
		"admin":    {CmdAcknowledge, CmdConfirm, CmdDismiss, CmdReopen, CmdStatus, CmdAssign, CmdNote, CmdAwareness, CmdDetermine, CmdFile},
		"app":      nil, "ingest": nil, "": nil, "root": nil,
	}
	all := []string{CmdAcknowledge, CmdConfirm, CmdDismiss, CmdReopen, CmdStatus, CmdAwareness, CmdDetermine, CmdAssign, CmdNote, CmdFile}
	for role, cmds := range allowed {
		for _, cmd := range all {
			want := false
			for _, c := range cmds {
				want = want || c == cmd
			}
			if got := Allowed(role, cmd); got != want {
				t.Errorf("Allowed(%q, %q) = %v; want %v", role, cmd, got, want)
			}
			// And Do enforces it before anything else.
			_, err := tr.Do(ctx, Actor{Name: "x", Role: role}, Command{Incident: ids[0], Name: cmd})
			if forbidden := err == ErrForbidden; forbidden == want {
				t.Errorf("Do(%q as %q): %v", cmd, role, err)
			}
		}
	}
}

// TestOpenExposureRescoped: while an exposure is open, reads that come
// later make their tenants accessed, at the next periodic scoping.
func TestOpenExposureRescoped(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, t.TempDir())
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	read := func(id string, at time.Time, actorType string) event.AccessEvent {
		return event.AccessEvent{ID: id, Time: at, Tenant: "cust-a", Actor: event.Actor{ID: "x", Type: actorType, Tenant: "cust-a"},
			Action: event.ActionRead, Resource: event.Resource{Type: "file", Store: "s3://b"}, Records: 5, Outcome: event.OutcomeSuccess}
	}
	if err := st.Write(ctx, &event.Batch{Access: []event.AccessEvent{read("own", t0.Add(-time.Hour), event.ActorCustomerUser)}}); err != nil {
		t.Fatal(err)
	}
	c := &clock{t0.Add(time.Minute)}
	tr, err := New(ctx, st, Options{Access: st, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	f := incident.Finding{RuleID: "store-made-public", GroupKey: "s3://b", Kind: incident.KindExposure, WindowStart: t0,
		FirstSeen: t0, LastSeen: t0, Count: 1, Affected: incident.Affected{Scope: incident.ScopeStore, Stores: []string{"s3://b"}}}
	f.Fingerprint = incident.Fingerprint(f.RuleID, f.GroupKey, f.WindowStart)
	ids, err := tr.Findings(ctx, []incident.Finding{f})
	if err != nil {
		t.Fatal(err)
	}
	how := func() string {
		inc, _ := tr.Get(ids[0])
		if len(inc.Scope.Tenants) != 1 {
			t.Fatalf("scope: %+v", inc.Scope)
		}
		return inc.Scope.Tenants[0].How
	}
	if h := how(); h != incident.HowExposed {
		t.Fatalf("before any read: %s", h)
	}
	if err := st.Write(ctx, &event.Batch{Access: []event.AccessEvent{read("anon", t0.Add(2*time.Minute), event.ActorAnonymous)}}); err != nil {
		t.Fatal(err)
	}
	c.advance(2 * time.Minute)
	tr.Tick(ctx, &recorder{}, Reminders{})
	if h := how(); h != incident.HowExposed {
		t.Fatalf("rescoped sooner than RescopeEvery: %s", h)
	}
	c.advance(RescopeEvery)
	tr.Tick(ctx, &recorder{}, Reminders{})
	if h := how(); h != incident.HowAccessed {
		t.Fatalf("after %v: %s; want accessed", RescopeEvery, h)
	}
}

// refusing is the embedded store, except that it refuses to scope one data
// store (a query the store cannot answer: a timeout, a scan error).
type refusing struct {
	AccessSource
	store string
}

func (r refusing) AccessByTenant(ctx context.Context, q incident.AccessQuery) ([]incident.TenantAccess, error) {
	if slices.Contains(q.Stores, r.store) {
		return nil, errors.New("the store refused the query")
	}
	return r.AccessSource.AccessByTenant(ctx, q)
}

// TestHostileRecordsDoNotStopTheClocks: events whose records add up past
// int64 on one store (written before ingest bounded records), and a store
// whose scoping always fails, among other incidents. Every incident gets
// its deadlines; the hostile one's records saturate; the one that cannot be
// scoped is tried again and is scoped once its store answers; the others
// are scoped whatever order the findings come in.
func TestHostileRecordsDoNotStopTheClocks(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	read := func(id, tenant, store string, at time.Duration, records int64) event.AccessEvent {
		return event.AccessEvent{ID: id, Time: t0.Add(at), Tenant: tenant, Actor: event.Actor{ID: "anonymous", Type: event.ActorAnonymous},
			Action: event.ActionDownload, Resource: event.Resource{Type: "file", Store: store}, Records: records, Outcome: event.OutcomeSuccess}
	}
	exposure := func(store string) incident.Finding {
		f := incident.Finding{RuleID: "store-made-public", GroupKey: "resource.id=" + store, Kind: incident.KindExposure,
			WindowStart: t0, WindowEnd: t0.Add(2 * time.Hour), FirstSeen: t0, LastSeen: t0.Add(2 * time.Hour), Count: 2,
			Affected: incident.Affected{Scope: incident.ScopeStore, Stores: []string{store}}}
		f.Fingerprint = incident.Fingerprint(f.RuleID, f.GroupKey, f.WindowStart)
		return f
	}
	const hostile, broken, plain = "s3://hostile", "s3://broken", "s3://plain"
	for _, order := range [][]string{{hostile, broken, plain}, {plain, broken, hostile}, {broken, hostile, plain}} {
		st := openStore(t, t.TempDir())
		if err := st.Write(ctx, &event.Batch{Access: []event.AccessEvent{
			read("h1", "cust-nl", hostile, -time.Hour, math.MaxInt64), read("h2", "cust-nl", hostile, 30*time.Minute, math.MaxInt64),
			read("h3", "cust-br", hostile, 40*time.Minute, 5),
			read("b1", "cust-nl", broken, -time.Hour, 7), read("p1", "cust-br", plain, 10*time.Minute, 9),
		}}); err != nil {
			t.Fatal(err)
		}
		c := &clock{t0.Add(3 * time.Hour)}
		access := &refusing{AccessSource: st, store: broken}
		tr, err := New(ctx, st, Options{Access: access, Apply: []string{"gdpr"}, ByCountry: true, Now: c.now,
			Customers: map[string]Customer{"cust-br": {Tenant: "cust-br", Country: "BR"}, "cust-nl": {Tenant: "cust-nl", Country: "NL"}}})
		if err != nil {
			t.Fatal(err)
		}
		var fs []incident.Finding
		for _, s := range order {
			fs = append(fs, exposure(s))
		}
		ids, err := tr.Findings(ctx, fs)
		if err == nil || len(ids) != 3 {
			t.Fatalf("order %v: findings %v, %v; want three incidents and the broken store's error", order, ids, err)
		}
		for _, inc := range tr.List("") {
			if len(inc.Obligations) == 0 {
				t.Errorf("order %v: %s (%s) has no deadlines", order, inc.ID, inc.GroupKey)
			}
			switch inc.GroupKey {
			case "resource.id=" + hostile:
				if r := inc.Scope.Records(); r != math.MaxInt64 || len(inc.Scope.Tenants) != 2 {
					t.Errorf("order %v: hostile store scoped %+v (records %d), want two tenants and saturated records", order, inc.Scope, r)
				}
			case "resource.id=" + plain:
				if len(inc.Scope.Tenants) != 1 || inc.Scope.Tenants[0].Records != 9 {
					t.Errorf("order %v: plain store scoped %+v", order, inc.Scope)
				}
			case "resource.id=" + broken:
				if len(inc.Scope.Tenants) != 0 || !inc.Scope.Partial || inc.Scope.PartialReason == "" {
					t.Errorf("order %v: the store that cannot be scoped: %+v, want no customers, partial, and why", order, inc.Scope)
				}
			}
		}
		// The store answers again: the next call scopes what was left.
		access.store = ""
		if err := tr.Rescope(ctx); err != nil {
			t.Fatalf("order %v: rescope: %v", order, err)
		}
		for _, inc := range tr.List("") {
			if inc.GroupKey == "resource.id="+broken && (len(inc.Scope.Tenants) != 1 || inc.Scope.Tenants[0].Tenant != "cust-nl" || inc.Scope.PartialReason != "") {
				t.Errorf("order %v: broken store, once it answers, scoped %+v", order, inc.Scope)
			}
		}
	}
}

// hanging is a store that hangs in scoping reads until released (a slow
// ClickHouse: the read timeout is two minutes).
type hanging struct {
	AccessSource
	entered chan struct{}
	release chan struct{}
}

func (h *hanging) AccessByTenant(ctx context.Context, q incident.AccessQuery) ([]incident.TenantAccess, error) {
	h.entered <- struct{}{}
	<-h.release
	return h.AccessSource.AccessByTenant(ctx, q)
}

// TestReadsDoNotWaitForASlowStore: while a change holds the tracker inside
// a scoping read that hangs, the API's reads (one incident, the list, the
// head, the notifier's work) and the metrics scrape still answer.
func TestReadsDoNotWaitForASlowStore(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	st := openStore(t, t.TempDir())
	reg := prometheus.NewRegistry()
	access := &hanging{AccessSource: st, entered: make(chan struct{}), release: make(chan struct{})}
	tr, err := New(ctx, st, Options{Apply: []string{"gdpr"}, Now: c.now, Access: access, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	// A first incident, scoped while the store answers.
	go func() { <-access.entered; access.release <- struct{}{} }()
	ids, err := tr.Findings(ctx, []incident.Finding{finding("cross-tenant-read", "actor.id=u-1", c.t.Add(-time.Minute), 2, "cust-nl")})
	if err != nil {
		t.Fatal(err)
	}
	// A second one: its scoping read hangs, the tracker's lock held.
	done := make(chan error, 1)
	go func() {
		_, err := tr.Findings(ctx, []incident.Finding{finding("cross-tenant-read", "actor.id=u-2", c.t.Add(-time.Minute), 2, "cust-nl")})
		done <- err
	}()
	<-access.entered
	reads := make(chan string, 1)
	go func() {
		_, ok := tr.Get(ids[0])
		n := len(tr.List(""))
		h := tr.Head()
		_ = tr.Sending()
		_, err := reg.Gather()
		reads <- fmt.Sprintf("get %v, list %d, head %d, metrics %v", ok, n, h.Seq, err)
	}()
	select {
	case r := <-reads:
		t.Log(r)
	case <-time.After(10 * time.Second):
		t.Fatal("reads waited for the store's scoping read")
	}
	close(access.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCategoriesPerTenant: a tenant's categories are those its own events
// name, and its category-less events' store's: one tenant's payment data
// read is not reported for the others, nor does it take back what the
// store's categories say of the tenant's other reads.
func TestCategoriesPerTenant(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, t.TempDir())
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	read := func(id, tenant string, cats []string) event.AccessEvent {
		return event.AccessEvent{ID: id, Time: t0, Tenant: tenant, Actor: event.Actor{ID: "u-evil", Type: event.ActorCustomerUser, Tenant: "cust-x"},
			Action: event.ActionRead, Resource: event.Resource{Type: "contact", Store: "postgres-eu-1"}, Records: 1, Categories: cats, Outcome: event.OutcomeSuccess}
	}
	evs := []event.AccessEvent{read("a", "cust-a", nil), read("b", "cust-b", nil), read("b2", "cust-b", []string{"payment"})}
	if err := st.Write(ctx, &event.Batch{Access: evs}); err != nil {
		t.Fatal(err)
	}
	inv := incident.NewInventory([]incident.Store{{ID: "postgres-eu-1", Categories: []string{"booking", "contact"}, Holders: incident.HoldersAll}}, true)
	c := &clock{t0.Add(time.Hour)}
	tr, err := New(ctx, st, Options{Access: st, Inventory: func() *incident.Inventory { return inv }, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	f := finding("cross-tenant-read", "actor.id=u-evil", t0, 3, "cust-a", "cust-b")
	f.EventIDs = []string{"a", "b", "b2"}
	f.Affected.Categories = []string{"booking", "contact", "payment"}
	ids, err := tr.Findings(ctx, []incident.Finding{f})
	if err != nil {
		t.Fatal(err)
	}
	inc, _ := tr.Get(ids[0])
	got := map[string][]string{}
	for _, a := range inc.Scope.Tenants {
		got[a.Tenant] = a.Categories
	}
	if !slices.Equal(got["cust-a"], []string{"booking", "contact"}) || !slices.Equal(got["cust-b"], []string{"booking", "contact", "payment"}) {
		t.Errorf("categories: %v", got)
	}
}
