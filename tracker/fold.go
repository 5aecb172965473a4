package tracker

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/breachwatch/breachwatch/incident"
)

// apply folds one audit entry into an incident's state. It is the only
// place state changes: at start every entry is applied in order, and a
// command applies the entry it appended. Validation happens before an entry
// is written (see command); apply trusts the log but never panics on it.
func apply(inc *incident.Incident, e *incident.AuditEntry) error {
	switch e.Action {
	case incident.ActOpened, incident.ActEvidence:
		var f incident.Finding
		if err := json.Unmarshal(e.Data, &f); err != nil {
			return fmt.Errorf("audit entry %d: finding: %w", e.Seq, err)
		}
		if e.Action == incident.ActOpened {
			*inc = incident.Incident{ID: e.Incident, RuleID: f.RuleID, Title: f.Title, Severity: f.Severity, Kind: f.Kind,
				Tags: f.Tags, GroupKey: f.GroupKey, IncidentKey: f.Key(), Status: incident.StatusOpen, DetectedAt: e.At, AwareAt: e.At}
		}
		addEvidence(inc, &f)
	case incident.ActScoped:
		var s incident.Scope
		if err := json.Unmarshal(e.Data, &s); err != nil {
			return fmt.Errorf("audit entry %d: scope: %w", e.Seq, err)
		}
		inc.Scope = s
	case incident.ActObligations:
		var obs []incident.Obligation
		if err := json.Unmarshal(e.Data, &obs); err != nil {
			return fmt.Errorf("audit entry %d: obligations: %w", e.Seq, err)
		}
		inc.Obligations = obs
	case incident.ActAcknowledged:
		inc.Acknowledged, inc.AckBy = true, e.Actor
	case incident.ActConfirmed:
		inc.Status = incident.StatusConfirmed
	case incident.ActDismissed:
		inc.Status, inc.Reason = incident.StatusDismissed, e.Reason
	case incident.ActReopened:
		inc.Status, inc.Reason, inc.Acknowledged, inc.AckBy = incident.StatusOpen, e.Reason, false, ""
	case incident.ActStatus:
		var d struct{ To incident.Status }
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return fmt.Errorf("audit entry %d: status: %w", e.Seq, err)
		}
		inc.Status = d.To
	case incident.ActAwareness, incident.ActDetermined:
		var d struct{ At time.Time }
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return fmt.Errorf("audit entry %d: time: %w", e.Seq, err)
		}
		if e.Action == incident.ActAwareness {
			inc.AwareAt, inc.AwareReason = d.At.UTC(), e.Reason
		} else {
			inc.DeterminedAt = d.At.UTC()
		}
	case incident.ActAssigned:
		var d struct{ To string }
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return fmt.Errorf("audit entry %d: assignee: %w", e.Seq, err)
		}
		inc.Assignee = d.To
	case incident.ActNote:
		inc.Notes = append(inc.Notes, incident.Note{At: e.At, Author: e.Actor, Text: e.Reason})
	case incident.ActFiled:
		var f incident.Filing
		if err := json.Unmarshal(e.Data, &f); err != nil {
			return fmt.Errorf("audit entry %d: filing: %w", e.Seq, err)
		}
		if o := inc.Obligation(f.Obligation); o != nil && !o.Met() {
			o.MetAt, o.Reference = f.At.UTC(), f.Reference
			o.Late = !o.DueAt.IsZero() && f.At.After(o.DueAt)
			if o.Late {
				o.LateReason = e.Reason
			}
		}
	case incident.ActNoticeDrafted, incident.ActNoticeApproved, incident.ActNoticeSend, incident.ActNoticeSent, incident.ActUpdateRequired:
		if err := applyNotice(inc, e); err != nil {
			return err
		}
	case incident.ActWaived:
		var d struct{ Obligation string }
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return fmt.Errorf("audit entry %d: waiver: %w", e.Seq, err)
		}
		if o := inc.Obligation(d.Obligation); o != nil {
			o.WaivedAt, o.WaivedReason = e.At, e.Reason
		}
	case incident.ActReportUpdate:
		inc.ReportUpdates = append(inc.ReportUpdates, incident.Note{At: e.At, Author: e.Actor, Text: e.Reason})
		inc.AuthorityUpdateSince = time.Time{} // the phased information owed went out
	case incident.ActReminded, incident.ActAlerted, incident.ActExposureClosed:
		// Ledger entries: they change no state the API shows; the tracker
		// reads them back through its reminder and alert ledgers.
	default:
		return fmt.Errorf("audit entry %d: unknown action %q", e.Seq, e.Action)
	}
	inc.Seq, inc.UpdatedAt = e.Seq, e.At
	return nil
}

