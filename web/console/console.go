// Package console is the web console where security engineers triage
// incidents and the DPO signs off: server-rendered (html/template and
// embedded files), a little plain JavaScript for countdowns, no framework. It
// authenticates people (local users with bcrypt hashes), keeps sessions in
// secure, HTTP-only, SameSite cookies, checks a CSRF token on every form,
// and authorizes every page and action on the server. It reads and changes
// incidents through the small interfaces it declares; app connects them.
package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/breachwatch/breachwatch/incident"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// User is a person who may sign in, with the role they act in.
type User struct {
	Name string
	Role string // engineer, dpo or admin
	Hash []byte // bcrypt hash of the password
}

// Incidents is what the console reads of the incidents (the tracker).
type Incidents interface {
	List(status incident.Status) []incident.Incident
	Get(id string) (incident.Incident, bool)
	View(inc incident.Incident) incident.View
}

// Audit reads an incident's audit entries.
type Audit interface {
	Audit(ctx context.Context, id string) ([]incident.AuditEntry, error)
}

// Commander carries out a command for someone; msg is safe to show; ok is
// false when it was refused.
type Commander interface {
	Command(ctx context.Context, actor, role, id, name string, form url.Values) (msg string, ok bool)
}

// Evidence reads the events an incident's evidence names (for the
// evidence table: attacker-controlled strings among them).
type Evidence interface {
	Events(ctx context.Context, inc incident.Incident) ([]EvidenceRow, error)
}

// EvidenceRow is one evidence event as the console shows it.
type EvidenceRow struct {
	ID, Time, Actor, Action, Resource, Tenant, Outcome, Source, UserAgent string
	Records                                                               int64
}

// Options configure the console.
type Options struct {
	Users     []User
	Incidents Incidents
	Audit     Audit
	Commander Commander
	// Allowed says whether a role may give a command (the tracker's
	// policy), so that pages offer only those.
	Allowed  func(role, cmd string) bool
	Evidence Evidence // nil: no evidence table
	Notices  Notices  // nil: no notice page
	Mailbox  Mailbox  // nil: no dev mailbox
	Reports  Reports  // nil: no report and register pages
	Rules    Rules    // nil: no rules page
	Tokens   Tokens   // nil: no token page
	// Zone is the organisation's time zone (deadlines are shown in UTC and
	// in it).
	Zone *time.Location
	// Secure marks cookies Secure (served over HTTPS, or behind a proxy
	// that is); off only for http://127.0.0.1 development.
	Secure bool
	// SessionTTL: idle sessions end after this (default 12 h).
	SessionTTL time.Duration
	Now        func() time.Time
	Log        *zap.Logger
}

// Console serves the console's pages.
type Console struct {
	o     Options
	users map[string]User
	tmpl  map[string]*template.Template
	dummy []byte // a hash to compare against for unknown users
	oidc  *oidcLogin

	mu       sync.Mutex
	sessions map[string]*session
	failures map[string][]time.Time // by user name and by address: recent failed logins
	swept    int                    // len(failures) after the last sweep
}

type session struct {
	user, role string
	csrf       string
	expires    time.Time
}

// New builds the console.
func New(o Options) (*Console, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Zone == nil {
		o.Zone = time.UTC
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	c := &Console{o: o, users: map[string]User{}, sessions: map[string]*session{}, failures: map[string][]time.Time{}}
	for _, u := range o.Users {
		if _, err := bcrypt.Cost(u.Hash); err != nil {
			return nil, errors.New("console: user " + u.Name + ": the password hash is not a bcrypt hash")
		}
		c.users[u.Name] = u
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("not a password of anyone"), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	c.dummy = dummy
	c.tmpl = map[string]*template.Template{}
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, p := range pages {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(c.funcs()).ParseFS(templateFS, "templates/layout.html", p)
		if err != nil {
			return nil, err
		}
		c.tmpl[name] = t
	}
	return c, nil
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

const cookieName = "bw_session"

// current returns the request's session, or nil.
func (c *Console) current(r *http.Request) *session {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return nil
	}
	now := c.o.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[ck.Value]
	if s == nil {
		return nil
	}
	if now.After(s.expires) {
		delete(c.sessions, ck.Value)
		return nil
	}
	s.expires = now.Add(c.o.SessionTTL) // sliding
	cp := *s
	return &cp
}

func (c *Console) setCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: value, Path: "/", HttpOnly: true, Secure: c.o.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: maxAge})
}

