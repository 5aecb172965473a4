package app

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/notify"
	"github.com/breachwatch/breachwatch/notify/email"
	"github.com/breachwatch/breachwatch/notify/inapp"
	"github.com/breachwatch/breachwatch/tracker"
	"github.com/breachwatch/breachwatch/web"
	"github.com/breachwatch/breachwatch/web/console"
)

// notices is the customer-notice side: the outbox worker and its routes.
type notices struct {
	notifier *notify.Notifier
	mailbox  *email.Mailbox // nil with SendGrid
	routes   []web.Route
	webhooks []web.Webhook
	assets   []web.Asset
	catalog  *notify.Catalogs
	outbox   notify.Outbox
	ledger   notify.Ledger
	zone     *time.Location
	sender   string // "sendgrid" or the mailbox's folder
	tracker  *tracker.Tracker
	// selfApproval: notify.self_approval (the console offers a version's
	// author its approval only then).
	selfApproval bool
	lead         incident.Authority // organisation.lead_authority
}

// newNotices builds the notifier: SendGrid when an API key is configured,
// the dev mailbox under the data dir otherwise.
func newNotices(o Options, st appStore, tr *tracker.Tracker, zone *time.Location, reg prometheus.Registerer, now func() time.Time,
	log *zap.Logger) (*notices, error) {
	cs, err := notify.LoadCatalogs()
	if err != nil {
		return nil, err
	}
	cs.Organisation = o.Organisation.Name
	n := &notices{catalog: cs, outbox: st, ledger: st, zone: zone, tracker: tr, selfApproval: o.Notify.SelfApproval,
		lead: incident.Authority{Name: o.Organisation.LeadAuthority.Name, Website: o.Organisation.LeadAuthority.Website}}
	var mailer notify.Mailer
	if o.Notify.SendGridAPIKey != "" {
		sg, err := email.NewSendGrid(email.SendGridOptions{APIKey: o.Notify.SendGridAPIKey, BaseURL: o.Notify.SendGridURL,
			From: o.Notify.From, FromName: fromName(o), ReplyTo: o.Notify.ReplyTo, Log: log.Named("sendgrid")})
		if err != nil {
			return nil, err
		}
		mailer, n.sender = sg, "SendGrid API at "+o.Notify.SendGridURL
	} else {
		dir := o.Notify.MailboxDir
		if dir == "" {
			dir = filepath.Join(o.DataDir, "mailbox")
		}
		mb, err := email.NewMailbox(dir, o.Notify.From, fromName(o))
		if err != nil {
			return nil, err
		}
		mailer, n.mailbox, n.sender = mb, mb, "dev mailbox "+dir
	}
	n.notifier, err = notify.New(notify.Options{Outbox: st, Work: tr, Mailer: mailer, Catalog: cs,
		Recipients: func(tenant string) []string {
			c, _ := tr.Customer(tenant)
			return c.Emails
		},
		ReconcileAfter: time.Duration(o.Notify.ReconcileAfter), Registerer: reg, Now: now, Log: log})
	if err != nil {
		return nil, err
	}
	staff := []web.Role{web.RoleEngineer, web.RoleDPO}
	api := &notify.API{Incidents: tr, Outbox: st, Ledger: st, Catalog: cs, Zone: zone, Log: log}
	app := inapp.New(inapp.Options{Outbox: st, Ledger: st, Incidents: tr, Catalog: cs, Now: now, Log: log,
		MayServe: func(r *http.Request, tenant string) (bool, bool) {
			p, ok := web.PrincipalOf(r)
			return ok && p.CanServe(tenant), ok
		}})
	n.routes = []web.Route{
		{Method: "GET", Path: "/api/v1/incidents/{id}/notice", Roles: staff, Handler: api.Get()},
		{Method: "GET", Path: "/api/v1/incidents/{id}/notice/preview", Roles: staff, Handler: api.Preview()},
		{Method: "GET", Path: "/api/v1/tenants/{tenant}/notices", Roles: []web.Role{web.RoleApp}, Handler: app.List()},
		{Method: "POST", Path: "/api/v1/tenants/{tenant}/notices/{id}/read", Roles: []web.Role{web.RoleApp}, Handler: app.Read()},
	}
	if o.Notify.SendGridWebhookKey != "" {
		key, err := email.ParsePublicKey(o.Notify.SendGridWebhookKey)
		if err != nil {
			return nil, fmt.Errorf("notify.sendgrid_webhook_key: %w", err)
		}
		wh, err := email.NewWebhook(email.WebhookOptions{Key: key, Ledger: st, Registerer: reg, Now: now, Log: log.Named("sendgrid")})
		if err != nil {
			return nil, err
		}
		n.webhooks = append(n.webhooks, web.Webhook{Method: "POST", Path: "/hooks/sendgrid/events", Handler: wh, MaxBytes: 8 << 20})
	}
	for _, f := range inapp.WidgetFiles {
		n.assets = append(n.assets, web.Asset{Path: "/widget/v1/" + f, Handler: inapp.Widget(f)})
	}
	if n.mailbox != nil {
		n.routes = append(n.routes,
			web.Route{Method: "GET", Path: "/api/v1/mailbox", Roles: staff, Handler: n.mailbox.ListHandler()},
			web.Route{Method: "GET", Path: "/api/v1/mailbox/{id}", Roles: staff, Handler: n.mailbox.MessageHandler()})
	}
	return n, nil
}

