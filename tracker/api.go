package tracker

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/internal/jsonhttp"
)

// View, Deadline, Window and Affected are the incident package's: the
// notifiers render them too.
type (
	View     = incident.View
	Deadline = incident.Deadline
	Window   = incident.Window
	Affected = incident.AffectedView
)

func ptr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

const localLayout = "2006-01-02 15:04 MST"

// View renders an incident for the API in the organisation's time zone.
func (t *Tracker) View(inc incident.Incident) View {
	org := t.opts.Zone
	if org == nil {
		org = time.UTC
	}
	v := View{ID: inc.ID, RuleID: inc.RuleID, Title: inc.Title, Severity: inc.Severity, Status: inc.Status,
		DetectedAt: inc.DetectedAt, AwareAt: inc.AwareAt, Kind: inc.Kind, GroupKey: inc.GroupKey, Tags: inc.Tags,
		AwareReason: inc.AwareReason, DeterminedAt: ptr(inc.DeterminedAt), Acknowledged: inc.Acknowledged, AckBy: inc.AckBy,
		Assignee: inc.Assignee, Reason: inc.Reason, Events: inc.Events, EventIDs: inc.EventIDs, Stores: inc.Hint.Stores,
		Notes: inc.Notes, UpdatedAt: inc.UpdatedAt, AuditSeq: inc.Seq, TimeZone: org.String(),
		Deadlines: []Deadline{}, Findings: []string{}}
	if v.EventIDs == nil {
		v.EventIDs = []string{}
	}
	for _, e := range inc.Evidence {
		v.Findings = append(v.Findings, e.Fingerprint)
	}
	if inc.Kind == incident.KindExposure {
		v.Exposure = Window{From: inc.ExposureFrom, To: ptr(inc.ExposureTo)}
	} else {
		v.Exposure = Window{From: inc.FirstSeen, To: ptr(inc.LastSeen)}
	}
	v.Affected = Affected{Tenants: int64(len(inc.Scope.Tenants)), Records: inc.Scope.Records(), List: inc.Scope.Tenants,
		Partial: inc.Scope.Partial, PartialReason: inc.Scope.PartialReason}
	if v.Affected.List == nil {
		v.Affected.List = []incident.AffectedTenant{}
	}
	for _, o := range inc.Obligations {
		d := Deadline{Regime: o.Regime, What: o.What, DueAt: ptr(o.DueAt), MetAt: ptr(o.MetAt), ID: o.ID, Recipient: o.Recipient,
			Source: o.Source, Legal: o.Legal, Anchor: o.Anchor, Late: o.Late, LateReason: o.LateReason, Reference: o.Reference,
			TableVersion: o.TableVersion,
			WaivedAt:     ptr(o.WaivedAt), WaivedReason: o.WaivedReason, FirstMetAt: ptr(o.FirstMetAt), ReopenedAt: ptr(o.ReopenedAt),
			FirstLate: o.FirstLate}
		if !o.DueAt.IsZero() {
			d.DueLocal = o.DueAt.In(org).Format(localLayout)
			if r := t.opts.Regimes.Regime(o.Regime); r != nil && r.Location() != nil && o.Recipient != "customers" {
				// The regime's zone is the authority's; customers sit in zones of their own.
				d.DueRecipientLocal, d.RecipientTimeZone = o.DueAt.In(r.Location()).Format(localLayout), r.Location().String()
			}
		}
		v.Deadlines = append(v.Deadlines, d)
	}
	find := func(o *incident.Obligation) *Deadline {
		for i := range v.Deadlines {
			if o != nil && v.Deadlines[i].ID == o.ID {
				d := v.Deadlines[i]
				return &d
			}
		}
		return nil
	}
	v.NextDeadline, v.NextTarget = find(inc.NextDeadline()), find(inc.NextTarget())
	v.Notice = noticeView(&inc)
	v.UpdateRequired = inc.Update
	v.AuthorityUpdateOwed = ptr(inc.AuthorityUpdateSince)
	if t.opts.ConsoleURL != "" {
		v.Links = map[string]string{"console": t.opts.ConsoleURL + "/incidents/" + inc.ID}
	}
	return v
}

