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
	"slices"
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
	if len(previews) != 8 || previews["ar"]["dir"] != "rtl" || !strings.Contains(previews["nl"]["text"].(string), "1.234") ||
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

// TestSupplementaryNoticeEndToEnd: a public bucket's notice goes to the 3
// customers whose data it held, through the real sendgrid-go client; then
// 2 more customers' exports turn out to have been in it (their events
// arrive late) and the bucket is made public again. The incident must not
// stay "notified": it shows the update required, the customer deadline is
// unmet again, a supplementary version goes to the 2 customers only (the
// DPO chose no correction), and once they are reached it is notified, the
// register and the authority report showing both phases.
func TestSupplementaryNoticeEndToEnd(t *testing.T) {
	sg := sendgridtest.New("SG.key-for-tests")
	defer sg.Close()
	dir := t.TempDir()
	customers := filepath.Join(dir, "customers.yaml")
	var cs strings.Builder
	cs.WriteString("format: 1\ncustomers:\n")
	for _, c := range "abcde" {
		fmt.Fprintf(&cs, "  - {tenant: cust-%c, country: NL, locale: en, time_zone: Europe/Amsterdam, emails: [owner@cust-%c.example]}\n", c, c)
	}
	if err := os.WriteFile(customers, []byte(cs.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	o := testOptions(t)
	o.Auth.Tokens = append(o.Auth.Tokens,
		TokenOptions{Name: "dana", Role: "dpo", TokenSHA256: sha(dpoToken)},
		TokenOptions{Name: "olu", Role: "dpo", TokenSHA256: sha(dpo2Token)})
	o.Tracker.Customers = customers
	o.Notify.SendGridAPIKey, o.Notify.SendGridURL, o.Notify.From = "SG.key-for-tests", sg.URL, "security@bookly.example"
	o.Notify.Interval = Duration(200 * time.Millisecond)
	info := start(t, o)
	mustCall := func(method, p, token string, body any, want int) map[string]any {
		t.Helper()
		code, out := call(t, method, info.HTTPAddr, p, token, body)
		if code != want {
			t.Fatalf("%s %s: %d %v; want %d", method, p, code, out, want)
		}
		return out
	}
	t0 := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	export := func(tenant string, at time.Time) string {
		return fmt.Sprintf(`{"id":"exp-%s","time":%q,"tenant":%q,"actor":{"id":"u-%s","type":"customer_user","tenant":%q},`+
			`"action":"export","resource":{"type":"file","id":"f","store":"s3://exports-eu"},"records":100,"categories":["contact"],"outcome":"success"}`,
			tenant, at.Format(time.RFC3339), tenant, tenant, tenant)
	}
	public := func(id string, at time.Time, on bool) string {
		return fmt.Sprintf(`{"id":%q,"time":%q,"resource":{"id":"arn:aws:s3:::exports-eu","type":"bucket","store":"s3://exports-eu"},`+
			`"setting":"public_access","before":%t,"after":%t,"actor":{"id":"deploy-bot","type":"service"},"source":"terraform"}`,
			id, at.Format(time.RFC3339), !on, on)
	}
	ingest := func(path string, lines ...string) {
		t.Helper()
		if code, body := post(t, info.HTTPAddr, path, ingestToken, []byte(strings.Join(lines, "\n")+"\n")); code != 202 {
			t.Fatalf("ingest %s: %d %v", path, code, body)
		}
	}
	ingest("/api/v1/events/access", export("cust-a", t0.Add(-3*time.Hour)), export("cust-b", t0.Add(-150*time.Minute)),
		export("cust-c", t0.Add(-2*time.Hour)))
	ingest("/api/v1/events/config", public("c1", t0, true), public("c2", t0.Add(10*time.Minute), false))

	var id string
	var inc map[string]any
	get := func() map[string]any { return mustCall("GET", "/api/v1/incidents/"+id, engineerToken, nil, 200) }
	tenants := func(inc map[string]any) float64 { return inc["affected"].(map[string]any)["tenants"].(float64) }
	waitFor(t, "the exposure incident with its 3 customers", 30*time.Second, func() bool {
		_, body := call(t, "GET", info.HTTPAddr, "/api/v1/incidents", engineerToken, nil)
		for _, x := range body["incidents"].([]any) {
			if x := x.(map[string]any); x["rule_id"] == "store-made-public" {
				id = x["id"].(string)
			}
		}
		return id != "" && tenants(get()) == 3
	})
	path := "/api/v1/incidents/" + id
	notice := map[string]any{
		"text": map[string]any{"en": map[string]string{"nature": "An export bucket was public for ten minutes.", "consequences": "Your contacts could be read.",
			"measures": "We closed it.", "actions": "Nothing to do."}},
		"contact":   map[string]string{"name": "Dana", "email": "dpo@bookly.example"},
		"authority": map[string]string{"name": "Autoriteit Persoonsgegevens"},
		"product":   "Bookly",
	}
	sendVersion := func(n int, body map[string]any, send map[string]any) map[string]any {
		t.Helper()
		v := mustCall("POST", path+"/draft", dpoToken, body, 200)
		ver := v["notice"].(map[string]any)["versions"].([]any)[n-1].(map[string]any)
		mustCall("POST", path+"/approve", dpo2Token, map[string]any{"version": n, "hash": ver["hash"]}, 200)
		if send != nil {
			// Without a correction, the customers told already whose
			// facts changed are left as they are only with a reason.
			out := mustCall("POST", path+"/send", engineerToken, nil, 409)
			if !strings.Contains(out["error"].(string), "have changed facts") {
				t.Fatalf("send without a reason: %v", out)
			}
		}
		mustCall("POST", path+"/send", engineerToken, send, 200)
		waitFor(t, fmt.Sprintf("version %d reaching its customers", n), 30*time.Second, func() bool {
			inc = get()
			return inc["status"] == "notified"
		})
		return ver
	}
	mustCall("POST", path+"/confirm", engineerToken, nil, 200)
	sendVersion(1, map[string]any{"notice": notice}, nil)
	if c := sg.Count(); len(c) != 3 || c["owner@cust-a.example"] != 1 || c["owner@cust-c.example"] != 1 {
		t.Fatalf("version 1 went to %v", c)
	}
	var firstMet any
	for _, d := range inc["deadlines"].([]any) {
		if d := d.(map[string]any); d["recipient"] == "customers" {
			firstMet = d["met_at"]
		}
	}

	// 2 more customers' exports, dated before the window closed, arrive
	// late; then the bucket is made public again.
	ingest("/api/v1/events/access", export("cust-d", t0.Add(-30*time.Minute)), export("cust-e", t0.Add(-20*time.Minute)))
	waitFor(t, "the 2 customers added", 30*time.Second, func() bool { inc = get(); return tenants(inc) == 5 })
	ingest("/api/v1/events/config", public("c3", t0.Add(25*time.Minute), true))
	waitFor(t, "the exposure reopened", 30*time.Second, func() bool {
		inc = get()
		u, _ := inc["update_required"].(map[string]any)
		return u != nil && len(u["reasons"].([]any)) == 2
	})
	u := inc["update_required"].(map[string]any)
	if inc["status"] != "notifying" || fmt.Sprint(u["untold"]) != "[cust-d cust-e]" || fmt.Sprint(u["changed"]) != "[cust-a cust-b cust-c]" ||
		!strings.Contains(fmt.Sprint(u["reasons"]), "2 customers added after the notice went out") ||
		!strings.Contains(fmt.Sprint(u["reasons"]), "the exposure reopened") {
		t.Fatalf("after the changes: status %v, update %v", inc["status"], u)
	}
	if inc["exposure"].(map[string]any)["to"] != nil {
		t.Fatalf("exposure %v", inc["exposure"])
	}
	for _, d := range inc["deadlines"].([]any) {
		if d := d.(map[string]any); d["recipient"] == "customers" && (d["met_at"] != nil || d["first_met_at"] != firstMet || d["anchor"] != "update") {
			t.Fatalf("customer deadline after the changes: %v (first met %v)", d, firstMet)
		}
	}
	// Version 1 cannot be sent again.
	mustCall("POST", path+"/send", engineerToken, nil, 409)
	// The CLI says what is owed.
	tokFile := filepath.Join(dir, "dana-token")
	if err := os.WriteFile(tokFile, []byte(dpoToken), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := incidentsCommand(context.Background(), []string{"notice", id, "--url", "http://" + info.HTTPAddr, "--token-file", tokFile},
		&stdout, &stderr, func(string) string { return "" }); code != 0 || !strings.Contains(stdout.String(), "UPDATE REQUIRED since") ||
		!strings.Contains(stdout.String(), "not told yet: 2; told, facts changed since: 3") || !strings.Contains(stdout.String(), "sent: version 1 on") {
		t.Errorf("incidents notice: %d\n%s%s", code, stdout.String(), stderr.String())
	}

	// The supplementary version 2, diffed against version 1, to the 2 only.
	ver := sendVersion(2, map[string]any{"notice": notice}, map[string]any{"reason": "they are told the reopening in a separate call"})
	if ver["supplementary"] != true || ver["diff"] == nil {
		t.Fatalf("version 2: %v", ver)
	}
	diff := ver["diff"].(map[string]any)
	if fmt.Sprint(diff["customers_new"]) != "[cust-d cust-e]" || diff["window_after"].(map[string]any)["to"] != nil {
		t.Errorf("diff: %v", diff)
	}
	c := sg.Count()
	if len(c) != 5 {
		t.Fatalf("after version 2: %v", c)
	}
	for addr, n := range c {
		if n != 1 {
			t.Errorf("%s got %d messages", addr, n)
		}
	}
	if inc["update_required"] != nil {
		t.Errorf("still an update required: %v", inc["update_required"])
	}
	for _, d := range inc["deadlines"].([]any) {
		if d := d.(map[string]any); d["recipient"] == "customers" && (d["met_at"] == nil || d["first_met_at"] != firstMet) {
			t.Errorf("customer deadline after version 2: %v", d)
		}
	}
	phases := inc["notice"].(map[string]any)["phases"].([]any)
	if len(phases) != 2 || phases[0].(map[string]any)["customers"] != 3.0 || phases[1].(map[string]any)["customers"] != 2.0 ||
		phases[1].(map[string]any)["kept"] != 3.0 {
		t.Fatalf("phases: %v", phases)
	}
	rep := mustCall("GET", path+"/report", dpoToken, nil, 200)
	if ps, _ := rep["customer_notice_phases"].([]any); len(ps) != 2 {
		t.Errorf("report phases: %v", rep["customer_notice_phases"])
	}
	reg := mustCall("GET", "/api/v1/register", dpoToken, nil, 200)
	found := false
	for _, e := range reg["entries"].([]any) {
		if e := e.(map[string]any); e["incident"] == id {
			found = true
			ps := e["notice_phases"].([]any)
			if len(ps) != 2 || !strings.HasPrefix(ps[1].(string), "v2 (supplementary)") || !strings.Contains(ps[1].(string), "to 2 customers, all reached") {
				t.Errorf("register phases: %v", ps)
			}
		}
	}
	if !found {
		t.Error("the incident is not in the register")
	}
	audit := mustCall("GET", path+"/audit", dpoToken, nil, 200)
	var acts []string
	for _, e := range audit["entries"].([]any) {
		if a := e.(map[string]any)["action"].(string); strings.HasPrefix(a, "notice-") || a == "update-required" {
			acts = append(acts, a)
		}
	}
	if !slices.Contains(acts, "update-required") || strings.Count(strings.Join(acts, ","), "notice-sent") != 2 {
		t.Errorf("audit: %v", acts)
	}
}
