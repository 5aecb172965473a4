package notify

import (
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/internal/jsonhttp"
)

// Incidents finds an incident (the tracker).
type Incidents interface {
	Get(id string) (incident.Incident, bool)
}

// API serves the notice routes for engineers and the DPO: the versions
// with their text and lint, previews in every locale, delivery progress.
type API struct {
	Incidents Incidents
	Outbox    Outbox
	Ledger    Ledger
	Catalog   *Catalogs
	Zone      *time.Location // the organisation's, for previews of customers without one
	Log       *zap.Logger
}

// VersionDetail is a notice version with what it lacks.
type VersionDetail struct {
	incident.NoticeVersion
	Missing      []string `json:"missing"`
	ScopeCurrent bool     `json:"scope_current"`
}

// Get serves GET /api/v1/incidents/{id}/notice: every version in full, the
// lint of each, and the progress of the one being sent.
func (a *API) Get() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inc, ok := a.Incidents.Get(r.PathValue("id"))
		if !ok {
			jsonhttp.Error(w, http.StatusNotFound, "no such incident")
			return
		}
		vs := []VersionDetail{}
		for _, v := range inc.Notices {
			m := v.Missing()
			if m == nil {
				m = []string{}
			}
			vs = append(vs, VersionDetail{NoticeVersion: v, Missing: m, ScopeCurrent: v.ScopeHash == incident.ScopeHash(inc.Scope)})
		}
		out := map[string]any{"incident": inc.ID, "versions": vs, "sending": inc.NoticeSending, "locales": a.Catalog.Locales()}
		if inc.NoticeSending > 0 {
			p, err := ProgressOf(r.Context(), a.Outbox, a.Ledger, &inc, 0, r.URL.Query().Get("per_tenant") == "true")
			if err != nil {
				a.Log.Error("notice progress", zap.String("incident", inc.ID), zap.Error(err))
				jsonhttp.Error(w, http.StatusServiceUnavailable, "progress is unavailable; try again")
				return
			}
			out["progress"] = p
		}
		jsonhttp.Write(w, http.StatusOK, out)
	})
}

// Preview serves GET /api/v1/incidents/{id}/notice/preview[?version=N]:
// the version (the newest when not given) rendered in every locale, for an
// affected customer of that locale when there is one (else the first
// customer's facts), with the fields that fell back to English.
func (a *API) Preview() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inc, ok := a.Incidents.Get(r.PathValue("id"))
		if !ok {
			jsonhttp.Error(w, http.StatusNotFound, "no such incident")
			return
		}
		n := len(inc.Notices)
		if s := r.URL.Query().Get("version"); s != "" {
			var err error
			if n, err = strconv.Atoi(s); err != nil {
				jsonhttp.Error(w, http.StatusBadRequest, "version: want a number")
				return
			}
		}
		v := inc.Notice(n)
		if v == nil {
			jsonhttp.Error(w, http.StatusNotFound, "no such notice version")
			return
		}
		out, err := a.Catalog.Previews(v, inc.Scope, a.Zone)
		if err != nil {
			a.Log.Error("notice preview", zap.String("incident", inc.ID), zap.Error(err))
			jsonhttp.Error(w, http.StatusInternalServerError, "the preview could not be rendered")
			return
		}
		m := v.Missing()
		if m == nil {
			m = []string{}
		}
		aud := inc.Scope.Tenants
		if p := inc.PhaseOf(v.Version); p != nil {
			aud = p.Audience // sent: whom it went to
		} else if v.Supplementary {
			aud, _ = inc.Audience(v)
		}
		jsonhttp.Write(w, http.StatusOK, map[string]any{"incident": inc.ID, "version": v.Version, "hash": v.Hash, "missing": m, "previews": out,
			"languages": a.Catalog.Languages(v, aud)})
	})
}
