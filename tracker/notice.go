package tracker

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/breachwatch/breachwatch/incident"
)

// noticeCommand validates a draft, approve or send command and returns the
// audit entry's action and data. Called with t.mu held.
func (t *Tracker) noticeCommand(inc *incident.Incident, by Actor, c Command, now time.Time) (string, any, error) {
	switch c.Name {
	case CmdDraft:
		if !inc.Status.Active() {
			return "", nil, invalid("the incident is %s: reopen it before drafting a notice", inc.Status)
		}
		if c.Notice == nil {
			return "", nil, invalid("a draft needs the notice's content")
		}
		if err := incident.CheckNotice(c.Notice); err != nil {
			return "", nil, invalid("notice: %v", err)
		}
		if c.Correction && len(inc.Phases) == 0 {
			return "", nil, invalid("a correction corrects a notice that went out; none has yet")
		}
		from, to := incident.NoticeWindow(inc)
		v := incident.NoticeVersion{Version: len(inc.Notices) + 1, Author: by.Name, At: now, Notice: *c.Notice,
			WindowFrom: from, WindowTo: to, ScopeHash: incident.ScopeHash(inc.Scope),
			Supplementary: len(inc.Phases) > 0, Correction: c.Correction, Base: len(inc.Phases)}
		v.Hash = v.ComputeHash()
		return incident.ActNoticeDrafted, v, nil
	case CmdApprove:
		v := inc.Notice(c.Version)
		switch {
		case v == nil:
			return "", nil, invalid("the incident has no notice version %d", c.Version)
		case v.Approved():
			return "", nil, invalid("version %d was already approved by %s", v.Version, v.ApprovedBy)
		case c.Hash != v.Hash:
			// The expected hash is not said: an approval names what its
			// approver reviewed, never what an error message offered.
			return "", nil, invalid("that is not version %d's content hash: review the version you approve (the console, or `breachwatch incidents notice ID`, shows it with its hash)", v.Version)
		case v.ScopeHash != incident.ScopeHash(inc.Scope):
			return "", nil, invalid("the affected customers changed after version %d was drafted: draft a new version", v.Version)
		case v.Base != len(inc.Phases):
			return "", nil, invalid("version %d was drafted before version %d went out: draft a new (supplementary) version", v.Version, inc.Phases[len(inc.Phases)-1].Version)
		}
		if miss := v.Missing(); len(miss) > 0 {
			return "", nil, invalid("version %d lacks required elements: %s", v.Version, strings.Join(miss, "; "))
		}
		self := person(v.Author) == person(by.Name)
		if self && !t.opts.SelfApproval {
			return "", nil, invalid("four eyes: %s wrote version %d, so another DPO must approve it", by.Name, v.Version)
		}
		if self && c.Reason == "" {
			return "", nil, invalid("approving your own version needs a reason (it is kept in the audit log)")
		}
		return incident.ActNoticeApproved, incident.Approval{Version: v.Version, Hash: v.Hash, SelfApproved: self}, nil
	case CmdSend:
		v := inc.LatestApproved()
		switch {
		case v == nil:
			return "", nil, invalid("no notice version is approved yet")
		case inc.NoticeSending == v.Version:
			return "", nil, invalid("version %d is already being sent", v.Version)
		case v.ScopeHash != incident.ScopeHash(inc.Scope):
			return "", nil, invalid("the affected customers changed after version %d was drafted: draft and approve a new version", v.Version)
		case v.Base != len(inc.Phases):
			return "", nil, invalid("version %d was drafted before version %d went out: draft and approve a new (supplementary) version", v.Version, inc.Phases[len(inc.Phases)-1].Version)
		case inc.Status != incident.StatusConfirmed && inc.Status != incident.StatusNotifying && inc.Status != incident.StatusNotified:
			return "", nil, invalid("notices go out for confirmed incidents; this one is %s", inc.Status)
		}
		aud, kept := inc.Audience(v)
		if len(aud) == 0 {
			return "", nil, invalid("version %d would reach no one: every affected customer was told already (draft a correction to tell them again)", v.Version)
		}
		if u := inc.Update; u != nil && c.Reason == "" {
			// Customers told already whose facts changed materially are
			// left as they are only by a DPO's stated decision.
			var changed []string
			for _, k := range kept {
				if slices.Contains(u.Changed, k.Tenant) {
					changed = append(changed, k.Tenant)
				}
			}
			if len(changed) > 0 {
				return "", nil, invalid("%s told already %s changed facts (%s): draft a correction to tell them, or give the reason they need not be told again",
					incident.Count(len(changed), "customer", "customers"), map[bool]string{true: "has", false: "have"}[len(changed) == 1],
					strings.Join(changed[:min(len(changed), 10)], ", "))
			}
		}
		return incident.ActNoticeSend, incident.SendData{Version: v.Version, Audience: aud, Kept: kept}, nil
	}
	return "", nil, invalid("unknown command %q", c.Name)
}

