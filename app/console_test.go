package app

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"
)

func consoleOptions(t *testing.T) Options {
	t.Helper()
	o := testOptions(t)
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	o.Console.Users = []ConsoleUser{{Name: "erin", Role: "engineer", PasswordHash: hash("erin-password")},
		{Name: "dana", Role: "dpo", PasswordHash: hash("dana-password")}, {Name: "root", Role: "admin", PasswordHash: hash("root-password")}}
	return o
}

func injectCrossTenantRead(t *testing.T, addr, ua string) string {
	t.Helper()
	when := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano)
	ev := fmt.Sprintf(`{"id":"xt-c1","time":%q,"tenant":"cust-0042","actor":{"id":"u-evil","type":"customer_user","tenant":"cust-0007"},`+
		`"action":"read","resource":{"type":"contact","id":"c-1","store":"postgres-eu-1"},"records":12,"categories":["contact"],`+
		`"outcome":"success","user_agent":%q}`, when, ua)
	if code, body := post(t, addr, "/api/v1/events/access", ingestToken, []byte(ev+"\n")); code != 202 {
		t.Fatalf("ingest: %d %v", code, body)
	}
	var id string
	waitFor(t, "the incident", 30*time.Second, func() bool {
		_, body := call(t, "GET", addr, "/api/v1/incidents", engineerToken, nil)
		if l, _ := body["incidents"].([]any); len(l) > 0 {
			id = l[0].(map[string]any)["id"].(string)
			return true
		}
		return false
	})
	return id
}

