package email_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/notify/email"
	"github.com/breachwatch/breachwatch/store/sqlite"
)

// sign signs a webhook body the way SendGrid does: ECDSA P-256 over
// SHA-256(timestamp + body), ASN.1, base64.
func sign(t *testing.T, k *ecdsa.PrivateKey, ts string, body []byte) string {
	t.Helper()
	h := sha256.Sum256(append([]byte(ts), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func TestEventWebhook(t *testing.T) {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub, err := email.ParsePublicKey(base64.StdEncoding.EncodeToString(der))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	wh, err := email.NewWebhook(email.WebhookOptions{Key: pub, Ledger: st, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	const d1, d2 = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	body := []byte(`[
	 {"email":"owner@cust-1.example","timestamp":1795176000,"event":"delivered","sg_event_id":"ev-1","bw_delivery":"` + d1 + `","bw_incident":"inc-1"},
	 {"email":"owner@cust-2.example","timestamp":1795176001,"event":"bounce","type":"bounce","status":"5.1.1","reason":"550 owner@cust-2.example unknown","sg_event_id":"ev-2","bw_delivery":"` + d2 + `","bw_incident":"inc-1"},
	 {"email":"owner@cust-1.example","timestamp":1795176002,"event":"open","sg_event_id":"ev-3","bw_delivery":"` + d1 + `","bw_incident":"inc-1"},
	 {"email":"someone@else.example","timestamp":1795176003,"event":"delivered","sg_event_id":"ev-4"}
	]`)
	ts := strconv.FormatInt(now.Unix(), 10)
	post := func(body []byte, sig, ts string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL, bytes.NewReader(body))
		if sig != "" {
			req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", sig)
		}
		if ts != "" {
			req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	old := strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)
	tampered := bytes.Replace(body, []byte(`"bounce"`), []byte(`"delivered"`), 1)
	for _, tc := range []struct {
		name       string
		body       []byte
		sig, ts    string
		want       int
		wantStored int
	}{
		{"unsigned", body, "", "", 401, 0},
		{"signed by another key", body, sign(t, other, ts, body), ts, 403, 0},
		{"tampered body", tampered, sign(t, key, ts, body), ts, 403, 0},
		{"signature of another timestamp", body, sign(t, key, ts, body), strconv.FormatInt(now.Unix()-1, 10), 403, 0},
		{"stale timestamp (a replay)", body, sign(t, key, old, body), old, 401, 0},
		{"garbage signature", body, "not-base64!", ts, 403, 0},
		{"good", body, sign(t, key, ts, body), ts, 200, 2},
		{"the same request again", body, sign(t, key, ts, body), ts, 200, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := post(tc.body, tc.sig, tc.ts); got != tc.want {
				t.Fatalf("status %d; want %d", got, tc.want)
			}
			var evs []incident.DeliveryEvent
			if err := st.DeliveryEvents(ctx, "inc-1", "", func(e *incident.DeliveryEvent) error { evs = append(evs, *e); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(evs) != tc.wantStored {
				t.Fatalf("%d events stored; want %d: %+v", len(evs), tc.wantStored, evs)
			}
			for _, e := range evs {
				if strings.Contains(e.Detail, "@") || strings.Contains(e.ID, "@") {
					t.Errorf("an address reached the ledger: %+v", e)
				}
			}
			if tc.wantStored == 2 && (evs[0].Type != incident.EventDelivered || evs[1].Type != incident.EventBounce || evs[1].Detail != "bounce 5.1.1" ||
				evs[1].Delivery != d2) {
				t.Errorf("events: %+v", evs)
			}
		})
	}
	if _, err := email.ParsePublicKey("bm90IGEga2V5"); err == nil {
		t.Error("a non-key was accepted")
	}
}

// TestWebhookBoundsUnverifiedReads: the signature covers the body, so a
// body is read before it can be verified. What a sender without the key
// can hold is bounded: a stale or malformed request is refused before its
// body is read; only MaxReading bodies are read at once (more get 503 and
// Retry-After at once); a stalled body is cut after ReadTimeout, and the
// endpoint serves signed requests again.
func TestWebhookBoundsUnverifiedReads(t *testing.T) {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub, err := email.ParsePublicKey(base64.StdEncoding.EncodeToString(der))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wh, err := email.NewWebhook(email.WebhookOptions{Key: pub, Ledger: st, MaxReading: 2, ReadTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(wh)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	// stall sends a request's headers and the first bytes of a 1 MiB body,
	// then nothing; it returns the connection.
	stall := func(ts string) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\nX-Twilio-Email-Event-Webhook-Signature: c2ln\r\n"+
			"X-Twilio-Email-Event-Webhook-Timestamp: %s\r\n\r\n[{\"event\":", ts)
		return c
	}
	status := func(c net.Conn) int {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no response: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Stale: answered without waiting for the body.
	stale := stall(strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10))
	defer stale.Close()
	if code := status(stale); code != http.StatusUnauthorized {
		t.Fatalf("stale timestamp: %d", code)
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	held := []net.Conn{stall(now), stall(now)}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// Once both bodies are being read, the next request is refused at once.
	post := func() *http.Response {
		t.Helper()
		body := []byte(`[]`)
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req, _ := http.NewRequest("POST", srv.URL, bytes.NewReader(body))
		req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", sign(t, key, ts, body))
		req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp := post()
		if resp.StatusCode == http.StatusServiceUnavailable {
			if resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("two stalled bodies held, a third request still got %d", resp.StatusCode)
		}
	}
	// The stalled bodies are cut after the read timeout; signed requests
	// are served again.
	for _, c := range held {
		if code := status(c); code != http.StatusRequestEntityTooLarge {
			t.Errorf("stalled body: %d, want it cut", code)
		}
	}
	if resp := post(); resp.StatusCode != http.StatusOK {
		t.Errorf("a signed request after the stalled ones were cut: %d", resp.StatusCode)
	}
}
