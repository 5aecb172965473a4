package slack

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/incident"
)

// slackServer is a local stand-in for Slack's Web API: it answers the
// methods breachwatch calls the way Slack does and records each call's
// form, for slack-go's real client to talk to.
type slackServer struct {
	mu    sync.Mutex
	calls []call
	n     int
}

type call struct {
	method string
	form   url.Values
}

func (s *slackServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		// Some methods (views.open) take JSON: each top-level field becomes
		// a form value, objects as their JSON.
		var m map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		r.PostForm = url.Values{}
		for k, v := range m {
			var str string
			if json.Unmarshal(v, &str) == nil {
				r.PostForm.Set(k, str)
			} else {
				r.PostForm.Set(k, string(v))
			}
		}
	} else if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	s.mu.Lock()
	s.n++
	ts := fmt.Sprintf("1700000000.%06d", s.n)
	s.calls = append(s.calls, call{method, r.PostForm})
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.PostForm.Get("token") != "xoxb-test-token" && r.Header.Get("Authorization") != "Bearer xoxb-test-token" {
		fmt.Fprint(w, `{"ok":false,"error":"invalid_auth"}`)
		return
	}
	switch method {
	case "chat.postMessage", "chat.update":
		fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q}`, r.PostForm.Get("channel"), firstOf(r.PostForm.Get("ts"), ts))
	case "chat.postEphemeral":
		fmt.Fprintf(w, `{"ok":true,"message_ts":%q}`, ts)
	case "views.open":
		fmt.Fprint(w, `{"ok":true,"view":{"id":"V1"}}`)
	default:
		fmt.Fprint(w, `{"ok":false,"error":"unknown_method"}`)
	}
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *slackServer) take() []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.calls
	s.calls = nil
	return out
}

const secret = "8f742231b10e8888abcd99yyyzzz85a5"

func newNotifier(t *testing.T) (*Notifier, *slackServer) {
	t.Helper()
	ss := &slackServer{}
	srv := httptest.NewServer(ss)
	t.Cleanup(srv.Close)
	n, err := New(Options{Token: "xoxb-test-token", Channel: "C0ALERTS", SigningSecret: secret, APIURL: srv.URL + "/api/",
		ConsoleURL: "https://breachwatch.example.com", Users: map[string]User{"U0ERIN": {Name: "erin", Role: "engineer"}, "U0DANA": {Name: "dana", Role: "dpo"}}})
	if err != nil {
		t.Fatal(err)
	}
	return n, ss
}

func view() incident.View {
	due := time.Now().Add(47 * time.Hour).UTC()
	met := time.Now().Add(-time.Hour).UTC()
	return incident.View{ID: "inc-1", RuleID: "public-bucket", Severity: "critical", Status: incident.StatusOpen,
		Title:      `Bucket <!channel> made public <https://evil.example|click> & more`,
		DetectedAt: time.Now().UTC(), Affected: incident.AffectedView{Tenants: 3, Records: 5400},
		Deadlines: []incident.Deadline{
			{ID: "gdpr/art33", Regime: "gdpr", What: "notify the supervisory authority", DueAt: &due, Legal: true},
			{ID: "gdpr/art33-2", Regime: "gdpr", What: "notify the controller", DueAt: &met, MetAt: &met},
		}}
}