// TestConsoleAccess: sign-in, session cookie flags, CSRF on forms, the
// security headers, sign-in throttling — without a browser.
func TestConsoleAccess(t *testing.T) {
	info := start(t, consoleOptions(t))
	base := "http://" + info.HTTPAddr
	id := injectCrossTenantRead(t, info.HTTPAddr, "curl/8")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// Not signed in: pages redirect to the sign-in, forms are refused.
	resp, err := noFollow.Get(base + "/incidents/" + id)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
		t.Fatalf("anonymous page: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP: %q", csp)
	}
	resp, _ = noFollow.PostForm(base+"/incidents/"+id+"/confirm", url.Values{"csrf": {"x"}})
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("anonymous form: %d", resp.StatusCode)
	}
	// A wrong password, then the right one.
	resp, _ = noFollow.PostForm(base+"/login", url.Values{"name": {"erin"}, "password": {"nope"}})
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(body), "Wrong name or password.") {
		t.Fatalf("bad password: %d", resp.StatusCode)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err = noFollow.PostForm(base+"/login", url.Values{"name": {"erin"}, "password": {"erin-password"}, "next": {"//evil.example/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign-in: %d to %q (an off-site next must not be followed)", resp.StatusCode, resp.Header.Get("Location"))
	}
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "bw_session" {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie: %+v", ck)
	}
	u, _ := url.Parse(base)
	jar.SetCookies(u, []*http.Cookie{ck})
	// A form without the CSRF token, or from another origin, is refused.
	resp, _ = client.PostForm(base+"/incidents/"+id+"/confirm", url.Values{})
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("form without CSRF token: %d", resp.StatusCode)
	}
	page, _ := client.Get(base + "/incidents/" + id)
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	i := strings.Index(string(html), `name="csrf" value="`)
	if i < 0 {
		t.Fatalf("no CSRF token in the page")
	}
	tok := string(html)[i+len(`name="csrf" value="`):]
	tok = tok[:strings.IndexByte(tok, '"')]
	req, _ := http.NewRequest("POST", base+"/incidents/"+id+"/confirm", strings.NewReader(url.Values{"csrf": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	resp, _ = client.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("cross-origin form: %d", resp.StatusCode)
	}
	// An engineer may not set awareness, even with a valid form.
	resp, _ = client.PostForm(base+"/incidents/"+id+"/awareness", url.Values{"csrf": {tok}, "at": {"2026-11-20T10:00"}, "reason": {"x"}})
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 409 || !strings.Contains(string(b), "may not awareness") {
		t.Errorf("engineer setting awareness: %d", resp.StatusCode)
	}
	// A refused action's error is shown in the form it came from.
	resp, _ = client.PostForm(base+"/incidents/"+id+"/dismiss", url.Values{"csrf": {tok}, "reason": {""}})
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 409 || !strings.Contains(string(b), `id="error-dismiss"`) {
		t.Errorf("dismiss without a reason: %d, error in its form: %v", resp.StatusCode, strings.Contains(string(b), `id="error-dismiss"`))
	}
	// Tokens are an admin's: an engineer is refused the page.
	resp, _ = client.Get(base + "/tokens")
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("an engineer on the token page: %d", resp.StatusCode)
	}
	// Five failures lock the name for a while.
	for range 5 {
		r, _ := noFollow.PostForm(base+"/login", url.Values{"name": {"dana"}, "password": {"guess"}})
		r.Body.Close()
	}
	r, _ := noFollow.PostForm(base+"/login", url.Values{"name": {"dana"}, "password": {"dana-password"}})
	b, _ = io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 401 || !strings.Contains(string(b), "Too many failed sign-ins") {
		t.Errorf("throttling: %d", r.StatusCode)
	}
}

// TestConsoleInBrowser: in headless Chromium, an engineer signs in, finds
// the injected incident, sees the attacker's user agent as text, and
// confirms the incident; screenshots of each page are kept.
func TestConsoleInBrowser(t *testing.T) {
	b := newBrowser(t, 1280, 1000)
	info := start(t, consoleOptions(t))
	base := "http://" + info.HTTPAddr
	id := injectCrossTenantRead(t, info.HTTPAddr, `<script>window.pwned=1</script><img src=x onerror="window.pwned=2">`)

	ctx, step, eval := b.ctx, b.step, b.eval
	shot := func(name string) { t.Helper(); b.shot(name) }
	step("open", chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(`input[name="name"]`)))
	shot("login")
	step("sign in", chromedp.Do(ctx,
		chromedp.SendKeys(`input[name="name"]`, "erin"),
		chromedp.SendKeys(`input[name="password"]`, "erin-password"),
		chromedp.Submit(`input[name="password"]`),
		chromedp.WaitVisible(`#home-deadlines`)))
	if got := eval(`location.pathname`); got != "/" {
		t.Fatalf("after sign-in at %s; want the home page asked for", got)
	}
	step("incidents", chromedp.Do(ctx, chromedp.Click(`nav a[href="/incidents"]`), chromedp.WaitVisible(`table.list`)))
	shot("incidents")
	if n := eval(`String(document.querySelectorAll('a[href="/incidents/` + id + `"]').length)`); n != "1" {
		t.Fatalf("the incident is not listed (%s links)", n)
	}
	step("open the incident", chromedp.Do(ctx, chromedp.Click(`a[href="/incidents/`+id+`"]`), chromedp.WaitVisible(`#do-confirm`)))
	ua := eval(`document.querySelector("td.ua").textContent`)
	if !strings.Contains(ua, "<script>window.pwned=1</script>") {
		t.Errorf("user agent shown as %q; want the markup as text", ua)
	}
	if p := eval(`String(window.pwned || "")`); p != "" {
		t.Errorf("the user agent ran in the console: pwned=%s", p)
	}
	if n := eval(`String(document.querySelectorAll("td.ua script, td.ua img").length)`); n != "0" {
		t.Errorf("the user agent became elements: %s", n)
	}
	if eval(`String(!!document.querySelector('form[action$="/awareness"]'))`) != "false" {
		t.Error("an engineer is offered the awareness form")
	}
	if cd := eval(`document.querySelector(".countdown").textContent`); !strings.Contains(cd, "left") {
		t.Errorf("countdown: %q", cd)
	}
	shot("incident")
	step("confirm", chromedp.Do(ctx, chromedp.Click(`#do-confirm`), chromedp.WaitVisible(`.flash`)))
	if s := eval(`document.querySelector("#status").textContent`); !strings.HasPrefix(strings.TrimSpace(s), "confirmed") {
		t.Errorf("status after confirming: %q", s)
	}
	shot("incident-confirmed")
	_, body := call(t, "GET", info.HTTPAddr, "/api/v1/incidents/"+id+"/audit", engineerToken, nil)
	found := false
	for _, e := range body["entries"].([]any) {
		e := e.(map[string]any)
		if e["action"] == "confirmed" && e["actor"] == "console:erin" {
			found = true
		}
	}
	if !found {
		t.Errorf("the audit log does not show console:erin confirming: %v", body)
	}

	// An admin revokes an API token in the console; the API refuses it.
	step("sign out", chromedp.Do(ctx, chromedp.Click(`form.who button`), chromedp.WaitVisible(`input[name="name"]`)))
	step("sign in as admin", chromedp.Do(ctx, chromedp.SendKeys(`input[name="name"]`, "root"),
		chromedp.SendKeys(`input[name="password"]`, "root-password"), chromedp.Submit(`input[name="password"]`),
		chromedp.WaitVisible(`table.list`), chromedp.Navigate(base+"/tokens"), chromedp.WaitVisible(`#token-on-call`)))
	shot("tokens")
	step("revoke", chromedp.Do(ctx, chromedp.SendKeys(`#token-on-call input[name="reason"]`, "laptop stolen"),
		chromedp.Click(`#token-on-call button`), chromedp.WaitVisible(`.flash`)))
	if s := eval(`document.querySelector("#token-on-call").textContent`); !strings.Contains(s, "revoked") || !strings.Contains(s, "console:root") {
		t.Errorf("token row: %q", s)
	}
	if code, _ := call(t, "GET", info.HTTPAddr, "/api/v1/incidents", engineerToken, nil); code != 401 {
		t.Errorf("the revoked token still works: %d", code)
	}
}