// applyNotice folds the notice workflow's entries.
func applyNotice(inc *incident.Incident, e *incident.AuditEntry) error {
	switch e.Action {
	case incident.ActNoticeDrafted:
		var v incident.NoticeVersion
		if err := json.Unmarshal(e.Data, &v); err != nil {
			return fmt.Errorf("audit entry %d: notice: %w", e.Seq, err)
		}
		inc.Notices = append(inc.Notices, v)
	case incident.ActNoticeApproved:
		var a incident.Approval
		if err := json.Unmarshal(e.Data, &a); err != nil {
			return fmt.Errorf("audit entry %d: approval: %w", e.Seq, err)
		}
		if v := inc.Notice(a.Version); v != nil && v.Hash == a.Hash {
			v.ApprovedBy, v.ApprovedAt, v.SelfApproved = e.Actor, e.At, a.SelfApproved
		}
	case incident.ActNoticeSend:
		var d incident.SendData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return fmt.Errorf("audit entry %d: send: %w", e.Seq, err)
		}
		p := incident.Phase{Version: d.Version, StartedAt: e.At, Audience: d.Audience, Kept: d.Kept}
		if len(d.Kept) > 0 {
			p.KeptReason = e.Reason
		}
		if v := inc.Notice(d.Version); v != nil {
			p.WindowFrom, p.WindowTo, p.Supplementary, p.Correction = v.WindowFrom, v.WindowTo, v.Supplementary, v.Correction
		}
		if p.Audience == nil {
			// Written before phases: the version went to the scope.
			p.Audience = slices.Clone(inc.Scope.Tenants)
		}
		inc.Phases = append(inc.Phases, p)
		inc.NoticeSending, inc.NoticeSentAt = d.Version, time.Time{}
		if inc.Status == incident.StatusConfirmed || inc.Status == incident.StatusNotified {
			inc.Status = incident.StatusNotifying
		}
	case incident.ActNoticeSent:
		var p incident.NoticeProgress
		if err := json.Unmarshal(e.Data, &p); err != nil {
			return fmt.Errorf("audit entry %d: progress: %w", e.Seq, err)
		}
		if p.Version != inc.NoticeSending {
			return nil // a report about a version no longer being sent
		}
		inc.NoticeSentAt = e.At
		if ph := inc.PhaseOf(p.Version); ph != nil {
			ph.ReachedAt = e.At
		}
		settleNotice(inc, e.At)
	case incident.ActUpdateRequired:
		var u incident.Update
		if err := json.Unmarshal(e.Data, &u); err != nil {
			return fmt.Errorf("audit entry %d: update: %w", e.Seq, err)
		}
		if len(u.Reasons) == 0 {
			// The facts came back to what the customers were told: they
			// were reached when the last version reached them.
			inc.Update = nil
			settleNotice(inc, inc.NoticeSentAt)
			return nil
		}
		u.Since = e.At
		if inc.Update != nil {
			u.Since = inc.Update.Since // the clock runs from the first change not told
		}
		inc.Update = &u
		if inc.Status == incident.StatusNotified {
			inc.Status = incident.StatusNotifying
		}
		// An authority notified already is owed the new facts in phases
		// (GDPR Art. 33(4)), by the same path: until a report update.
		if inc.AuthorityUpdateSince.IsZero() {
			for _, o := range inc.Obligations {
				if o.Recipient != "customers" && o.Recipient != "controller" && o.Met() {
					inc.AuthorityUpdateSince = u.Since
					break
				}
			}
		}
		for i := range inc.Obligations {
			o := &inc.Obligations[i]
			if o.Recipient != "customers" || o.FirstMetAt.IsZero() && !o.Met() {
				// No version reached its customers yet: the first clock runs.
				continue
			}
			if o.FirstMetAt.IsZero() {
				o.FirstMetAt = o.MetAt
			}
			if o.Late && !o.FirstLate {
				o.FirstLate, o.FirstLateReason = true, o.LateReason
			}
			o.MetAt, o.Late, o.LateReason, o.ReopenedAt = time.Time{}, false, "", u.Since
		}
	}
	return nil
}