// Sign-in lockout: a name is refused after nameFailures failed sign-ins in
// lockoutWindow, an address after addrFailures (several people may sign in
// from behind one proxy: one of them mistyping must not lock the others
// out; an address trying many names is still stopped). Unknown names count
// like known ones, so the lockout does not tell which names exist.
const (
	nameFailures  = 5
	addrFailures  = 50
	lockoutWindow = 15 * time.Minute
)

// login checks a name and password; it takes bcrypt's time whether or not
// the user exists, and refuses a name or an address that failed too often
// (see nameFailures).
func (c *Console) login(name, password, addr string) (*User, string) {
	now := c.o.Now()
	keys := [2]string{"u:" + name, "a:" + addr}
	limits := [2]int{nameFailures, addrFailures}
	c.mu.Lock()
	c.sweepFailures(now)
	for i, k := range keys {
		if c.recentFailures(k, now) >= limits[i] {
			c.mu.Unlock()
			return nil, "Too many failed sign-ins; wait 15 minutes."
		}
	}
	c.mu.Unlock()
	u, ok := c.users[name]
	hash := c.dummy
	if ok {
		hash = u.Hash
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !ok {
		c.mu.Lock()
		for _, k := range keys {
			c.failures[k] = append(c.failures[k], now)
		}
		c.mu.Unlock()
		return nil, "Wrong name or password."
	}
	return &u, ""
}

// recentFailures drops a key's failures older than the lockout window and
// counts the others. c.mu held.
func (c *Console) recentFailures(k string, now time.Time) int {
	ts := slices.DeleteFunc(c.failures[k], func(t time.Time) bool { return now.Sub(t) >= lockoutWindow })
	if len(ts) == 0 {
		delete(c.failures, k)
		return 0
	}
	c.failures[k] = ts
	return len(ts)
}

// sweepFailures forgets the names and addresses with no recent failure once
// the map has doubled since the last sweep, so that guessing ever new names
// does not grow it without bound (amortized: each key is swept once). c.mu
// held.
func (c *Console) sweepFailures(now time.Time) {
	if len(c.failures) < max(2*c.swept, 1024) {
		return
	}
	for k := range c.failures {
		c.recentFailures(k, now)
	}
	c.swept = len(c.failures)
}

// newSession starts a session for u and returns its id.
func (c *Console) newSession(u *User) string {
	id := randomToken()
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.o.Now()
	for k, s := range c.sessions {
		if now.After(s.expires) {
			delete(c.sessions, k)
		}
	}
	c.sessions[id] = &session{user: u.Name, role: u.Role, csrf: randomToken(), expires: now.Add(c.o.SessionTTL)}
	return id
}

// checkCSRF verifies a form's token against the session's, and that the
// request comes from this origin when the browser says where from.
func checkCSRF(r *http.Request, s *session) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	tok := r.PostFormValue("csrf")
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.csrf)) == 1
}

