package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/incident"
)

// Outbox is where deliveries are written before they are sent, and their
// state after (both stores implement it).
type Outbox interface {
	EnqueueDeliveries(ctx context.Context, ds []incident.Delivery) error
	UpdateDeliveries(ctx context.Context, ds []incident.Delivery) error
	Deliveries(ctx context.Context, q incident.DeliveryQuery, fn func(*incident.Delivery) error) error
}

// Work is where the notices to send come from, and where reaching every
// customer is reported (the tracker).
type Work interface {
	Sending() []incident.Incident
	NoticeReached(ctx context.Context, id string, p incident.NoticeProgress) error
}

// RecordsTag is the per-recipient substitution tag for a customer's record
// count, so that customers whose notices differ only in it share one
// rendering and one provider request.
const RecordsTag = "%bw_records%"

// Recipient is one addressee of a batched message.
type Recipient struct {
	Delivery string // the outbox id, sent along as a custom argument
	Address  string
	// Substitutions replace tags in the content for this recipient only.
	Substitutions map[string]string
}

// Message is one rendered notice for one or more recipients (the same
// content; per-recipient substitutions aside).
type Message struct {
	Batch      string // names this attempt, sent along as a custom argument
	Incident   string
	Version    int
	Subject    string
	Text, HTML string
	Recipients []Recipient
}

// Mailer sends e-mail. SendGrid implements it; so does the dev mailbox.
type Mailer interface {
	// Send sends m to every recipient, retrying what is worth retrying
	// (rate limits, server errors) within ctx. It returns nil only when
	// the provider accepted the whole message.
	Send(ctx context.Context, m Message) error
	// Accepted tells whether an earlier attempt (batch, with these
	// deliveries) reached the provider: after a crash, a delivery claimed
	// but not recorded is looked up before anything is sent again. It
	// returns ErrCannotTell when the provider cannot say.
	Accepted(ctx context.Context, batch string, deliveries []string) (bool, error)
}

// ErrCannotTell: the provider cannot say whether a message was accepted.
var ErrCannotTell = errors.New("the provider cannot tell whether the message was accepted")

// ErrUncertain is wrapped by a send error after which the message may or
// may not have been accepted (e.g. the response never came): its
// deliveries stay claimed and are reconciled, never blindly resent.
var ErrUncertain = errors.New("the request may have reached the provider")

// PermanentError is a refusal that sending again will not change (e.g. a
// 400): the deliveries are marked failed, for a person to look at. Its
// text is safe to show (no provider response body, no address).
type PermanentError struct{ Msg string }

func (e *PermanentError) Error() string { return e.Msg }

// MaxPersonalizations is SendGrid's limit of recipients per request.
const MaxPersonalizations = 1000

// Options configure a Notifier.
type Options struct {
	Outbox  Outbox
	Work    Work
	Mailer  Mailer
	Catalog *Catalogs
	// Recipients lists the e-mail addresses of a tenant's contacts (the
	// customer directory).
	Recipients func(tenant string) []string
	// Reconcile: a delivery claimed this long ago without a recorded
	// result is looked up with the provider (default 10 minutes: the
	// provider's activity search lags).
	ReconcileAfter time.Duration
	// Workers send this many requests at once (default 4).
	Workers    int
	Registerer prometheus.Registerer
	Now        func() time.Time
	Log        *zap.Logger
}

// Notifier delivers approved notices through the outbox. One runs per
// store: it is the outbox's only writer.
type Notifier struct {
	o        Options
	log      *zap.Logger
	mu       sync.Mutex
	enqueued map[string]bool // incident/version written to the outbox by this process
	inflight map[string]bool // batches this process is sending now
	m        struct {
		sent, failed, retried *prometheus.CounterVec
	}
}

// New returns a Notifier.
func New(o Options) (*Notifier, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.ReconcileAfter == 0 {
		o.ReconcileAfter = 10 * time.Minute
	}
	if o.Recipients == nil {
		o.Recipients = func(string) []string { return nil }
	}
	n := &Notifier{o: o, log: o.Log, enqueued: map[string]bool{}, inflight: map[string]bool{}}
	n.m.sent = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breachwatch_notices_sent_total",
		Help: "Customer notices accepted by the provider (email) or published (inapp)."}, []string{"channel"})
	n.m.failed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breachwatch_notices_failed_total",
		Help: "Customer notices refused for good by the provider."}, []string{"channel"})
	n.m.retried = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breachwatch_notice_send_errors_total",
		Help: "Send attempts that failed and will be retried."}, []string{"channel"})
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{n.m.sent, n.m.failed, n.m.retried} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("notify: metrics: %w", err)
			}
		}
	}
	return n, nil
}

