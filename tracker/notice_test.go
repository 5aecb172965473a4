package tracker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/incident"
)

func completeNotice() *incident.Notice {
	return &incident.Notice{
		Text: map[string]incident.NoticeText{"en": {Nature: "n", Consequences: "c", Measures: "m", Actions: "a"},
			"nl": {Nature: "wat er gebeurde"}},
		Contact:   incident.Contact{Name: "Dana", Email: "dpo@example.com"},
		Authority: incident.Authority{Name: "Autoriteit Persoonsgegevens"},
		Product:   "Bookly",
	}
}

func TestNoticeSignOff(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	st := openStore(t, dir)
	tr := newTracker(t, st, c)
	ids, err := tr.Findings(ctx, []incident.Finding{finding("cross-tenant-read", "actor.id=u-1", c.t.Add(-time.Minute), 2, "cust-nl")})
	if err != nil {
		t.Fatal(err)
	}
	id := ids[0]
	do := func(by Actor, cmd Command) (incident.Incident, error) {
		t.Helper()
		cmd.Incident = id
		c.advance(time.Minute)
		return tr.Do(ctx, by, cmd)
	}
	wantInvalid := func(err error, want string) {
		t.Helper()
		var ie *InvalidError
		if !errors.As(err, &ie) || !strings.Contains(ie.Msg, want) {
			t.Fatalf("error %v, want one saying %q", err, want)
		}
	}
	other := Actor{Name: "token:olu", Role: "dpo"}

	// An incomplete draft is kept but cannot be approved; the lint names
	// what is missing.
	partial := completeNotice()
	partial.Text["en"] = incident.NoticeText{Nature: "n"}
	partial.Authority = incident.Authority{}
	inc, err := do(engineer, Command{Name: CmdDraft, Notice: partial})
	if err != nil {
		t.Fatal(err)
	}
	v1 := inc.Notices[0]
	if v1.Version != 1 || v1.Author != engineer.Name || v1.Hash != v1.ComputeHash() || v1.ScopeHash != incident.ScopeHash(inc.Scope) {
		t.Fatalf("version 1: %+v", v1)
	}
	_, err = do(dpo, Command{Name: CmdApprove, Version: 1, Hash: v1.Hash})
	wantInvalid(err, "likely consequences (English text); measures taken (English text); what the customer can do (English text); the supervisory authority")

	// Bad content is refused outright, naming the field.
	bad := completeNotice()
	bad.Contact.Email = "not an address"
	_, err = do(dpo, Command{Name: CmdDraft, Notice: bad})
	wantInvalid(err, "contact.email")
	bad = completeNotice()
	bad.Text["nl"] = incident.NoticeText{Nature: "evil \u202e override"}
	_, err = do(dpo, Command{Name: CmdDraft, Notice: bad})
	wantInvalid(err, "text.nl.nature: contains a control or bidi-override character")

	// Version 2, complete, written by dana (a DPO).
	inc, err = do(dpo, Command{Name: CmdDraft, Notice: completeNotice()})
	if err != nil {
		t.Fatal(err)
	}
	v2 := inc.Notices[1]
	if len(v2.Missing()) != 0 {
		t.Fatalf("complete notice lacks %v", v2.Missing())
	}
	// Roles: an engineer never approves, nor does an admin (approval is
	// the DPO's own sign-off; an admin may give every other command).
	if _, err := do(engineer, Command{Name: CmdApprove, Version: 2, Hash: v2.Hash}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("engineer approving: %v", err)
	}
	if _, err := do(Actor{Name: "token:root", Role: "admin"}, Command{Name: CmdApprove, Version: 2, Hash: v2.Hash}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("admin approving: %v", err)
	}
	for cmd := range roles {
		if !Allowed("admin", cmd) && cmd != CmdApprove {
			t.Errorf("an admin may not give %s", cmd)
		}
	}
	// Four eyes: dana wrote it, so dana cannot approve it.
	_, err = do(dpo, Command{Name: CmdApprove, Version: 2, Hash: v2.Hash})
	wantInvalid(err, "four eyes")
	// The same person through another channel is still the author.
	_, err = do(Actor{Name: "slack:dana", Role: "dpo"}, Command{Name: CmdApprove, Version: 2, Hash: v2.Hash})
	wantInvalid(err, "four eyes")
	// The approver names the hash they reviewed; a wrong one is refused
	// without the error offering the right one.
	_, err = do(other, Command{Name: CmdApprove, Version: 2, Hash: v1.Hash})
	wantInvalid(err, "not version 2's content hash")
	if strings.Contains(err.Error(), v2.Hash) {
		t.Fatalf("the error reveals the expected hash: %v", err)
	}
	// Sending before any approval is refused.
	_, err = do(engineer, Command{Name: CmdSend})
	wantInvalid(err, "no notice version is approved")
	inc, err = do(other, Command{Name: CmdApprove, Version: 2, Hash: v2.Hash})
	if err != nil {
		t.Fatal(err)
	}
	if v := inc.Notices[1]; v.ApprovedBy != other.Name || v.SelfApproved || v.Hash != v2.Hash {
		t.Fatalf("approved version: %+v", v)
	}
	_, err = do(other, Command{Name: CmdApprove, Version: 2, Hash: v2.Hash})
	wantInvalid(err, "already approved")

	// Notices go out for confirmed incidents only.
	_, err = do(engineer, Command{Name: CmdSend})
	wantInvalid(err, "confirmed incidents")
	if _, err := do(engineer, Command{Name: CmdConfirm}); err != nil {
		t.Fatal(err)
	}
	inc, err = do(engineer, Command{Name: CmdSend})
	if err != nil {
		t.Fatal(err)
	}
	if inc.Status != incident.StatusNotifying || inc.NoticeSending != 2 {
		t.Fatalf("after send: %s, sending %d", inc.Status, inc.NoticeSending)
	}
	_, err = do(engineer, Command{Name: CmdSend})
	wantInvalid(err, "already being sent")

	// Reached: the customer obligations are met, the incident notified.
	c.advance(time.Hour)
	if err := tr.NoticeReached(ctx, id, incident.NoticeProgress{Version: 1, Tenants: 1, Reached: 1}); err != nil {
		t.Fatal(err)
	}
	if inc, _ := tr.Get(id); inc.Status != incident.StatusNotifying {
		t.Fatalf("a report about another version changed the incident: %s", inc.Status)
	}
	if err := tr.NoticeReached(ctx, id, incident.NoticeProgress{Version: 2, Tenants: 1, Reached: 1}); err != nil {
		t.Fatal(err)
	}
	inc, _ = tr.Get(id)
	if inc.Status != incident.StatusNotified || !inc.NoticeSentAt.Equal(c.t) {
		t.Fatalf("after reaching everyone: %s at %v", inc.Status, inc.NoticeSentAt)
	}
	for _, o := range inc.Obligations {
		if o.Recipient == "customers" && (!o.MetAt.Equal(c.t) || o.Late) {
			t.Errorf("obligation %s: met %v late %v", o.ID, o.MetAt, o.Late)
		}
		if o.Recipient == "authority" && o.Met() {
			t.Errorf("the authority obligation %s was met by a customer notice", o.ID)
		}
	}

	// Everything survives a restart, and the approved version is
	// unchanged: its hash still matches its content.
	tr2 := newTracker(t, st, c)
	again, _ := tr2.Get(id)
	if again.Status != incident.StatusNotified || len(again.Notices) != 2 || again.Notices[1].ApprovedBy != other.Name ||
		again.Notices[1].ComputeHash() != v2.Hash {
		t.Fatalf("after restart: %+v", again.Notices)
	}
	es, _ := tr2.Audit(ctx, id)
	var acts []string
	for _, e := range es {
		if strings.HasPrefix(e.Action, "notice-") {
			acts = append(acts, e.Action+" by "+e.Actor)
		}
	}
	want := "notice-drafted by token:erin,notice-drafted by token:dana,notice-approved by token:olu,notice-send by token:erin,notice-sent by breachwatch"
	if strings.Join(acts, ",") != want {
		t.Errorf("audit:\n%s\nwant\n%s", strings.Join(acts, ","), want)
	}
}

