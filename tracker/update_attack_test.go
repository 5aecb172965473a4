package tracker

// Regression tests from an attack on the update-required path (each was a
// way to show "notified" or lose a deadline while a customer was not told).

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/incident"
)

type fx struct {
	t   *testing.T
	ctx context.Context
	c   *clock
	st  Store
	dir string
	tr  *Tracker
	id  string
	f   incident.Finding
	t0  time.Time
}

var art34 = ObligationID("gdpr", "art34")

func newFx(t *testing.T) *fx {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 9, 0, 30, 0, time.UTC)
	c := &clock{t0}
	dir := t.TempDir()
	st := openStore(t, dir)
	tr := newTracker(t, st, c)
	f := finding("cross-tenant-read", "actor.id=u-1", t0.Add(-30*time.Second), 2, "cust-nl")
	ids, err := tr.Findings(ctx, []incident.Finding{f})
	if err != nil {
		t.Fatal(err)
	}
	return &fx{t: t, ctx: ctx, c: c, st: st, dir: dir, tr: tr, id: ids[0], f: f, t0: t0}
}

func (x *fx) do(by Actor, cmd Command) (incident.Incident, error) {
	cmd.Incident = x.id
	x.c.advance(time.Minute)
	return x.tr.Do(x.ctx, by, cmd)
}

func (x *fx) must(by Actor, cmd Command) incident.Incident {
	x.t.Helper()
	inc, err := x.do(by, cmd)
	if err != nil {
		x.t.Fatalf("%s: %v", cmd.Name, err)
	}
	return inc
}

// sendVersion drafts, approves and sends a new version; returns its number.
func (x *fx) sendVersion(correction bool) int {
	x.t.Helper()
	inc := x.must(engineer, Command{Name: CmdDraft, Notice: completeNotice(), Correction: correction})
	v := inc.Notices[len(inc.Notices)-1]
	x.must(dpo, Command{Name: CmdApprove, Version: v.Version, Hash: v.Hash})
	x.must(engineer, Command{Name: CmdSend})
	return v.Version
}

func (x *fx) reached(v int) {
	x.t.Helper()
	if err := x.tr.NoticeReached(x.ctx, x.id, incident.NoticeProgress{Version: v}); err != nil {
		x.t.Fatal(err)
	}
}

// addCustomer: a second finding of the same group naming another tenant,
// within the same minute as the first (the window stated does not move).
func (x *fx) addCustomer(tenant string) {
	x.t.Helper()
	g := finding("cross-tenant-read", "actor.id=u-1", x.f.WindowStart.Add(time.Second), 1, tenant)
	if _, err := x.tr.Findings(x.ctx, []incident.Finding{g}); err != nil {
		x.t.Fatal(err)
	}
}

func (x *fx) get() incident.Incident { return mustGet(x.t, x.tr, x.id) }

func ob(inc incident.Incident) *incident.Obligation { return inc.Obligation(art34) }

// v1 to cust-nl, reached: notified.
func (x *fx) notified() {
	x.t.Helper()
	x.must(engineer, Command{Name: CmdConfirm})
	x.sendVersion(false)
	x.reached(1)
	if inc := x.get(); inc.Status != incident.StatusNotified {
		x.t.Fatalf("not notified: %s", inc.Status)
	}
}

func filter(ss []string, p string) (out []string) {
	for _, s := range ss {
		if strings.HasPrefix(s, p) {
			out = append(out, s)
		}
	}
	return out
}

// "notified" is not said by hand while an update is required, nor while
// the version being sent has not reached its customers.
func TestManualNotifiedRefused(t *testing.T) {
	x := newFx(t)
	x.notified()
	x.addCustomer("cust-br")
	if inc := x.get(); inc.Update == nil || inc.Status != incident.StatusNotifying {
		t.Fatalf("setup: %s %+v", inc.Status, inc.Update)
	}
	if _, err := x.do(engineer, Command{Name: CmdStatus, To: "notified"}); err == nil || !strings.Contains(err.Error(), "an update is required") {
		t.Errorf("status notified while an update is required: %v", err)
	}
	y := newFx(t)
	y.must(engineer, Command{Name: CmdConfirm})
	y.sendVersion(false)
	if _, err := y.do(engineer, Command{Name: CmdStatus, To: "notified"}); err == nil || !strings.Contains(err.Error(), "still being sent") {
		t.Errorf("status notified while version 1 is being sent: %v", err)
	}
}

