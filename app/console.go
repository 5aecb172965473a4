package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/breachwatch/breachwatch/detect"
	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/tracker"
	"github.com/breachwatch/breachwatch/web/console"
)

// newConsole builds the web console when users are configured, or with
// demo logins in development (the dev token on, no users configured); it
// returns the demo logins to print.
func newConsole(o Options, st appStore, tr *tracker.Tracker, nt *notices, admin *tokenAdmin, engine func() *detect.Engine, zone *time.Location, now func() time.Time, log *zap.Logger) (*console.Console, []string, error) {
	cfg := o.Console.Users
	var demo []string
	if len(cfg) == 0 && o.Auth.DevToken {
		var err error
		if cfg, demo, err = devLogins(o.DataDir); err != nil {
			return nil, nil, err
		}
	}
	if len(cfg) == 0 && o.Console.OIDC.Issuer == "" {
		return nil, nil, nil
	}
	var users []console.User
	for _, u := range cfg {
		users = append(users, console.User{Name: u.Name, Role: u.Role, Hash: []byte(u.PasswordHash)})
	}
	secure := !loopback(o.HTTP.Addr)
	if o.Console.SecureCookies != nil {
		secure = *o.Console.SecureCookies
	}
	co := console.Options{Users: users, Incidents: tr, Audit: tr, Commander: consoleCommander{tr}, Allowed: tracker.Allowed,
		Evidence: evidenceReader{st}, Notices: nt, Reports: consoleReports{tr}, Zone: zone, Secure: secure, Now: now, Log: log}
	co.Rules = consoleRules{engine: engine, st: st}
	co.Tokens = admin
	if nt.mailbox != nil {
		co.Mailbox = consoleMailbox{nt.mailbox}
	}
	c, err := console.New(co)
	if err != nil {
		return nil, nil, err
	}
	if oi := o.Console.OIDC; oi.Issuer != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.EnableOIDC(ctx, console.OIDCOptions{Issuer: oi.Issuer, ClientID: oi.ClientID, ClientSecret: oi.ClientSecret,
			RedirectURL: oi.RedirectURL, RolesClaim: oi.RolesClaim, Roles: oi.Roles, NameClaim: oi.NameClaim}); err != nil {
			return nil, nil, err
		}
	}
	return c, demo, nil
}

// devLogins creates (once) the demo logins of development in
// <data_dir>/dev-logins: an engineer and two DPOs (four eyes), with random
// passwords.
func devLogins(dataDir string) ([]ConsoleUser, []string, error) {
	path := filepath.Join(dataDir, "dev-logins")
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		var b strings.Builder
		for _, u := range [][2]string{{"erin", "engineer"}, {"dana", "dpo"}, {"olu", "dpo"}} {
			var r [12]byte
			if _, err := rand.Read(r[:]); err != nil {
				return nil, nil, err
			}
			fmt.Fprintf(&b, "%s %s %s\n", u[0], u[1], base64.RawURLEncoding.EncodeToString(r[:]))
		}
		raw = []byte(b.String())
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			return nil, nil, fmt.Errorf("dev logins: %w", err)
		}
	} else if err != nil {
		return nil, nil, fmt.Errorf("dev logins: %w", err)
	}
	var users []ConsoleUser
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, nil, fmt.Errorf("dev logins: %s: want lines of name, role and password", path)
		}
		h, err := bcrypt.GenerateFromPassword([]byte(f[2]), bcrypt.DefaultCost)
		if err != nil {
			return nil, nil, err
		}
		users = append(users, ConsoleUser{Name: f[0], Role: f[1], PasswordHash: string(h)})
		lines = append(lines, fmt.Sprintf("%-5s %-9s %s", f[0], f[1], f[2]))
	}
	return users, lines, nil
}

// loopback reports whether an HTTP address listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// consoleCommander carries out the console's forms on the tracker.
type consoleCommander struct{ tr *tracker.Tracker }