// Run works the outbox every interval until ctx ends; wake makes it work
// at once (e.g. when the tracker changed).
func (n *Notifier) Run(ctx context.Context, interval time.Duration, wake <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := n.Once(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("notices: will retry", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
	}
}

// Once does one round: writes the deliveries of newly sent versions,
// reconciles attempts a crash left unrecorded, sends what is pending and
// reports incidents whose customers were all reached.
func (n *Notifier) Once(ctx context.Context) error {
	var errs []error
	for _, inc := range n.o.Work.Sending() {
		if err := n.enqueue(ctx, &inc); err != nil {
			errs = append(errs, err)
			continue
		}
		// One read of the incident's open e-mail deliveries serves both
		// the reconciliation and the sending.
		var claimed, pending []incident.Delivery
		err := n.o.Outbox.Deliveries(ctx, incident.DeliveryQuery{Incident: inc.ID, Channel: incident.ChannelEmail,
			States: []string{incident.DeliveryPending, incident.DeliverySending}}, func(d *incident.Delivery) error {
			if d.State == incident.DeliverySending {
				claimed = append(claimed, *d)
			} else {
				pending = append(pending, *d)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		back, err := n.reconcile(ctx, inc.ID, claimed)
		if err != nil {
			errs = append(errs, err)
		}
		if err := n.sendPending(ctx, &inc, append(pending, back...)); err != nil {
			errs = append(errs, err)
		}
		if err := n.report(ctx, &inc); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// enqueue writes one in-app delivery per affected customer (published by
// being written) and one e-mail delivery per contact address. Idempotent:
// the outbox keeps rows already written as they are.
func (n *Notifier) enqueue(ctx context.Context, inc *incident.Incident) error {
	key := inc.ID + "/" + fmt.Sprint(inc.NoticeSending)
	n.mu.Lock()
	done := n.enqueued[key]
	n.mu.Unlock()
	if done || !inc.NoticeSentAt.IsZero() {
		// Written already (by this process, or everyone was reached).
		return nil
	}
	v := inc.Notice(inc.NoticeSending)
	if v == nil || !v.Approved() {
		return fmt.Errorf("incident %s: version %d being sent is not approved", inc.ID, inc.NoticeSending)
	}
	// The audience and the facts stated to each were pinned when sending
	// began; a change since is an update required (a supplementary
	// version), not a reason to hold these back.
	aud := audience(inc)
	now := n.o.Now().UTC()
	var ds []incident.Delivery
	for _, t := range aud {
		ds = append(ds, incident.Delivery{ID: incident.DeliveryID(inc.ID, v.Version, t.Tenant, t.Tenant, incident.ChannelInApp),
			Incident: inc.ID, Version: v.Version, Tenant: t.Tenant, Recipient: t.Tenant, Channel: incident.ChannelInApp, Facts: t,
			State: incident.DeliverySent, CreatedAt: now, UpdatedAt: now, SentAt: now})
		for _, addr := range n.o.Recipients(t.Tenant) {
			ds = append(ds, incident.Delivery{ID: incident.DeliveryID(inc.ID, v.Version, t.Tenant, addr, incident.ChannelEmail),
				Incident: inc.ID, Version: v.Version, Tenant: t.Tenant, Recipient: addr, Channel: incident.ChannelEmail, Facts: t,
				State: incident.DeliveryPending, CreatedAt: now, UpdatedAt: now})
		}
	}
	for start := 0; start < len(ds); start += 10_000 {
		if err := n.o.Outbox.EnqueueDeliveries(ctx, ds[start:min(start+10_000, len(ds))]); err != nil {
			return fmt.Errorf("incident %s: writing the outbox: %w", inc.ID, err)
		}
	}
	n.mu.Lock()
	n.enqueued[key] = true
	n.mu.Unlock()
	n.log.Info("notices enqueued", zap.String("incident", inc.ID), zap.Int("version", v.Version),
		zap.Int("customers", len(aud)), zap.Int("deliveries", len(ds)))
	return nil
}

// audience is whom the version being sent goes to, with the facts it
// states to each: its phase's audience (the scope for a log written before
// phases were kept).
func audience(inc *incident.Incident) []incident.AffectedTenant {
	if p := inc.PhaseOf(inc.NoticeSending); p != nil {
		return p.Audience
	}
	return inc.Scope.Tenants
}

// reconcile settles deliveries left in "sending" by an attempt that did
// not record its result (a crash): those the provider has are sent, those
// it does not are pending again; when it cannot tell, they stay for a
// person (never sent twice).
func (n *Notifier) reconcile(ctx context.Context, id string, claimed []incident.Delivery) ([]incident.Delivery, error) {
	byBatch := map[string][]incident.Delivery{}
	for _, d := range claimed {
		// Attempts in flight are not lost; the others wait until the
		// provider's records caught up.
		n.mu.Lock()
		flying := n.inflight[d.Batch]
		n.mu.Unlock()
		if !flying && n.o.Now().Sub(d.UpdatedAt) >= n.o.ReconcileAfter {
			byBatch[d.Batch] = append(byBatch[d.Batch], d)
		}
	}
	var back []incident.Delivery
	now := n.o.Now().UTC()
	for batch, ds := range byBatch {
		ids := make([]string, len(ds))
		for i := range ds {
			ids[i] = ds[i].ID
		}
		ok, err := n.o.Mailer.Accepted(ctx, batch, ids)
		switch {
		case errors.Is(err, ErrCannotTell):
			for i := range ds {
				ds[i].State, ds[i].Error, ds[i].UpdatedAt = incident.DeliveryFailed,
					"unknown: interrupted while sending and the provider cannot tell whether it was accepted; check before resending", now
			}
		case err != nil:
			return back, fmt.Errorf("incident %s: looking up batch %s: %w", id, batch, err)
		case ok:
			for i := range ds {
				ds[i].State, ds[i].SentAt, ds[i].Error, ds[i].UpdatedAt = incident.DeliverySent, now, "", now
			}
		default:
			for i := range ds {
				ds[i].State, ds[i].Batch, ds[i].UpdatedAt = incident.DeliveryPending, "", now
			}
		}
		if err := n.o.Outbox.UpdateDeliveries(ctx, ds); err != nil {
			return back, err
		}
		if !ok && err == nil {
			back = append(back, ds...) // pending again: sent in this round
		}
		n.log.Info("notices: reconciled an interrupted batch", zap.String("incident", id), zap.String("batch", batch),
			zap.Int("deliveries", len(ds)), zap.Bool("accepted", ok), zap.Bool("unknown", errors.Is(err, ErrCannotTell)))
	}
	return back, nil
}

// group is deliveries whose notices render alike: one rendering, requests
// of up to MaxPersonalizations recipients.
type group struct {
	facts   incident.AffectedTenant
	earlier time.Time
	ds      []incident.Delivery
}

func renderKey(f incident.AffectedTenant, earlier time.Time) string {
	// One record is worded apart ("one record", not "about 1 records").
	return strings.Join([]string{f.How, strings.Join(f.Categories, ","), f.Locale, f.TimeZone, f.Country, earlier.String(),
		strconv.FormatBool(f.Records == 1)}, "\x00")
}

// sendPending sends the incident's pending e-mail deliveries of the version
// being sent (earlier versions' pending rows are left: superseded).
func (n *Notifier) sendPending(ctx context.Context, inc *incident.Incident, pending []incident.Delivery) error {
	v := inc.Notice(inc.NoticeSending)
	groups := map[string]*group{}
	var keys []string
	earlier := inc.ReachedBefore(inc.NoticeSending)
	for _, d := range pending {
		if d.Version != inc.NoticeSending {
			continue // an earlier version's: superseded
		}
		k := renderKey(d.Facts, earlier[d.Tenant])
		g := groups[k]
		if g == nil {
			g = &group{facts: d.Facts, earlier: earlier[d.Tenant]}
			groups[k] = g
			keys = append(keys, k)
		}
		g.ds = append(g.ds, d)
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	type job struct {
		m  Message
		ds []incident.Delivery
	}
	var jobs []job
	for _, k := range keys {
		g := groups[k]
		facts := Facts{How: g.facts.How, Categories: g.facts.Categories, Locale: g.facts.Locale, Zone: Zone(g.facts.TimeZone, nil),
			RecordsText: RecordsTag, Earlier: g.earlier, Country: g.facts.Country}
		if g.facts.Records == 1 {
			facts.Records, facts.RecordsText = 1, ""
		}
		r, err := n.o.Catalog.Render(v, facts)
		if err != nil {
			return err
		}
		cat := n.o.Catalog.Match(g.facts.Locale)
		for start := 0; start < len(g.ds); start += MaxPersonalizations {
			part := g.ds[start:min(start+MaxPersonalizations, len(g.ds))]
			m := Message{Batch: newBatchID(), Incident: inc.ID, Version: v.Version, Subject: r.Subject, Text: r.Text, HTML: r.HTML}
			for _, d := range part {
				m.Recipients = append(m.Recipients, Recipient{Delivery: d.ID, Address: d.Recipient,
					Substitutions: map[string]string{RecordsTag: cat.Number(d.Facts.Records)}})
			}
			jobs = append(jobs, job{m: m, ds: part})
		}
	}
	sem := make(chan struct{}, n.o.Workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := n.sendBatch(ctx, j.m, j.ds); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// sendBatch claims the deliveries (recorded before the request), sends,
// and records the result.
func (n *Notifier) sendBatch(ctx context.Context, m Message, ds []incident.Delivery) error {
	now := n.o.Now().UTC()
	for i := range ds {
		ds[i].State, ds[i].Batch, ds[i].Attempts, ds[i].UpdatedAt = incident.DeliverySending, m.Batch, ds[i].Attempts+1, now
	}
	n.mu.Lock()
	n.inflight[m.Batch] = true
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.inflight, m.Batch)
		n.mu.Unlock()
	}()
	if err := n.o.Outbox.UpdateDeliveries(ctx, ds); err != nil {
		return fmt.Errorf("claiming deliveries: %w", err)
	}
	err := n.o.Mailer.Send(ctx, m)
	now = n.o.Now().UTC()
	var perm *PermanentError
	switch {
	case errors.Is(err, ErrUncertain):
		// Left claimed: reconciliation asks the provider before any resend.
		n.m.retried.WithLabelValues(incident.ChannelEmail).Inc()
		return fmt.Errorf("batch %s of incident %s: %w", m.Batch, m.Incident, err)
	case err == nil:
		for i := range ds {
			ds[i].State, ds[i].SentAt, ds[i].Error, ds[i].UpdatedAt = incident.DeliverySent, now, "", now
		}
		n.m.sent.WithLabelValues(incident.ChannelEmail).Add(float64(len(ds)))
	case errors.As(err, &perm):
		for i := range ds {
			ds[i].State, ds[i].Error, ds[i].UpdatedAt = incident.DeliveryFailed, perm.Msg, now
		}
		n.m.failed.WithLabelValues(incident.ChannelEmail).Add(float64(len(ds)))
	default:
		// Not accepted (the mailer says so only when the provider answered
		// or the request never left): pending again, retried next round.
		for i := range ds {
			ds[i].State, ds[i].Batch, ds[i].Error, ds[i].UpdatedAt = incident.DeliveryPending, "", "will retry: "+safeReason(err), now
		}
		n.m.retried.WithLabelValues(incident.ChannelEmail).Inc()
	}
	// Recorded even when ctx ended: the result is known now and must not
	// be left for reconciliation.
	if uerr := n.o.Outbox.UpdateDeliveries(context.WithoutCancel(ctx), ds); uerr != nil {
		return fmt.Errorf("recording batch %s: %w", m.Batch, uerr)
	}
	if err != nil && perm == nil {
		return fmt.Errorf("batch %s of incident %s: %w", m.Batch, m.Incident, err)
	}
	return nil
}

// safeReason is an error's kind for the ledger: never a response body.
func safeReason(err error) string {
	var s interface{ SafeReason() string }
	if errors.As(err, &s) {
		return s.SafeReason()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "interrupted"
	}
	return "the provider could not be reached"
}

func newBatchID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "b-" + hex.EncodeToString(b[:])
}

// Progress is how far an incident's notice got, per customer and in all.
type Progress struct {
	Version   int              `json:"version"`
	Customers int              `json:"customers"`
	Reached   int              `json:"reached"` // e-mail accepted or in-app published
	Counts    map[string]int   `json:"counts"`  // e-mail deliveries by state and event
	PerTenant []TenantProgress `json:"per_tenant,omitempty"`
	FollowUp  []TenantProgress `json:"follow_up"` // bounced, dropped or failed: someone must follow up
	byTenant  map[string]*TenantProgress
}

// TenantProgress is one customer's deliveries.
type TenantProgress struct {
	Tenant    string `json:"tenant"`
	Emails    int    `json:"emails"`
	Sent      int    `json:"sent"`
	Pending   int    `json:"pending"`
	Failed    int    `json:"failed"`
	Delivered int    `json:"delivered"`
	Bounced   int    `json:"bounced"`
	InApp     bool   `json:"in_app"`
	Read      bool   `json:"read"`
	// NoEmail: the customer directory has no e-mail address for it; only
	// the in-app notice reached it (a follow-up: find an address).
	NoEmail bool `json:"no_email,omitempty"`
}

// Ledger is where events about deliveries are kept (both stores).
type Ledger interface {
	AddDeliveryEvents(ctx context.Context, es []incident.DeliveryEvent) ([]incident.DeliveryEvent, error)
	DeliveryEvents(ctx context.Context, inc, delivery string, fn func(*incident.DeliveryEvent) error) error
}

// Progress counts an incident's deliveries of version (the one being sent
// when 0) and their events.
func ProgressOf(ctx context.Context, ob Outbox, l Ledger, inc *incident.Incident, version int, perTenant bool) (*Progress, error) {
	if version == 0 {
		version = inc.NoticeSending
	}
	p := &Progress{Version: version, Counts: map[string]int{}, byTenant: map[string]*TenantProgress{}, FollowUp: []TenantProgress{}}
	tp := func(t string) *TenantProgress {
		x := p.byTenant[t]
		if x == nil {
			x = &TenantProgress{Tenant: t}
			p.byTenant[t] = x
		}
		return x
	}
	byID := map[string]string{}
	err := ob.Deliveries(ctx, incident.DeliveryQuery{Incident: inc.ID, Version: version}, func(d *incident.Delivery) error {
		x := tp(d.Tenant)
		byID[d.ID] = d.Tenant
		if d.Channel == incident.ChannelInApp {
			x.InApp = d.State == incident.DeliverySent
			return nil
		}
		x.Emails++
		p.Counts[d.State]++
		switch d.State {
		case incident.DeliverySent:
			x.Sent++
		case incident.DeliveryFailed:
			x.Failed++
		default:
			x.Pending++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	err = l.DeliveryEvents(ctx, inc.ID, "", func(e *incident.DeliveryEvent) error {
		t, ok := byID[e.Delivery]
		if !ok || seen[e.Delivery+e.Type] {
			return nil // another version's, or a second event of the kind
		}
		seen[e.Delivery+e.Type] = true
		x := tp(t)
		p.Counts[e.Type]++
		switch e.Type {
		case incident.EventDelivered:
			x.Delivered++
		case incident.EventBounce, incident.EventDropped:
			x.Bounced++
		case incident.EventRead:
			x.Read = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	tenants := make([]string, 0, len(p.byTenant))
	for t := range p.byTenant {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants)
	for _, t := range tenants {
		x := p.byTenant[t]
		p.Customers++
		if x.InApp || x.Sent > 0 {
			p.Reached++
		}
		x.NoEmail = x.Emails == 0
		if x.Bounced > 0 || x.Failed > 0 || x.NoEmail {
			p.FollowUp = append(p.FollowUp, *x)
		}
		if perTenant {
			p.PerTenant = append(p.PerTenant, *x)
		}
	}
	return p, nil
}

// report tells the tracker when every affected customer was reached with
// the version being sent.
func (n *Notifier) report(ctx context.Context, inc *incident.Incident) error {
	if !inc.NoticeSentAt.IsZero() {
		return nil
	}
	reached := map[string]bool{}
	err := n.o.Outbox.Deliveries(ctx, incident.DeliveryQuery{Incident: inc.ID, Version: inc.NoticeSending,
		States: []string{incident.DeliverySent}}, func(d *incident.Delivery) error {
		reached[d.Tenant] = true
		return nil
	})
	if err != nil {
		return err
	}
	aud := audience(inc)
	for _, t := range aud {
		if !reached[t.Tenant] {
			return nil
		}
	}
	return n.o.Work.NoticeReached(ctx, inc.ID, incident.NoticeProgress{Version: inc.NoticeSending, Tenants: len(aud),
		Reached: len(reached)})
}