func TestAlertUpdateRemind(t *testing.T) {
	ctx := context.Background()
	n, ss := newNotifier(t)
	v := view()
	ref, err := n.Alert(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	calls := ss.take()
	if len(calls) != 1 || calls[0].method != "chat.postMessage" || ref.Channel != "C0ALERTS" || ref.TS == "" {
		t.Fatalf("alert: %+v, ref %+v", calls, ref)
	}
	f := calls[0].form
	blocks := f.Get("blocks")
	var parsed []map[string]any
	if err := json.Unmarshal([]byte(blocks), &parsed); err != nil {
		t.Fatalf("blocks are not JSON: %v", err)
	}
	if parsed[0]["type"] != "header" || parsed[0]["text"].(map[string]any)["type"] != "plain_text" {
		t.Errorf("the title must be a plain-text header (Slack parses no markup in it): %v", parsed[0])
	}
	// Every text Slack parses as markup, decoded from the JSON.
	marked := []string{f.Get("text")}
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			if x["type"] == "mrkdwn" {
				marked = append(marked, x["text"].(string))
			}
			for _, v := range x {
				walk(v)
			}
		case []any:
			for _, v := range x {
				walk(v)
			}
		}
	}
	for _, b := range parsed {
		walk(b)
	}
	all := strings.Join(marked, "\n")
	for _, bad := range []string{"<!channel>", "<https://evil", "cust-"} {
		if strings.Contains(all, bad) {
			t.Errorf("the message carries %q unescaped:\n%s", bad, all)
		}
	}
	if !strings.Contains(f.Get("text"), "&lt;!channel&gt;") {
		t.Errorf("fallback text not escaped: %q", f.Get("text"))
	}
	blocks = all + blocks
	for _, want := range []string{"3 tenants, 5400 records", "notify the supervisory authority", "left*", "<!date^", "_(internal target)_",
		`"action_id":"bw_acknowledge"`, `"action_id":"bw_confirm"`, `"action_id":"bw_dismiss"`,
		"https://breachwatch.example.com/incidents/inc-1", "&amp; more"} {
		if !strings.Contains(blocks+f.Get("text"), want) {
			t.Errorf("the message lacks %q:\n%s", want, blocks)
		}
	}

	v.Status, v.Acknowledged = incident.StatusConfirmed, true
	if err := n.Update(ctx, ref, v); err != nil {
		t.Fatal(err)
	}
	calls = ss.take()
	if len(calls) != 1 || calls[0].method != "chat.update" || calls[0].form.Get("ts") != ref.TS {
		t.Fatalf("update: %+v", calls)
	}
	if b := calls[0].form.Get("blocks"); strings.Contains(b, "bw_confirm") || strings.Contains(b, "bw_acknowledge") {
		t.Errorf("a confirmed, acknowledged incident still offers those buttons: %s", b)
	}

	if err := n.Remind(ctx, ref, v, v.Deadlines[0], -90*time.Minute); err != nil {
		t.Fatal(err)
	}
	calls = ss.take()
	if len(calls) != 1 || calls[0].form.Get("thread_ts") != ref.TS || !strings.Contains(calls[0].form.Get("text"), "OVERDUE by 1h 30m") {
		t.Fatalf("reminder: %+v", calls)
	}

	// An update required: said in the thread, escaped, and shown in the
	// alert instead of "sent to every customer".
	v.UpdateRequired = &incident.Update{Reasons: []string{"2 customers added after the notice went out", "<!channel> injected"}}
	if err := n.UpdateRequired(ctx, ref, v); err != nil {
		t.Fatal(err)
	}
	calls = ss.take()
	if len(calls) != 1 || calls[0].form.Get("thread_ts") != ref.TS || !strings.Contains(calls[0].form.Get("text"), "*Update required*: 2 customers added") ||
		strings.Contains(calls[0].form.Get("text"), "<!channel>") {
		t.Fatalf("update required: %+v", calls)
	}
	v.Notice = &incident.NoticeView{Sending: 1, SentAt: &v.DetectedAt}
	if err := n.Update(ctx, ref, v); err != nil {
		t.Fatal(err)
	}
	if b := ss.take()[0].form.Get("blocks"); !strings.Contains(b, "update required: 2 customers added") || strings.Contains(b, "sent to every customer") {
		t.Errorf("the alert does not show the update required: %s", b)
	}
}

// triage is a hand-written Triage recording what it was asked.
type triage struct {
	mu   sync.Mutex
	got  []string
	fail string
}

func (t *triage) Approve(_ context.Context, actor, role, id string, version int, hash string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.got = append(t.got, strings.Join([]string{actor, role, id, "approve", strconv.Itoa(version), hash}, "|"))
	if t.fail != "" {
		return t.fail, false
	}
	return "ok", true
}

