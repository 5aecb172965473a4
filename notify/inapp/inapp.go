// Package inapp serves the customer notices to the product's app
// (../shared/contract/api.md: /api/v1/tenants/{tenant}/notices): each
// affected customer's notice in its locale, and the read receipts the app
// sends back. A tenant never sees another tenant's notices.
package inapp

import (
	"context"
	"embed"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/internal/jsonhttp"
	"github.com/breachwatch/breachwatch/notify"
)

// Incidents finds an incident (the tracker).
type Incidents interface {
	Get(id string) (incident.Incident, bool)
}

// Options configure the API.
type Options struct {
	Outbox    notify.Outbox
	Ledger    notify.Ledger
	Incidents Incidents
	Catalog   *notify.Catalogs
	// MayServe says whether the caller may see a tenant's notices (an app
	// token only its own tenants); ok is false for no caller.
	MayServe func(r *http.Request, tenant string) (allowed, ok bool)
	Now      func() time.Time
	Log      *zap.Logger
}

// API serves the in-app notices.
type API struct{ o Options }

// New returns the API.
func New(o Options) *API {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	return &API{o: o}
}

// Notice is one notice as the app shows it.
type Notice struct {
	ID          string     `json:"id"`
	Incident    string     `json:"incident"`
	Version     int        `json:"version"`
	PublishedAt time.Time  `json:"published_at"`
	Locale      string     `json:"locale"`
	Dir         string     `json:"dir"`
	Subject     string     `json:"subject"`
	Text        string     `json:"text"`
	HTML        string     `json:"html"`
	ReadAt      *time.Time `json:"read_at"`
}

// authorize answers for the tenant of the path; it writes the refusal.
func (a *API) authorize(w http.ResponseWriter, r *http.Request) (string, bool) {
	tenant := r.PathValue("tenant")
	allowed, ok := a.o.MayServe(r, tenant)
	switch {
	case !ok:
		jsonhttp.Error(w, http.StatusUnauthorized, "who are you?")
	case !allowed:
		jsonhttp.Error(w, http.StatusForbidden, "this token may not serve tenant "+tenant)
	}
	return tenant, ok && allowed
}

// notices returns the tenant's published notices: per incident the newest
// version sent, rendered in the customer's locale.
func (a *API) notices(ctx context.Context, tenant string) ([]Notice, map[string]incident.Delivery, error) {
	latest := map[string]incident.Delivery{}
	err := a.o.Outbox.Deliveries(ctx, incident.DeliveryQuery{Tenant: tenant, Channel: incident.ChannelInApp,
		States: []string{incident.DeliverySent}}, func(d *incident.Delivery) error {
		if d.Tenant != tenant {
			return errors.New("the outbox answered for another tenant") // never shown: a store bug guard
		}
		if cur, ok := latest[d.Incident]; !ok || d.Version > cur.Version {
			latest[d.Incident] = *d
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	out := []Notice{}
	byID := map[string]incident.Delivery{}
	for _, d := range latest {
		inc, ok := a.o.Incidents.Get(d.Incident)
		if !ok {
			continue
		}
		v := inc.Notice(d.Version)
		if v == nil || !v.Approved() {
			continue
		}
		r, err := a.o.Catalog.Render(v, notify.Facts{How: d.Facts.How, Records: d.Facts.Records, Categories: d.Facts.Categories,
			Locale: d.Facts.Locale, Zone: notify.Zone(d.Facts.TimeZone, nil), Earlier: inc.ReachedBefore(d.Version)[tenant], Country: d.Facts.Country})
		if err != nil {
			return nil, nil, err
		}
		n := Notice{ID: d.ID, Incident: d.Incident, Version: d.Version, PublishedAt: d.SentAt, Locale: r.Locale, Dir: r.Dir,
			Subject: r.Subject, Text: r.Text, HTML: r.HTML}
		err = a.o.Ledger.DeliveryEvents(ctx, d.Incident, d.ID, func(e *incident.DeliveryEvent) error {
			if e.Type == incident.EventRead && n.ReadAt == nil {
				at := e.At
				n.ReadAt = &at
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		out = append(out, n)
		byID[d.ID] = d
	}
	// Newest first.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].PublishedAt.After(out[j-1].PublishedAt); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, byID, nil
}

// List serves GET /api/v1/tenants/{tenant}/notices.
func (a *API) List() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant, ok := a.authorize(w, r)
		if !ok {
			return
		}
		ns, _, err := a.notices(r.Context(), tenant)
		if err != nil {
			a.o.Log.Error("in-app notices", zap.Error(err))
			jsonhttp.Error(w, http.StatusServiceUnavailable, "notices are unavailable; try again")
			return
		}
		jsonhttp.Write(w, http.StatusOK, map[string]any{"tenant": tenant, "notices": ns})
	})
}

// Read serves POST /api/v1/tenants/{tenant}/notices/{id}/read: the
// customer has seen the notice. The first receipt counts; later ones are
// accepted and change nothing.
func (a *API) Read() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant, ok := a.authorize(w, r)
		if !ok {
			return
		}
		_, byID, err := a.notices(r.Context(), tenant)
		if err != nil {
			a.o.Log.Error("in-app notices", zap.Error(err))
			jsonhttp.Error(w, http.StatusServiceUnavailable, "notices are unavailable; try again")
			return
		}
		d, found := byID[r.PathValue("id")]
		if !found {
			// The same answer whether the id is another tenant's or none.
			jsonhttp.Error(w, http.StatusNotFound, "no such notice")
			return
		}
		_, err = a.o.Ledger.AddDeliveryEvents(r.Context(), []incident.DeliveryEvent{{ID: "read:" + d.ID, Delivery: d.ID, Incident: d.Incident,
			Tenant: d.Tenant, Type: incident.EventRead, At: a.o.Now().UTC()}})
		if err != nil {
			a.o.Log.Error("recording a read receipt", zap.Error(err))
			jsonhttp.Error(w, http.StatusServiceUnavailable, "the receipt could not be recorded; try again")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

//go:embed widget/notices.js widget/notices.css
var widget embed.FS

// WidgetFiles are the widget's files, served under /widget/v1/.
var WidgetFiles = []string{"notices.js", "notices.css"}

// Widget serves one of the widget's files (public and static: it holds no
// data; the notices come from the product's backend).
func Widget(name string) http.Handler {
	b, err := widget.ReadFile("widget/" + name)
	ctype := "text/javascript; charset=utf-8"
	if len(name) > 4 && name[len(name)-4:] == ".css" {
		ctype = "text/css; charset=utf-8"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		// Loaded by the product's pages, from another origin.
		w.Header().Set("Cross-Origin-Resource-Policy", "cross-origin")
		_, _ = w.Write(b)
	})
}