// TestConsoleNoticeInBrowser: an engineer drafts the notice in the
// console and may not approve it; a DPO reviews the previews (Arabic right
// to left, Dutch), approves and sends it, sees the delivery progress and the
// dev mailbox; screenshots of each page are kept.
func TestConsoleNoticeInBrowser(t *testing.T) {
	b := newBrowser(t, 1280, 1000)
	o := consoleOptions(t)
	dir := t.TempDir()
	customers := filepath.Join(dir, "customers.yaml")
	if err := os.WriteFile(customers, []byte("format: 1\ncustomers:\n  - {tenant: cust-0042, country: NL, locale: nl, time_zone: Europe/Amsterdam, emails: [owner@cust-0042.example]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o.Tracker.Customers = customers
	o.Notify.MailboxDir = filepath.Join(dir, "mailbox")
	o.Notify.Interval = Duration(200 * time.Millisecond)
	info := start(t, o)
	base := "http://" + info.HTTPAddr
	id := injectCrossTenantRead(t, info.HTTPAddr, "curl/8")

	ctx, step, eval := b.ctx, b.step, b.eval
	shot := func(name string) { t.Helper(); b.shot(name) }
	signIn := func(name, pw string) {
		t.Helper()
		step("sign in as "+name, chromedp.Do(ctx, chromedp.Navigate(base+"/login"), chromedp.WaitVisible(`input[name="name"]`),
			chromedp.SendKeys(`input[name="name"]`, name), chromedp.SendKeys(`input[name="password"]`, pw),
			chromedp.Submit(`input[name="password"]`), chromedp.WaitVisible(`table.list`)))
	}
	noticeURL := base + "/incidents/" + id + "/notice"

	// The engineer confirms and drafts.
	signIn("erin", "erin-password")
	step("confirm", chromedp.Do(ctx, chromedp.Navigate(base+"/incidents/"+id), chromedp.WaitVisible(`#do-confirm`),
		chromedp.Click(`#do-confirm`), chromedp.WaitVisible(`.flash`)))
	step("open the notice page", chromedp.Do(ctx, chromedp.Click(`#notice-link`), chromedp.WaitVisible(`#do-draft`)))
	for sel, val := range map[string]string{
		`textarea[name="text.en.nature"]`:       "Another customer's account read your contacts.",
		`textarea[name="text.en.consequences"]`: "Unwanted messages to your customers.",
		`textarea[name="text.en.measures"]`:     "We blocked the account.",
		`textarea[name="text.en.actions"]`:      "Warn your staff.",
		`textarea[name="text.nl.nature"]`:       "Het account van een andere klant las uw contactgegevens.",
		`input[name="contact.name"]`:            "Dana Okafor",
		`input[name="contact.email"]`:           "dpo@bookly.example",
		`input[name="authority.name"]`:          "Autoriteit Persoonsgegevens",
		`input[name="product"]`:                 "Bookly",
	} {
		step("fill "+sel, chromedp.Do(ctx, chromedp.SendKeys(sel, val)))
	}
	step("draft", chromedp.Do(ctx, chromedp.Click(`#do-draft`), chromedp.WaitVisible(`#version-1`)))
	if lint := eval(`document.querySelector("#version-1 td.lint").textContent.trim()`); lint != "nothing" {
		t.Fatalf("lint of the complete draft: %q", lint)
	}
	if eval(`String(!!document.querySelector("#do-approve-1"))`) != "false" {
		t.Error("an engineer is offered to approve")
	}
	// Even a hand-made approval form is refused (the tracker decides).
	_, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const f = document.createElement("form"); f.method = "post"; f.action = location.pathname.replace(/\/notice$/, "/approve");
		for (const [k, v] of [["csrf", document.querySelector('input[name="csrf"]').value], ["version", "1"],
			["hash", document.querySelector("#version-1 code.hash").textContent]]) {
			const i = document.createElement("input"); i.type = "hidden"; i.name = k; i.value = v; f.appendChild(i); }
		document.body.appendChild(f); f.submit(); return "sent"; })()`))
	step("forge an approval", err)
	step("refused", chromedp.Do(ctx, chromedp.WaitVisible(`.error`)))
	if e := eval(`document.querySelector(".error").textContent`); !strings.Contains(e, "may not approve") {
		t.Errorf("an engineer's approval: %q", e)
	}
	step("back", chromedp.Do(ctx, chromedp.Navigate(noticeURL), chromedp.WaitVisible(`#version-1`)))
	shot("notice-drafted-by-engineer")
	step("sign out", chromedp.Do(ctx, chromedp.Click(`form.who button`), chromedp.WaitVisible(`input[name="name"]`)))

	// The DPO's home page lists exactly what needs the DPO: this version
	// waiting for approval, and its legal deadline.
	signIn("dana", "dana-password")
	step("open the home page", chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(`#home-approvals`)))
	if s := eval(`document.querySelector("#home-approvals").textContent`); !strings.Contains(s, id) || !strings.Contains(s, "version 1 by console:erin") {
		t.Errorf("awaiting approval: %q", s)
	}
	for _, sec := range []string{"#home-updates", "#home-drafts", "#home-no-notice", "#home-determinations"} {
		if s := eval(`document.querySelector("` + sec + `").textContent`); strings.Contains(s, id) {
			t.Errorf("%s lists the incident: %q", sec, s)
		}
	}
	if s := eval(`document.querySelector("#home-deadlines").textContent`); !strings.Contains(s, "notify the supervisory authority") {
		t.Errorf("nearest legal deadlines: %q", s)
	}
	shot("dpo-home")

	// The DPO reviews the previews, approves and sends.
	step("open the notice page", chromedp.Do(ctx, chromedp.Navigate(noticeURL), chromedp.WaitVisible(`#do-approve-1`)))
	if n := eval(`String(document.querySelectorAll("figure.preview iframe").length)`); n != "8" {
		t.Errorf("%s previews; want 8 (en, ar, de, es, fr, nl, pt, sv)", n)
	}
	if s := eval(`document.querySelector("#languages").textContent`); !strings.Contains(s, "Customers") {
		t.Errorf("the page does not say who reads which language: %q", s)
	}
	if d := eval(`document.querySelector('figure.preview[data-locale="ar"]').getAttribute("dir")`); d != "rtl" {
		t.Errorf("Arabic preview dir %q", d)
	}
	if s := eval(`document.querySelector('figure.preview[data-locale="nl"] figcaption').textContent`); !strings.Contains(s, "Beveiligingsmelding van Bookly") {
		t.Errorf("Dutch preview caption %q", s)
	}
	step("let the previews load", chromedp.Do(ctx, chromedp.Sleep(500*time.Millisecond)))
	shot("notice-previews")
	// Each action's page is told apart from the one before by what only
	// it has (a flash from the previous action would be there already).
	step("approve", chromedp.Do(ctx, chromedp.Click(`#do-approve-1`), chromedp.WaitNotPresent(`#do-approve-1`), chromedp.WaitVisible(`#do-send`)))
	if a := eval(`document.querySelector("#version-1").textContent`); !strings.Contains(a, "console:dana") {
		t.Errorf("approval not shown: %q", a)
	}
	step("send", chromedp.Do(ctx, chromedp.Click(`#do-send`), chromedp.WaitVisible(`#reached`)))
	waitFor(t, "delivery progress", 30*time.Second, func() bool {
		step("reload", chromedp.Do(ctx, chromedp.Navigate(noticeURL), chromedp.WaitVisible(`#version-1`)))
		return eval(`String((document.querySelector("#reached") || {}).textContent || "")`) == "1/1 customers reached"
	})
	shot("notice-sent")

	// The same account turns out to have read another tenant's data too:
	// one breach, one incident, and now an update required.
	when := time.Now().UTC().Add(-30 * time.Second).Format(time.RFC3339Nano)
	ev := fmt.Sprintf(`{"id":"xt-c2","time":%q,"tenant":"cust-0043","actor":{"id":"u-evil","type":"customer_user","tenant":"cust-0007"},`+
		`"action":"read","resource":{"type":"contact","id":"c-9","store":"postgres-eu-1"},"records":40,"categories":["contact"],"outcome":"success"}`, when)
	if code, body := post(t, info.HTTPAddr, "/api/v1/events/access", ingestToken, []byte(ev+"\n")); code != 202 {
		t.Fatalf("ingest: %d %v", code, body)
	}
	waitFor(t, "the update required", 30*time.Second, func() bool {
		_, v := call(t, "GET", info.HTTPAddr, "/api/v1/incidents/"+id, engineerToken, nil)
		return v["update_required"] != nil
	})
	step("the incident", chromedp.Do(ctx, chromedp.Navigate(base+"/incidents/"+id), chromedp.WaitVisible(`#update-required`)))
	if s := eval(`document.querySelector("#update-required").textContent`); !strings.Contains(s, "1 customer added after the notice went out") {
		t.Errorf("banner: %q", s)
	}
	if s := eval(`document.querySelector("#status").textContent`); !strings.Contains(s, "notifying") || !strings.Contains(s, "update required") {
		t.Errorf("status: %q", s)
	}
	shot("update-required")
	step("draft the supplementary version", chromedp.Do(ctx, chromedp.Navigate(noticeURL), chromedp.WaitVisible(`#do-draft`),
		chromedp.Click(`#do-draft`), chromedp.WaitVisible(`#version-2`)))
	if s := eval(`document.querySelector("#version-2").textContent`); !strings.Contains(s, "supplementary") || !strings.Contains(s, "cust-0043") ||
		!strings.Contains(s, "Changes against v1") {
		t.Errorf("version 2 and its diff: %q", s)
	}
	shot("supplementary-diff")
	step("mailbox", chromedp.Do(ctx, chromedp.Navigate(base+"/mailbox"), chromedp.WaitVisible(`table.list`)))
	if s := eval(`document.querySelector("table.list tbody").textContent`); !strings.Contains(s, "owner@cust-0042.example") || !strings.Contains(s, "Beveiligingsmelding") {
		t.Errorf("mailbox: %q", s)
	}
	shot("mailbox")
	step("open the message", chromedp.Do(ctx, chromedp.Click(`table.list tbody a[href^="/mailbox/"]`), chromedp.WaitVisible(`iframe.message`),
		chromedp.Sleep(300*time.Millisecond)))
	shot("mailbox-message")
	step("register", chromedp.Do(ctx, chromedp.Navigate(base+"/register"), chromedp.WaitVisible(`#export-csv`)))
	if s := eval(`document.querySelector("table.list tbody").textContent`); !strings.Contains(s, id) {
		t.Errorf("register: %q", s)
	}
	shot("register")
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(base+"/incidents/"+id+"/report"))
	step("report", err)
	if resp.Status != 200 || resp.MimeType != "text/html" {
		t.Errorf("report: %d %s", resp.Status, resp.MimeType)
	}
	if s := eval(`document.body.textContent`); !strings.Contains(s, "Personal data breach report") || !strings.Contains(s, "Dana Okafor") {
		t.Errorf("report: %.300q", s)
	}
	shot("report")
	step("rules", chromedp.Do(ctx, chromedp.Navigate(base+"/rules"), chromedp.WaitVisible(`table.list`)))
	if s := eval(`document.querySelector("table.list tbody").textContent`); !strings.Contains(s, "cross-tenant-read") {
		t.Errorf("rules: %.300q", s)
	}
	shot("rules")
}
