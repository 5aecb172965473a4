package email_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
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
