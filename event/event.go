// Package event defines the events breachwatch consumes (access events and
// configuration changes), their validation, and a fast, strict JSON decoder
// and encoder for the wire format.
//
// The wire format is a product contract, documented in docs/events.md. This
// package is a leaf: it imports only the standard library.
package event

import (
	"encoding/json"
	"net/netip"
	"slices"
	"time"
)

// Actor types (the field actor.type).
const (
	ActorEmployee     = "employee"
	ActorCustomerUser = "customer_user"
	ActorService      = "service"
	ActorAPIKey       = "api_key"
	ActorAnonymous    = "anonymous"
)

// Actions (the field action of an access event).
const (
	ActionRead        = "read"
	ActionList        = "list"
	ActionSearch      = "search"
	ActionExport      = "export"
	ActionDownload    = "download"
	ActionCreate      = "create"
	ActionUpdate      = "update"
	ActionDelete      = "delete"
	ActionLogin       = "login"
	ActionLoginFailed = "login_failed"
	ActionGrant       = "grant"
)

// Outcomes (the field outcome of an access event).
const (
	OutcomeSuccess = "success"
	OutcomeDenied  = "denied"
	OutcomeError   = "error"
)

// The closed value sets of the enumerated fields, in the order error
// messages list them. Never written after initialization.
var (
	actorTypes = []string{ActorEmployee, ActorCustomerUser, ActorService, ActorAPIKey, ActorAnonymous}
	actions    = []string{ActionRead, ActionList, ActionSearch, ActionExport, ActionDownload,
		ActionCreate, ActionUpdate, ActionDelete, ActionLogin, ActionLoginFailed, ActionGrant}
	outcomes = []string{OutcomeSuccess, OutcomeDenied, OutcomeError}
)

// ActorTypes returns the values actor.type may take.
func ActorTypes() []string { return slices.Clone(actorTypes) }

// Actions returns the values action may take.
func Actions() []string { return slices.Clone(actions) }

// Outcomes returns the values outcome may take.
func Outcomes() []string { return slices.Clone(outcomes) }

// The `expr` tags name the fields as rule conditions see them: the wire
// names (see detect/rule).

// Actor is who acted: a user, an employee, a service, an API key or nobody known.
type Actor struct {
	ID     string   `expr:"id"`
	Type   string   `expr:"type"`
	Tenant string   `expr:"tenant"` // the actor's home tenant; empty for staff and anonymous
	Groups []string `expr:"groups"` // staff groups such as "db-admins" or "support"; nil when none
}

// Resource is what an access event touched.
type Resource struct {
	Type  string `expr:"type"`  // e.g. "booking", "contact", "file"
	ID    string `expr:"id"`    // optional
	Store string `expr:"store"` // the data store that holds it, e.g. "postgres-eu-1"
}

// AccessEvent is one access to personal data (or an attempt, or a login).
type AccessEvent struct {
	ID         string     `expr:"id"`
	Time       time.Time  `expr:"time"`   // UTC
	Tenant     string     `expr:"tenant"` // whose personal data was touched
	Actor      Actor      `expr:"actor"`
	Action     string     `expr:"action"`
	Resource   Resource   `expr:"resource"`
	Records    int64      `expr:"records"`    // personal-data records touched; 1 when the producer left it out
	Categories []string   `expr:"categories"` // personal-data categories touched; empty means "ask the data inventory"
	Outcome    string     `expr:"outcome"`
	SourceIP   netip.Addr `expr:"source_ip"`  // the zero Addr when absent
	Country    string     `expr:"country"`    // ISO 3166-1 alpha-2, upper case; empty when absent
	UserAgent  string     `expr:"user_agent"` // attacker-controlled: never render unescaped
	RequestID  string     `expr:"request_id"`

	// Extra holds the members the producer sent that this version does not
	// know, as a compact JSON object (nil when there were none). Unknown
	// members of "actor" and "resource" sit under those keys.
	Extra json.RawMessage `expr:"-"`
}

// ConfigResource is the thing whose configuration changed.
type ConfigResource struct {
	ID       string `expr:"id"`    // e.g. "arn:aws:s3:::exports-eu"
	Type     string `expr:"type"`  // bucket, database, snapshot, endpoint, firewall, key, log_sink, backup or another word
	Store    string `expr:"store"` // the data-store id used by access events; ID when the producer left it out
	Provider string `expr:"provider"`
	Region   string `expr:"region"`
}

// ConfigChange is a change to the configuration of something that holds or
// protects personal data.
type ConfigChange struct {
	ID       string
	Time     time.Time // UTC
	Resource ConfigResource
	Setting  string // e.g. "public_access", "tls_min_version"
	// Before and After are the setting's values as compact JSON. Before is
	// nil when the producer did not say; After is always set ("null" is a
	// value: the setting was removed).
	Before json.RawMessage
	After  json.RawMessage
	Actor  *Actor // nil when the producer did not say who
	Source string // terraform, cloudtrail, aws-config, scanner, ...
	Extra  json.RawMessage

	// StoreDefaulted says that the producer named no resource.store, so
	// that Resource.Store is Resource.ID. A change that names only a
	// sub-resource (a flow log deleted by its id) is tied by detection to
	// the store last named for the same resource id. It is not part of the
	// wire format: AppendJSON writes the store as it is, and the stores
	// keep the store as written, not this flag.
	StoreDefaulted bool
}

// Batch is what ingest hands to the store and to detection: the valid events
// of one or more Kafka polls or of one HTTP request.
type Batch struct {
	Access []AccessEvent
	Config []ConfigChange
	// Clocks say how far the event time of each input partition came in
	// this batch: one per partition that contributed valid events. Ingest
	// sets them; detection keeps its watermark per partition from them.
	Clocks []Clock
}

// FieldValue is a condition on an access event: the field (named as rules
// name it, e.g. "actor.id") has the value. Detection uses it to read one
// group's events back from a store.
type FieldValue struct {
	Field, Value string
}

// Clock is the newest event time of one input partition in a batch.
// Source names the partition: "kafka:<topic>/<partition>" for the Kafka
// consumer, "http:access" and "http:config" for HTTP ingest.
type Clock struct {
	Source string
	Newest time.Time
	// Oldest is the oldest event time of the batch from this source: with
	// Newest, the span the batch covers (one event dated far ahead moves
	// Newest, not Oldest).
	Oldest time.Time
	// Behind: the source holds more events than it delivered so far (a
	// Kafka partition with records after the batch's last): it is not
	// idle, however long it waits to deliver them.
	Behind bool
}

// Behind marks the clock of source as behind (see Clock.Behind).
func (b *Batch) Behind(source string) {
	for i := range b.Clocks {
		if b.Clocks[i].Source == source {
			b.Clocks[i].Behind = true
			return
		}
	}
}

// Observe moves the clock of source to t if t is newer (and its oldest
// time to t if t is older).
func (b *Batch) Observe(source string, t time.Time) {
	for i := range b.Clocks {
		if c := &b.Clocks[i]; c.Source == source {
			if t.After(c.Newest) {
				c.Newest = t
			}
			if t.Before(c.Oldest) {
				c.Oldest = t
			}
			return
		}
	}
	b.Clocks = append(b.Clocks, Clock{Source: source, Newest: t, Oldest: t})
}

// Len is the number of events in the batch.
func (b *Batch) Len() int { return len(b.Access) + len(b.Config) }

// Reset empties the batch, keeping its capacity.
func (b *Batch) Reset() {
	clear(b.Access)
	clear(b.Config)
	b.Access = b.Access[:0]
	b.Config = b.Config[:0]
	b.Clocks = b.Clocks[:0]
}
