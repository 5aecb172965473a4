package console

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/incident"
)

// Handler serves the console: /login, /logout, /incidents…, and its static
// files under /console/static/. Mount it at / (the API, hooks and widget
// keep their own paths).
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /login", c.loginPage)
	mux.HandleFunc("POST /login", c.loginPost)
	mux.HandleFunc("GET /login/oidc", c.oidcStart)
	mux.HandleFunc("GET /login/oidc/callback", c.oidcCallback)
	mux.HandleFunc("POST /logout", c.authed(c.logout))
	mux.HandleFunc("GET /{$}", c.authed(c.home))
	mux.HandleFunc("GET /incidents", c.authed(c.incidents))
	mux.HandleFunc("GET /incidents/{id}", c.authed(c.incidentPage))
	mux.HandleFunc("POST /incidents/{id}/{command}", c.authed(c.command))
	mux.HandleFunc("GET /incidents/{id}/notice", c.authed(c.noticePage))
	mux.HandleFunc("GET /mailbox", c.authed(c.mailboxPage))
	mux.HandleFunc("GET /mailbox/{id}", c.authed(c.mailboxMessage))
	mux.HandleFunc("GET /incidents/{id}/notice/preview/{locale}", c.authed(c.previewFrame))
	mux.HandleFunc("GET /mailbox/{id}/html", c.authed(c.mailboxFrame))
	mux.HandleFunc("GET /incidents/{id}/report", c.authed(c.reportPage))
	mux.HandleFunc("GET /register", c.authed(c.registerPage))
	mux.HandleFunc("GET /register.csv", c.authed(c.registerExport))
	mux.HandleFunc("GET /register.json", c.authed(c.registerExport))
	mux.HandleFunc("GET /rules", c.authed(c.rulesPage))
	mux.HandleFunc("GET /tokens", c.authed(c.tokensPage))
	mux.HandleFunc("POST /tokens/{name}/revoke", c.authed(c.revokeToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers(w)
		mux.ServeHTTP(w, r)
	})
}

type ctxPage struct {
	Title   string
	User    string
	Role    string
	CSRF    string
	Flash   string
	Error   string
	Zone    string
	Now     time.Time
	Content any
}

// authed requires a signed-in person with a staff role; POSTs also need
// the CSRF token.
func (c *Console) authed(next func(w http.ResponseWriter, r *http.Request, s *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.current(r)
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if s.role != "engineer" && s.role != "dpo" && s.role != "admin" {
			http.Error(w, "your role may not use the console", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := r.ParseForm(); err != nil || !checkCSRF(r, s) {
				http.Error(w, "the form expired or did not come from this console; reload the page", http.StatusForbidden)
				return
			}
		}
		next(w, r, s)
	}
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, name string, code int, p ctxPage) {
	t := c.tmpl[name]
	if t == nil {
		http.Error(w, "no such page", http.StatusNotFound)
		return
	}
	if s != nil {
		p.User, p.Role, p.CSRF = s.user, s.role, s.csrf
	}
	p.Zone, p.Now = c.o.Zone.String(), c.o.Now()
	if p.Flash == "" {
		p.Flash = c.flash(r.URL.Query().Get("done"))
	}
	var b bytes.Buffer
	if err := t.Execute(&b, p); err != nil {
		// Never the internal text to the browser.
		c.o.Log.Error("console: rendering a page", zap.String("page", name), zap.Error(err))
		http.Error(w, "the page could not be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, nil, "login", http.StatusOK, ctxPage{Title: "Sign in", Content: map[string]any{"Next": safeNext(r.URL.Query().Get("next")),
		"SSO": c.oidc != nil}})
}

// doneRevoked is the "done" code of a token revocation.
const doneRevoked = "token-revoked"

// flash is the message a page shows after a redirect whose URL says what
// was done ("?done=approve"). The URL carries a code, never the text: a
// link from anyone could otherwise put their words on the console's page.
// Unknown codes show nothing.
func (c *Console) flash(done string) string {
	switch {
	case done == "":
		return ""
	case done == doneRevoked:
		return "Token revoked."
	case c.o.Allowed != nil && len(done) <= 32 && (c.o.Allowed("admin", done) || c.o.Allowed("dpo", done)):
		return done + ": done"
	}
	return ""
}

