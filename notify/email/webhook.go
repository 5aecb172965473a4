package email

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sendgrid/sendgrid-go/helpers/eventwebhook"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/notify"
)

// ParsePublicKey reads the Event Webhook's verification key as SendGrid
// shows it (base64 of a DER public key) and checks it is ECDSA.
func ParsePublicKey(b64 string) (*ecdsa.PublicKey, error) {
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, fmt.Errorf("sendgrid webhook key: not base64: %w", err)
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("sendgrid webhook key: %w", err)
	}
	pk, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("sendgrid webhook key: not an ECDSA public key")
	}
	return pk, nil
}

// WebhookOptions configure the Event Webhook endpoint.
type WebhookOptions struct {
	Key    *ecdsa.PublicKey
	Ledger notify.Ledger
	// Tolerance bounds the age (and future skew) of a signed timestamp
	// (default 10 minutes): an older request is a replay.
	Tolerance time.Duration
	// ReadTimeout bounds the reading of one request's body (default 10 s),
	// and MaxReading how many bodies are read at once (default 4): the
	// signature covers the body, so it is read before it can be verified,
	// and these bound what unverified senders can hold (MaxReading ×
	// maxBody at most, each for ReadTimeout). Past MaxReading the request
	// is refused with 503 and Retry-After (SendGrid retries).
	ReadTimeout time.Duration
	MaxReading  int
	Registerer  prometheus.Registerer
	Now         func() time.Time
	Log         *zap.Logger
}

// Webhook receives SendGrid's Event Webhook: it verifies the ECDSA
// signature over the timestamp and the body, refuses stale timestamps,
// and records each delivery event once (by sg_event_id).
type Webhook struct {
	o        WebhookOptions
	reading  chan struct{} // one per body being read
	events   *prometheus.CounterVec
	rejected prometheus.Counter
}

// NewWebhook returns the endpoint.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	if o.Key == nil {
		return nil, errors.New("sendgrid webhook: no verification key")
	}
	if o.Tolerance <= 0 {
		o.Tolerance = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 10 * time.Second
	}
	if o.MaxReading <= 0 {
		o.MaxReading = 4
	}
	w := &Webhook{o: o, reading: make(chan struct{}, o.MaxReading),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breachwatch_sendgrid_events_total",
			Help: "Delivery events from SendGrid's webhook, recorded once each, by event."}, []string{"event"}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "breachwatch_sendgrid_webhook_rejected_total",
			Help: "Event Webhook requests refused: bad, missing or stale signature, or a bad body."}),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{w.events, w.rejected} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("sendgrid webhook: metrics: %w", err)
			}
		}
	}
	return w, nil
}

// kept are the events recorded; others (open, click, …) are acknowledged
// and dropped: breachwatch does not track opens.
var kept = map[string]string{
	"processed": incident.EventProcessed, "delivered": incident.EventDelivered, "deferred": incident.EventDeferred,
	"bounce": incident.EventBounce, "dropped": incident.EventDropped,
}

type sgEvent struct {
	Event     string `json:"event"`
	ID        string `json:"sg_event_id"`
	Timestamp int64  `json:"timestamp"`
	Delivery  string `json:"bw_delivery"`
	Incident  string `json:"bw_incident"`
	Type      string `json:"type"` // bounce: "bounce" or "blocked"
	Status    string `json:"status"`
}

// maxBody bounds a webhook request (SendGrid batches events).
const maxBody = 8 << 20

// ServeHTTP implements the endpoint.
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	refuse := func(code int, msg string) {
		w.rejected.Inc()
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(code)
		_ = json.NewEncoder(rw).Encode(map[string]string{"error": msg})
	}
	sig, ts := r.Header.Get(eventwebhook.VerificationHTTPHeader), r.Header.Get(eventwebhook.TimestampHTTPHeader)
	if sig == "" || ts == "" {
		refuse(http.StatusUnauthorized, "missing signature")
		return
	}
	// What can be checked without the body is checked first.
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		refuse(http.StatusUnauthorized, "bad timestamp")
		return
	}
	if age := w.o.Now().Sub(time.Unix(sec, 0)); age > w.o.Tolerance || age < -w.o.Tolerance {
		refuse(http.StatusUnauthorized, "stale timestamp")
		return
	}
	if len(sig) > 512 {
		refuse(http.StatusForbidden, "bad signature")
		return
	}
	if r.ContentLength > maxBody {
		refuse(http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	select {
	case w.reading <- struct{}{}:
		defer func() { <-w.reading }()
	default:
		w.rejected.Inc()
		rw.Header().Set("Retry-After", "5")
		http.Error(rw, "busy", http.StatusServiceUnavailable)
		return
	}
	_ = http.NewResponseController(rw).SetReadDeadline(time.Now().Add(w.o.ReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxBody))
	if err != nil {
		refuse(http.StatusRequestEntityTooLarge, "body too large or unreadable")
		return
	}
	ok, err := eventwebhook.VerifySignature(w.o.Key, body, sig, ts)
	if err != nil || !ok {
		refuse(http.StatusForbidden, "bad signature")
		return
	}
	var evs []sgEvent
	if err := json.Unmarshal(body, &evs); err != nil {
		refuse(http.StatusBadRequest, "body: want a JSON array of events")
		return
	}
	var rec []incident.DeliveryEvent
	for _, e := range evs {
		typ, keep := kept[e.Event]
		if !keep || e.Delivery == "" || e.ID == "" || len(e.Delivery) != 32 || len(e.ID) > 200 || len(e.Incident) > 100 {
			continue // not ours, or not an event we track
		}
		detail := ""
		if typ == incident.EventBounce || typ == incident.EventDropped {
			// The classification only: SendGrid's reason text can hold
			// the address.
			detail = safeToken(e.Type + " " + e.Status)
		}
		rec = append(rec, incident.DeliveryEvent{ID: "sg:" + e.ID, Delivery: e.Delivery, Incident: e.Incident, Type: typ,
			At: time.Unix(e.Timestamp, 0).UTC(), Detail: detail})
	}
	added, err := w.o.Ledger.AddDeliveryEvents(r.Context(), rec)
	if err != nil {
		w.o.Log.Error("recording SendGrid events", zap.Int("events", len(rec)), zap.Error(err))
		// Non-2xx: SendGrid retries the batch.
		rw.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	for _, e := range added {
		w.events.WithLabelValues(e.Type).Inc()
	}
	rw.WriteHeader(http.StatusOK)
}

// safeToken keeps letters, digits, dots and spaces (a bounce type and an
// SMTP status such as "bounce 5.1.1").
func safeToken(s string) string {
	s = strings.TrimSpace(s)
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == ' ' {
			b.WriteRune(r)
		}
		if b.Len() >= 40 {
			break
		}
	}
	return b.String()
}