// A first notice sent late stays late in the register after an update
// reopened and met the obligation again.
func TestFirstLatenessKept(t *testing.T) {
	x := newFx(t)
	x.must(engineer, Command{Name: CmdConfirm})
	x.sendVersion(false)
	x.c.advance(80 * time.Hour) // past the 72h deadline
	x.reached(1)
	if o := ob(x.get()); !o.Late {
		t.Fatalf("setup: version 1 not late: %+v", o)
	}
	x.c.advance(time.Hour)
	x.addCustomer("cust-br")
	x.sendVersion(false)
	x.reached(2)
	o := ob(x.get())
	if o.Late || !o.FirstLate || !o.Met() {
		t.Errorf("after version 2: late %v, first late %v, met %v", o.Late, o.FirstLate, o.Met())
	}
	for _, e := range x.tr.Register() {
		if e.Incident == x.id && !e.Late {
			t.Error("the register no longer says the customers were told late")
		}
	}
}

// The clock an update reopens has reminders of its own.
func TestReopenedClockHasItsOwnReminders(t *testing.T) {
	x := newFx(t)
	rec := &recorder{}
	x.must(engineer, Command{Name: CmdConfirm})
	x.sendVersion(false)
	walk := func() []string {
		o := ob(x.get())
		var got []string
		for _, left := range []time.Duration{47, 23, 11, 3, 0} {
			x.c.t = o.DueAt.Add(-left*time.Hour - 30*time.Minute)
			x.tr.Tick(x.ctx, rec, Reminders{})
			got = append(got, filter(rec.take(), art34)...)
		}
		x.c.t = o.DueAt.Add(time.Minute)
		x.tr.Tick(x.ctx, rec, Reminders{})
		return append(got, filter(rec.take(), art34)...)
	}
	first := walk()
	x.reached(1)
	x.c.advance(time.Hour)
	x.addCustomer("cust-br")
	if o := ob(x.get()); o.Anchor != "update" {
		t.Fatalf("setup: %+v", o)
	}
	second := walk()
	if len(first) != 6 || len(second) != 6 {
		t.Errorf("reminders: first clock %v, reopened clock %v; want 6 each", first, second)
	}
}

// A change found while version 1 is being sent reopens the clock from the
// change just as one found after it reached its customers: the same
// deadline whichever way the reports arrive.
func TestChangeWhileSendingSameClock(t *testing.T) {
	var dues []time.Duration
	for _, before := range []bool{true, false} {
		x := newFx(t)
		x.must(engineer, Command{Name: CmdConfirm})
		x.c.t = ob(x.get()).DueAt.Add(-2 * time.Hour)
		x.sendVersion(false)
		if before {
			x.addCustomer("cust-br")
			x.reached(1)
		} else {
			x.reached(1)
			x.addCustomer("cust-br")
		}
		inc := x.get()
		o := inc.Obligation(art34)
		if inc.Update == nil || o.Anchor != "update" || !o.DueAt.Equal(inc.Update.Since.Add(72*time.Hour)) || o.FirstMetAt.IsZero() || o.FirstLate {
			t.Fatalf("change before reached=%v: update %+v, obligation %+v", before, inc.Update, o)
		}
		dues = append(dues, o.DueAt.Sub(inc.Update.Since))
		x.c.advance(5 * time.Hour)
		x.sendVersion(false)
		x.reached(2)
		if o := ob(x.get()); !o.Met() || o.Late {
			t.Errorf("change before reached=%v: version 2 five hours later: %+v", before, o)
		}
	}
	if dues[0] != dues[1] {
		t.Errorf("the clock depends on the order: %v", dues)
	}
}

// A supplementary version's diff is what it changed when it went out, and
// stays so.
func TestDiffStable(t *testing.T) {
	x := newFx(t)
	x.notified()
	x.addCustomer("cust-br")
	inc := x.must(engineer, Command{Name: CmdDraft, Notice: completeNotice()})
	d1 := *x.tr.View(inc).Notice.Versions[1].Diff
	x.must(dpo, Command{Name: CmdApprove, Version: 2, Hash: inc.Notices[1].Hash})
	x.must(engineer, Command{Name: CmdSend})
	x.reached(2)
	x.addCustomer("cust-de")
	d2 := *x.tr.View(x.get()).Notice.Versions[1].Diff
	if !slices.Equal(d1.CustomersNew, []string{"cust-br"}) || !slices.Equal(d1.CustomersNew, d2.CustomersNew) ||
		d1.RecordsBefore != d2.RecordsBefore || d1.RecordsAfter != d2.RecordsAfter {
		t.Errorf("version 2's diff: before sending %+v, after %+v", d1, d2)
	}
}

