package app

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// hostPage is the product's page embedding the widget; its backend proxies
// the notices API with the app token (which never reaches the browser).
const hostPage = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Bookly — account</title>
<link rel="stylesheet" href="%[1]s/widget/v1/notices.css">
<script src="%[1]s/widget/v1/notices.js"></script></head>
<body><h1>Your account</h1><div id="security-notices"></div>
<script>
window.mounted = BreachwatchNotices.mount(document.getElementById("security-notices"), {url: "/proxy/notices"})
  .then(function (ns) { window.noticeCount = ns.length; }, function (e) { window.mountError = String(e); });
</script></body></html>`

// TestWidgetInBrowser: the widget, loaded from breachwatch into a product's
// page in headless Chromium, shows the Arabic notice right to left with a
// product name full of markup as plain text, opens the notice in a
// sandboxed frame, and sends the read receipt.
func TestWidgetInBrowser(t *testing.T) {
	b := newBrowser(t, 1100, 900)
	dir := t.TempDir()
	customers := filepath.Join(dir, "customers.yaml")
	if err := os.WriteFile(customers, []byte("format: 1\ncustomers:\n  - {tenant: cust-0042, country: AE, locale: ar, time_zone: Asia/Dubai, emails: [owner@cust-0042.example]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := testOptions(t)
	o.Auth.Tokens = append(o.Auth.Tokens,
		TokenOptions{Name: "dana", Role: "dpo", TokenSHA256: sha(dpoToken)},
		TokenOptions{Name: "olu", Role: "dpo", TokenSHA256: sha(dpo2Token)},
		TokenOptions{Name: "product", Role: "app", Tenants: []string{"cust-0042"}, TokenSHA256: sha(appToken)})
	o.Tracker.Customers = customers
	o.Notify.MailboxDir = filepath.Join(dir, "mailbox")
	o.Notify.Interval = Duration(200 * time.Millisecond)
	info := start(t, o)
	id := sentNotice(t, info.HTTPAddr, `Bookly<img src=x onerror="window.pwned=1">`)

	bw := "http://" + info.HTTPAddr
	proxy := func(w http.ResponseWriter, r *http.Request, method, path string) {
		req, _ := http.NewRequestWithContext(r.Context(), method, bw+path, nil)
		req.Header.Set("Authorization", "Bearer "+appToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, hostPage, bw)
	})
	mux.HandleFunc("GET /proxy/notices", func(w http.ResponseWriter, r *http.Request) {
		proxy(w, r, "GET", "/api/v1/tenants/cust-0042/notices")
	})
	mux.HandleFunc("POST /proxy/notices/{id}/read", func(w http.ResponseWriter, r *http.Request) {
		proxy(w, r, "POST", "/api/v1/tenants/cust-0042/notices/"+r.PathValue("id")+"/read")
	})
	host := httptest.NewServer(mux)
	defer host.Close()

	b.do("open the page", chromedp.Navigate(host.URL+"/"), chromedp.WaitVisible(".bwn-banner"))
	dirAttr, lang := b.attr(".bwn-banner", "dir"), b.attr(".bwn-banner", "lang")
	subject, err := chromedp.Run(b.ctx, chromedp.Text(".bwn-subject"))
	b.step("subject", err)
	imgs := b.eval(`String(document.querySelectorAll("img").length)`)
	b.shot("widget-banner")
	b.do("open the notice", chromedp.Click(".bwn-open"), chromedp.WaitVisible("iframe.bwn-frame"))
	sandbox := b.attr("iframe.bwn-frame", "sandbox")
	srcdoc := b.eval(`document.querySelector("iframe.bwn-frame").srcdoc`)
	b.do("settle", chromedp.Sleep(300*time.Millisecond)) // let the frame paint for the screenshot
	b.shot("widget-notice")
	pwned := b.eval(`String(window.pwned || "")`)
	if dirAttr != "rtl" || lang != "ar" {
		t.Errorf("banner dir=%q lang=%q; want rtl, ar", dirAttr, lang)
	}
	if !strings.Contains(subject, "إشعار أمني من") || !strings.Contains(subject, `<img src=x onerror="window.pwned=1">`) {
		t.Errorf("subject %q: want the Arabic subject with the product's markup as text", subject)
	}
	if imgs != "0" || pwned != "" {
		t.Errorf("markup from the notice ran in the page: %s img elements, pwned=%q", imgs, pwned)
	}
	if sandbox != "" || !strings.Contains(srcdoc, `dir="rtl"`) || !strings.Contains(srcdoc, "&lt;img") {
		t.Errorf("notice frame: sandbox=%q, srcdoc %.300s", sandbox, srcdoc)
	}
	// The read receipt reached breachwatch.
	waitFor(t, "the read receipt", 10*time.Second, func() bool {
		_, body := call(t, "GET", info.HTTPAddr, "/api/v1/tenants/cust-0042/notices", appToken, nil)
		ns, _ := body["notices"].([]any)
		return len(ns) == 1 && ns[0].(map[string]any)["read_at"] != nil
	})
	_ = id
}

// sentNotice makes an incident for cust-0042, drafts (dana), approves
// (olu) and sends its notice with the given product name, and waits until
// it is published.
func sentNotice(t *testing.T, addr, product string) string {
	t.Helper()
	id := injectCrossTenantRead(t, addr, "curl/8")
	path := "/api/v1/incidents/" + id
	must := func(method, p, token string, body any) map[string]any {
		t.Helper()
		code, out := call(t, method, addr, p, token, body)
		if code != 200 {
			t.Fatalf("%s %s: %d %v", method, p, code, out)
		}
		return out
	}
	must("POST", path+"/confirm", engineerToken, nil)
	v := must("POST", path+"/draft", dpoToken, map[string]any{"notice": map[string]any{
		"text": map[string]any{"en": map[string]string{"nature": "n", "consequences": "c", "measures": "m", "actions": "a"},
			"ar": map[string]string{"nature": "قرأ حساب عميل آخر بيانات الاتصال الخاصة بكم."}},
		"contact": map[string]string{"name": "Dana", "email": "dpo@bookly.example"}, "authority": map[string]string{"name": "AP"},
		"product": product}})
	hash := v["notice"].(map[string]any)["versions"].([]any)[0].(map[string]any)["hash"]
	must("POST", path+"/approve", dpo2Token, map[string]any{"version": 1, "hash": hash})
	must("POST", path+"/send", engineerToken, nil)
	waitFor(t, "the notice published", 30*time.Second, func() bool {
		_, body := call(t, "GET", addr, "/api/v1/tenants/cust-0042/notices", appToken, nil)
		ns, _ := body["notices"].([]any)
		return len(ns) == 1
	})
	return id
}
