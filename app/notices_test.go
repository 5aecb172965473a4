package app

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/internal/sendgridtest"
)

const (
	dpo2Token = "dpo2-token-for-tests-0123456789ab"
	app2Token = "app2-token-for-tests-0123456789ab"
)

// TestNoticesEndToEnd: an incident's notice is drafted, refused while
// incomplete, approved by a second DPO (four eyes), sent through the real
// sendgrid-go client to a local SendGrid API, published in the app for the
// affected tenant only, and read; the customer obligation is then met.
func TestNoticesEndToEnd(t *testing.T) {
	sg := sendgridtest.New("SG.key-for-tests")
	defer sg.Close()
	dir := t.TempDir()
	customers := filepath.Join(dir, "customers.yaml")
	if err := os.WriteFile(customers, []byte(`format: 1
customers:
  - {tenant: cust-0042, country: NL, locale: nl, time_zone: Europe/Amsterdam, emails: [owner@cust-0042.example, dpo@cust-0042.example]}
  - {tenant: cust-0007, country: SA, locale: ar, time_zone: Asia/Riyadh, emails: [owner@cust-0007.example]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	o := testOptions(t)
	o.Auth.Tokens = append(o.Auth.Tokens,
		TokenOptions{Name: "dana", Role: "dpo", TokenSHA256: sha(dpoToken)},
		TokenOptions{Name: "olu", Role: "dpo", TokenSHA256: sha(dpo2Token)},
		TokenOptions{Name: "product", Role: "app", Tenants: []string{"cust-0042"}, TokenSHA256: sha(appToken)},
		TokenOptions{Name: "product-other", Role: "app", Tenants: []string{"cust-0007"}, TokenSHA256: sha(app2Token)})
	o.Tracker.Customers = customers
	o.Notify.SendGridAPIKey, o.Notify.SendGridURL, o.Notify.From = "SG.key-for-tests", sg.URL, "security@bookly.example"
	o.Notify.Interval = Duration(200 * time.Millisecond)
	whKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&whKey.PublicKey)
	o.Notify.SendGridWebhookKey = base64.StdEncoding.EncodeToString(der)
	info := start(t, o)

	// cust-0007's user reads cust-0042's contacts: cust-0042 is the victim.
	when := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano)
	ev := fmt.Sprintf(`{"id":"xt-n1","time":%q,"tenant":"cust-0042","actor":{"id":"u-evil","type":"customer_user","tenant":"cust-0007"},`+
		`"action":"read","resource":{"type":"contact","id":"c-1","store":"postgres-eu-1"},"records":1234,"categories":["contact"],`+
		`"outcome":"success"}`, when)
	if code, body := post(t, info.HTTPAddr, "/api/v1/events/access", ingestToken, []byte(ev+"\n")); code != 202 {
		t.Fatalf("ingest: %d %v", code, body)
	}
	var id string
	waitFor(t, "the incident", 30*time.Second, func() bool {
		_, body := call(t, "GET", info.HTTPAddr, "/api/v1/incidents", engineerToken, nil)
		if l, _ := body["incidents"].([]any); len(l) > 0 {
			id = l[0].(map[string]any)["id"].(string)
			return true
		}
		return false
	})
	path := "/api/v1/incidents/" + id
	mustCall := func(method, p, token string, body any, want int) map[string]any {
		t.Helper()
		code, out := call(t, method, info.HTTPAddr, p, token, body)
		if code != want {
			t.Fatalf("%s %s: %d %v; want %d", method, p, code, out, want)
		}
		return out
	}
	mustCall("POST", path+"/confirm", engineerToken, nil, 200)

	notice := map[string]any{
		"text": map[string]any{
			"en": map[string]string{"nature": "Another customer's account read your contacts.", "consequences": "Unwanted messages.",
				"measures": "We blocked the account.", "actions": "Warn your staff."},
			"nl": map[string]string{"nature": "Het account van een andere klant las uw contactgegevens."},
		},
		"contact": map[string]string{"name": "Dana", "email": "dpo@bookly.example"},
		"product": "Bookly",
	}
	// Drafted by dana without the authority: kept, but not approvable.
	v := mustCall("POST", path+"/draft", dpoToken, map[string]any{"notice": notice}, 200)
	ver := v["notice"].(map[string]any)["versions"].([]any)[0].(map[string]any)
	if m := ver["missing"].([]any); len(m) != 1 || !strings.Contains(m[0].(string), "supervisory authority") {
		t.Fatalf("missing: %v", m)
	}
	out := mustCall("POST", path+"/approve", dpo2Token, map[string]any{"version": 1, "hash": ver["hash"]}, 409)
	if !strings.Contains(out["error"].(string), "supervisory authority") {
		t.Fatalf("approve of an incomplete version: %v", out)
	}
	notice["authority"] = map[string]string{"name": "Autoriteit Persoonsgegevens"}
	v = mustCall("POST", path+"/draft", dpoToken, map[string]any{"notice": notice}, 200)
	ver = v["notice"].(map[string]any)["versions"].([]any)[1].(map[string]any)
	hash := ver["hash"].(string)

	// Previews in every locale, Arabic right to left, Swedish falling back.
	pv := mustCall("GET", path+"/notice/preview", engineerToken, nil, 200)
	previews := map[string]map[string]any{}
	for _, p := range pv["previews"].([]any) {
		p := p.(map[string]any)
		previews[p["locale"].(string)] = p
	}
	if len(previews) != 5 || previews["ar"]["dir"] != "rtl" || !strings.Contains(previews["nl"]["text"].(string), "1.234") ||
		previews["sv"]["fallback"] == nil {
		t.Fatalf("previews: %v", pv)
	}

	// Roles and four eyes: an engineer never approves; dana wrote it.
	mustCall("POST", path+"/approve", engineerToken, map[string]any{"version": 2, "hash": hash}, 403)
	out = mustCall("POST", path+"/approve", dpoToken, map[string]any{"version": 2, "hash": hash}, 409)
	if !strings.Contains(out["error"].(string), "four eyes") {
		t.Fatalf("self-approval: %v", out)
	}
	// olu approves through the CLI.
	tokFile := filepath.Join(dir, "olu-token")
	if err := os.WriteFile(tokFile, []byte(dpo2Token), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	base := "http://" + info.HTTPAddr
	if code := incidentsCommand(context.Background(), []string{"approve", id, "--version", "2", "--hash", hash, "--url", base,
		"--token-file", tokFile}, &stdout, &stderr, func(string) string { return "" }); code != 0 {
		t.Fatalf("CLI approve: %d %s", code, stderr.String())
	}
	// And the engineer sends, waiting with the progress bar.
	stdout.Reset()
	tokFile2 := filepath.Join(dir, "erin-token")
	if err := os.WriteFile(tokFile2, []byte(engineerToken), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if code := incidentsCommand(ctx, []string{"send", id, "--wait", "--url", base, "--token-file", tokFile2}, &stdout, &stderr,
		func(string) string { return "" }); code != 0 {
		t.Fatalf("CLI send: %d %s %s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "1/1 customers reached; e-mails: 2 sent, 0 pending, 0 failed") {
		t.Errorf("progress: %s", stdout.String())
	}
	// Exactly the victim's two contacts got it, in Dutch.
	count := sg.Count()
	if len(count) != 2 || count["owner@cust-0042.example"] != 1 || count["dpo@cust-0042.example"] != 1 {
		t.Fatalf("SendGrid got %v", count)
	}
	for _, m := range sg.Messages() {
		if !strings.Contains(m.Text, "Het account van een andere klant") || !strings.Contains(m.Text, "1.234") || !m.BypassUnsubscribe {
			t.Errorf("message to %s:\n%s", m.To, m.Text)
		}
	}

	// SendGrid reports one address delivered and the other bounced, on
	// its signed webhook: the customer is flagged for follow-up.
	var events []map[string]any
	for i, m := range sg.Messages() {
		ev := map[string]any{"event": "delivered", "sg_event_id": fmt.Sprintf("e-%d", i), "timestamp": time.Now().Unix(),
			"bw_delivery": m.Delivery, "bw_incident": m.Incident, "email": m.To}
		if m.To == "dpo@cust-0042.example" {
			ev["event"], ev["type"], ev["status"] = "bounce", "bounce", "5.1.1"
		}
		events = append(events, ev)
	}
	whBody, _ := json.Marshal(events)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	h := sha256.Sum256(append([]byte(ts), whBody...))
	sig, _ := ecdsa.SignASN1(rand.Reader, whKey, h[:])
	req, _ := http.NewRequest("POST", "http://"+info.HTTPAddr+"/hooks/sendgrid/events", bytes.NewReader(whBody))
	req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", base64.StdEncoding.EncodeToString(sig))
	req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("webhook: %v %v", resp, err)
	}
	resp.Body.Close()
	req, _ = http.NewRequest("POST", "http://"+info.HTTPAddr+"/hooks/sendgrid/events", bytes.NewReader(whBody))
	req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("unsigned webhook: %v %v", resp, err)
	}

	// In the app: the victim's token sees its notice; the other tenant's
	// token sees nothing of it, whatever it asks.
	list := mustCall("GET", "/api/v1/tenants/cust-0042/notices", appToken, nil, 200)
	ns := list["notices"].([]any)
	if len(ns) != 1 {
		t.Fatalf("notices: %v", list)
	}
	n := ns[0].(map[string]any)
	if n["locale"] != "nl" || n["read_at"] != nil || !strings.Contains(n["html"].(string), `lang="nl"`) {
		t.Fatalf("notice: %v", n)
	}
	nid := n["id"].(string)
	mustCall("GET", "/api/v1/tenants/cust-0042/notices", app2Token, nil, 403)
	mustCall("POST", "/api/v1/tenants/cust-0042/notices/"+nid+"/read", app2Token, nil, 403)
	if l := mustCall("GET", "/api/v1/tenants/cust-0007/notices", app2Token, nil, 200); len(l["notices"].([]any)) != 0 {
		t.Fatalf("the reader's tenant sees %v", l)
	}
	mustCall("POST", "/api/v1/tenants/cust-0007/notices/"+nid+"/read", app2Token, nil, 404)
	mustCall("GET", "/api/v1/tenants/cust-0042/notices", engineerToken, nil, 403)
	mustCall("POST", "/api/v1/tenants/cust-0042/notices/"+nid+"/read", appToken, nil, 204)
	mustCall("POST", "/api/v1/tenants/cust-0042/notices/"+nid+"/read", appToken, nil, 204)
	if l := mustCall("GET", "/api/v1/tenants/cust-0042/notices", appToken, nil, 200); l["notices"].([]any)[0].(map[string]any)["read_at"] == nil {
		t.Errorf("the read receipt is not shown: %v", l)
	}

	// The incident: notified, the customer obligations met, progress per
	// customer with the read receipt.
	inc := mustCall("GET", path, engineerToken, nil, 200)
	if inc["status"] != "notified" {
		t.Errorf("status %v", inc["status"])
	}
	for _, d := range inc["deadlines"].([]any) {
		d := d.(map[string]any)
		if d["recipient"] == "customers" && d["met_at"] == nil {
			t.Errorf("customer deadline not met: %v", d)
		}
	}
	nv := mustCall("GET", path+"/notice?per_tenant=true", dpoToken, nil, 200)
	p := nv["progress"].(map[string]any)
	pt := p["per_tenant"].([]any)[0].(map[string]any)
	if p["customers"] != 1.0 || p["reached"] != 1.0 || pt["tenant"] != "cust-0042" || pt["sent"] != 2.0 || pt["read"] != true ||
		pt["delivered"] != 1.0 || pt["bounced"] != 1.0 {
		t.Errorf("progress: %v", p)
	}
	if fu := p["follow_up"].([]any); len(fu) != 1 || fu[0].(map[string]any)["tenant"] != "cust-0042" {
		t.Errorf("follow-up: %v", p["follow_up"])
	}
	// The authority report and the register, through the API and the CLI.
	rep := mustCall("GET", path+"/report", dpoToken, nil, 200)
	if rep["nature"] != "Another customer's account read your contacts." || rep["customers"] != 1.0 || rep["records"] != 1234.0 {
		t.Errorf("report: %v", rep)
	}
	stdout.Reset()
	if code := incidentsCommand(context.Background(), []string{"report", id, "--html", "--url", base, "--token-file", tokFile}, &stdout, &stderr,
		func(string) string { return "" }); code != 0 || !strings.Contains(stdout.String(), "Personal data breach report") {
		t.Errorf("CLI report: %d %.200s %s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := incidentsCommand(context.Background(), []string{"register", "--csv", "--url", base, "--token-file", tokFile}, &stdout, &stderr,
		func(string) string { return "" }); code != 0 || !strings.HasPrefix(stdout.String(), "incident,rule,title") || !strings.Contains(stdout.String(), id) {
		t.Errorf("CLI register: %d %.300s %s", code, stdout.String(), stderr.String())
	}
	mustCall("GET", "/api/v1/register", appToken, nil, 403)

	// The audit log holds the workflow.
	audit := mustCall("GET", path+"/audit", dpoToken, nil, 200)
	var acts []string
	for _, e := range audit["entries"].([]any) {
		e := e.(map[string]any)
		if a := e["action"].(string); strings.HasPrefix(a, "notice-") {
			acts = append(acts, a+" "+e["actor"].(string))
		}
	}
	if got := strings.Join(acts, ", "); got != "notice-drafted token:dana, notice-drafted token:dana, notice-approved token:olu, notice-send token:on-call, notice-sent breachwatch" {
		t.Errorf("audit: %s", got)
	}
}