// safeNext keeps a redirect target on this site: a path of this site, or
// the incident list. Browsers drop tabs and line breaks anywhere in a URL
// and read a backslash as a slash, so "/\t/host" and "/\\host" lead to
// another host ("//host"): a target holding any control character or
// backslash is refused whole.
func safeNext(n string) string {
	const home = "/" // the home page: what needs you now
	if len(n) > 2048 || !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") {
		return home
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return home
		}
	}
	if u, err := url.Parse(n); err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" {
		return home
	}
	return n
}

func (c *Console) loginPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		if u, err := url.Parse(o); err != nil || u.Host != r.Host {
			http.Error(w, "the form did not come from this console", http.StatusForbidden)
			return
		}
	}
	next := safeNext(r.PostFormValue("next"))
	addr := r.RemoteAddr
	if i := strings.LastIndexByte(addr, ':'); i > 0 {
		addr = addr[:i]
	}
	u, msg := c.login(r.PostFormValue("name"), r.PostFormValue("password"), addr)
	if u == nil {
		c.o.Log.Info("console: sign-in refused", zap.String("remote", addr))
		c.render(w, r, nil, "login", http.StatusUnauthorized, ctxPage{Title: "Sign in", Error: msg, Content: map[string]any{"Next": next,
			"SSO": c.oidc != nil}})
		return
	}
	c.setCookie(w, c.newSession(u), 0)
	c.o.Log.Info("console: signed in", zap.String("user", u.Name), zap.String("role", u.Role))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, _ *session) {
	if ck, err := r.Cookie(cookieName); err == nil {
		c.mu.Lock()
		delete(c.sessions, ck.Value)
		c.mu.Unlock()
	}
	c.setCookie(w, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// listRow is an incident in the list.
type listRow struct {
	V    incident.View
	Next *incident.Deadline // the nearest unmet legal deadline
}

func (c *Console) incidents(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	status, severity, rule := q.Get("status"), q.Get("severity"), q.Get("rule")
	var rows []listRow
	rules := map[string]bool{}
	for _, inc := range c.o.Incidents.List("") {
		rules[inc.RuleID] = true
		if (status != "" && string(inc.Status) != status) || (severity != "" && inc.Severity != severity) || (rule != "" && inc.RuleID != rule) {
			continue
		}
		v := c.o.Incidents.View(inc)
		rows = append(rows, listRow{V: v, Next: v.NextDeadline})
	}
	// Nearest deadline first; incidents without one last, newest first.
	slices.SortStableFunc(rows, func(a, b listRow) int {
		switch {
		case a.Next != nil && a.Next.DueAt != nil && (b.Next == nil || b.Next.DueAt == nil):
			return -1
		case (a.Next == nil || a.Next.DueAt == nil) && b.Next != nil && b.Next.DueAt != nil:
			return 1
		case a.Next != nil && a.Next.DueAt != nil:
			return a.Next.DueAt.Compare(*b.Next.DueAt)
		}
		return b.V.DetectedAt.Compare(a.V.DetectedAt)
	})
	ruleList := make([]string, 0, len(rules))
	for r := range rules {
		ruleList = append(ruleList, r)
	}
	slices.Sort(ruleList)
	c.render(w, r, s, "incidents", http.StatusOK, ctxPage{Title: "Incidents", Content: map[string]any{
		"Rows": rows, "Status": status, "Severity": severity, "Rule": rule, "Rules": ruleList,
		"Statuses":   []string{"open", "confirmed", "dismissed", "notifying", "notified", "closed"},
		"Severities": []string{"critical", "high", "medium", "low"},
	}})
}

// timeline is the exposure window and the evidence, drawn as SVG.
type timeline struct {
	Width, Height int
	Window        *bar
	Marks         []bar
	From, To      string
}

type bar struct {
	X, W  float64
	Label string
}

func (c *Console) drawTimeline(v incident.View, inc incident.Incident) timeline {
	from, to := v.Exposure.From, c.o.Now()
	if v.Exposure.To != nil {
		to = *v.Exposure.To
	}
	for _, e := range inc.Evidence {
		if !e.FirstSeen.IsZero() && (from.IsZero() || e.FirstSeen.Before(from)) {
			from = e.FirstSeen
		}
		if e.LastSeen.After(to) {
			to = e.LastSeen
		}
	}
	if from.IsZero() || !to.After(from) {
		to = from.Add(time.Minute)
	}
	const width = 800.0
	x := func(t time.Time) float64 { return width * float64(t.Sub(from)) / float64(to.Sub(from)) }
	tl := timeline{Width: int(width), Height: 60, From: c.ts(from), To: c.ts(to)}
	if !v.Exposure.From.IsZero() && inc.Kind == incident.KindExposure {
		end := to
		if v.Exposure.To != nil {
			end = *v.Exposure.To
		}
		tl.Window = &bar{X: x(v.Exposure.From), W: max(x(end)-x(v.Exposure.From), 2), Label: "exposure window"}
	}
	for _, e := range inc.Evidence {
		tl.Marks = append(tl.Marks, bar{X: x(e.FirstSeen), W: max(x(e.LastSeen)-x(e.FirstSeen), 2),
			Label: fmt.Sprintf("%d events, %s – %s", e.Count, c.ts(e.FirstSeen), c.ts(e.LastSeen))})
	}
	return tl
}

func (c *Console) incidentPage(w http.ResponseWriter, r *http.Request, s *session) {
	inc, ok := c.o.Incidents.Get(r.PathValue("id"))
	if !ok {
		c.render(w, r, s, "notfound", http.StatusNotFound, ctxPage{Title: "Not found"})
		return
	}
	v := c.o.Incidents.View(inc)
	audit, err := c.o.Audit.Audit(r.Context(), inc.ID)
	if err != nil {
		c.o.Log.Warn("console: audit log", zap.String("incident", inc.ID), zap.Error(err))
	}
	var evidence []EvidenceRow
	if c.o.Evidence != nil {
		if evidence, err = c.o.Evidence.Events(r.Context(), inc); err != nil {
			c.o.Log.Warn("console: evidence", zap.String("incident", inc.ID), zap.Error(err))
		}
	}
	slices.SortFunc(v.Affected.List, func(a, b incident.AffectedTenant) int {
		if a.How != b.How {
			return cmp.Compare(a.How, b.How) // accessed before exposed
		}
		return cmp.Compare(b.Records, a.Records)
	})
	c.render(w, r, s, "incident", http.StatusOK, ctxPage{Title: inc.Title, Content: map[string]any{
		"V": v, "Inc": inc, "Audit": audit, "Evidence": evidence, "Timeline": c.drawTimeline(v, inc), "ErrorFor": "", "FormError": "",
	}})
}

func (c *Console) command(w http.ResponseWriter, r *http.Request, s *session) {
	id, name := r.PathValue("id"), r.PathValue("command")
	msg, ok := c.o.Commander.Command(r.Context(), "console:"+s.user, s.role, id, name, r.PostForm)
	if !ok {
		inc, found := c.o.Incidents.Get(id)
		if !found {
			c.render(w, r, s, "notfound", http.StatusNotFound, ctxPage{Title: "Not found"})
			return
		}
		v := c.o.Incidents.View(inc)
		audit, _ := c.o.Audit.Audit(r.Context(), id)
		// The error is shown at the top and in the form the action was
		// taken from, when the page shows that form to this role now.
		c.render(w, r, s, "incident", http.StatusConflict, ctxPage{Title: inc.Title, Error: msg, Content: map[string]any{"V": v, "Inc": inc,
			"Audit": audit, "Timeline": c.drawTimeline(v, inc), "ErrorFor": name, "FormError": msg}})
		return
	}
	back := "/incidents/" + url.PathEscape(id)
	if name == "draft" || name == "approve" || name == "send" {
		back += "/notice"
	}
	http.Redirect(w, r, back+"?done="+url.QueryEscape(name), http.StatusSeeOther)
}

func (c *Console) noticePage(w http.ResponseWriter, r *http.Request, s *session) {
	inc, ok := c.o.Incidents.Get(r.PathValue("id"))
	if !ok || c.o.Notices == nil {
		c.render(w, r, s, "notfound", http.StatusNotFound, ctxPage{Title: "Not found"})
		return
	}
	d, err := c.o.Notices.NoticeData(r.Context(), inc)
	if err != nil {
		c.o.Log.Error("console: notice page", zap.String("incident", inc.ID), zap.Error(err))
		c.render(w, r, s, "notfound", http.StatusServiceUnavailable, ctxPage{Title: "Unavailable", Error: "The notice could not be read; try again."})
		return
	}
	fields := []string{"nature", "consequences", "measures", "actions"}
	c.render(w, r, s, "notice", http.StatusOK, ctxPage{Title: "Notice · " + inc.Title, Content: map[string]any{
		"V": c.o.Incidents.View(inc), "D": d, "Fields": fields}})
}

func (c *Console) mailboxPage(w http.ResponseWriter, r *http.Request, s *session) {
	if c.o.Mailbox == nil {
		c.render(w, r, s, "mailbox", http.StatusOK, ctxPage{Title: "Dev mailbox", Content: map[string]any{"Off": true}})
		return
	}
	ms, err := c.o.Mailbox.Messages()
	if err != nil {
		c.o.Log.Error("console: mailbox", zap.Error(err))
		ms = nil
	}
	c.render(w, r, s, "mailbox", http.StatusOK, ctxPage{Title: "Dev mailbox", Content: map[string]any{"Messages": ms}})
}

func (c *Console) mailboxMessage(w http.ResponseWriter, r *http.Request, s *session) {
	if c.o.Mailbox == nil {
		c.render(w, r, s, "notfound", http.StatusNotFound, ctxPage{Title: "Not found"})
		return
	}
	subject, to, html, text, err := c.o.Mailbox.Message(r.PathValue("id"))
	if err != nil {
		c.render(w, r, s, "notfound", http.StatusNotFound, ctxPage{Title: "Not found"})
		return
	}
	c.render(w, r, s, "message", http.StatusOK, ctxPage{Title: subject, Content: map[string]any{"Subject": subject, "To": to, "Text": text,
		"Self": "/mailbox/" + url.PathEscape(r.PathValue("id")) + "/html"}})
	_ = html
}

func (c *Console) ts(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// utcZone reports whether the organisation's zone is UTC.
func (c *Console) utcZone() bool {
	return c.o.Zone == nil || c.o.Zone.String() == "UTC" || c.o.Zone == time.UTC
}

func (c *Console) funcs() template.FuncMap {
	return template.FuncMap{
		"utc": c.ts,
		"utcp": func(t *time.Time) string {
			if t == nil {
				return "—"
			}
			return c.ts(*t)
		},
		// local is a time in the organisation's zone; "" when that zone is
		// UTC (the time is printed once, in UTC).
		"local": func(t time.Time) string {
			if t.IsZero() || c.utcZone() {
				return ""
			}
			return t.In(c.o.Zone).Format("2006-01-02 15:04 MST")
		},
		"localp": func(t *time.Time) string {
			if t == nil || c.utcZone() {
				return ""
			}
			return t.In(c.o.Zone).Format("2006-01-02 15:04 MST")
		},
		"utczone": c.utcZone,
		"dict": func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				m[fmt.Sprint(kv[i])] = kv[i+1]
			}
			return m
		},
		// person is who an actor is, whatever the channel ("console:dana"
		// and "token:dana" are dana).
		"person": func(actor string) string {
			if _, name, ok := strings.Cut(actor, ":"); ok {
				return name
			}
			return actor
		},
		// plural: "1 customer", "2 customers".
		"plural": func(n any, one, many string) string {
			s := fmt.Sprint(n)
			if s == "1" {
				return s + " " + one
			}
			return s + " " + many
		},
		"iso": func(t *time.Time) string {
			if t == nil {
				return ""
			}
			return t.UTC().Format(time.RFC3339)
		},
		"join":  strings.Join,
		"upper": strings.ToUpper,
		// can shows only the actions a role has; the tracker decides anyway.
		"can":  func(role, cmd string) bool { return c.o.Allowed != nil && c.o.Allowed(role, cmd) },
		"fmtf": func(f float64) string { return fmt.Sprintf("%.1f", f) },
		"text": func(n *incident.Notice, loc, field string) string {
			if n == nil {
				return ""
			}
			t := n.Text[loc]
			return map[string]string{"nature": t.Nature, "consequences": t.Consequences, "measures": t.Measures, "actions": t.Actions}[field]
		},
		"add": func(a, b int) int { return a + b },
		"pct": func(a, b int) int {
			if b == 0 {
				return 0
			}
			return a * 100 / b
		},
	}
}

// frame writes a notice's own HTML for a sandboxed iframe of the console:
// its inline styles allowed, nothing else (no scripts, no requests).
func frame(w http.ResponseWriter, html string) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(html))
}