func TestSelfApprovalIsConfigurableAndAudited(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	st := openStore(t, t.TempDir())
	tr, err := New(ctx, st, Options{Apply: []string{"gdpr"}, Now: c.now, SelfApproval: true})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tr.Findings(ctx, []incident.Finding{finding("cross-tenant-read", "actor.id=u-1", c.t, 1, "cust-nl")})
	if err != nil {
		t.Fatal(err)
	}
	inc, err := tr.Do(ctx, dpo, Command{Incident: ids[0], Name: CmdDraft, Notice: completeNotice()})
	if err != nil {
		t.Fatal(err)
	}
	h := inc.Notices[0].Hash
	if _, err := tr.Do(ctx, dpo, Command{Incident: ids[0], Name: CmdApprove, Version: 1, Hash: h}); err == nil ||
		!strings.Contains(err.Error(), "needs a reason") {
		t.Fatalf("self-approval without a reason: %v", err)
	}
	inc, err = tr.Do(ctx, dpo, Command{Incident: ids[0], Name: CmdApprove, Version: 1, Hash: h, Reason: "one-person team"})
	if err != nil {
		t.Fatal(err)
	}
	if !inc.Notices[0].SelfApproved {
		t.Fatal("self-approval is not marked")
	}
	es, _ := tr.Audit(ctx, ids[0])
	last := es[len(es)-1]
	if last.Action != incident.ActNoticeApproved || last.Reason != "one-person team" || !strings.Contains(string(last.Data), `"self_approved":true`) {
		t.Fatalf("audit entry: %+v %s", last, last.Data)
	}
}