// A closed incident that turns out to concern more customers says so.
func TestClosedIncidentSaysUpdate(t *testing.T) {
	x := newFx(t)
	x.notified()
	rec := &recorder{}
	x.tr.Tick(x.ctx, rec, Reminders{}) // alerted while active
	x.must(engineer, Command{Name: CmdStatus, To: "closed"})
	x.tr.Tick(x.ctx, rec, Reminders{})
	rec.take()
	g := x.f
	g.Affected.Tenants = []string{"cust-nl", "cust-br"}
	g.Count, g.LastSeen = 3, g.LastSeen.Add(time.Second)
	x.c.advance(time.Minute)
	if _, err := x.tr.Findings(x.ctx, []incident.Finding{g}); err != nil {
		t.Fatal(err)
	}
	x.tr.Tick(x.ctx, rec, Reminders{})
	if got := filter(rec.take(), "update-required"); len(got) != 1 {
		t.Errorf("a closed incident with an update required: said %v", got)
	}
}

// A log written before phases were compared with the facts (a customer
// added after the notice, no update-required entry) is checked on start.
func TestOldLogGetsUpdateRecorded(t *testing.T) {
	x := newFx(t)
	x.must(engineer, Command{Name: CmdConfirm})
	inc := x.must(engineer, Command{Name: CmdDraft, Notice: completeNotice()})
	x.must(dpo, Command{Name: CmdApprove, Version: 1, Hash: inc.Notices[0].Hash})
	tr := x.tr
	app := func(action string, data any) {
		t.Helper()
		x.c.advance(time.Minute)
		tr.mu.Lock()
		defer tr.unlock()
		e, err := entry(x.id, System, action, "", data, x.c.t)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.appendEntries(x.ctx, []incident.AuditEntry{e}); err != nil {
			t.Fatal(err)
		}
	}
	app(incident.ActNoticeSend, map[string]int{"version": 1})
	app(incident.ActNoticeSent, incident.NoticeProgress{Version: 1, Tenants: 1, Reached: 1})
	g := finding("cross-tenant-read", "actor.id=u-1", x.f.WindowStart.Add(time.Second), 1, "cust-br")
	app(incident.ActEvidence, g)
	cur := x.get()
	app(incident.ActScoped, hintScope(&cur, nil))
	tr2, err := New(x.ctx, x.st, Options{Apply: []string{"gdpr"}, ByCountry: true, Now: x.c.now})
	if err != nil {
		t.Fatal(err)
	}
	after := mustGet(t, tr2, x.id)
	if after.Status != incident.StatusNotifying || after.Update == nil || !slices.Equal(after.Update.Untold, []string{"cust-br"}) {
		t.Errorf("after the upgrade: %s, update %+v", after.Status, after.Update)
	}
}

// When the facts come back to what the customers were told, the
// obligation is met as of when they were reached, not of the revert.
func TestRevertKeepsReachTime(t *testing.T) {
	fa := &fakeAccess{}
	fa.set(row("cust-a", 100))
	x := newFxAccess(t, fa)
	x.must(engineer, Command{Name: CmdConfirm})
	x.sendVersion(false)
	x.reached(1)
	met := ob(x.get()).MetAt
	x.c.advance(10 * time.Hour)
	fa.set(row("cust-a", 500))
	x.rescope()
	if inc := x.get(); inc.Update == nil || ob(inc).Met() {
		t.Fatalf("grown: %+v", inc.Update)
	}
	x.c.advance(10 * time.Hour)
	fa.set(row("cust-a", 100))
	x.rescope()
	inc := x.get()
	if o := ob(inc); inc.Update != nil || inc.Status != incident.StatusNotified || !o.MetAt.Equal(met) || o.Late {
		t.Errorf("back: %s, update %+v, met %v (reached %v)", inc.Status, inc.Update, o.MetAt, met)
	}
}

// A customer whose only version was superseded before it was reached is
// not told.
func TestSupersededPhaseNotTold(t *testing.T) {
	fa := &fakeAccess{}
	fa.set(row("cust-a", 100))
	x := newFxAccess(t, fa)
	x.must(engineer, Command{Name: CmdConfirm})
	x.sendVersion(false)
	x.reached(1)
	fa.set(row("cust-a", 100), row("cust-b", 100))
	x.rescope()
	x.sendVersion(false) // to cust-b: begun, never reached
	fa.set(row("cust-a", 100), row("cust-c", 100))
	x.rescope()
	v3 := x.sendVersion(false) // to cust-c
	x.reached(v3)
	fa.set(row("cust-a", 100), row("cust-b", 100), row("cust-c", 100))
	x.rescope()
	inc := x.get()
	if inc.Status == incident.StatusNotified || inc.Update == nil || !slices.Equal(inc.Update.Untold, []string{"cust-b"}) {
		t.Errorf("cust-b back: %s, update %+v", inc.Status, inc.Update)
	}
}

