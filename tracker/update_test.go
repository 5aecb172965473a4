package tracker

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

// TestUpdateRequiredAfterNotice: a notice goes to the 3 customers whose
// data a public bucket held; then 2 more customers turn out to be affected
// (their events stored late) and the bucket is made public again. The
// incident must not stay "notified": an update is required, the customer
// obligation is unmet again with its clock from the change, the alert says
// so once, a supplementary version goes only to the 2 customers not told,
// and once they are reached the incident is notified again, the register
// and the report showing both phases. The two changes arrive in either
// order, and a restart folds the same state.
func TestUpdateRequiredAfterNotice(t *testing.T) {
	for _, order := range []string{"late-events-first", "reopen-first"} {
		t.Run(order, func(t *testing.T) { testUpdateRequired(t, order) })
	}
}

func testUpdateRequired(t *testing.T, order string) {
	ctx := context.Background()
	st := openStore(t, t.TempDir())
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	const bucket = "s3://exports-eu"
	own := func(tenant string, at time.Time, records int64) event.AccessEvent {
		return event.AccessEvent{ID: "own-" + tenant, Time: at, Tenant: tenant, Actor: event.Actor{ID: "u-" + tenant, Type: event.ActorCustomerUser, Tenant: tenant},
			Action: event.ActionExport, Resource: event.Resource{Type: "file", ID: "x", Store: bucket}, Records: records,
			Categories: []string{"contact"}, Outcome: event.OutcomeSuccess}
	}
	write := func(evs ...event.AccessEvent) {
		t.Helper()
		if err := st.Write(ctx, &event.Batch{Access: evs}); err != nil {
			t.Fatal(err)
		}
	}
	write(own("cust-a", t0.Add(-48*time.Hour), 100), own("cust-b", t0.Add(-24*time.Hour), 200), own("cust-c", t0.Add(-2*time.Hour), 300))
	inv := incident.NewInventory([]incident.Store{{ID: bucket, Categories: []string{"contact"}, Holders: incident.HoldersSeen}}, true)
	c := &clock{t0.Add(20 * time.Minute)}
	open := func() *Tracker {
		t.Helper()
		tr, err := New(ctx, st, Options{Access: st, Inventory: func() *incident.Inventory { return inv }, Apply: []string{"gdpr"}, Now: c.now})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	tr := open()
	exposure := func(from, to time.Time) incident.Finding {
		f := incident.Finding{RuleID: "store-made-public", Title: "A store holding personal data was made public", Severity: incident.SeverityCritical,
			GroupKey: "resource.id=" + bucket, Kind: incident.KindExposure, WindowStart: from, WindowEnd: to, FirstSeen: from, LastSeen: from, Count: 1,
			Affected: incident.Affected{Scope: incident.ScopeStore, Stores: []string{bucket}}}
		if !to.IsZero() {
			f.LastSeen, f.Count = to, 2
		}
		f.Fingerprint = incident.Fingerprint(f.RuleID, f.GroupKey, f.WindowStart)
		return f
	}
	ids, err := tr.Findings(ctx, []incident.Finding{exposure(t0, t0.Add(10*time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	id := ids[0]
	do := func(by Actor, cmd Command) incident.Incident {
		t.Helper()
		cmd.Incident = id
		c.advance(time.Minute)
		inc, err := tr.Do(ctx, by, cmd)
		if err != nil {
			t.Fatalf("%s: %v", cmd.Name, err)
		}
		return inc
	}
	tenants := func(ts []incident.AffectedTenant) []string {
		var out []string
		for _, a := range ts {
			out = append(out, a.Tenant)
		}
		slices.Sort(out)
		return out
	}
	customers := func(inc incident.Incident) *incident.Obligation { return inc.Obligation(ObligationID("gdpr", "art34")) }

	// Version 1 to the 3 customers, reached: notified.
	do(engineer, Command{Name: CmdConfirm})
	inc := do(engineer, Command{Name: CmdDraft, Notice: completeNotice()})
	do(dpo, Command{Name: CmdApprove, Version: 1, Hash: inc.Notices[0].Hash})
	inc = do(engineer, Command{Name: CmdSend})
	if got := tenants(inc.Phases[0].Audience); !slices.Equal(got, []string{"cust-a", "cust-b", "cust-c"}) {
		t.Fatalf("version 1 goes to %v", got)
	}
	c.advance(time.Minute)
	if err := tr.NoticeReached(ctx, id, incident.NoticeProgress{Version: 1, Tenants: 3, Reached: 3}); err != nil {
		t.Fatal(err)
	}
	inc = mustGet(t, tr, id)
	firstMet := c.t
	if inc.Status != incident.StatusNotified || inc.Update != nil || !customers(inc).MetAt.Equal(firstMet) {
		t.Fatalf("after version 1: %s, update %+v, customers %+v", inc.Status, inc.Update, customers(inc))
	}
	rec := &recorder{}
	updates := func() (out []string) {
		for _, r := range rec.take() {
			if strings.HasPrefix(r, "update-required") {
				out = append(out, r)
			}
		}
		return out
	}
	tr.Tick(ctx, rec, Reminders{})
	if got := updates(); len(got) != 0 {
		t.Fatalf("said before anything changed: %v", got)
	}

	// The changes: 2 customers' exports into the bucket stored late (dated
	// before the window's end), and the bucket made public again 15
	// minutes after it was closed.
	late := func() {
		write(own("cust-d", t0.Add(-30*time.Minute), 40), own("cust-e", t0.Add(-20*time.Minute), 50))
		tr.Stored(t0.Add(-30*time.Minute), t0.Add(-20*time.Minute))
		if err := tr.Rescope(ctx); err != nil {
			t.Fatal(err)
		}
	}
	reopen := func() {
		if _, err := tr.Findings(ctx, []incident.Finding{exposure(t0.Add(25*time.Minute), time.Time{})}); err != nil {
			t.Fatal(err)
		}
	}
	c.advance(10 * time.Minute)
	changedAt := c.t
	if order == "late-events-first" {
		late()
		c.advance(time.Minute)
		reopen()
	} else {
		reopen()
		c.advance(time.Minute)
		late()
	}
	// An open exposure is scoped again every RescopeEvery (the alert loop
	// does it); a closed one as soon as events are stored for its window.
	c.advance(RescopeEvery)
	tr.Tick(ctx, rec, Reminders{})
	said := updates()
	if len(said) == 0 || !strings.Contains(said[len(said)-1], "2 customers added") {
		t.Fatalf("the alert said %v", said)
	}
	inc = mustGet(t, tr, id)
	u := inc.Update
	if inc.Status != incident.StatusNotifying || u == nil {
		t.Fatalf("after the changes: %s, update %+v", inc.Status, u)
	}
	if !u.Since.Equal(changedAt) || !slices.Equal(u.Untold, []string{"cust-d", "cust-e"}) || !slices.Equal(u.Changed, []string{"cust-a", "cust-b", "cust-c"}) {
		t.Fatalf("update: %+v (changes from %v)", u, changedAt)
	}
	if s := u.Summary(); s != "2 customers added after the notice went out; the exposure reopened after the notice said it had ended" {
		t.Errorf("reasons: %q", s)
	}
	o := customers(inc)
	if o.Met() || !o.FirstMetAt.Equal(firstMet) || !o.ReopenedAt.Equal(changedAt) || o.Anchor != "update" ||
		!o.DueAt.Equal(changedAt.Add(72*time.Hour)) {
		t.Fatalf("customer obligation after the changes: %+v", o)
	}
	v := tr.View(inc)
	if v.UpdateRequired == nil || v.Status != incident.StatusNotifying {
		t.Fatalf("view: %+v", v.UpdateRequired)
	}

	// Said once under the alert, however often the loop runs.
	tr.Tick(ctx, rec, Reminders{})
	tr.Tick(ctx, rec, Reminders{})
	if said := updates(); len(said) != 0 {
		t.Fatalf("update said again: %v", said)
	}

	// Version 1 cannot go out again; a supplementary version 2 goes only to
	// the 2 customers not told (the DPO chose no correction).
	if _, err := tr.Do(ctx, engineer, Command{Incident: id, Name: CmdSend}); err == nil {
		t.Fatal("version 1 sent again")
	}
	inc = do(engineer, Command{Name: CmdDraft, Notice: completeNotice()})
	v2 := inc.Notices[1]
	if !v2.Supplementary || v2.Correction || v2.Base != 1 {
		t.Fatalf("version 2: %+v", v2)
	}
	d := tr.View(inc).Notice.Versions[1].Diff
	if d == nil || d.Against != 1 || !slices.Equal(d.CustomersNew, []string{"cust-d", "cust-e"}) || d.WindowBefore.To == nil || d.WindowAfter.To != nil ||
		d.RecordsBefore != 600 || d.RecordsAfter != 690 {
		t.Fatalf("diff: %+v", d)
	}
	do(dpo, Command{Name: CmdApprove, Version: 2, Hash: v2.Hash})
	// The 3 told already saw their window change: leaving them as they are
	// takes a stated reason.
	if _, err := tr.Do(ctx, engineer, Command{Incident: id, Name: CmdSend}); err == nil ||
		!strings.Contains(err.Error(), "3 customers told already have changed facts (cust-a, cust-b, cust-c)") {
		t.Fatalf("sending without a correction or a reason: %v", err)
	}
	const why = "the bucket held no new data of theirs when it reopened"
	inc = do(engineer, Command{Name: CmdSend, Reason: why})
	p2 := inc.Phases[1]
	if p2.KeptReason != why {
		t.Errorf("kept reason %q", p2.KeptReason)
	}
	if !slices.Equal(tenants(p2.Audience), []string{"cust-d", "cust-e"}) || !slices.Equal(tenants(p2.Kept), []string{"cust-a", "cust-b", "cust-c"}) ||
		!p2.Supplementary {
		t.Fatalf("phase 2: audience %v, kept %v", tenants(p2.Audience), tenants(p2.Kept))
	}
	if inc.Status != incident.StatusNotifying || customers(inc).Met() {
		t.Fatalf("sending version 2: %s, %+v", inc.Status, customers(inc))
	}
	c.advance(time.Minute)
	if err := tr.NoticeReached(ctx, id, incident.NoticeProgress{Version: 2, Tenants: 2, Reached: 2}); err != nil {
		t.Fatal(err)
	}
	check := func(tr *Tracker, when string) {
		t.Helper()
		inc := mustGet(t, tr, id)
		o := customers(inc)
		if inc.Status != incident.StatusNotified || inc.Update != nil || !o.MetAt.Equal(c.t) || o.Late || !o.FirstMetAt.Equal(firstMet) || len(inc.Phases) != 2 {
			t.Fatalf("%s: %s, update %+v, customers %+v, %d phases", when, inc.Status, inc.Update, o, len(inc.Phases))
		}
		told := inc.Told(true)
		for _, tn := range []string{"cust-a", "cust-b", "cust-c", "cust-d", "cust-e"} {
			k, ok := told[tn]
			if !ok {
				t.Errorf("%s: %s not told", when, tn)
				continue
			}
			if wantV := map[bool]int{true: 2, false: 1}[tn >= "cust-d"]; k.Sent && k.Phase.Version != wantV {
				t.Errorf("%s: %s reached by version %d, want %d", when, tn, k.Phase.Version, wantV)
			}
		}
		r := tr.Report(inc)
		if len(r.Phases) != 2 || r.Phases[0].Customers != 3 || r.Phases[1].Customers != 2 || r.Phases[1].Kept != 3 || r.UpdateRequired != nil {
			t.Errorf("%s: report phases %+v", when, r.Phases)
		}
		html, err := RenderReportHTML(r)
		if err != nil || !strings.Contains(string(html), "2 (supplementary)") {
			t.Errorf("%s: report page lacks the supplementary phase: %v", when, err)
		}
		var entry *RegisterEntry
		for _, e := range tr.Register() {
			if e.Incident == id {
				entry = &e
			}
		}
		if entry == nil || len(entry.NoticePhases) != 2 || !strings.HasPrefix(entry.NoticePhases[1], "v2 (supplementary)") ||
			!strings.Contains(entry.NoticePhases[1], "to 2 customers, all reached") || entry.CustomersAt == nil || !entry.CustomersAt.Equal(firstMet) {
			t.Errorf("%s: register entry %+v", when, entry)
		}
	}
	check(tr, "after version 2")
	check(open(), "after a restart")
}

// TestCorrectionGoesToEveryone: after a notice, records grow materially
// for one customer; the DPO's correction goes to every affected customer,
// and says to those told before that it updates their notice.
func TestCorrectionGoesToEveryone(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	tr := newTracker(t, openStore(t, t.TempDir()), c)
	f := finding("cross-tenant-read", "actor.id=u-1", c.t.Add(-time.Minute), 2, "cust-nl")
	ids, err := tr.Findings(ctx, []incident.Finding{f})
	if err != nil {
		t.Fatal(err)
	}
	id := ids[0]
	do := func(by Actor, cmd Command) (incident.Incident, error) {
		cmd.Incident = id
		c.advance(time.Minute)
		return tr.Do(ctx, by, cmd)
	}
	must := func(inc incident.Incident, err error) incident.Incident {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return inc
	}
	must(do(engineer, Command{Name: CmdConfirm}))
	if _, err := do(engineer, Command{Name: CmdDraft, Notice: completeNotice(), Correction: true}); err == nil ||
		!strings.Contains(err.Error(), "none has yet") {
		t.Fatalf("a correction before any notice: %v", err)
	}
	inc := must(do(engineer, Command{Name: CmdDraft, Notice: completeNotice()}))
	must(do(dpo, Command{Name: CmdApprove, Version: 1, Hash: inc.Notices[0].Hash}))
	must(do(engineer, Command{Name: CmdSend}))
	if err := tr.NoticeReached(ctx, id, incident.NoticeProgress{Version: 1, Tenants: 1, Reached: 1}); err != nil {
		t.Fatal(err)
	}
	// The same finding, now with ten times the records (more evidence).
	f.Count, f.Records, f.LastSeen = 20, 200, f.LastSeen.Add(time.Minute)
	f.EventIDs = append(f.EventIDs, "e-more")
	if _, err := tr.Findings(ctx, []incident.Finding{f}); err != nil {
		t.Fatal(err)
	}
	inc = mustGet(t, tr, id)
	if inc.Update == nil || !slices.Equal(inc.Update.Changed, []string{"cust-nl"}) || len(inc.Update.Untold) != 0 {
		t.Fatalf("update: %+v", inc.Update)
	}
	// A supplementary version without a correction would reach no one.
	inc = must(do(engineer, Command{Name: CmdDraft, Notice: completeNotice()}))
	must(do(dpo, Command{Name: CmdApprove, Version: 2, Hash: inc.Notices[1].Hash}))
	if _, err := do(engineer, Command{Name: CmdSend}); err == nil || !strings.Contains(err.Error(), "would reach no one") {
		t.Fatalf("sending a supplementary version to no one: %v", err)
	}
	inc = must(do(engineer, Command{Name: CmdDraft, Notice: completeNotice(), Correction: true}))
	must(do(dpo, Command{Name: CmdApprove, Version: 3, Hash: inc.Notices[2].Hash}))
	inc = must(do(engineer, Command{Name: CmdSend}))
	p := inc.Phases[len(inc.Phases)-1]
	if p.Version != 3 || !p.Correction || len(p.Audience) != 1 || p.Audience[0].Tenant != "cust-nl" || p.Audience[0].Records != inc.Scope.Tenants[0].Records {
		t.Fatalf("correction phase: %+v", p)
	}
	if at := inc.ReachedBefore(3)["cust-nl"]; at.IsZero() {
		t.Fatal("the correction does not know the customer was reached before")
	}
	if err := tr.NoticeReached(ctx, id, incident.NoticeProgress{Version: 3, Tenants: 1, Reached: 1}); err != nil {
		t.Fatal(err)
	}
	if inc = mustGet(t, tr, id); inc.Status != incident.StatusNotified || inc.Update != nil {
		t.Fatalf("after the correction: %s %+v", inc.Status, inc.Update)
	}
}

// TestOneBreachOneIncident: one account reading two other tenants' data is
// one incident with both victims, in either order of the findings; the
// incident key comes from the rule (incident_by), the victim never splits
// it. An exposure of a resource that reopens within the merge gap joins
// its incident; one that reopens later is a new incident with its own
// clocks.
func TestOneBreachOneIncident(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	read := func(victim string, at time.Time) incident.Finding {
		f := finding("cross-tenant-read", "actor.id=u-1,tenant="+victim, at, 1, victim)
		f.IncidentKey = "actor.id=u-1"
		return f
	}
	for _, order := range [][]string{{"cust-a", "cust-b"}, {"cust-b", "cust-a"}} {
		c := &clock{t0.Add(time.Hour)}
		tr := newTracker(t, openStore(t, t.TempDir()), c)
		for i, v := range order {
			if _, err := tr.Findings(ctx, []incident.Finding{read(v, t0.Add(time.Duration(i)*time.Minute))}); err != nil {
				t.Fatal(err)
			}
		}
		incs := tr.List("")
		if len(incs) != 1 || len(incs[0].Evidence) != 2 || !slices.Equal(incs[0].Hint.Tenants, []string{"cust-a", "cust-b"}) {
			t.Fatalf("order %v: %d incidents %+v", order, len(incs), incs)
		}
	}

	c := &clock{t0}
	tr, err := New(ctx, openStore(t, t.TempDir()), Options{Apply: []string{"gdpr"}, Now: c.now, ExposureGap: 6 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	exposure := func(from, to time.Time) incident.Finding {
		f := incident.Finding{RuleID: "store-made-public", GroupKey: "resource.id=b,setting=public_access", IncidentKey: "resource.id=b",
			Kind: incident.KindExposure, WindowStart: from, WindowEnd: to, FirstSeen: from, LastSeen: to, Count: 2,
			Affected: incident.Affected{Scope: incident.ScopeStore, Stores: []string{"s3://b"}}}
		f.Fingerprint = incident.Fingerprint(f.RuleID, f.GroupKey, f.WindowStart)
		return f
	}
	reports := []incident.Finding{
		exposure(t0, t0.Add(10*time.Minute)),
		exposure(t0.Add(time.Hour), t0.Add(70*time.Minute)),  // 50 minutes later: the same incident
		exposure(t0.Add(12*time.Hour), t0.Add(13*time.Hour)), // after the 6-hour gap: a new one
	}
	for _, f := range reports {
		c.advance(time.Minute)
		if _, err := tr.Findings(ctx, []incident.Finding{f}); err != nil {
			t.Fatal(err)
		}
	}
	incs := tr.List("")
	slices.SortFunc(incs, func(a, b incident.Incident) int { return a.ExposureFrom.Compare(b.ExposureFrom) })
	if len(incs) != 2 || len(incs[0].Evidence) != 2 || len(incs[1].Evidence) != 1 || !incs[1].ExposureFrom.Equal(t0.Add(12*time.Hour)) {
		t.Fatalf("exposures: %d incidents", len(incs))
	}
}