// NoticeData gives the console's notice page its data.
func (n *notices) NoticeData(ctx context.Context, inc incident.Incident) (*console.NoticeData, error) {
	d := &console.NoticeData{Locales: n.catalog.Locales(), LeadAuthority: n.lead}
	view := n.tracker.View(inc).Notice
	for i, v := range inc.Notices {
		row := console.NoticeVersionRow{Version: v.Version, Author: v.Author, At: v.At, Hash: v.Hash,
			ApprovedBy: v.ApprovedBy, ApprovedAt: v.ApprovedAt, SelfApproved: v.SelfApproved, Missing: v.Missing(),
			ScopeCurrent: v.ScopeHash == incident.ScopeHash(inc.Scope), Sending: v.Version == inc.NoticeSending && inc.NoticeSentAt.IsZero(),
			Sent:          inc.PhaseOf(v.Version) != nil && inc.PhaseOf(v.Version).Reached(),
			Supplementary: v.Supplementary, Correction: v.Correction}
		if view != nil && i < len(view.Versions) {
			row.Diff = view.Versions[i].Diff
		}
		d.Versions = append(d.Versions, row)
	}
	if view != nil {
		d.Phases = view.Phases
	}
	if a := inc.LatestApproved(); a != nil && a.Version != inc.NoticeSending {
		d.Sendable = true
	}
	d.SelfApproval = n.selfApproval
	if len(inc.Notices) == 0 {
		return d, nil
	}
	latest := &inc.Notices[len(inc.Notices)-1]
	d.Latest = &latest.Notice
	aud := inc.Scope.Tenants
	if p := inc.PhaseOf(latest.Version); p != nil {
		aud = p.Audience
	} else if latest.Supplementary {
		aud, _ = inc.Audience(latest)
	}
	for _, l := range n.catalog.Languages(latest, aud) {
		d.Languages = append(d.Languages, console.LanguageRow{Locale: l.Locale, Customers: l.Customers, Asked: l.Asked, TextInEnglish: l.TextInEnglish})
	}
	ps, err := n.catalog.Previews(latest, inc.Scope, n.zone)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		d.Previews = append(d.Previews, console.Preview{Locale: p.Locale, Dir: p.Dir, Subject: p.Subject, HTML: p.HTML, Customer: p.Customer,
			TimeZone: p.TimeZone, Fallback: p.Fallback})
	}
	if inc.NoticeSending > 0 {
		p, err := notify.ProgressOf(ctx, n.outbox, n.ledger, &inc, 0, true)
		if err != nil {
			return nil, err
		}
		cp := &console.Progress{Customers: p.Customers, Reached: p.Reached, Sent: p.Counts[incident.DeliverySent],
			Pending: p.Counts[incident.DeliveryPending] + p.Counts[incident.DeliverySending], Failed: p.Counts[incident.DeliveryFailed],
			Delivered: p.Counts[incident.EventDelivered], Bounced: p.Counts[incident.EventBounce] + p.Counts[incident.EventDropped],
			Read: p.Counts[incident.EventRead]}
		for _, t := range p.PerTenant {
			cp.Tenants = append(cp.Tenants, console.TenantProgress{Tenant: t.Tenant, Emails: t.Emails, Sent: t.Sent, Pending: t.Pending,
				Failed: t.Failed, Delivered: t.Delivered, Bounced: t.Bounced, InApp: t.InApp, Read: t.Read})
		}
		d.Progress = cp
	}
	return d, nil
}

// NoticePreview renders the newest version in one locale, for the
// console's preview frames (ok is false for no version or no such locale).
func (n *notices) NoticePreview(inc incident.Incident, locale string) (string, bool, error) {
	if len(inc.Notices) == 0 || !slices.Contains(n.catalog.Locales(), locale) {
		return "", false, nil
	}
	p, err := n.catalog.Preview(&inc.Notices[len(inc.Notices)-1], inc.Scope, locale, n.zone)
	return p.HTML, err == nil, err
}

// consoleMailbox shows the dev mailbox in the console.
type consoleMailbox struct{ mb *email.Mailbox }

func (m consoleMailbox) Messages() ([]console.MailboxEntry, error) {
	es, err := m.mb.List()
	if err != nil {
		return nil, err
	}
	out := make([]console.MailboxEntry, len(es))
	for i, e := range es {
		out[i] = console.MailboxEntry{ID: e.ID, To: e.To, Subject: e.Subject, Incident: e.Incident, Date: e.Date}
	}
	return out, nil
}

func (m consoleMailbox) Message(id string) (string, string, string, string, error) {
	return m.mb.Parts(id)
}

// fromName is the e-mail sender's name: notify.from_name, else the
// organisation's name, else "Security".
func fromName(o Options) string {
	switch {
	case o.Notify.FromName != "":
		return o.Notify.FromName
	case o.Organisation.Name != "":
		return o.Organisation.Name
	}
	return "Security"
}