// API serves the incident routes. actorOf says who made a request (the
// web layer authenticates; the tracker decides what each role may do).
type API struct {
	t       *Tracker
	actorOf func(*http.Request) (Actor, bool)
	log     *zap.Logger
}

// NewAPI returns the incident API over t.
func NewAPI(t *Tracker, actorOf func(*http.Request) (Actor, bool)) *API {
	return &API{t: t, actorOf: actorOf, log: t.log}
}

// List serves GET /api/v1/incidents[?status=].
func (a *API) List() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := incident.Status(r.URL.Query().Get("status"))
		if status != "" && !status.Valid() {
			jsonhttp.Error(w, http.StatusBadRequest, "status: want open, confirmed, dismissed, notifying, notified or closed")
			return
		}
		incs := a.t.List(status)
		out := make([]View, 0, len(incs))
		for _, inc := range incs {
			out = append(out, a.t.View(inc))
		}
		jsonhttp.Write(w, http.StatusOK, map[string]any{"incidents": out})
	})
}

// Get serves GET /api/v1/incidents/{id}.
func (a *API) Get() http.Handler {
	return a.incident(func(w http.ResponseWriter, r *http.Request, inc incident.Incident) {
		jsonhttp.Write(w, http.StatusOK, a.t.View(inc))
	})
}

// Audit serves GET /api/v1/incidents/{id}/audit.
func (a *API) Audit() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, ok := a.t.Get(id); !ok {
			jsonhttp.Error(w, http.StatusNotFound, "no such incident")
			return
		}
		es, err := a.t.Audit(r.Context(), id)
		if err != nil {
			a.log.Error("reading the audit log", zap.String("incident", id), zap.Error(err))
			jsonhttp.Error(w, http.StatusInternalServerError, "could not read the audit log")
			return
		}
		if es == nil {
			es = []incident.AuditEntry{}
		}
		jsonhttp.Write(w, http.StatusOK, map[string]any{"entries": es})
	})
}

// commandBody is the JSON a command takes; every field is optional.
type commandBody struct {
	Reason    string    `json:"reason"`
	To        string    `json:"to"`
	At        time.Time `json:"at"`
	Reference string    `json:"reference"`
	// The notice workflow: draft takes notice (and, after a version went
	// out, correction); approve takes version and hash.
	Notice     *incident.Notice `json:"notice"`
	Correction bool             `json:"correction"`
	Version    int              `json:"version"`
	Hash       string           `json:"hash"`
}

// Command serves POST /api/v1/incidents/{id}/{command}.
func (a *API) Command() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		by, ok := a.actorOf(r)
		if !ok {
			jsonhttp.Error(w, http.StatusUnauthorized, "who are you?")
			return
		}
		var b commandBody
		if r.ContentLength != 0 {
			dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&b); err != nil && !errors.Is(err, io.EOF) {
				jsonhttp.Error(w, http.StatusBadRequest, "body: want a JSON object with reason, to, at (RFC 3339), reference, notice, correction, version or hash: "+
					strings.TrimPrefix(err.Error(), "json: "))
				return
			}
		}
		cmd := Command{Incident: r.PathValue("id"), Name: r.PathValue("command"), Reason: b.Reason, To: b.To, At: b.At, Reference: b.Reference,
			Notice: b.Notice, Correction: b.Correction, Version: b.Version, Hash: b.Hash}
		inc, err := a.t.Do(r.Context(), by, cmd)
		var ie *InvalidError
		switch {
		case err == nil:
			jsonhttp.Write(w, http.StatusOK, a.t.View(inc))
		case errors.Is(err, ErrNotFound):
			jsonhttp.Error(w, http.StatusNotFound, "no such incident")
		case errors.Is(err, ErrForbidden):
			jsonhttp.Error(w, http.StatusForbidden, "role "+by.Role+" may not "+cmd.Name)
		case errors.As(err, &ie):
			jsonhttp.Error(w, http.StatusConflict, ie.Msg)
		default:
			a.log.Error("incident command failed", zap.String("incident", cmd.Incident), zap.String("command", cmd.Name), zap.Error(err))
			jsonhttp.Error(w, http.StatusServiceUnavailable, "the change could not be recorded; try again")
		}
	})
}