// addEvidence merges a finding report into the incident: a fingerprint
// seen before has its evidence replaced by the (later, fuller) report.
// A retraction (the finding was superseded by another) removes it.
func addEvidence(inc *incident.Incident, f *incident.Finding) {
	ev := incident.Evidence{Fingerprint: f.Fingerprint, Count: f.Count, Records: f.Records, FirstSeen: f.FirstSeen,
		LastSeen: f.LastSeen, WindowStart: f.WindowStart, WindowEnd: f.WindowEnd, EventIDs: f.EventIDs,
		Version: f.Version, Closed: f.Closed}
	i := slices.IndexFunc(inc.Evidence, func(e incident.Evidence) bool { return e.Fingerprint == f.Fingerprint })
	switch {
	case f.Retracted():
		if i >= 0 {
			inc.Evidence = slices.Delete(inc.Evidence, i, i+1)
		}
	case i >= 0:
		inc.Evidence[i] = ev
	default:
		inc.Evidence = append(inc.Evidence, ev)
	}
	if incident.SeverityRank(f.Severity) > incident.SeverityRank(inc.Severity) {
		inc.Severity = f.Severity
	}
	inc.Hint = mergeHint(inc.Hint, f.Affected)
	// Totals and the exposure window, from all the findings.
	inc.Events, inc.Records, inc.EventIDs = 0, 0, inc.EventIDs[:0]
	inc.FirstSeen, inc.LastSeen, inc.ExposureFrom, inc.ExposureTo = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	open := false
	for _, e := range inc.Evidence {
		inc.Events += e.Count
		inc.Records = incident.SatAdd(inc.Records, e.Records)
		for _, id := range e.EventIDs {
			if len(inc.EventIDs) < incident.MaxEvidence && !slices.Contains(inc.EventIDs, id) {
				inc.EventIDs = append(inc.EventIDs, id)
			}
		}
		if inc.FirstSeen.IsZero() || e.FirstSeen.Before(inc.FirstSeen) {
			inc.FirstSeen = e.FirstSeen
		}
		if e.LastSeen.After(inc.LastSeen) {
			inc.LastSeen = e.LastSeen
		}
		if inc.Kind == incident.KindExposure {
			if inc.ExposureFrom.IsZero() || e.WindowStart.Before(inc.ExposureFrom) {
				inc.ExposureFrom = e.WindowStart
			}
			if e.WindowEnd.IsZero() {
				open = true
			} else if e.WindowEnd.After(inc.ExposureTo) {
				inc.ExposureTo = e.WindowEnd
			}
		}
	}
	if open {
		inc.ExposureTo = time.Time{}
	}
}

func mergeHint(a, b incident.Affected) incident.Affected {
	if a.Scope == "" {
		a.Scope = b.Scope
	} else if b.Scope == incident.ScopeStore {
		a.Scope = incident.ScopeStore
	}
	a.Tenants = union(a.Tenants, b.Tenants)
	a.Stores = union(a.Stores, b.Stores)
	a.Categories = union(a.Categories, b.Categories)
	return a
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// sameEvidence reports whether the incident already holds this report of
// the finding (a replay), so that nothing need be recorded.
func sameEvidence(inc *incident.Incident, f *incident.Finding) bool {
	for _, e := range inc.Evidence {
		if e.Fingerprint == f.Fingerprint {
			if f.Retracted() {
				return false
			}
			if f.Version != 0 && e.Version > f.Version {
				return true // an older report than the one held: nothing new
			}
			return e.Count == f.Count && e.Records == f.Records && e.LastSeen.Equal(f.LastSeen) &&
				e.WindowStart.Equal(f.WindowStart) && e.WindowEnd.Equal(f.WindowEnd) &&
				slices.Equal(e.EventIDs, f.EventIDs) && (e.Closed == nil) == (f.Closed == nil)
		}
	}
	return f.Retracted() // retracting what the incident does not hold changes nothing
}
