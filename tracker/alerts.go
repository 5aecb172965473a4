package tracker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/incident"
)

// Alerter tells the security engineers: one alert per incident, updated in
// place as it changes, and reminders under it. Slack implements it; so
// does the log, the embedded default.
type Alerter interface {
	// Alert posts a new incident's alert and says where it lives.
	Alert(ctx context.Context, v View) (incident.AlertRef, error)
	// Update rewrites the alert after a change.
	Update(ctx context.Context, ref incident.AlertRef, v View) error
	// Remind posts a reminder about deadline d, left before it is due
	// (negative: overdue), under the alert.
	Remind(ctx context.Context, ref incident.AlertRef, v View, d Deadline, left time.Duration) error
	// UpdateRequired says, under the alert, that the facts changed after
	// the customers were told (v.UpdateRequired): a supplementary notice
	// is due.
	UpdateRequired(ctx context.Context, ref incident.AlertRef, v View) error
}

// updateLedger is the ledger key (a reminder's obligation) under which an
// update required is recorded as said: once per change (its reasons and
// the customers it concerns).
const updateLedger = "update-required"

// updatePoint names one update required in the ledger.
func updatePoint(u *incident.Update) string {
	h := sha256.New()
	for _, l := range [][]string{u.Reasons, u.Untold, u.Changed} {
		h.Write([]byte(strings.Join(l, "\x00")))
		h.Write([]byte{1})
	}
	return strconv.FormatInt(u.Since.Unix(), 10) + "-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// Reminders says when reminders go out.
type Reminders struct {
	// Before: when this much time is left before a deadline (default 48h,
	// 24h, 12h, 4h, 1h).
	Before []time.Duration
	// OverdueEvery: once overdue, this often until the obligation is met
	// (default 4h).
	OverdueEvery time.Duration
	// Refresh: an active incident's alert is rewritten at least this
	// often, to keep its countdowns fresh (default 1h).
	Refresh time.Duration
}

func (r *Reminders) defaults() {
	if len(r.Before) == 0 {
		r.Before = []time.Duration{48 * time.Hour, 24 * time.Hour, 12 * time.Hour, 4 * time.Hour, time.Hour}
	}
	r.Before = slices.Clone(r.Before)
	slices.Sort(r.Before) // shortest first
	if r.OverdueEvery <= 0 {
		r.OverdueEvery = 4 * time.Hour
	}
	if r.Refresh <= 0 {
		r.Refresh = time.Hour
	}
}

// ReminderPoint names the reminder due at now for a deadline of the given
// period (from its anchor to its due time; 0 when unknown): the most urgent
// point already reached ("4h": 4 hours or less were left), or "overdue-N"
// for the N-th period after the deadline; "" while no point is reached.
// Points as long as the period or longer never fire: a 24-hour target is
// not "approaching" the moment its clock starts. Only the current point is
// ever due, so reminders missed while breachwatch was down collapse into
// one.
func ReminderPoint(due, now time.Time, period time.Duration, r Reminders) (string, time.Duration) {
	r.defaults()
	left := due.Sub(now)
	if left < 0 {
		return "overdue-" + strconv.Itoa(int(-left/r.OverdueEvery)), left
	}
	for _, b := range r.Before {
		if left <= b && (period <= 0 || b < period) {
			return fmtPoint(b), left
		}
	}
	return "", left
}

func fmtPoint(d time.Duration) string {
	if d%time.Hour == 0 {
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return strconv.Itoa(int(d/time.Minute)) + "m"
}

// Tick does what is due now: it posts the alert of each new incident,
// rewrites alerts whose incident changed (or went stale), and sends each
// reminder that is due and not yet in the ledger. Every alert and reminder
// sent is recorded in the audit log after it went out, so a restart neither
// loses nor repeats one (a crash between sending and recording may repeat
// it once: a reminder too many rather than one missing). Failures are
// logged and retried at the next tick.
func (t *Tracker) Tick(ctx context.Context, a Alerter, r Reminders) {
	r.defaults()
	t.mu.Lock()
	var ids []string
	for id, inc := range t.incidents {
		if inc.Status.Active() || inc.Seq > t.updated[id].seq {
			ids = append(ids, id)
		}
	}
	t.unlock()
	slices.Sort(ids)
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		if err := t.tickIncident(ctx, a, r, id); err != nil {
			t.m.alertErrors.Inc()
			t.log.Warn("alerting failed; will retry", zap.String("incident", id), zap.Error(err))
		}
	}
}

func (t *Tracker) tickIncident(ctx context.Context, a Alerter, r Reminders, id string) error {
	now := t.opts.Now()
	if err := t.rescopeOpen(ctx, id, now); err != nil {
		return err
	}
	inc, _ := t.Get(id)
	t.mu.Lock()
	ref, alerted := t.alerts[id]
	last := t.updated[id]
	t.unlock()
	v := t.View(inc)
	if !alerted {
		if !inc.Status.Active() {
			return nil // dismissed or closed before it was ever alerted
		}
		var err error
		if ref, err = a.Alert(ctx, v); err != nil {
			return fmt.Errorf("posting the alert: %w", err)
		}
		if err := t.record(ctx, id, incident.ActAlerted, ref); err != nil {
			return err
		}
	} else if inc.Seq > last.seq || (inc.Status.Active() && now.Sub(last.at) >= r.Refresh) {
		if err := a.Update(ctx, ref, v); err != nil {
			return fmt.Errorf("updating the alert: %w", err)
		}
	}
	t.markUpdated(id, now)
	// An update required is said even on a closed incident (more customers
	// turned out to be affected after it was closed: someone must reopen
	// it and tell them).
	if u := inc.Update; u != nil {
		point := updatePoint(u)
		t.mu.Lock()
		said := t.reminded[id+"\x00"+updateLedger+"\x00"+point]
		t.unlock()
		if !said {
			if err := a.UpdateRequired(ctx, ref, v); err != nil {
				return fmt.Errorf("saying an update is required: %w", err)
			}
			if err := t.record(ctx, id, incident.ActReminded, incident.Reminder{Obligation: updateLedger, Point: point}); err != nil {
				return err
			}
		}
	}
	if !inc.Status.Active() {
		return nil
	}
	for _, d := range v.Deadlines {
		if d.DueAt == nil || d.MetAt != nil || d.WaivedAt != nil {
			continue
		}
		var period time.Duration
		if o := inc.Obligation(d.ID); o != nil && !o.AnchorAt.IsZero() {
			period = o.DueAt.Sub(o.AnchorAt)
		}
		point, left := ReminderPoint(*d.DueAt, now, period, r)
		if point == "" {
			continue
		}
		// A clock reopened by an update is a new clock: its reminders are
		// kept apart from the first one's.
		ledger := d.ID
		if d.ReopenedAt != nil {
			ledger += "@" + strconv.FormatInt(d.ReopenedAt.Unix(), 10)
		}
		t.mu.Lock()
		sent := t.reminded[id+"\x00"+ledger+"\x00"+point]
		t.unlock()
		if sent {
			continue
		}
		if err := a.Remind(ctx, ref, v, d, left); err != nil {
			return fmt.Errorf("sending a reminder: %w", err)
		}
		t.m.reminders.Inc()
		if err := t.record(ctx, id, incident.ActReminded, incident.Reminder{Obligation: ledger, Point: point, Left: left}); err != nil {
			return err
		}
		t.markUpdated(id, now)
	}
	return nil
}

// record appends a ledger entry (alerted, reminded) by breachwatch.
func (t *Tracker) record(ctx context.Context, id, action string, data any) error {
	t.mu.Lock()
	defer t.unlock()
	e, err := entry(id, System, action, "", data, t.opts.Now().UTC())
	if err != nil {
		return err
	}
	return t.appendEntries(ctx, []incident.AuditEntry{e})
}

// markUpdated notes that the alert shows the incident as it is now.
func (t *Tracker) markUpdated(id string, now time.Time) {
	t.mu.Lock()
	defer t.unlock()
	if inc := t.incidents[id]; inc != nil {
		t.updated[id] = updateMark{seq: inc.Seq, at: now}
	}
}

// Changed is signalled (without blocking) after every change, so that a
// loop calling Tick can run at once.
func (t *Tracker) Changed() <-chan struct{} { return t.changed }

// Run calls Tick every interval, and soon after each change, until ctx ends.
func (t *Tracker) Run(ctx context.Context, a Alerter, r Reminders, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		t.Tick(ctx, a, r)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.changed:
		}
	}
}

