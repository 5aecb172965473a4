package incident

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Delivery channels.
const (
	ChannelEmail = "email"
	ChannelInApp = "inapp"
)

// Delivery states in the outbox.
const (
	// DeliveryPending: written, not yet sent.
	DeliveryPending = "pending"
	// DeliverySending: claimed by a send attempt whose result is not yet
	// recorded. Found so after a crash, the attempt may or may not have
	// reached the provider: it is reconciled before any resend.
	DeliverySending = "sending"
	// DeliverySent: accepted by the provider (e-mail) or published (in-app).
	DeliverySent = "sent"
	// DeliveryFailed: the provider refused it for good (e.g. 400); retried
	// only by a new version or by hand.
	DeliveryFailed = "failed"
)

// Delivery is one row of the outbox: one message of one notice version to
// one recipient of one customer over one channel. It is written before the
// message is sent; its state is the ledger of what happened.
type Delivery struct {
	ID        string `json:"id"` // DeliveryID of the fields below
	Incident  string `json:"incident"`
	Version   int    `json:"version"`
	Tenant    string `json:"tenant"`
	Recipient string `json:"recipient"` // an e-mail address; the tenant for in-app
	Channel   string `json:"channel"`
	// The facts the customer's notice states, pinned when it was written.
	Facts    AffectedTenant `json:"facts"`
	State    string         `json:"state"`
	Attempts int            `json:"attempts"`
	// Batch names the send attempt that claimed it (one provider request).
	Batch     string    `json:"batch,omitempty"`
	Error     string    `json:"error,omitempty"` // the last failure, safe to show (no provider text)
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	SentAt    time.Time `json:"sent_at,omitzero"`
}

// DeliveryID is the outbox key of (incident, version, tenant, recipient,
// channel): writing the same delivery twice is writing it once.
func DeliveryID(inc string, version int, tenant, recipient, channel string) string {
	h := sha256.New()
	for _, s := range []string{inc, strconv.Itoa(version), tenant, recipient, channel} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// DeliveryQuery selects outbox rows; empty fields select all.
type DeliveryQuery struct {
	Incident string
	Version  int
	Tenant   string
	Channel  string
	States   []string
}

// Delivery event types, from the provider's webhook and the product's app.
const (
	EventProcessed = "processed"
	EventDelivered = "delivered"
	EventDeferred  = "deferred"
	EventBounce    = "bounce"
	EventDropped   = "dropped"
	EventRead      = "read" // the customer opened the in-app notice
)

// DeliveryEvent is something that happened to a delivery after it was
// sent. Events are kept once per ID (the provider's event id; for a read
// receipt, one per delivery).
type DeliveryEvent struct {
	ID       string    `json:"id"`
	Delivery string    `json:"delivery"`
	Incident string    `json:"incident"`
	Tenant   string    `json:"tenant"`
	Type     string    `json:"type"`
	At       time.Time `json:"at"`
	// Detail is a short reason (e.g. the bounce classification), never the
	// recipient's address or the message.
	Detail string `json:"detail,omitempty"`
}
