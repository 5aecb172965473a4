package notify_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/internal/sendgridtest"
	"github.com/breachwatch/breachwatch/notify"
	"github.com/breachwatch/breachwatch/notify/email"
	"github.com/breachwatch/breachwatch/store/sqlite"
)

// work is a hand-written stand-in for the tracker: the incidents being
// sent, and the reports of reaching everyone.
type work struct {
	mu      sync.Mutex
	incs    []incident.Incident
	reached map[string]incident.NoticeProgress
}

func (w *work) Sending() []incident.Incident {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]incident.Incident(nil), w.incs...)
}

func (w *work) NoticeReached(_ context.Context, id string, p incident.NoticeProgress) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reached == nil {
		w.reached = map[string]incident.NoticeProgress{}
	}
	w.reached[id] = p
	for i := range w.incs {
		if w.incs[i].ID == id {
			w.incs[i].NoticeSentAt = time.Now()
		}
	}
	return nil
}

var locs = []string{"en", "nl", "sv", "fr", "ar", "pt-BR"}

// sendingIncident is an incident of n affected customers whose approved
// notice version 1 is being sent; customer i has records i+1.
func sendingIncident(n int) incident.Incident {
	inc := incident.Incident{ID: "inc-0123456789abcdef", Status: incident.StatusNotifying, Kind: incident.KindExposure,
		ExposureFrom: time.Date(2026, 11, 19, 22, 0, 0, 0, time.UTC), ExposureTo: time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)}
	for i := range n {
		how := incident.HowExposed
		if i%7 == 0 {
			how = incident.HowAccessed
		}
		inc.Scope.Tenants = append(inc.Scope.Tenants, incident.AffectedTenant{Tenant: fmt.Sprintf("cust-%06d", i), Records: int64(i + 1),
			Categories: []string{"contact", "booking"}, How: how, Locale: locs[i%len(locs)], TimeZone: "Europe/Amsterdam"})
	}
	v := incident.NoticeVersion{Version: 1, Author: "token:erin", At: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC),
		Notice: incident.Notice{Text: map[string]incident.NoticeText{"en": {Nature: "A bucket was public.", Consequences: "Spam.",
			Measures: "Closed it.", Actions: "Be wary."}}, Contact: incident.Contact{Name: "Dana", Email: "dpo@example.com"},
			Authority: incident.Authority{Name: "AP"}, Product: "Bookly"},
		WindowFrom: inc.ExposureFrom, WindowTo: inc.ExposureTo, ScopeHash: incident.ScopeHash(inc.Scope)}
	v.Hash = v.ComputeHash()
	v.ApprovedBy, v.ApprovedAt = "token:dana", v.At.Add(time.Hour)
	inc.Notices, inc.NoticeSending = []incident.NoticeVersion{v}, 1
	return inc
}

// recipients: one address per customer, two for every 100th.
func recipients(tenant string) []string {
	n, _ := strconv.Atoi(strings.TrimPrefix(tenant, "cust-"))
	out := []string{"owner@" + tenant + ".example"}
	if n%100 == 0 {
		out = append(out, "dpo@"+tenant+".example")
	}
	return out
}

func wantRecipients(n int) int { return n + (n+99)/100 }