// Readers see consistent copies while customers are added and the alert
// loop runs (go test -race).
func TestUpdateReadersRace(t *testing.T) {
	x := newFx(t)
	x.notified()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				inc, _ := x.tr.Get(x.id)
				_ = inc.Drift()
				_ = x.tr.View(inc)
				_ = x.tr.Register()
				for _, s := range x.tr.Sending() {
					_ = s.PhaseOf(s.NoticeSending)
				}
			}
		}()
	}
	for i := 0; i < 30; i++ {
		x.addCustomer("cust-" + string(rune('a'+i)))
		x.tr.Tick(x.ctx, &recorder{}, Reminders{})
	}
	close(stop)
	wg.Wait()
	// Each report of that one finding names one new customer instead of
	// the one before: one customer not told in the end.
	if inc := x.get(); inc.Update == nil || len(inc.Update.Untold) != 1 || inc.Status != incident.StatusNotifying {
		t.Errorf("update after 30 reports: %s %+v", inc.Status, inc.Update)
	}
}

type fakeAccess struct {
	mu   sync.Mutex
	rows []incident.TenantAccess
}

func (f *fakeAccess) AccessByTenant(context.Context, incident.AccessQuery) ([]incident.TenantAccess, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rows), nil
}

func (f *fakeAccess) set(rows ...incident.TenantAccess) {
	f.mu.Lock()
	f.rows = rows
	f.mu.Unlock()
}

func row(tenant string, records int64) incident.TenantAccess {
	return incident.TenantAccess{Tenant: tenant, Events: 1, Records: records, Categories: []string{"contact"}}
}

func newFxAccess(t *testing.T, fa *fakeAccess) *fx {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 9, 0, 30, 0, time.UTC)
	c := &clock{t0}
	dir := t.TempDir()
	st := openStore(t, dir)
	tr, err := New(ctx, st, Options{Apply: []string{"gdpr"}, Now: c.now, Access: fa})
	if err != nil {
		t.Fatal(err)
	}
	f := finding("cross-tenant-read", "actor.id=u-1", t0.Add(-30*time.Second), 2, "cust-a")
	ids, err := tr.Findings(ctx, []incident.Finding{f})
	if err != nil {
		t.Fatal(err)
	}
	return &fx{t: t, ctx: ctx, c: c, st: st, dir: dir, tr: tr, id: ids[0], f: f, t0: t0}
}

func (x *fx) rescope() {
	x.t.Helper()
	x.c.advance(time.Minute)
	x.tr.mu.Lock()
	x.tr.unscoped[x.id] = true
	x.tr.unlock()
	if err := x.tr.Rescope(x.ctx); err != nil {
		x.t.Fatal(err)
	}
}

// TestAuthorityOwedPhasedUpdate: facts that change after the authority was
// notified owe it phased information (GDPR Art. 33(4)), by the same path:
// the incident, the report and the register say so until an update is
// recorded. Before any filing nothing is owed to the authority.
func TestAuthorityOwedPhasedUpdate(t *testing.T) {
	x := newFx(t)
	x.notified()
	x.addCustomer("cust-br") // no filing yet
	if inc := x.get(); !inc.AuthorityUpdateSince.IsZero() {
		t.Fatalf("owed before the authority was notified: %v", inc.AuthorityUpdateSince)
	}
	y := newFx(t)
	y.notified()
	y.must(dpo, Command{Name: CmdFile, To: "gdpr/art33", At: y.c.t, Reference: "AP-1"})
	y.addCustomer("cust-br")
	inc := y.get()
	if inc.AuthorityUpdateSince.IsZero() || !inc.AuthorityUpdateSince.Equal(inc.Update.Since) {
		t.Fatalf("owed: %v (update since %v)", inc.AuthorityUpdateSince, inc.Update)
	}
	r := y.tr.Report(inc)
	if r.UpdateOwed == nil || !slices.ContainsFunc(r.Missing, func(m string) bool { return strings.Contains(m, "Art. 33(4)") }) {
		t.Errorf("report: owed %v, missing %v", r.UpdateOwed, r.Missing)
	}
	inc = y.must(dpo, Command{Name: CmdUpdate, Reason: "One more customer's contacts were read; the account is blocked."})
	if !inc.AuthorityUpdateSince.IsZero() || y.tr.View(inc).AuthorityUpdateOwed != nil {
		t.Errorf("still owed after the update: %v", inc.AuthorityUpdateSince)
	}
}