// noticeView summarizes the notice workflow for the incident's view: the
// versions (without their text), what is missing from each, what is sent.
func noticeView(inc *incident.Incident) *incident.NoticeView {
	if len(inc.Notices) == 0 && !inc.NeedsNotice() {
		return nil
	}
	nv := &incident.NoticeView{Versions: []incident.NoticeVersionView{}, Sending: inc.NoticeSending, SentAt: ptr(inc.NoticeSentAt),
		Phases: []incident.PhaseView{}}
	for i := range inc.Notices {
		v := &inc.Notices[i]
		vv := incident.NoticeVersionView{Version: v.Version, Author: v.Author, At: v.At, Hash: v.Hash,
			ApprovedBy: v.ApprovedBy, ApprovedAt: ptr(v.ApprovedAt), SelfApproved: v.SelfApproved, Missing: nonNil(v.Missing()),
			ScopeCurrent: v.ScopeHash == incident.ScopeHash(inc.Scope), Supplementary: v.Supplementary, Correction: v.Correction}
		if v.Supplementary && v.Base > 0 && v.Base <= len(inc.Phases) {
			vv.Diff = noticeDiff(inc, v)
		}
		nv.Versions = append(nv.Versions, vv)
	}
	for _, p := range inc.Phases {
		nv.Phases = append(nv.Phases, incident.PhaseView{Version: p.Version, StartedAt: p.StartedAt, ReachedAt: ptr(p.ReachedAt),
			Customers: len(p.Audience), Kept: len(p.Kept), KeptReason: p.KeptReason, Supplementary: p.Supplementary, Correction: p.Correction,
			Window: incident.Window{From: p.WindowFrom, To: ptr(p.WindowTo)}})
	}
	nv.AwaitingApproval = inc.LatestApproved() == nil
	return nv
}

// noticeDiff is what supplementary version v changes against what the
// customers had been told when it was drafted (the phases before it): the
// free text of the version sent last then, the window, the customers not
// told, the records. Once v went out its own facts are those pinned when
// it was sent, so the diff does not move with later changes.
func noticeDiff(inc *incident.Incident, v *incident.NoticeVersion) *incident.NoticeDiff {
	base := &inc.Phases[v.Base-1]
	d := &incident.NoticeDiff{Against: base.Version, Text: []string{}, CustomersNew: []string{},
		WindowBefore: incident.Window{From: base.WindowFrom, To: ptr(base.WindowTo)},
		WindowAfter:  incident.Window{From: v.WindowFrom, To: ptr(v.WindowTo)}}
	if prev := inc.Notice(base.Version); prev != nil {
		locs := map[string]bool{}
		for l := range prev.Notice.Text {
			locs[l] = true
		}
		for l := range v.Notice.Text {
			locs[l] = true
		}
		for _, l := range slices.Sorted(maps.Keys(locs)) {
			a, b := prev.Notice.Text[l], v.Notice.Text[l]
			for _, f := range []struct {
				name string
				a, b string
			}{{"nature", a.Nature, b.Nature}, {"consequences", a.Consequences, b.Consequences}, {"measures", a.Measures, b.Measures}, {"actions", a.Actions, b.Actions}} {
				if f.a != f.b {
					d.Text = append(d.Text, l+"."+f.name)
				}
			}
		}
	}
	told := inc.ToldBefore(v.Base)
	for _, k := range told {
		d.RecordsBefore = incident.SatAdd(d.RecordsBefore, k.Facts.Records)
	}
	now := inc.Scope.Tenants
	if p := inc.PhaseOf(v.Version); p != nil {
		now = append(slices.Clone(p.Audience), p.Kept...)
	}
	for _, t := range now {
		d.RecordsAfter = incident.SatAdd(d.RecordsAfter, t.Records)
		if _, ok := told[t.Tenant]; !ok {
			d.CustomersNew = append(d.CustomersNew, t.Tenant)
		}
	}
	slices.Sort(d.CustomersNew)
	return d
}

// incident serves a route of one incident ({id}): 404 when there is none.
func (a *API) incident(fn func(w http.ResponseWriter, r *http.Request, inc incident.Incident)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inc, ok := a.t.Get(r.PathValue("id"))
		if !ok {
			jsonhttp.Error(w, http.StatusNotFound, "no such incident")
			return
		}
		fn(w, r, inc)
	})
}