func openStore(t testing.TB) *sqlite.Store {
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newSendGrid(t testing.TB, srv *sendgridtest.Server, waits *[]time.Duration) *email.SendGrid {
	var mu sync.Mutex
	sg, err := email.NewSendGrid(email.SendGridOptions{APIKey: "SG.test", BaseURL: srv.URL, From: "security@bookly.example",
		FromName: "Bookly Security", Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			if waits != nil {
				*waits = append(*waits, d)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

func newNotifier(t testing.TB, st *sqlite.Store, w notify.Work, m notify.Mailer, reconcileAfter time.Duration) *notify.Notifier {
	cs, err := notify.LoadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	n, err := notify.New(notify.Options{Outbox: st, Work: w, Mailer: m, Catalog: cs, Recipients: recipients, ReconcileAfter: reconcileAfter})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func progress(t *testing.T, st *sqlite.Store, inc *incident.Incident) *notify.Progress {
	t.Helper()
	p, err := notify.ProgressOf(context.Background(), st, st, inc, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSendGridFanOut(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	srv := sendgridtest.New("SG.test")
	defer srv.Close()
	const n = 2500
	w := &work{incs: []incident.Incident{sendingIncident(n)}}
	nt := newNotifier(t, st, w, newSendGrid(t, srv, nil), time.Nanosecond)
	if err := nt.Once(ctx); err != nil {
		t.Fatal(err)
	}
	// Every recipient exactly once.
	count := srv.Count()
	if len(count) != wantRecipients(n) {
		t.Fatalf("%d recipients got mail; want %d", len(count), wantRecipients(n))
	}
	for addr, c := range count {
		if c != 1 {
			t.Fatalf("%s got %d messages", addr, c)
		}
	}
	// Batched: customers whose notices render alike share requests of at
	// most 1000 recipients (12 render groups: 6 locales × accessed/exposed).
	if r := srv.Requests(); r < 12 || r > 24 {
		t.Errorf("%d requests for %d recipients in 12 groups", r, len(count))
	}
	byTo := map[string]sendgridtest.Message{}
	for _, m := range srv.Messages() {
		byTo[m.To] = m
	}
	// Each customer's own record count, in its locale's format.
	nl := byTo["owner@cust-001201.example"] // i=1201: nl, 1202 records
	if !strings.Contains(nl.Text, "ongeveer 1.202 records") || !strings.Contains(nl.HTML, `lang="nl"`) {
		t.Errorf("Dutch notice:\n%s", nl.Text)
	}
	ar := byTo["owner@cust-001204.example"] // i=1204: ar
	if !strings.Contains(ar.HTML, `dir="rtl"`) || !strings.Contains(ar.Text, "١٬٢٠٥") {
		t.Errorf("Arabic notice:\n%s", ar.Text)
	}
	for _, m := range []sendgridtest.Message{nl, ar} {
		if !m.BypassUnsubscribe || m.Delivery == "" || m.Batch == "" || m.Incident != "inc-0123456789abcdef" {
			t.Errorf("message settings: %+v", m)
		}
		for k, v := range m.CustomArgs {
			if strings.Contains(v, "@") {
				t.Errorf("custom arg %s carries an address: %q", k, v)
			}
		}
	}
	if p, ok := w.reached["inc-0123456789abcdef"]; !ok || p.Reached != n || p.Tenants != n {
		t.Errorf("reached: %+v", w.reached)
	}
	p := progress(t, st, &w.incs[0])
	if p.Customers != n || p.Reached != n || p.Counts[incident.DeliverySent] != wantRecipients(n) || len(p.FollowUp) != 0 {
		t.Errorf("progress: customers %d reached %d counts %v", p.Customers, p.Reached, p.Counts)
	}

	// Another round, and a restart: nothing goes out twice.
	if err := nt.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if err := newNotifier(t, st, w, newSendGrid(t, srv, nil), time.Nanosecond).Once(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(srv.Messages()); got != wantRecipients(n) {
		t.Fatalf("after more rounds and a restart: %d messages; want %d", got, wantRecipients(n))
	}
}

func TestSendGridRetries(t *testing.T) {
	ctx := context.Background()
	reset := func(d time.Duration) http.Header {
		return http.Header{"X-Ratelimit-Reset": {strconv.FormatInt(time.Now().Add(d).Unix(), 10)}}
	}
	tests := []struct {
		name      string
		faults    []sendgridtest.Fault
		wantState string
		wantError string
		wantWaits func([]time.Duration) bool
	}{
		{"429 waits for the reset header", []sendgridtest.Fault{{Status: 429, Header: reset(20 * time.Second)}}, incident.DeliverySent, "",
			func(w []time.Duration) bool { return len(w) == 1 && w[0] > 17*time.Second && w[0] <= 20*time.Second }},
		{"429 without a reset waits a second", []sendgridtest.Fault{{Status: 429}}, incident.DeliverySent, "",
			func(w []time.Duration) bool { return len(w) == 1 && w[0] == time.Second }},
		{"5xx backs off", []sendgridtest.Fault{{Status: 500}, {Status: 503}, {Status: 502}}, incident.DeliverySent, "",
			func(w []time.Duration) bool {
				return len(w) == 3 && w[0] < w[1] && w[1] < w[2] && w[0] >= 800*time.Millisecond && w[2] <= 5*time.Second
			}},
		{"400 fails for good", []sendgridtest.Fault{{Status: 400}}, incident.DeliveryFailed, "rejected by SendGrid (HTTP 400)",
			func(w []time.Duration) bool { return len(w) == 0 }},
		{"401 waits for the operator", []sendgridtest.Fault{{Status: 401}}, incident.DeliveryPending,
			"will retry: SendGrid refused the API key or its permissions (HTTP 401)", func(w []time.Duration) bool { return len(w) == 0 }},
		{"5xx past the attempts stays pending", []sendgridtest.Fault{{Status: 500}, {Status: 500}, {Status: 500}, {Status: 500}, {Status: 500},
			{Status: 500}}, incident.DeliveryPending, "will retry: SendGrid server error (HTTP 500)", func(w []time.Duration) bool { return len(w) == 6 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			srv := sendgridtest.New("SG.test")
			defer srv.Close()
			srv.FailNext(tc.faults...)
			var waits []time.Duration
			w := &work{incs: []incident.Incident{sendingIncident(1)}}
			_ = newNotifier(t, st, w, newSendGrid(t, srv, &waits), time.Nanosecond).Once(ctx)
			var ds []incident.Delivery
			_ = st.Deliveries(ctx, incident.DeliveryQuery{Channel: incident.ChannelEmail}, func(d *incident.Delivery) error {
				ds = append(ds, *d)
				return nil
			})
			if len(ds) != 2 || ds[0].State != tc.wantState || ds[0].Error != tc.wantError {
				t.Fatalf("deliveries: %+v", ds)
			}
			if !tc.wantWaits(waits) {
				t.Errorf("waits %v", waits)
			}
			want := 0
			if tc.wantState == incident.DeliverySent {
				want = 2
			}
			if got := len(srv.Messages()); got != want {
				t.Errorf("%d messages accepted; want %d", got, want)
			}
		})
	}
}

// interrupted sends through m and then reports an uncertain failure, as if
// the process lost the answer (accepted: the request got through first).
type interrupted struct {
	notify.Mailer
	accepted bool
}

func (i interrupted) Send(ctx context.Context, m notify.Message) error {
	if i.accepted {
		if err := i.Mailer.Send(ctx, m); err != nil {
			return err
		}
	}
	return fmt.Errorf("connection reset: %w", notify.ErrUncertain)
}

func TestInterruptedSendsAreReconciled(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		accepted  bool
		activity  bool
		wantMsgs  int
		wantState string
	}{
		{"the provider had it: recorded as sent, not resent", true, true, 2, incident.DeliverySent},
		{"the provider never got it: sent once after the restart", false, true, 2, incident.DeliverySent},
		{"the provider cannot tell: left for a person, never sent twice", true, false, 2, incident.DeliveryFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			srv := sendgridtest.New("SG.test")
			defer srv.Close()
			srv.Activity = tc.activity
			w := &work{incs: []incident.Incident{sendingIncident(1)}}
			sg := newSendGrid(t, srv, nil)
			if err := newNotifier(t, st, w, interrupted{Mailer: sg, accepted: tc.accepted}, time.Nanosecond).Once(ctx); !errors.Is(err, notify.ErrUncertain) {
				t.Fatalf("first run: %v", err)
			}
			// A restart: the claimed deliveries are looked up first.
			if err := newNotifier(t, st, w, sg, time.Nanosecond).Once(ctx); err != nil {
				t.Fatal(err)
			}
			if got := len(srv.Messages()); got != tc.wantMsgs {
				t.Errorf("%d messages; want %d", got, tc.wantMsgs)
			}
			for addr, c := range srv.Count() {
				if c != 1 {
					t.Errorf("%s got %d", addr, c)
				}
			}
			_ = st.Deliveries(ctx, incident.DeliveryQuery{Channel: incident.ChannelEmail}, func(d *incident.Delivery) error {
				if d.State != tc.wantState {
					t.Errorf("delivery %s: %s (%s); want %s", d.Recipient, d.State, d.Error, tc.wantState)
				}
				return nil
			})
		})
	}
}

func TestDevMailbox(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	dir := filepath.Join(t.TempDir(), "mailbox")
	mb, err := email.NewMailbox(dir, "security@bookly.example", "Bookly B.V.")
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	w := &work{incs: []incident.Incident{sendingIncident(n)}}
	for range 2 {
		if err := newNotifier(t, st, w, mb, time.Nanosecond).Once(ctx); err != nil {
			t.Fatal(err)
		}
	}
	list, err := mb.List()
	if err != nil || len(list) != wantRecipients(n) {
		t.Fatalf("mailbox holds %d messages, %v; want %d", len(list), err, wantRecipients(n))
	}
	var ar email.Entry
	for _, e := range list {
		if e.To == "<owner@cust-000004.example>" {
			ar = e
		}
	}
	if !strings.HasPrefix(ar.Subject, "إشعار أمني من") || ar.Incident != "inc-0123456789abcdef" {
		t.Errorf("Arabic entry: %+v", ar)
	}
	raw, err := mb.Read(ar.ID)
	if err != nil || !strings.Contains(string(raw), "multipart/alternative") || !strings.Contains(string(raw), `dir=3D"rtl"`) {
		t.Errorf("raw message (%v):\n%.600s", err, raw)
	}
	for _, bad := range []string{"../../etc/passwd", ar.ID + "/x", strings.ToUpper(ar.ID)} {
		if _, err := mb.Read(bad); !errors.Is(err, email.ErrNoMessage) {
			t.Errorf("Read(%q): %v", bad, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ar.ID+".eml")); err != nil {
		t.Fatal(err)
	}
}

// TestCustomerWithoutAddress: a customer the directory has no e-mail
// address for is reached by the in-app notice only, and flagged for
// follow-up, never silently counted as told by e-mail.
func TestCustomerWithoutAddress(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	mb, err := email.NewMailbox(t.TempDir(), "security@bookly.example", "Bookly B.V.")
	if err != nil {
		t.Fatal(err)
	}
	inc := sendingIncident(3)
	w := &work{incs: []incident.Incident{inc}}
	cs, err := notify.LoadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	n, err := notify.New(notify.Options{Outbox: st, Work: w, Mailer: mb, Catalog: cs, ReconcileAfter: time.Nanosecond,
		Recipients: func(tenant string) []string {
			if tenant == "cust-000001" {
				return nil
			}
			return recipients(tenant)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Once(ctx); err != nil {
		t.Fatal(err)
	}
	p := progress(t, st, &inc)
	if p.Reached != 3 || len(p.FollowUp) != 1 || p.FollowUp[0].Tenant != "cust-000001" || !p.FollowUp[0].NoEmail || !p.FollowUp[0].InApp {
		t.Errorf("progress: reached %d, follow-up %+v", p.Reached, p.FollowUp)
	}
}
