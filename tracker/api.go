package tracker

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/incident"
)

// View is an incident as the API shows it (../shared/contract/api.md):
// the contract's fields first, then breachwatch's own.
type View struct {
	ID           string            `json:"id"`
	RuleID       string            `json:"rule_id"`
	Title        string            `json:"title"`
	Severity     string            `json:"severity"`
	Status       incident.Status   `json:"status"`
	DetectedAt   time.Time         `json:"detected_at"`
	AwareAt      time.Time         `json:"aware_at"`
	Deadlines    []Deadline        `json:"deadlines"`
	Exposure     Window            `json:"exposure"`
	Affected     Affected          `json:"affected"`
	Kind         string            `json:"kind"`
	GroupKey     string            `json:"group_key"`
	Tags         []string          `json:"tags,omitempty"`
	AwareReason  string            `json:"aware_reason,omitempty"`
	DeterminedAt *time.Time        `json:"determined_at"`
	Acknowledged bool              `json:"acknowledged"`
	AckBy        string            `json:"acknowledged_by,omitempty"`
	Assignee     string            `json:"assignee,omitempty"`
	Reason       string            `json:"reason,omitempty"`
	Events       int64             `json:"events"`
	EventIDs     []string          `json:"event_ids"`
	Findings     []string          `json:"findings"`
	Stores       []string          `json:"stores,omitempty"`
	Notes        []incident.Note   `json:"notes,omitempty"`
	NextDeadline *Deadline         `json:"next_deadline"`
	UpdatedAt    time.Time         `json:"updated_at"`
	AuditSeq     int64             `json:"audit_seq"`
	TimeZone     string            `json:"time_zone"` // the organisation's, for the *_local fields
	Links        map[string]string `json:"links,omitempty"`
}

// Deadline is an obligation as the API shows it.
type Deadline struct {
	Regime    string     `json:"regime"`
	What      string     `json:"what"`
	DueAt     *time.Time `json:"due_at"` // null until its anchor happens
	MetAt     *time.Time `json:"met_at"`
	ID        string     `json:"id"`
	Recipient string     `json:"recipient"`
	Source    string     `json:"source"`
	// Legal is false for an internal target (shown as a target, never as
	// a legal deadline).
	Legal      bool   `json:"legal"`
	Anchor     string `json:"anchor"`
	Late       bool   `json:"late"`
	LateReason string `json:"late_reason,omitempty"`
	Reference  string `json:"reference,omitempty"`
	// DueLocal is the due time in the organisation's time zone and in the
	// recipient's (the regime's for an authority).
	DueLocal          string `json:"due_local,omitempty"`
	DueRecipientLocal string `json:"due_recipient_local,omitempty"`
	RecipientTimeZone string `json:"recipient_time_zone,omitempty"`
}

// Window is a time span; To is null while it is open.
type Window struct {
	From time.Time  `json:"from"`
	To   *time.Time `json:"to"`
}

// Affected is the affected customers as the API shows them.
type Affected struct {
	Tenants int64                     `json:"tenants"`
	Records int64                     `json:"records"`
	List    []incident.AffectedTenant `json:"list"`
	Partial bool                      `json:"partial"`
}

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
		Partial: inc.Scope.Partial}
	if v.Affected.List == nil {
		v.Affected.List = []incident.AffectedTenant{}
	}
	for _, o := range inc.Obligations {
		d := Deadline{Regime: o.Regime, What: o.What, DueAt: ptr(o.DueAt), MetAt: ptr(o.MetAt), ID: o.ID, Recipient: o.Recipient,
			Source: o.Source, Legal: o.Legal, Anchor: o.Anchor, Late: o.Late, LateReason: o.LateReason, Reference: o.Reference}
		if !o.DueAt.IsZero() {
			d.DueLocal = o.DueAt.In(org).Format(localLayout)
			if r := t.opts.Regimes.Regime(o.Regime); r != nil && r.Location() != nil {
				d.DueRecipientLocal, d.RecipientTimeZone = o.DueAt.In(r.Location()).Format(localLayout), r.Location().String()
			}
		}
		v.Deadlines = append(v.Deadlines, d)
	}
	if n := inc.NextDeadline(); n != nil {
		for i := range v.Deadlines {
			if v.Deadlines[i].ID == n.ID {
				d := v.Deadlines[i]
				v.NextDeadline = &d
			}
		}
	}
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

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// List serves GET /api/v1/incidents[?status=].
func (a *API) List() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := incident.Status(r.URL.Query().Get("status"))
		if status != "" && !status.Valid() {
			writeError(w, http.StatusBadRequest, "status: want open, confirmed, dismissed, notifying, notified or closed")
			return
		}
		incs := a.t.List(status)
		out := make([]View, 0, len(incs))
		for _, inc := range incs {
			out = append(out, a.t.View(inc))
		}
		writeJSON(w, http.StatusOK, map[string]any{"incidents": out})
	})
}

// Get serves GET /api/v1/incidents/{id}.
func (a *API) Get() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inc, ok := a.t.Get(r.PathValue("id"))
		if !ok {
			writeError(w, http.StatusNotFound, "no such incident")
			return
		}
		writeJSON(w, http.StatusOK, a.t.View(inc))
	})
}

// Audit serves GET /api/v1/incidents/{id}/audit.
func (a *API) Audit() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, ok := a.t.Get(id); !ok {
			writeError(w, http.StatusNotFound, "no such incident")
			return
		}
		es, err := a.t.Audit(r.Context(), id)
		if err != nil {
			a.log.Error("reading the audit log", zap.String("incident", id), zap.Error(err))
			writeError(w, http.StatusInternalServerError, "could not read the audit log")
			return
		}
		if es == nil {
			es = []incident.AuditEntry{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"entries": es})
	})
}

// commandBody is the JSON a command takes; every field is optional.
type commandBody struct {
	Reason    string    `json:"reason"`
	To        string    `json:"to"`
	At        time.Time `json:"at"`
	Reference string    `json:"reference"`
}

// Command serves POST /api/v1/incidents/{id}/{command}.
func (a *API) Command() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		by, ok := a.actorOf(r)
		if !ok {
			writeError(w, http.StatusUnauthorized, "who are you?")
			return
		}
		var b commandBody
		if r.ContentLength != 0 {
			dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&b); err != nil && !errors.Is(err, io.EOF) {
				writeError(w, http.StatusBadRequest, "body: want a JSON object with reason, to, at (RFC 3339) or reference")
				return
			}
		}
		cmd := Command{Incident: r.PathValue("id"), Name: r.PathValue("command"), Reason: b.Reason, To: b.To, At: b.At, Reference: b.Reference}
		inc, err := a.t.Do(r.Context(), by, cmd)
		var ie *InvalidError
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, a.t.View(inc))
		case errors.Is(err, ErrNotFound):
			writeError(w, http.StatusNotFound, "no such incident")
		case errors.Is(err, ErrForbidden):
			writeError(w, http.StatusForbidden, "role "+by.Role+" may not "+cmd.Name)
		case errors.As(err, &ie):
			writeError(w, http.StatusConflict, ie.Msg)
		default:
			a.log.Error("incident command failed", zap.String("incident", cmd.Incident), zap.String("command", cmd.Name), zap.Error(err))
			writeError(w, http.StatusServiceUnavailable, "the change could not be recorded; try again")
		}
	})
}