func (c consoleCommander) Command(ctx context.Context, actor, role, id, name string, form url.Values) (string, bool) {
	cmd := tracker.Command{Incident: id, Name: name, Reason: form.Get("reason"), To: form.Get("to"), Reference: form.Get("reference"),
		Hash: form.Get("hash")}
	if v := form.Get("version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return "version: want a number", false
		}
		cmd.Version = n
	}
	if name == tracker.CmdDraft {
		cmd.Notice = noticeFromForm(form)
		cmd.Correction = form.Get("correction") == "on"
	}
	if at := form.Get("at"); at != "" {
		// datetime-local inputs carry no zone: the console asks for UTC.
		t, err := time.ParseInLocation("2006-01-02T15:04", at, time.UTC)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, at); err != nil {
				return "at: want a time such as 2026-11-20T14:00", false
			}
		}
		cmd.At = t
	}
	return doCommand(ctx, c.tr, tracker.Actor{Name: actor, Role: role}, cmd)
}

// evidenceReader reads an incident's evidence events from the store: those
// its findings name, within their event-time span.
type evidenceReader struct {
	st interface {
		ScanAccess(ctx context.Context, from, to time.Time, fn func(*event.AccessEvent) error) error
		ScanConfig(ctx context.Context, from, to time.Time, fn func(*event.ConfigChange) error) error
	}
}

// maxEvidenceRows bounds the table.
const maxEvidenceRows = 200

func (e evidenceReader) Events(ctx context.Context, inc incident.Incident) ([]console.EvidenceRow, error) {
	want := map[string]bool{}
	for _, id := range inc.EventIDs {
		want[id] = true
	}
	if len(want) == 0 || inc.FirstSeen.IsZero() {
		return nil, nil
	}
	from, to := inc.FirstSeen, inc.LastSeen.Add(time.Millisecond)
	var rows []console.EvidenceRow
	stop := errors.New("enough")
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }
	err := e.st.ScanAccess(ctx, from, to, func(a *event.AccessEvent) error {
		if want[a.ID] {
			src := a.Country
			if a.SourceIP.IsValid() {
				src = a.SourceIP.String() + " " + a.Country
			}
			rows = append(rows, console.EvidenceRow{ID: a.ID, Time: ts(a.Time), Actor: fmt.Sprintf("%s %s (%s)", a.Actor.Type, a.Actor.ID, a.Actor.Tenant),
				Action: a.Action, Resource: a.Resource.Type + " " + a.Resource.ID + " @ " + a.Resource.Store, Tenant: a.Tenant,
				Outcome: a.Outcome, Source: src, UserAgent: a.UserAgent, Records: a.Records})
		}
		if len(rows) >= maxEvidenceRows {
			return stop
		}
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return nil, err
	}
	if inc.Kind == incident.KindExposure {
		err = e.st.ScanConfig(ctx, from, to, func(c *event.ConfigChange) error {
			if want[c.ID] {
				actor := ""
				if c.Actor != nil {
					actor = c.Actor.Type + " " + c.Actor.ID
				}
				rows = append(rows, console.EvidenceRow{ID: c.ID, Time: ts(c.Time), Actor: actor, Action: "set " + c.Setting + " to " + string(c.After),
					Resource: c.Resource.Type + " " + c.Resource.ID, Source: c.Source})
			}
			if len(rows) >= maxEvidenceRows {
				return stop
			}
			return nil
		})
		if err != nil && !errors.Is(err, stop) {
			return nil, err
		}
	}
	slices.SortFunc(rows, func(a, b console.EvidenceRow) int {
		if a.Time != b.Time {
			if a.Time < b.Time {
				return -1
			}
			return 1
		}
		return 0
	})
	return rows, nil
}

