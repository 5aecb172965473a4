package tracker

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/store/sqlite"
)

// clock is a fake clock the tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

var (
	engineer = Actor{Name: "token:erin", Role: "engineer"}
	dpo      = Actor{Name: "token:dana", Role: "dpo"}
)

func openStore(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newTracker(t *testing.T, st Store, c *clock) *Tracker {
	t.Helper()
	tr, err := New(context.Background(), st, Options{Apply: []string{"gdpr"}, ByCountry: true, Now: c.now,
		Customers: map[string]Customer{"cust-br": {Tenant: "cust-br", Country: "BR"}, "cust-nl": {Tenant: "cust-nl", Country: "NL"}}})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func finding(rule, group string, start time.Time, count int64, tenants ...string) incident.Finding {
	f := incident.Finding{RuleID: rule, Title: "Cross-tenant read", Severity: incident.SeverityHigh, Kind: incident.KindMatch,
		GroupKey: group, WindowStart: start, FirstSeen: start, LastSeen: start.Add(time.Duration(count) * time.Second),
		Count: count, Records: 10 * count, EventIDs: []string{"e-" + group + start.Format("150405")},
		Affected: incident.Affected{Scope: incident.ScopeTenants, Tenants: tenants, Categories: []string{"contact"}}}
	f.Fingerprint = incident.Fingerprint(rule, group, start)
	return f
}

func TestGroupingAndReplay(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	st := openStore(t, t.TempDir())
	tr := newTracker(t, st, c)
	f1 := finding("cross-tenant-read", "actor.id=u-1", c.t.Add(-time.Minute), 1, "cust-nl")
	ids, err := tr.Findings(ctx, []incident.Finding{f1})
	if err != nil || len(ids) != 1 {
		t.Fatalf("findings: %v, %v", ids, err)
	}
	id := ids[0]
	inc, _ := tr.Get(id)
	if inc.Status != incident.StatusOpen || !inc.AwareAt.Equal(c.t) || !inc.DetectedAt.Equal(c.t) {
		t.Fatalf("opened incident: %+v", inc)
	}
	if len(inc.Scope.Tenants) != 1 || inc.Scope.Tenants[0].Tenant != "cust-nl" || inc.Scope.Tenants[0].How != incident.HowAccessed ||
		inc.Scope.Tenants[0].Records != 10 {
		t.Errorf("scope: %+v", inc.Scope)
	}
	seq := inc.Seq

	// The same finding again (a replay, a restart): nothing changes.
	c.advance(time.Hour)
	if ids, err := tr.Findings(ctx, []incident.Finding{f1, f1}); err != nil || len(ids) != 0 {
		t.Fatalf("replay changed %v, %v", ids, err)
	}
	if inc, _ := tr.Get(id); inc.Seq != seq {
		t.Fatalf("replay appended audit entries: seq %d → %d", seq, inc.Seq)
	}

	// More evidence for the same finding, and a new finding of the same
	// rule and group: both join the incident.
	more := f1
	more.Count, more.Records, more.LastSeen = 3, 30, f1.LastSeen.Add(time.Minute)
	f2 := finding("cross-tenant-read", "actor.id=u-1", c.t, 2, "cust-br")
	if _, err := tr.Findings(ctx, []incident.Finding{more, f2}); err != nil {
		t.Fatal(err)
	}
	if n := len(tr.List("")); n != 1 {
		t.Fatalf("%d incidents; want 1", n)
	}
	inc, _ = tr.Get(id)
	if len(inc.Evidence) != 2 || inc.Events != 5 || inc.Records != 50 || !inc.AwareAt.Equal(inc.DetectedAt) {
		t.Errorf("evidence: %+v", inc)
	}
	// A Brazilian customer is affected now: LGPD applies too.
	if inc.Obligation("lgpd/communication") == nil || inc.Obligation("gdpr/art33") == nil {
		t.Errorf("obligations: %+v", inc.Obligations)
	}
	if !inc.Scope.Partial {
		t.Error("two tenants from the hint: the per-tenant split is unknown, so the scope is partial")
	}

	// Once dismissed, a new finding of that group opens a new incident.
	if _, err := tr.Do(ctx, engineer, Command{Incident: id, Name: CmdDismiss, Reason: "a test account"}); err != nil {
		t.Fatal(err)
	}
	f3 := finding("cross-tenant-read", "actor.id=u-1", c.t.Add(time.Hour), 1, "cust-nl")
	ids, err = tr.Findings(ctx, []incident.Finding{f3})
	if err != nil || len(ids) != 1 || ids[0] == id {
		t.Fatalf("after dismissal: %v, %v", ids, err)
	}
	// The dismissed one cannot be reopened while that one is active.
	if _, err := tr.Do(ctx, engineer, Command{Incident: id, Name: CmdReopen, Reason: "not a test account"}); !isInvalid(err) {
		t.Errorf("reopen beside an active incident of the group: %v", err)
	}
}

func isInvalid(err error) bool {
	var ie *InvalidError
	return errors.As(err, &ie)
}

func TestLifecycleAndRoles(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	tr := newTracker(t, openStore(t, t.TempDir()), c)
	ids, err := tr.Findings(ctx, []incident.Finding{finding("bulk-export", "actor.id=u-9", c.t, 1, "cust-nl")})
	if err != nil {
		t.Fatal(err)
	}
	id := ids[0]
	steps := []struct {
		by      Actor
		cmd     Command
		wantErr string // "" ok, "forbidden", "invalid"
		status  incident.Status
	}{
		{engineer, Command{Name: CmdStatus, To: "notifying"}, "invalid", incident.StatusOpen},
		{engineer, Command{Name: CmdDismiss}, "invalid", incident.StatusOpen}, // no reason
		{engineer, Command{Name: CmdAcknowledge}, "", incident.StatusOpen},
		{engineer, Command{Name: CmdAwareness, At: c.t.Add(time.Minute), Reason: "x"}, "forbidden", incident.StatusOpen},
		{engineer, Command{Name: CmdFile, To: "gdpr/art33"}, "forbidden", incident.StatusOpen},
		{Actor{Name: "token:app", Role: "app"}, Command{Name: CmdConfirm}, "forbidden", incident.StatusOpen},
		{Actor{Name: "token:ingest", Role: "ingest"}, Command{Name: CmdNote, Reason: "hi"}, "forbidden", incident.StatusOpen},
		{engineer, Command{Name: CmdConfirm}, "", incident.StatusConfirmed},
		{engineer, Command{Name: CmdConfirm}, "invalid", incident.StatusConfirmed},
		{engineer, Command{Name: CmdReopen, Reason: "x"}, "invalid", incident.StatusConfirmed},
		{engineer, Command{Name: CmdAssign, To: "erin"}, "", incident.StatusConfirmed},
		{engineer, Command{Name: CmdNote, Reason: "<script>alert(1)</script> looked at it"}, "", incident.StatusConfirmed},
		{engineer, Command{Name: CmdStatus, To: "notifying"}, "", incident.StatusNotifying},
		{engineer, Command{Name: CmdStatus, To: "closed"}, "invalid", incident.StatusNotifying},
		{engineer, Command{Name: CmdStatus, To: "notified"}, "", incident.StatusNotified},
		{engineer, Command{Name: CmdStatus, To: "closed"}, "", incident.StatusClosed},
		{engineer, Command{Name: CmdReopen}, "invalid", incident.StatusClosed},
		{engineer, Command{Name: CmdReopen, Reason: "new evidence"}, "", incident.StatusOpen},
		{engineer, Command{Name: "delete"}, "invalid", incident.StatusOpen},
		{Actor{Name: "admin", Role: "admin"}, Command{Name: CmdDismiss, Reason: "duplicate"}, "", incident.StatusDismissed},
	}
	for i, s := range steps {
		s.cmd.Incident = id
		inc, err := tr.Do(ctx, s.by, s.cmd)
		switch {
		case s.wantErr == "" && err != nil, s.wantErr == "forbidden" && !errors.Is(err, ErrForbidden),
			s.wantErr == "invalid" && !isInvalid(err):
			t.Fatalf("step %d (%s %s as %s): error %v; want %s", i, s.cmd.Name, s.cmd.To, s.by.Role, err, s.wantErr)
		}
		if got, _ := tr.Get(id); got.Status != s.status {
			t.Fatalf("step %d: status %s; want %s (returned %s)", i, got.Status, s.status, inc.Status)
		}
	}
	if _, err := tr.Do(ctx, engineer, Command{Incident: "inc-nope", Name: CmdConfirm}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown incident: %v", err)
	}
	inc, _ := tr.Get(id)
	if inc.Assignee != "erin" || len(inc.Notes) != 1 || inc.Notes[0].Author != "token:erin" || inc.Reason != "duplicate" {
		t.Errorf("incident after the steps: %+v", inc)
	}
	audit, err := tr.Audit(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range audit {
		actions = append(actions, e.Action+"/"+e.Actor)
	}
	if !strings.Contains(strings.Join(actions, " "), "dismissed/admin") || audit[0].Action != incident.ActOpened {
		t.Errorf("audit of the incident: %v", actions)
	}
}

// TestClocksAcrossRestart runs the fake clock across the whole 72 hours:
// the DPO moves awareness later (with a reason), the tracker is rebuilt
// from the store in the middle, a filing after the deadline needs reasons
// and freezes the lateness.
func TestClocksAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// Friday 23 October 2026, 10:00 in Amsterdam; the clocks go back on
	// Sunday the 25th.
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	c := &clock{time.Date(2026, 10, 23, 10, 0, 0, 0, ams)}
	st := openStore(t, dir)
	tr := newTracker(t, st, c)
	ids, err := tr.Findings(ctx, []incident.Finding{finding("public-bucket", "store=s3://b", c.t.Add(-time.Hour), 1, "cust-nl")})
	if err != nil {
		t.Fatal(err)
	}
	id := ids[0]
	inc, _ := tr.Get(id)
	art33 := inc.Obligation("gdpr/art33")
	if art33 == nil || !art33.DueAt.Equal(c.t.Add(72*time.Hour)) {
		t.Fatalf("art33: %+v", art33)
	}
	if got := art33.DueAt.In(ams).Format("Mon 15:04 MST"); got != "Mon 09:00 CET" {
		t.Errorf("due in Amsterdam: %s; want Mon 09:00 CET (72 elapsed hours over the DST change)", got)
	}

	// Six hours on, the DPO records that awareness came two hours after
	// detection (the report was only confirmed then).
	c.advance(6 * time.Hour)
	aware := inc.DetectedAt.Add(2 * time.Hour)
	if _, err := tr.Do(ctx, dpo, Command{Incident: id, Name: CmdAwareness, At: aware}); !isInvalid(err) {
		t.Fatalf("awareness without a reason: %v", err)
	}
	if _, err := tr.Do(ctx, dpo, Command{Incident: id, Name: CmdAwareness, At: inc.DetectedAt.Add(-time.Hour), Reason: "x"}); !isInvalid(err) {
		t.Fatalf("awareness before detection: %v", err)
	}
	inc, err = tr.Do(ctx, dpo, Command{Incident: id, Name: CmdAwareness, At: aware, Reason: "the vendor confirmed the bucket held customer data at 12:00"})
	if err != nil {
		t.Fatal(err)
	}
	if !inc.AwareAt.Equal(aware) || !inc.DetectedAt.Equal(aware.Add(-2*time.Hour)) {
		t.Fatalf("aware %v detected %v", inc.AwareAt, inc.DetectedAt)
	}
	due := aware.Add(72 * time.Hour)
	if o := inc.Obligation("gdpr/art33"); !o.DueAt.Equal(due) {
		t.Fatalf("art33 due %v after awareness moved; want %v", o.DueAt, due)
	}

	// A restart half-way: the state rebuilt from the store is the same.
	c.advance(30 * time.Hour)
	before := tr.List("")
	tr = newTracker(t, openStore(t, dir), c)
	if after := tr.List(""); !reflect.DeepEqual(before, after) {
		t.Fatalf("state after restart differs:\n got %+v\nwant %+v", after, before)
	}

	// The customers are told in time; the authority late.
	c.advance(30 * time.Hour) // 64 h after awareness
	if _, err := tr.Do(ctx, dpo, Command{Incident: id, Name: CmdFile, To: "gdpr/art34"}); err != nil {
		t.Fatal(err)
	}
	c.advance(9 * time.Hour) // 73 h
	if _, err := tr.Do(ctx, dpo, Command{Incident: id, Name: CmdFile, To: "gdpr/art33", Reference: "AP-2026-1"}); !isInvalid(err) {
		t.Fatalf("late filing without reasons: %v", err)
	}
	inc, err = tr.Do(ctx, dpo, Command{Incident: id, Name: CmdFile, To: "gdpr/art33", Reference: "AP-2026-1",
		Reason: "the scope was only known at 70 h"})
	if err != nil {
		t.Fatal(err)
	}
	a33, a34 := inc.Obligation("gdpr/art33"), inc.Obligation("gdpr/art34")
	if !a33.Late || a33.LateReason == "" || a33.Reference != "AP-2026-1" || !a34.Met() || a34.Late {
		t.Errorf("filings: art33 %+v art34 %+v", a33, a34)
	}
	// Lateness is frozen at the first filing: moving awareness later now
	// changes neither.
	c.advance(time.Hour)
	inc, err = tr.Do(ctx, dpo, Command{Incident: id, Name: CmdAwareness, At: aware.Add(3 * time.Hour), Reason: "re-assessed"})
	if err != nil {
		t.Fatal(err)
	}
	if o := inc.Obligation("gdpr/art33"); !o.Late || !o.MetAt.Equal(aware.Add(73*time.Hour)) {
		t.Errorf("after re-assessment: %+v", o)
	}
	if _, err := tr.Do(ctx, dpo, Command{Incident: id, Name: CmdFile, To: "gdpr/art33", Reason: "again"}); !isInvalid(err) {
		t.Errorf("filing twice: %v", err)
	}
}

func TestAuditTamper(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	for _, tc := range []struct {
		name, sql, want string
	}{
		{"edited", "UPDATE audit_log SET reason = 'nothing to see' WHERE action = 'dismissed'", "was altered"},
		{"deleted", "DELETE FROM audit_log WHERE action = 'dismissed'", "is missing"},
		{"rehashed", "UPDATE audit_log SET actor = 'someone else', hash = 'x' WHERE action = 'dismissed'", "was altered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st := openStore(t, dir)
			tr := newTracker(t, st, c)
			ids, err := tr.Findings(ctx, []incident.Finding{finding("r", "g", c.t, 1, "cust-nl")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tr.Do(ctx, engineer, Command{Incident: ids[0], Name: CmdDismiss, Reason: "false positive"}); err != nil {
				t.Fatal(err)
			}
			if _, err := tr.Do(ctx, engineer, Command{Incident: ids[0], Name: CmdNote, Reason: "after"}); err != nil {
				t.Fatal(err)
			}
			if n, _, err := Verify(ctx, st); err != nil || n < 4 {
				t.Fatalf("intact chain: %d entries, %v", n, err)
			}
			db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(tc.sql); err != nil {
				t.Fatal(err)
			}
			db.Close()
			if _, _, err := Verify(ctx, st); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("verify after tampering: %v; want %q", err, tc.want)
			}
			if _, err := New(ctx, st, Options{Now: c.now}); err == nil {
				t.Error("the tracker started on a broken chain")
			}
		})
	}
}

// TestAnchorsFollowTheHead: after every append the tracker hands the new
// head to Anchor, in order; the report names the head it was built from.
func TestAnchorsFollowTheHead(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	st := openStore(t, t.TempDir())
	var got []Anchor
	tr, err := New(ctx, st, Options{Apply: []string{"gdpr"}, Now: c.now, Anchor: func(a Anchor) { got = append(got, a) }})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tr.Findings(ctx, []incident.Finding{finding("cross-tenant-read", "actor.id=u-1", c.t.Add(-time.Minute), 2, "cust-nl")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Do(ctx, engineer, Command{Name: CmdNote, Incident: ids[0], Reason: "looked"}); err != nil {
		t.Fatal(err)
	}
	entries, err := tr.Audit(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	last := entries[len(entries)-1]
	if len(got) == 0 || got[len(got)-1].Seq != last.Seq || got[len(got)-1].Hash != last.Hash {
		t.Fatalf("anchors %+v, want the last one to be entry %d %s", got, last.Seq, last.Hash)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Errorf("anchors out of order: %+v", got)
		}
	}
	if h := tr.Head(); h.Seq != last.Seq || h.Hash != last.Hash {
		t.Errorf("head %+v, want entry %d", h, last.Seq)
	}
	inc, _ := tr.Get(ids[0])
	if r := tr.Report(inc); r.AuditHead.Seq != last.Seq || r.AuditHead.Hash != last.Hash {
		t.Errorf("the report names head %+v, want entry %d", r.AuditHead, last.Seq)
	}
	if n, head, checked, err := VerifyAnchors(ctx, st, got); err != nil || n != last.Seq || head != last.Hash || checked == 0 {
		t.Errorf("the anchors do not verify the log they came from: %d %s %d %v", n, head, checked, err)
	}
}