func TestApprovedNoticeGoesStaleWhenScopeChanges(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	tr := newTracker(t, openStore(t, t.TempDir()), c)
	ids, err := tr.Findings(ctx, []incident.Finding{finding("cross-tenant-read", "actor.id=u-1", c.t, 1, "cust-nl")})
	if err != nil {
		t.Fatal(err)
	}
	inc, _ := tr.Do(ctx, engineer, Command{Incident: ids[0], Name: CmdDraft, Notice: completeNotice()})
	h := inc.Notices[0].Hash
	if _, err := tr.Do(ctx, dpo, Command{Incident: ids[0], Name: CmdApprove, Version: 1, Hash: h}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Do(ctx, engineer, Command{Incident: ids[0], Name: CmdConfirm}); err != nil {
		t.Fatal(err)
	}
	// Another customer turns out to be affected before sending.
	if _, err := tr.Findings(ctx, []incident.Finding{finding("cross-tenant-read", "actor.id=u-1", c.t.Add(time.Minute), 1, "cust-br")}); err != nil {
		t.Fatal(err)
	}
	_, err = tr.Do(ctx, engineer, Command{Incident: ids[0], Name: CmdSend})
	if err == nil || !strings.Contains(err.Error(), "affected customers changed") {
		t.Fatalf("sending a stale version: %v", err)
	}
	v := tr.View(mustGet(t, tr, ids[0]))
	if v.Notice == nil || v.Notice.Versions[0].ScopeCurrent {
		t.Fatalf("the view does not show the version as stale: %+v", v.Notice)
	}
}

func mustGet(t *testing.T, tr *Tracker, id string) incident.Incident {
	t.Helper()
	inc, ok := tr.Get(id)
	if !ok {
		t.Fatalf("no incident %s", id)
	}
	return inc
}

// An incident handed out (Get, List, Sending, Do) is a copy: later
// changes, which the tracker folds in place under its lock, do not show
// through it. The alert loop renders such copies outside the lock while
// commands change the incident (a data race before, seen in CI).
func TestHandedOutIncidentsAreCopies(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	tr := newTracker(t, openStore(t, t.TempDir()), c)
	ids, err := tr.Findings(ctx, []incident.Finding{finding("cross-tenant-read", "actor.id=u-1", c.t.Add(-time.Minute), 2, "cust-nl")})
	if err != nil {
		t.Fatal(err)
	}
	id := ids[0]
	drafted, err := tr.Do(ctx, engineer, Command{Name: CmdDraft, Incident: id, Notice: completeNotice()})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := tr.Get(id)
	listed := tr.List("")
	before := got.Notices[0]

	// Readers render copies while commands change the incident.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			if inc, ok := tr.Get(id); ok {
				_ = tr.View(inc)
			}
			for _, inc := range tr.List("") {
				_ = tr.Report(inc)
			}
		}
	}()
	// (The fake clock stands still: it is not safe for concurrent use.)
	if _, err := tr.Do(ctx, dpo, Command{Name: CmdApprove, Incident: id, Version: 1, Hash: drafted.Notices[0].Hash}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := tr.Do(ctx, engineer, Command{Name: CmdNote, Incident: id, Reason: "looked again"}); err != nil {
			t.Fatal(err)
		}
	}
	<-done

	now, _ := tr.Get(id)
	if !now.Notices[0].Approved() {
		t.Fatalf("the approval was not folded in: %+v", now.Notices[0])
	}
	for name, inc := range map[string]incident.Incident{"Get": got, "List": listed[0], "Do": drafted} {
		if inc.Notices[0].Hash != before.Hash || inc.Notices[0].Approved() {
			t.Errorf("%s: a copy taken before the approval shows it: %+v", name, inc.Notices[0])
		}
	}
}