// settleNotice meets the customer obligations and marks the incident
// notified when the version being sent reached its whole audience and the
// facts are still what the customers were told; otherwise the change
// stays an update required (the tracker records it).
func settleNotice(inc *incident.Incident, at time.Time) {
	if inc.NoticeSending == 0 || inc.NoticeSentAt.IsZero() {
		return
	}
	whole := inc.Drift() == nil
	for i := range inc.Obligations {
		o := &inc.Obligations[i]
		if o.Recipient != "customers" || o.Met() {
			continue
		}
		if o.FirstMetAt.IsZero() {
			o.FirstMetAt = at // the customers of the first version were reached
			if !whole {
				// The facts changed while it was being sent: the first
				// clock is settled for those it reached (late or not),
				// and the rest run from the change.
				if o.FirstLate = !o.DueAt.IsZero() && at.After(o.DueAt); inc.Update != nil {
					o.ReopenedAt = inc.Update.Since
				}
			}
		}
		if whole {
			o.MetAt = at
			o.Late = !o.DueAt.IsZero() && at.After(o.DueAt)
		}
	}
	if !whole {
		return
	}
	inc.Update = nil
	if inc.Status == incident.StatusNotifying {
		inc.Status = incident.StatusNotified
	}
}

// Sending lists the incidents whose notice is being sent (or was sent):
// the notifier's work. Each carries its notice versions and scope.
func (t *Tracker) Sending() []incident.Incident {
	t.rmu.RLock()
	defer t.rmu.RUnlock()
	var out []incident.Incident
	for _, inc := range t.view {
		if inc.NoticeSending > 0 {
			out = append(out, inc.Clone())
		}
	}
	return out
}

// NoticeReached records that every affected customer of an incident was
// reached with the version being sent (e-mail accepted or in-app notice
// published): the customer obligations are met then. A report about
// another version, or a repeated one, changes nothing.
func (t *Tracker) NoticeReached(ctx context.Context, id string, p incident.NoticeProgress) error {
	t.mu.Lock()
	defer t.unlock()
	inc := t.incidents[id]
	if inc == nil {
		return ErrNotFound
	}
	if inc.NoticeSending != p.Version || !inc.NoticeSentAt.IsZero() {
		return nil
	}
	now := t.opts.Now().UTC()
	e, err := entry(id, System, incident.ActNoticeSent, "", p, now)
	if err != nil {
		return err
	}
	if err := t.appendEntries(ctx, []incident.AuditEntry{e}); err != nil {
		return err
	}
	return t.rescope(ctx, id, now)
}

// person is who an actor is, whatever the channel: "token:dana",
// "slack:dana" and "cli:dana" are one person (token names and Slack user
// names must name people alike for four eyes to hold).
func person(actor string) string {
	if _, name, ok := strings.Cut(actor, ":"); ok {
		return name
	}
	return actor
}