func (c *Console) previewFrame(w http.ResponseWriter, r *http.Request, s *session) {
	inc, ok := c.o.Incidents.Get(r.PathValue("id"))
	if !ok || c.o.Notices == nil {
		http.NotFound(w, r)
		return
	}
	html, ok, err := c.o.Notices.NoticePreview(inc, r.PathValue("locale"))
	switch {
	case err != nil:
		c.o.Log.Error("console: notice preview", zap.String("incident", inc.ID), zap.Error(err))
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	case !ok:
		http.NotFound(w, r)
	default:
		frame(w, html)
	}
}

func (c *Console) mailboxFrame(w http.ResponseWriter, r *http.Request, s *session) {
	if c.o.Mailbox == nil {
		http.NotFound(w, r)
		return
	}
	_, _, html, _, err := c.o.Mailbox.Message(r.PathValue("id"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	frame(w, html)
}

// reportPage serves the printable regulator report (its own inline
// styles; no scripts).
func (c *Console) reportPage(w http.ResponseWriter, r *http.Request, s *session) {
	inc, ok := c.o.Incidents.Get(r.PathValue("id"))
	if !ok || c.o.Reports == nil {
		c.render(w, r, s, "notfound", http.StatusNotFound, ctxPage{Title: "Not found"})
		return
	}
	b, err := c.o.Reports.ReportHTML(inc)
	if err != nil {
		c.o.Log.Error("console: report", zap.String("incident", inc.ID), zap.Error(err))
		http.Error(w, "the report could not be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b)
}

func (c *Console) registerPage(w http.ResponseWriter, r *http.Request, s *session) {
	if c.o.Reports == nil {
		c.render(w, r, s, "notfound", http.StatusNotFound, ctxPage{Title: "Not found"})
		return
	}
	c.render(w, r, s, "register", http.StatusOK, ctxPage{Title: "Breach register", Content: map[string]any{"Rows": c.o.Reports.RegisterRows()}})
}

func (c *Console) registerExport(w http.ResponseWriter, r *http.Request, s *session) {
	if c.o.Reports == nil {
		http.NotFound(w, r)
		return
	}
	var err error
	if strings.HasSuffix(r.URL.Path, ".csv") {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="breach-register.csv"`)
		err = c.o.Reports.RegisterCSV(w)
	} else {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="breach-register.json"`)
		err = c.o.Reports.RegisterJSON(w)
	}
	if err != nil {
		c.o.Log.Error("console: register export", zap.Error(err))
	}
}

func (c *Console) rulesPage(w http.ResponseWriter, r *http.Request, s *session) {
	if c.o.Rules == nil {
		c.render(w, r, s, "rules", http.StatusOK, ctxPage{Title: "Rules", Content: map[string]any{"Off": true}})
		return
	}
	version, rules, err := c.o.Rules.RuleSet(r.Context(), c.o.Now().Add(-24*time.Hour))
	if err != nil {
		c.o.Log.Error("console: rules", zap.Error(err))
		c.render(w, r, s, "rules", http.StatusServiceUnavailable, ctxPage{Title: "Rules", Error: "The rules could not be read; try again."})
		return
	}
	c.render(w, r, s, "rules", http.StatusOK, ctxPage{Title: "Rules", Content: map[string]any{"Version": version, "Rules": rules}})
}

func (c *Console) tokensPage(w http.ResponseWriter, r *http.Request, s *session) {
	if s.role != "admin" || c.o.Tokens == nil {
		c.render(w, r, s, "notfound", http.StatusForbidden, ctxPage{Title: "Admins only", Error: "Only an admin manages API tokens."})
		return
	}
	c.render(w, r, s, "tokens", http.StatusOK, ctxPage{Title: "API tokens", Content: map[string]any{"Tokens": c.o.Tokens.Tokens()}})
}

func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request, s *session) {
	if s.role != "admin" || c.o.Tokens == nil {
		http.Error(w, "only an admin revokes tokens", http.StatusForbidden)
		return
	}
	if err := c.o.Tokens.Revoke(r.Context(), r.PathValue("name"), "console:"+s.user, r.PostFormValue("reason")); err != nil {
		msg := "The token could not be revoked; try again."
		if strings.Contains(err.Error(), "reason") || strings.Contains(err.Error(), "no such token") {
			msg = err.Error()
		}
		c.render(w, r, s, "tokens", http.StatusConflict, ctxPage{Title: "API tokens", Error: msg, Content: map[string]any{"Tokens": c.o.Tokens.Tokens()}})
		return
	}
	http.Redirect(w, r, "/tokens?done="+doneRevoked, http.StatusSeeOther)
}