// noticeFromForm reads the console's draft form: text.<locale>.<field>,
// contact.*, authority.*, product. Locales left entirely empty are left out.
func noticeFromForm(form url.Values) *incident.Notice {
	n := &incident.Notice{Text: map[string]incident.NoticeText{},
		Contact:   incident.Contact{Name: strings.TrimSpace(form.Get("contact.name")), Email: strings.TrimSpace(form.Get("contact.email")), Phone: strings.TrimSpace(form.Get("contact.phone"))},
		Authority: incident.Authority{Name: strings.TrimSpace(form.Get("authority.name")), Website: strings.TrimSpace(form.Get("authority.website"))},
		Product:   strings.TrimSpace(form.Get("product"))}
	for key := range form {
		parts := strings.Split(key, ".")
		if len(parts) != 3 || parts[0] != "text" {
			continue
		}
		t := n.Text[parts[1]]
		v := strings.TrimSpace(strings.ReplaceAll(form.Get(key), "\r\n", "\n"))
		switch parts[2] {
		case "nature":
			t.Nature = v
		case "consequences":
			t.Consequences = v
		case "measures":
			t.Measures = v
		case "actions":
			t.Actions = v
		}
		n.Text[parts[1]] = t
	}
	for loc, t := range n.Text {
		if t == (incident.NoticeText{}) {
			delete(n.Text, loc)
		}
	}
	a := incident.NoticeText{Nature: strings.TrimSpace(form.Get("authority_text.nature")), Consequences: strings.TrimSpace(form.Get("authority_text.consequences")),
		Measures: strings.TrimSpace(form.Get("authority_text.measures"))}
	if a != (incident.NoticeText{}) {
		n.ForAuthority = &a
	}
	return n
}

// consoleReports gives the console the regulator report and the register.
type consoleReports struct{ tr *tracker.Tracker }

func (c consoleReports) ReportHTML(inc incident.Incident) ([]byte, error) {
	return tracker.RenderReportHTML(c.tr.Report(inc))
}

func (c consoleReports) RegisterRows() []console.RegisterRow {
	var out []console.RegisterRow
	for _, e := range c.tr.Register() {
		out = append(out, console.RegisterRow{Incident: e.Incident, Title: e.Title, Status: e.Status, Severity: e.Severity,
			DetectedAt: e.DetectedAt, Customers: e.Customers, Records: e.Records, AuthorityAt: e.AuthorityAt, CustomersAt: e.CustomersAt,
			NotNotifiedWhy: e.NotNotifiedWhy, Late: e.Late})
	}
	return out
}

func (c consoleReports) RegisterCSV(w io.Writer) error {
	return tracker.WriteRegisterCSV(csv.NewWriter(w), c.tr.Register())
}

func (c consoleReports) RegisterJSON(w io.Writer) error {
	head := c.tr.Head()
	return json.NewEncoder(w).Encode(map[string]any{"audit_head": head, "entries": c.tr.Register()})
}

// consoleRules describes the running rule set and its findings of the
// last day.
type consoleRules struct {
	engine func() *detect.Engine // nil result: detection is off
	st     interface {
		Findings(ctx context.Context, since time.Time, limit int) ([]incident.Finding, error)
	}
}

func (c consoleRules) RuleSet(ctx context.Context, since time.Time) (string, []console.RuleRow, error) {
	e := c.engine()
	if e == nil {
		return "", nil, nil
	}
	set := e.Set()
	fs, err := c.st.Findings(ctx, since, 0)
	if err != nil {
		return "", nil, err
	}
	count := map[string]int{}
	for _, f := range fs {
		count[f.RuleID]++
	}
	var out []console.RuleRow
	for _, r := range set.Rules() {
		out = append(out, console.RuleRow{ID: r.ID(), Title: r.Title(), Severity: r.Severity(), Kind: r.Kind(), Source: r.Source(),
			Where: r.Where(), Tags: r.Tags(), Findings: count[r.ID()]})
	}
	return set.Version(), out, nil
}