// headers are the console's security headers: a strict CSP (scripts and
// styles from this origin only; notice previews in sandboxed frames).
func headers(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

// Notices gives the notice page its data (app joins the tracker and
// notify).
type Notices interface {
	NoticeData(ctx context.Context, inc incident.Incident) (*NoticeData, error)
	// NoticePreview is the newest version's HTML in one locale; ok is
	// false when there is no version or no such locale.
	NoticePreview(inc incident.Incident, locale string) (html string, ok bool, err error)
}

// Mailbox lists the dev mailbox (nil with SendGrid).
type Mailbox interface {
	Messages() ([]MailboxEntry, error)
	Message(id string) (subject, to, html, text string, err error)
}

// MailboxEntry is one dev-mailbox message.
type MailboxEntry struct {
	ID, To, Subject, Incident string
	Date                      time.Time
}

// NoticeData is the notice page.
type NoticeData struct {
	Versions []NoticeVersionRow
	// Phases: each version sent, oldest first; a draft now is a
	// supplementary one when there is any.
	Phases []incident.PhaseView
	// Sendable: an approved version exists that is not the one sent or
	// being sent (the send button is offered only then).
	Sendable bool
	// SelfApproval: a DPO may approve a version they wrote (else the
	// approve button is not offered to its author).
	SelfApproval bool
	// LeadAuthority prefills a first draft's authority
	// (organisation.lead_authority).
	LeadAuthority incident.Authority
	// Latest is the newest version's content (to prefill a new draft).
	Latest   *incident.Notice
	Previews []Preview // of the newest version, in every locale
	// Languages: how many customers the newest version goes to in each
	// language, and who falls back to English.
	Languages []LanguageRow
	Progress  *Progress // nil until sending
	Locales   []string
}

// NoticeVersionRow is one version in the history.
type NoticeVersionRow struct {
	Version      int
	Author       string
	At           time.Time
	Hash         string
	ApprovedBy   string
	ApprovedAt   time.Time
	SelfApproved bool
	Missing      []string
	ScopeCurrent bool
	Sending      bool // being sent, not every customer reached yet
	Sent         bool // every customer it went to was reached
	// Supplementary/Correction and, for a supplementary version, what it
	// changes against the version sent before it.
	Supplementary, Correction bool
	Diff                      *incident.NoticeDiff
}

// LanguageRow is one language of a version's audience.
type LanguageRow struct {
	Locale        string
	Customers     int
	Asked         []string // unsupported locales served in this one ("pt-PT: 2")
	TextInEnglish []string // free-text fields shown in English
}

// Preview is a version rendered in one locale.
type Preview struct {
	Locale, Dir, Subject, HTML, Customer, TimeZone string
	Fallback                                       []string
}

// Progress is the delivery progress.
type Progress struct {
	Customers, Reached, Sent, Pending, Failed, Delivered, Bounced, Read int
	Tenants                                                             []TenantProgress
}

// TenantProgress is one customer's deliveries.
type TenantProgress struct {
	Tenant                                   string
	Emails, Sent, Pending, Failed, Delivered int
	Bounced                                  int
	InApp, Read                              bool
}

// Reports gives the regulator report and the breach register (the
// tracker).
type Reports interface {
	ReportHTML(inc incident.Incident) ([]byte, error)
	RegisterRows() []RegisterRow
	RegisterCSV(w io.Writer) error
	RegisterJSON(w io.Writer) error
}

// RegisterRow is one incident in the register page.
type RegisterRow struct {
	Incident, Title, Status, Severity string
	DetectedAt                        time.Time
	Customers                         int
	Records                           int64
	AuthorityAt, CustomersAt          *time.Time
	NotNotifiedWhy                    string
	Late                              bool
}

// Rules describes the loaded rule set and its recent findings.
type Rules interface {
	RuleSet(ctx context.Context, since time.Time) (version string, rules []RuleRow, err error)
}

// RuleRow is one rule.
type RuleRow struct {
	ID, Title, Severity, Kind, Source, Where string
	Tags                                     []string
	Findings                                 int // over the last day
}

// Tokens lists the API tokens and revokes them (admins only).
type Tokens interface {
	Tokens() []TokenRow
	Revoke(ctx context.Context, name, by, reason string) error
}

// TokenRow is an API token as listed (never its secret).
type TokenRow struct {
	Name, Role        string
	Tenants           []string
	RevokedAt         time.Time
	RevokedBy, Reason string
}