func (t *triage) Triage(_ context.Context, actor, role, id, cmd, reason string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.got = append(t.got, strings.Join([]string{actor, role, id, cmd, reason}, "|"))
	if t.fail != "" {
		return t.fail, false
	}
	return "ok", true
}

func sign(body string, ts int64, key string) http.Header {
	mac := hmac.New(sha256.New, []byte(key))
	fmt.Fprintf(mac, "v0:%d:%s", ts, body)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return h
}

func post(t *testing.T, h http.Handler, body string, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("POST", "/slack/interactions", strings.NewReader(body))
	r.Header = hdr
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func payload(v any) string {
	b, _ := json.Marshal(v)
	return "payload=" + url.QueryEscape(string(b))
}

func click(user, action, id string) string {
	return payload(map[string]any{"type": "block_actions", "user": map[string]string{"id": user}, "trigger_id": "T123",
		"channel": map[string]string{"id": "C0ALERTS"},
		"actions": []map[string]string{{"type": "button", "block_id": "bw_actions", "action_id": action, "value": id}}})
}

func TestInteractions(t *testing.T) {
	n, ss := newNotifier(t)
	tr := &triage{}
	h := n.Interactions(tr)
	now := time.Now().Unix()

	body := click("U0ERIN", ActionConfirm, "inc-1")
	if w := post(t, h, body, sign(body, now, secret)); w.Code != 200 {
		t.Fatalf("signed click: %d %s", w.Code, w.Body)
	}
	if len(tr.got) != 1 || tr.got[0] != "slack:erin|engineer|inc-1|confirm|" {
		t.Fatalf("triage: %q", tr.got)
	}
	// The same request again (a replay) is refused, however its signature's
	// hex is written (the verifier accepts either case).
	if w := post(t, h, body, sign(body, now, secret)); w.Code != 401 {
		t.Errorf("replay: %d", w.Code)
	}
	upper := sign(body, now, secret)
	upper.Set("X-Slack-Signature", "v0="+strings.ToUpper(strings.TrimPrefix(upper.Get("X-Slack-Signature"), "v0=")))
	if w := post(t, h, body, upper); w.Code != 401 {
		t.Errorf("replay with the signature in upper case: %d", w.Code)
	}
	// Forged, tampered and old requests are refused.
	other := click("U0ERIN", ActionAcknowledge, "inc-1")
	for name, hdr := range map[string]http.Header{
		"wrong secret":    sign(other, now, "not-the-secret"),
		"tampered body":   sign(click("U0ERIN", ActionAcknowledge, "inc-2"), now, secret),
		"ten minutes old": sign(other, now-600, secret),
		"unsigned":        {"Content-Type": {"application/x-www-form-urlencoded"}},
	} {
		if w := post(t, h, other, hdr); w.Code != 401 {
			t.Errorf("%s: %d", name, w.Code)
		}
	}
	if len(tr.got) != 1 {
		t.Fatalf("refused requests reached triage: %q", tr.got)
	}

	// Someone not mapped to a role is told so, and nothing happens.
	body = click("U0STRANGER", ActionConfirm, "inc-1")
	if w := post(t, h, body, sign(body, now, secret)); w.Code != 200 {
		t.Fatal(w.Code)
	}
	calls := ss.take()
	if len(tr.got) != 1 || len(calls) != 1 || calls[0].method != "chat.postEphemeral" || calls[0].form.Get("user") != "U0STRANGER" {
		t.Fatalf("unknown user: triage %q, calls %+v", tr.got, calls)
	}

	// Dismiss opens a dialog asking for the reason …
	body = click("U0ERIN", ActionDismiss, "inc-1")
	if w := post(t, h, body, sign(body, now, secret)); w.Code != 200 {
		t.Fatal(w.Code)
	}
	calls = ss.take()
	if len(calls) != 1 || calls[0].method != "views.open" || calls[0].form.Get("trigger_id") != "T123" ||
		!strings.Contains(calls[0].form.Get("view"), `"private_metadata":"inc-1"`) {
		t.Fatalf("dismiss: %+v", calls)
	}
	// … and its submission dismisses with it.
	submit := func(reason string) string {
		return payload(map[string]any{"type": "view_submission", "user": map[string]string{"id": "U0ERIN"},
			"view": map[string]any{"callback_id": callbackDismiss, "private_metadata": "inc-1",
				"state": map[string]any{"values": map[string]any{blockReason: map[string]any{blockReason: map[string]string{"type": "plain_text_input", "value": reason}}}}}})
	}
	body = submit("our own test account")
	if w := post(t, h, body, sign(body, now, secret)); w.Code != 200 || w.Body.Len() != 0 {
		t.Fatalf("submission: %d %s", w.Code, w.Body)
	}
	if tr.got[1] != "slack:erin|engineer|inc-1|dismiss|our own test account" {
		t.Fatalf("triage: %q", tr.got)
	}
	// A refused dismissal shows the reason in the dialog.
	tr.fail = "dismissing needs a reason"
	body = submit("")
	w := post(t, h, body, sign(body, now, secret))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"response_action":"errors"`) || !strings.Contains(w.Body.String(), "needs a reason") {
		t.Fatalf("refused submission: %d %s", w.Code, w.Body)
	}
}

// TestNoticeApproval: a complete notice version awaiting approval gets a
// button carrying its version and hash; a reminder of the customer
// deadline escalates to the DPOs while it waits; a click approves exactly
// that version (the tracker decides whether the clicker may).
func TestNoticeApproval(t *testing.T) {
	ctx := context.Background()
	n, ss := newNotifier(t)
	v := view()
	due := time.Now().Add(3 * time.Hour).UTC()
	v.Deadlines = append(v.Deadlines, incident.Deadline{ID: "gdpr/art34", Regime: "gdpr", What: "notify the affected customers",
		Recipient: "customers", DueAt: &due, Legal: true})
	v.Notice = &incident.NoticeView{AwaitingApproval: true, Versions: []incident.NoticeVersionView{
		{Version: 1, Hash: "h1", Missing: []string{"measures taken"}, ScopeCurrent: true},
		{Version: 2, Hash: "abc123", Missing: []string{}, ScopeCurrent: true}}}
	ref, err := n.Alert(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	b := ss.take()[0].form.Get("blocks")
	if !strings.Contains(b, `"action_id":"bw_approve"`) || !strings.Contains(b, `"value":"inc-1/2/abc123"`) || !strings.Contains(b, "v2 awaiting DPO approval") {
		t.Fatalf("no approve button for v2: %s", b)
	}
	// Incomplete or stale: no button.
	for _, mod := range []func(*incident.NoticeVersionView){
		func(x *incident.NoticeVersionView) { x.Missing = []string{"x"} },
		func(x *incident.NoticeVersionView) { x.ScopeCurrent = false },
	} {
		w := view()
		w.Notice = &incident.NoticeView{AwaitingApproval: true, Versions: []incident.NoticeVersionView{{Version: 1, Hash: "h", ScopeCurrent: true}}}
		mod(&w.Notice.Versions[0])
		if err := n.Update(ctx, ref, w); err != nil {
			t.Fatal(err)
		}
		if b := ss.take()[0].form.Get("blocks"); strings.Contains(b, "bw_approve") {
			t.Errorf("approve offered for a version that cannot be approved: %s", b)
		}
	}
	// The customer-deadline reminder escalates to the DPO while the notice waits.
	if err := n.Remind(ctx, ref, v, v.Deadlines[2], 3*time.Hour); err != nil {
		t.Fatal(err)
	}
	if text := ss.take()[0].form.Get("text"); !strings.Contains(text, "not approved yet. <@U0DANA>, please review") {
		t.Errorf("reminder does not escalate: %q", text)
	}
	if err := n.Remind(ctx, ref, v, v.Deadlines[0], 3*time.Hour); err != nil {
		t.Fatal(err)
	}
	if text := ss.take()[0].form.Get("text"); strings.Contains(text, "<@U0DANA>") {
		t.Errorf("the authority deadline's reminder escalates the customer notice: %q", text)
	}

	tr := &triage{}
	h := n.Interactions(tr)
	now := time.Now().Unix()
	body := click("U0DANA", ActionApprove, "inc-1/2/abc123")
	if w := post(t, h, body, sign(body, now, secret)); w.Code != 200 {
		t.Fatal(w.Code)
	}
	if len(tr.got) != 1 || tr.got[0] != "slack:dana|dpo|inc-1|approve|2|abc123" {
		t.Fatalf("approve: %q", tr.got)
	}
	if calls := ss.take(); len(calls) != 1 || calls[0].method != "chat.postEphemeral" || !strings.Contains(calls[0].form.Get("text"), "approved version 2") {
		t.Errorf("confirmation: %+v", calls)
	}
	// A refusal (an engineer; four eyes) is told to the clicker.
	tr.fail = "role engineer may not approve"
	body = click("U0ERIN", ActionApprove, "inc-1/2/abc123")
	if w := post(t, h, body, sign(body, now, secret)); w.Code != 200 {
		t.Fatal(w.Code)
	}
	if calls := ss.take(); len(calls) != 1 || !strings.Contains(calls[0].form.Get("text"), "may not approve") {
		t.Errorf("refusal: %+v", calls)
	}
	body = click("U0DANA", ActionApprove, "inc-1/two/abc")
	post(t, h, body, sign(body, now, secret))
	if len(tr.got) != 2 {
		t.Errorf("a malformed value reached the tracker: %q", tr.got)
	}
}

// TestInteractionsBoundUnverifiedReads: the signature covers the body, so
// the body is read before it can be verified; unsigned requests are
// refused before, at most four bodies are read at once (more get 503 at
// once), and a stalled body is cut after the read timeout.
func TestInteractionsBoundUnverifiedReads(t *testing.T) {
	n, _ := newNotifier(t)
	h := n.Interactions(&triage{})
	h.readTimeout = 500 * time.Millisecond
	srv := httptest.NewServer(h)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	stall := func(signed bool) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// Unsigned: a length net/http will not drain before answering (it
		// reads up to 256 KiB of an unread body first).
		hdr, length := "", 1<<20
		if signed {
			hdr, length = "X-Slack-Signature: v0=00\r\nX-Slack-Request-Timestamp: 1\r\n", 100000
		}
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\npayload=", length, hdr)
		return c
	}
	status := func(c net.Conn) int {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no response: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	unsigned := stall(false)
	defer unsigned.Close()
	if code := status(unsigned); code != http.StatusUnauthorized {
		t.Fatalf("unsigned, body not sent: %d, want 401 at once", code)
	}
	var held []net.Conn
	for range maxReading {
		held = append(held, stall(true))
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// A complete request (its signature wrong: 401 once read) gets 503
	// once every slot is held.
	probe := func() int {
		req, _ := http.NewRequest("POST", srv.URL, strings.NewReader("payload=x"))
		req.Header.Set("X-Slack-Signature", "v0=00")
		req.Header.Set("X-Slack-Request-Timestamp", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(5 * time.Second)
	for code := probe(); code != http.StatusServiceUnavailable; code = probe() {
		if time.Now().After(deadline) {
			t.Fatalf("%d bodies held, another request still got %d", maxReading, code)
		}
	}
	// The stalled bodies are cut after the read timeout.
	for _, c := range held {
		if code := status(c); code != http.StatusBadRequest {
			t.Errorf("a stalled body: %d, want it cut (400)", code)
		}
	}
	if code := probe(); code != http.StatusUnauthorized {
		t.Errorf("after the stalled bodies were cut: %d, want the request read (and its bad signature refused)", code)
	}
}