// LogAlerter writes alerts and reminders to the log: the embedded default
// when no Slack is configured. Attacker-controlled strings are logged as
// zap fields (quoted and escaped by the encoder), never in the message.
type LogAlerter struct{ Log *zap.Logger }

// Alert implements Alerter.
func (l LogAlerter) Alert(_ context.Context, v View) (incident.AlertRef, error) {
	l.Log.Warn("new incident", viewFields(v)...)
	return incident.AlertRef{Channel: "log", TS: v.ID}, nil
}

// Update implements Alerter.
func (l LogAlerter) Update(_ context.Context, _ incident.AlertRef, v View) error {
	l.Log.Info("incident updated", viewFields(v)...)
	return nil
}

// Remind implements Alerter.
func (l LogAlerter) Remind(_ context.Context, _ incident.AlertRef, v View, d Deadline, left time.Duration) error {
	msg := "deadline approaching"
	if left < 0 {
		msg = "deadline passed"
	}
	l.Log.Warn(msg, zap.String("incident", v.ID), zap.String("obligation", d.ID), zap.String("what", d.What),
		zap.Timep("due_at", d.DueAt), zap.Duration("left", left.Round(time.Minute)), zap.Bool("legal", d.Legal))
	if d.Recipient == "customers" && v.Notice != nil && v.Notice.AwaitingApproval {
		l.Log.Warn("escalation: the customer notice is not approved yet; a DPO must review and approve it",
			zap.String("incident", v.ID), zap.String("obligation", d.ID), zap.Duration("left", left.Round(time.Minute)))
	}
	return nil
}

// UpdateRequired implements Alerter.
func (l LogAlerter) UpdateRequired(_ context.Context, _ incident.AlertRef, v View) error {
	if u := v.UpdateRequired; u != nil {
		l.Log.Warn("update required: the facts changed after the customers were told; a supplementary notice is due",
			zap.String("incident", v.ID), zap.Strings("reasons", u.Reasons), zap.Int("untold", len(u.Untold)), zap.Int("changed", len(u.Changed)))
	}
	return nil
}

func viewFields(v View) []zap.Field {
	fs := []zap.Field{zap.String("incident", v.ID), zap.String("rule", v.RuleID), zap.String("title", v.Title),
		zap.String("severity", v.Severity), zap.String("status", string(v.Status)), zap.Int64("tenants", v.Affected.Tenants),
		zap.Int64("records", v.Affected.Records)}
	if v.NextDeadline != nil {
		fs = append(fs, zap.String("next_deadline", v.NextDeadline.ID), zap.Timep("due_at", v.NextDeadline.DueAt))
	}
	return fs
}
