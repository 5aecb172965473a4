package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/store/sqlite"
	"github.com/breachwatch/breachwatch/tracker"
)

const (
	dpoToken   = "dpo-token-for-tests-0123456789abc"
	appToken   = "app-token-for-tests-0123456789abc"
	slackToken = "xoxb-test-token"
	slackKey   = "slack-signing-secret-for-tests"
)

// fakeSlack answers the Slack Web API methods breachwatch uses, for
// slack-go's real client, and records the calls.
type fakeSlack struct {
	mu    sync.Mutex
	calls []string // method + " " + channel/ts
	n     int
}

func (s *fakeSlack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	s.mu.Lock()
	s.n++
	ts := fmt.Sprintf("1700000000.%06d", s.n)
	s.calls = append(s.calls, method+" "+r.PostForm.Get("ts")+r.PostForm.Get("thread_ts"))
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.PostForm.Get("token") != slackToken && r.Header.Get("Authorization") != "Bearer "+slackToken {
		fmt.Fprint(w, `{"ok":false,"error":"invalid_auth"}`)
		return
	}
	fmt.Fprintf(w, `{"ok":true,"channel":"C0ALERTS","ts":%q}`, firstNonEmpty(r.PostForm.Get("ts"), ts))
}

func (s *fakeSlack) count(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func call(t *testing.T, method, addr, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, "http://"+addr+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

// TestIncidentsEndToEnd: a cross-tenant read posted over HTTP becomes an
// incident with its clock and its victim, alerted in Slack; it is triaged
// through the API (roles enforced), Slack's buttons and the CLI, and the
// audit log verifies.
func TestIncidentsEndToEnd(t *testing.T) {
	slackAPI := &fakeSlack{}
	ss := httptest.NewServer(slackAPI)
	defer ss.Close()
	t.Setenv("BREACHWATCH_SLACK_BOT_TOKEN", slackToken)
	o := testOptions(t)
	o.Auth.Tokens = append(o.Auth.Tokens,
		TokenOptions{Name: "dana", Role: "dpo", TokenSHA256: sha(dpoToken)},
		TokenOptions{Name: "product", Role: "app", Tenants: []string{"cust-0042"}, TokenSHA256: sha(appToken)})
	o.Slack = SlackOptions{Channel: "C0ALERTS", BotToken: slackToken, SigningSecret: slackKey, APIURL: ss.URL + "/api/",
		Users: []SlackUser{{ID: "U0ERIN", Name: "erin", Role: "engineer"}}}
	o.Tracker.TimeZone = "Europe/Amsterdam"
	info := start(t, o)

	// Tenant cust-0007's user reads cust-0042's contacts.
	when := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano)
	ev := fmt.Sprintf(`{"id":"xt-1","time":%q,"tenant":"cust-0042","actor":{"id":"u-evil","type":"customer_user","tenant":"cust-0007"},`+
		`"action":"read","resource":{"type":"contact","id":"c-1","store":"postgres-eu-1"},"records":12,"categories":["contact"],`+
		`"outcome":"success","user_agent":"<script>alert(1)</script>"}`, when)
	if code, body := post(t, info.HTTPAddr, "/api/v1/events/access", ingestToken, []byte(ev+"\n")); code != 202 {
		t.Fatalf("ingest: %d %v", code, body)
	}
	var inc map[string]any
	waitFor(t, "the incident", 30*time.Second, func() bool {
		code, body := call(t, "GET", info.HTTPAddr, "/api/v1/incidents", engineerToken, nil)
		if code != 200 {
			t.Fatalf("list: %d %v", code, body)
		}
		list := body["incidents"].([]any)
		if len(list) == 0 {
			return false
		}
		inc = list[0].(map[string]any)
		return true
	})
	id := inc["id"].(string)
	if !strings.HasPrefix(id, "inc-") || inc["rule_id"] != "cross-tenant-read" || inc["status"] != "open" ||
		inc["detected_at"] != inc["aware_at"] || inc["severity"] != "critical" {
		t.Fatalf("incident: %v", inc)
	}
	aff := inc["affected"].(map[string]any)
	list := aff["list"].([]any)
	if aff["tenants"] != 1.0 || aff["records"] != 12.0 || len(list) != 1 {
		t.Fatalf("affected: %v", aff)
	}
	victim := list[0].(map[string]any)
	if victim["tenant"] != "cust-0042" || victim["how"] != "accessed" || victim["records"] != 12.0 {
		t.Errorf("the victim, not the reader: %v", victim)
	}
	var art33 map[string]any
	for _, d := range inc["deadlines"].([]any) {
		if d := d.(map[string]any); d["id"] == "gdpr/art33" {
			art33 = d
		}
	}
	detected, _ := time.Parse(time.RFC3339Nano, inc["detected_at"].(string))
	due, _ := time.Parse(time.RFC3339Nano, art33["due_at"].(string))
	if art33["regime"] != "gdpr" || art33["met_at"] != nil || !due.Equal(detected.Add(72*time.Hour)) ||
		!strings.Contains(art33["due_local"].(string), "CET") || art33["recipient_time_zone"] != "Europe/Brussels" {
		t.Errorf("art33 deadline: %v", art33)
	}
	if ex := inc["exposure"].(map[string]any); ex["from"] == nil {
		t.Errorf("exposure: %v", ex)
	}

	waitFor(t, "the Slack alert", 30*time.Second, func() bool { return slackAPI.count("chat.postMessage") >= 1 })
	// Who may do what.
	for _, tc := range []struct {
		method, path, token string
		body                any
		want                int
	}{
		{"GET", "/api/v1/incidents", "", nil, 401},
		{"GET", "/api/v1/incidents", ingestToken, nil, 403},
		{"GET", "/api/v1/incidents/" + id, appToken, nil, 403},
		{"GET", "/api/v1/incidents/inc-nope", engineerToken, nil, 404},
		{"GET", "/api/v1/incidents?status=bogus", engineerToken, nil, 400},
		{"POST", "/api/v1/incidents/" + id + "/confirm", appToken, nil, 403},
		{"POST", "/api/v1/incidents/" + id + "/awareness", engineerToken, map[string]any{"at": when, "reason": "x"}, 403},
		{"POST", "/api/v1/incidents/" + id + "/awareness", dpoToken, map[string]any{"at": when}, 409},
		{"POST", "/api/v1/incidents/" + id + "/dismiss", engineerToken, map[string]any{}, 409},
		{"POST", "/api/v1/incidents/" + id + "/explode", engineerToken, nil, 409},
		{"POST", "/api/v1/incidents/" + id + "/confirm", engineerToken, map[string]any{"bogus": 1}, 400},
		{"DELETE", "/api/v1/incidents/" + id, engineerToken, nil, 405},
		{"POST", "/api/v1/incidents/" + id + "/confirm", engineerToken, nil, 200},
		{"POST", "/api/v1/incidents/" + id + "/confirm", engineerToken, nil, 409},
		{"GET", "/api/v1/incidents?status=confirmed", engineerToken, nil, 200},
		{"GET", "/api/v1/incidents/" + id + "/audit", dpoToken, nil, 200},
	} {
		if code, body := call(t, tc.method, info.HTTPAddr, tc.path, tc.token, tc.body); code != tc.want {
			t.Errorf("%s %s as %q: %d %v; want %d", tc.method, tc.path, tc.token[:min(len(tc.token), 6)], code, body, tc.want)
		}
	}

	// Slack: the alert was rewritten after the confirmation.
	waitFor(t, "the Slack alert's update", 30*time.Second, func() bool { return slackAPI.count("chat.update") >= 1 })
	// A signed click on Acknowledge by a mapped Slack user.
	payload, _ := json.Marshal(map[string]any{"type": "block_actions", "user": map[string]string{"id": "U0ERIN"},
		"actions": []map[string]string{{"type": "button", "block_id": "bw_actions", "action_id": "bw_acknowledge", "value": id}}})
	form := "payload=" + url.QueryEscape(string(payload))
	slackPost := func(key string) int {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		mac := hmac.New(sha256.New, []byte(key))
		fmt.Fprintf(mac, "v0:%s:%s", ts, form)
		req, _ := http.NewRequest("POST", "http://"+info.HTTPAddr+"/hooks/slack/interactions", strings.NewReader(form))
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := slackPost("forged-secret"); code != 401 {
		t.Errorf("forged Slack request: %d", code)
	}
	if code := slackPost(slackKey); code != 200 {
		t.Fatalf("signed Slack click: %d", code)
	}
	_, got := call(t, "GET", info.HTTPAddr, "/api/v1/incidents/"+id, engineerToken, nil)
	if got["acknowledged"] != true || got["acknowledged_by"] != "slack:erin" {
		t.Errorf("after the Slack click: acknowledged %v by %v", got["acknowledged"], got["acknowledged_by"])
	}

	// The CLI, against the running service.
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(engineerToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "http://" + info.HTTPAddr
	code, out, errOut := runMain(t, "incidents", "list", "--url", base, "--token-file", tokenFile)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "confirmed") || !strings.Contains(out, "left") {
		t.Fatalf("incidents list: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runMain(t, "incidents", "show", id, "--url", base, "--token-file", tokenFile)
	if code != 0 || !strings.Contains(out, "cust-0042") || !strings.Contains(out, "accessed") || !strings.Contains(out, "gdpr/art33") {
		t.Fatalf("incidents show: %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut = runMain(t, "incidents", "dismiss", id, "--url", base, "--token-file", tokenFile); code != 1 ||
		!strings.Contains(errOut, "needs a reason") {
		t.Errorf("dismiss without a reason: %d %s", code, errOut)
	}
	code, out, errOut = runMain(t, "incidents", "dismiss", id, "--reason", "pen test by cust-0007, agreed", "--url", base, "--token-file", tokenFile)
	if code != 0 || !strings.Contains(out, "dismissed") {
		t.Fatalf("incidents dismiss: %d %s%s", code, out, errOut)
	}
	code, _, errOut = runMain(t, "incidents", "confirm", "inc-nope", "--url", base, "--token-file", tokenFile)
	if code != 1 || !strings.Contains(errOut, "no such incident") {
		t.Errorf("confirm unknown: %d %s", code, errOut)
	}

	// The audit log: every change, with who and why; intact.
	_, audit := call(t, "GET", info.HTTPAddr, "/api/v1/incidents/"+id+"/audit", engineerToken, nil)
	var trail []string
	for _, e := range audit["entries"].([]any) {
		e := e.(map[string]any)
		trail = append(trail, fmt.Sprintf("%v/%v", e["action"], e["actor"]))
	}
	for _, want := range []string{"opened/breachwatch", "confirmed/token:on-call", "acknowledged/slack:erin", "dismissed/token:on-call", "alerted/breachwatch"} {
		if !strings.Contains(strings.Join(trail, " "), want) {
			t.Errorf("audit trail %v lacks %s", trail, want)
		}
	}
	if v := metric(t, info.HTTPAddr, `breachwatch_incidents{status="dismissed"}`); v != 1 {
		t.Errorf("breachwatch_incidents{status=dismissed} = %v; want 1", v)
	}
	// Minutes after opening no reminder is due: not even the 24-hour
	// processor target's, whose first is at 12 hours left (its clock
	// starting is not "approaching"; the clocks are walked in tracker).
	if v := metric(t, info.HTTPAddr, "breachwatch_tracker_reminders_total"); v != 0 {
		t.Errorf("breachwatch_tracker_reminders_total = %v; want none yet", v)
	}
	code, out, errOut = runMain(t, "audit", "verify", "--data-dir", o.DataDir)
	if code != 0 || !strings.Contains(out, "audit log intact") {
		t.Fatalf("audit verify: %d %s%s", code, out, errOut)
	}
}

// TestAuditVerifyDetectsTampering: `breachwatch audit verify` finds an
// edited entry and a deleted one.
func TestAuditVerifyDetectsTampering(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ name, sql, want string }{
		{"edited", "UPDATE audit_log SET reason = 'nothing happened' WHERE action = 'dismissed'", "was altered"},
		{"deleted", "DELETE FROM audit_log WHERE action = 'confirmed'", "is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := sqlite.Open(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := tracker.New(ctx, st, tracker.Options{})
			if err != nil {
				t.Fatal(err)
			}
			f := incident.Finding{RuleID: "r", GroupKey: "g", WindowStart: time.Now(), Kind: incident.KindMatch, Count: 1}
			f.Fingerprint = incident.Fingerprint(f.RuleID, f.GroupKey, f.WindowStart)
			ids, err := tr.Findings(ctx, []incident.Finding{f})
			if err != nil {
				t.Fatal(err)
			}
			eng := tracker.Actor{Name: "token:erin", Role: "engineer"}
			for _, c := range []tracker.Command{{Name: tracker.CmdConfirm}, {Name: tracker.CmdNote, Reason: "n"}} {
				c.Incident = ids[0]
				if _, err := tr.Do(ctx, eng, c); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := tr.Do(ctx, eng, tracker.Command{Incident: ids[0], Name: tracker.CmdDismiss, Reason: "a drill"}); err != nil {
				t.Fatal(err)
			}
			st.Close()
			if code, out, _ := runMain(t, "audit", "verify", "--data-dir", dir); code != 0 {
				t.Fatalf("intact log: %d %s", code, out)
			}
			db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(tc.sql); err != nil {
				t.Fatal(err)
			}
			db.Close()
			code, _, errOut := runMain(t, "audit", "verify", "--data-dir", dir)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("tampered log: %d %s; want %q", code, errOut, tc.want)
			}
		})
	}
}
