package tracker

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/incident"
)

// recorder is a hand-written Alerter that records what it was asked to send.
type recorder struct {
	alerts, updates int
	reminders       []string // incident obligation left
}

func (r *recorder) Alert(_ context.Context, v View) (incident.AlertRef, error) {
	r.alerts++
	return incident.AlertRef{Channel: "C1", TS: fmt.Sprint(r.alerts)}, nil
}

func (r *recorder) Update(context.Context, incident.AlertRef, View) error { r.updates++; return nil }

func (r *recorder) Remind(_ context.Context, _ incident.AlertRef, v View, d Deadline, left time.Duration) error {
	r.reminders = append(r.reminders, fmt.Sprintf("%s %s", d.ID, left.Round(time.Minute)))
	return nil
}

func (r *recorder) UpdateRequired(_ context.Context, _ incident.AlertRef, v View) error {
	r.reminders = append(r.reminders, "update-required "+v.UpdateRequired.Summary())
	return nil
}

func (r *recorder) take() []string {
	out := r.reminders
	r.reminders = nil
	slices.Sort(out)
	return out
}

func TestReminderPoint(t *testing.T) {
	due := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		left time.Duration
		want string
	}{
		{72 * time.Hour, ""}, {48*time.Hour + time.Second, ""}, {48 * time.Hour, "48h"}, {30 * time.Hour, "48h"},
		{24 * time.Hour, "24h"}, {5 * time.Hour, "12h"}, {4 * time.Hour, "4h"}, {59 * time.Minute, "1h"}, {0, "1h"},
		{-time.Second, "overdue-0"}, {-4 * time.Hour, "overdue-1"}, {-9 * time.Hour, "overdue-2"},
	} {
		if got, _ := ReminderPoint(due, due.Add(-tt.left), 0, Reminders{}); got != tt.want {
			t.Errorf("%v left: %q; want %q", tt.left, got, tt.want)
		}
	}
	// A 24-hour target: its clock starting is not "24 hours left"; the
	// first reminder is at 12 hours left.
	for _, tt := range []struct {
		left time.Duration
		want string
	}{{24 * time.Hour, ""}, {13 * time.Hour, ""}, {12 * time.Hour, "12h"}, {-time.Minute, "overdue-0"}} {
		if got, _ := ReminderPoint(due, due.Add(-tt.left), 24*time.Hour, Reminders{}); got != tt.want {
			t.Errorf("24h period, %v left: %q; want %q", tt.left, got, tt.want)
		}
	}
}

// TestRemindersAcrossRestart walks a fake clock through the 72 hours: each
// reminder goes out once, a restart repeats none, those missed while down
// collapse into one, acknowledging does not silence, filing does.
func TestRemindersAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t0 := time.Date(2026, 10, 23, 8, 0, 0, 0, time.UTC)
	c := &clock{t0}
	tr, err := New(ctx, openStore(t, dir), Options{Apply: []string{"uk-gdpr"}, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tr.Findings(ctx, []incident.Finding{finding("public-bucket", "store=s3://b", t0, 1, "cust-1")})
	if err != nil {
		t.Fatal(err)
	}
	id := ids[0]
	a := &recorder{}
	step := func(to time.Duration, want ...string) {
		t.Helper()
		c.t = t0.Add(to)
		tr.Tick(ctx, a, Reminders{})
		if got := a.take(); !slices.Equal(got, want) {
			t.Fatalf("at +%v: reminders %q; want %q", to, got, want)
		}
	}
	step(0)
	if a.alerts != 1 {
		t.Fatalf("%d alerts; want 1", a.alerts)
	}
	step(time.Hour)
	step(24*time.Hour, "uk-gdpr/art33 48h0m0s")
	step(24*time.Hour + time.Minute) // already sent
	step(30 * time.Hour)

	// A restart: nothing is repeated, and the alert is not posted again.
	tr, err = New(ctx, openStore(t, dir), Options{Apply: []string{"uk-gdpr"}, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	a = &recorder{}
	step(31 * time.Hour)
	if a.alerts != 0 || a.updates != 1 {
		t.Fatalf("after restart: %d alerts, %d updates; want 0 and 1 (a refresh)", a.alerts, a.updates)
	}
	// Down from 31 h to 69 h: the 24 h, 12 h and 4 h reminders were missed;
	// one goes out on start.
	step(69*time.Hour, "uk-gdpr/art33 3h0m0s")
	if _, err := tr.Do(ctx, engineer, Command{Incident: id, Name: CmdAcknowledge}); err != nil {
		t.Fatal(err)
	}
	step(71*time.Hour, "uk-gdpr/art33 1h0m0s") // acknowledged, not silenced
	step(72*time.Hour+time.Minute, "uk-gdpr/art33 -1m0s")
	step(75 * time.Hour)
	step(76*time.Hour+time.Minute, "uk-gdpr/art33 -4h1m0s")
	if _, err := tr.Do(ctx, dpo, Command{Incident: id, Name: CmdFile, To: "uk-gdpr/art33", Reason: "scope took long"}); err != nil {
		t.Fatal(err)
	}
	step(90 * time.Hour) // met: no more
	audit, err := tr.Audit(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range audit {
		if e.Action == incident.ActReminded {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d reminders in the ledger; want 5", n)
	}
}

// TestLegalClocksFirst: the next deadline an incident shows is its nearest
// unmet legal one, the 24-hour internal target apart; met obligations drop
// out; and the target is not "approaching" the moment its clock starts.
func TestLegalClocksFirst(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	tr := newTracker(t, openStore(t, t.TempDir()), c)
	ids, err := tr.Findings(ctx, []incident.Finding{finding("cross-tenant-read", "actor.id=u-1", c.t.Add(-time.Minute), 2, "cust-nl")})
	if err != nil {
		t.Fatal(err)
	}
	v := tr.View(mustGet(t, tr, ids[0]))
	if v.NextDeadline == nil || !v.NextDeadline.Legal || v.NextTarget == nil || v.NextTarget.Legal || v.NextTarget.ID != "gdpr/art33-2" {
		t.Fatalf("next deadline %+v, next target %+v", v.NextDeadline, v.NextTarget)
	}
	if !v.NextDeadline.DueAt.Equal(c.t.Add(72 * time.Hour)) {
		t.Errorf("next legal deadline due %v", v.NextDeadline.DueAt)
	}
	rec := &recorder{}
	tr.Tick(ctx, rec, Reminders{})
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("reminded at the start of every clock: %v", got)
	}
	c.advance(12 * time.Hour)
	tr.Tick(ctx, rec, Reminders{})
	if got := rec.take(); !slices.Equal(got, []string{"gdpr/art33-2 12h0m0s"}) {
		t.Fatalf("at 12 hours: %v", got)
	}
	// Filing the authority notice takes it out of "next".
	if _, err := tr.Do(ctx, dpo, Command{Incident: ids[0], Name: CmdFile, To: "gdpr/art33", At: c.t, Reference: "AP-1"}); err != nil {
		t.Fatal(err)
	}
	v = tr.View(mustGet(t, tr, ids[0]))
	if v.NextDeadline == nil || v.NextDeadline.ID == "gdpr/art33" {
		t.Fatalf("a met obligation is still next: %+v", v.NextDeadline)
	}
}
