package incident

import (
	"fmt"
	"slices"
	"time"
)

// Status is where an incident stands in its lifecycle.
type Status string

// The statuses, in lifecycle order.
const (
	StatusOpen      Status = "open"      // detected, not yet triaged
	StatusConfirmed Status = "confirmed" // a breach or exposure of personal data
	StatusDismissed Status = "dismissed" // not one (a reason is required)
	StatusNotifying Status = "notifying" // notices are going out
	StatusNotified  Status = "notified"  // every required notice went out
	StatusClosed    Status = "closed"    // done
)

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusOpen, StatusConfirmed, StatusDismissed, StatusNotifying, StatusNotified, StatusClosed:
		return true
	}
	return false
}

// Active reports whether an incident in this status is still being worked:
// new findings of the same group join it, and its clocks run.
func (s Status) Active() bool {
	return s != StatusDismissed && s != StatusClosed
}

// moves are the lifecycle's legal transitions (reopening aside).
var moves = map[Status][]Status{
	StatusOpen:      {StatusConfirmed, StatusDismissed},
	StatusConfirmed: {StatusNotifying, StatusDismissed, StatusClosed},
	StatusNotifying: {StatusNotified},
	StatusNotified:  {StatusClosed},
}

// CanMove reports whether an incident may go from one status to another.
// Reopening (dismissed or closed back to open) is a move of its own: see
// CanReopen.
func CanMove(from, to Status) error {
	if slices.Contains(moves[from], to) {
		return nil
	}
	return fmt.Errorf("an incident cannot go from %s to %s", from, to)
}

// CanReopen reports whether an incident in status s may be reopened.
func CanReopen(s Status) error {
	if s == StatusDismissed || s == StatusClosed {
		return nil
	}
	return fmt.Errorf("only a dismissed or closed incident can be reopened; this one is %s", s)
}

// How an affected tenant was concerned.
const (
	HowAccessed = "accessed" // events show its data was read by someone who should not have
	HowExposed  = "exposed"  // its data was only reachable
)

// AffectedTenant is one affected customer of an incident.
type AffectedTenant struct {
	Tenant     string   `json:"tenant"`
	Records    int64    `json:"records"`
	Categories []string `json:"categories"`
	How        string   `json:"how"` // HowAccessed or HowExposed
	// From the customer directory, when it lists the tenant.
	Country  string `json:"country,omitempty"`
	Locale   string `json:"locale,omitempty"`
	TimeZone string `json:"time_zone,omitempty"`
}

// Scope is who an incident affects, as last computed.
type Scope struct {
	Tenants []AffectedTenant `json:"list"`
	// Partial is set when the scope could not be computed from every
	// event (e.g. only the evidence kept on the finding was available).
	Partial bool `json:"partial,omitempty"`
	// PartialReason says why, when it is not the usual (evidence beyond
	// what a finding keeps): e.g. the store could not be read.
	PartialReason string `json:"partial_reason,omitempty"`
}

// Records is the total of the tenants' records.
func (s Scope) Records() int64 {
	var n int64
	for _, t := range s.Tenants {
		n = SatAdd(n, t.Records)
	}
	return n
}

// Obligation is one duty to notify someone by a deadline: one per
// (incident, regime, recipient).
type Obligation struct {
	ID        string `json:"id"`        // regime/duty, e.g. "gdpr-art33/authority"
	Regime    string `json:"regime"`    // e.g. "gdpr"
	Duty      string `json:"duty"`      // the entry of the regime table, e.g. "art33"
	What      string `json:"what"`      // e.g. "notify the supervisory authority"
	Recipient string `json:"recipient"` // e.g. "authority", "customers", "controller"
	Source    string `json:"source"`    // the legal source cited
	// Legal is false for internal targets (no legal number), which are
	// shown as targets, never as legal deadlines.
	Legal bool `json:"legal"`
	// Anchor is what the clock runs from: "awareness", "determination" or
	// "filing:<obligation id>".
	Anchor string `json:"anchor"`
	// AnchorAt is when the anchor happened; zero while it has not (e.g. no
	// materiality determination yet), and then DueAt is zero too.
	AnchorAt time.Time `json:"anchor_at,omitzero"`
	DueAt    time.Time `json:"due_at,omitzero"`
	// LateReasonRequired: a filing after DueAt must give reasons.
	LateReasonRequired bool `json:"late_reason_required,omitempty"`
	// MetAt is when the first filing or notice was recorded; lateness is
	// frozen then.
	MetAt time.Time `json:"met_at,omitzero"`
	// FirstMetAt is when a customer obligation was first met, kept when a
	// change after the notice (an Update) made it unmet again; ReopenedAt
	// is when that happened (the supplementary notice's clock runs from
	// it).
	FirstMetAt time.Time `json:"first_met_at,omitzero"`
	ReopenedAt time.Time `json:"reopened_at,omitzero"`
	// FirstLate: the first notice went out after its deadline (kept when
	// an update reopens the obligation), and the reason given then.
	FirstLate       bool   `json:"first_late,omitempty"`
	FirstLateReason string `json:"first_late_reason,omitempty"`
	Late            bool   `json:"late,omitempty"`
	LateReason      string `json:"late_reason,omitempty"`
	Reference       string `json:"reference,omitempty"` // e.g. the authority's case number
	// Waived: a DPO decided, with a written reason, that this notification
	// is not required (e.g. the breach is unlikely to result in a risk, GDPR
	// Art. 33(1)); the register keeps the reasoning (Art. 33(5)).
	WaivedAt     time.Time `json:"waived_at,omitzero"`
	WaivedReason string    `json:"waived_reason,omitempty"`
	// TableVersion is the version of the regime table it was computed from.
	TableVersion string `json:"table_version"`
}

// Met reports whether the obligation has been met.
func (o *Obligation) Met() bool { return !o.MetAt.IsZero() }

// Settled reports whether nothing more is owed: met or waived.
func (o *Obligation) Settled() bool { return o.Met() || !o.WaivedAt.IsZero() }

// Note is a free-text note on an incident.
type Note struct {
	At     time.Time `json:"at"`
	Author string    `json:"author"`
	Text   string    `json:"text"`
}

// Incident is what people act on: findings of one rule and group, their
// affected customers and the clocks they started. Its state is its audit
// log folded (see the tracker); it is never edited in place.
type Incident struct {
	ID       string   `json:"id"`
	RuleID   string   `json:"rule_id"`
	Title    string   `json:"title"`
	Severity string   `json:"severity"`
	Kind     string   `json:"kind"`
	Tags     []string `json:"tags,omitempty"`
	GroupKey string   `json:"group_key"`
	// IncidentKey is what groups findings into this incident (the first
	// finding's IncidentKey; GroupKey when it has none).
	IncidentKey string    `json:"incident_key,omitempty"`
	Status      Status    `json:"status"`
	Reason      string    `json:"reason,omitempty"` // of the last dismissal or reopening
	DetectedAt  time.Time `json:"detected_at"`
	// AwareAt is when the organisation became aware in the legal sense.
	// It defaults to DetectedAt; a DPO may set it later, with a reason.
	AwareAt     time.Time `json:"aware_at"`
	AwareReason string    `json:"aware_reason,omitempty"`
	// DeterminedAt is when the breach was determined to be reportable
	// (e.g. material, for the SEC); zero until a DPO records it.
	DeterminedAt time.Time `json:"determined_at,omitzero"`
	Acknowledged bool      `json:"acknowledged"`
	AckBy        string    `json:"acknowledged_by,omitempty"`
	Assignee     string    `json:"assignee,omitempty"`
	// Evidence is the latest report of each finding grouped here.
	Evidence []Evidence `json:"evidence"`
	// Totals over the evidence: the events matched (up to MaxEvidence
	// ids), how many in all, the records they touched, their event-time
	// span.
	EventIDs  []string  `json:"event_ids"`
	Events    int64     `json:"events"`
	Records   int64     `json:"records"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// ExposureFrom/To: the exposure window (exposure incidents); To is
	// zero while it is still open.
	ExposureFrom time.Time    `json:"exposure_from,omitzero"`
	ExposureTo   time.Time    `json:"exposure_to,omitzero"`
	Hint         Affected     `json:"hint"` // what the findings said about who is affected
	Scope        Scope        `json:"scope"`
	Obligations  []Obligation `json:"obligations"`
	Notes        []Note       `json:"notes,omitempty"`
	// ReportUpdates are the phased updates to the supervisory authority
	// (GDPR Art. 33(4)), oldest first: an append-only series.
	ReportUpdates []Note `json:"report_updates,omitempty"`
	// Notices are the customer notice's versions, oldest first; Sending is
	// the version being sent (0: none yet), Progress how far it got.
	Notices       []NoticeVersion `json:"notices,omitempty"`
	NoticeSending int             `json:"notice_sending,omitempty"`
	NoticeSentAt  time.Time       `json:"notice_sent_at,omitzero"`
	// Phases are the sendings of notice versions, oldest first: whom each
	// went to with which facts.
	Phases []Phase `json:"phases,omitempty"`
	// Update is set while the facts differ materially from what customers
	// were told (see Drift): a supplementary notice is required.
	Update *Update `json:"update,omitempty"`
	// AuthorityUpdateSince is set when the facts changed after an
	// authority was notified: phased information (GDPR Art. 33(4)) is owed
	// until a report update is recorded.
	AuthorityUpdateSince time.Time `json:"authority_update_since,omitzero"`
	UpdatedAt            time.Time `json:"updated_at"`
	// Seq is the sequence number of the last audit entry folded in.
	Seq int64 `json:"seq"`
}

// Evidence is what one finding of an incident showed, as last reported.
type Evidence struct {
	Fingerprint string    `json:"fingerprint"`
	Count       int64     `json:"count"`
	Records     int64     `json:"records"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end,omitzero"`
	EventIDs    []string  `json:"event_ids"`
	// Version is the finding report's version (see Finding.Version); an
	// older report than the one held changes nothing.
	Version uint64 `json:"version,omitempty"`
	// Closed: a person closed this exposure window (see Finding.Closed).
	Closed *ManualClose `json:"closed,omitempty"`
}

// Clone returns a copy that shares no slice with inc, so that the copy can
// be read while inc is changed in place (the tracker folds audit entries
// into its incidents under its lock and hands out clones). The elements'
// own slices and maps are shared: folding replaces them, never edits them.
func (inc *Incident) Clone() Incident {
	c := *inc
	c.Tags = slices.Clone(inc.Tags)
	c.Evidence = slices.Clone(inc.Evidence)
	c.EventIDs = slices.Clone(inc.EventIDs)
	c.Hint.Tenants = slices.Clone(inc.Hint.Tenants)
	c.Hint.Stores = slices.Clone(inc.Hint.Stores)
	c.Hint.Categories = slices.Clone(inc.Hint.Categories)
	c.Scope.Tenants = slices.Clone(inc.Scope.Tenants)
	c.Obligations = slices.Clone(inc.Obligations)
	c.Notes = slices.Clone(inc.Notes)
	c.ReportUpdates = slices.Clone(inc.ReportUpdates)
	c.Notices = slices.Clone(inc.Notices)
	c.Phases = slices.Clone(inc.Phases)
	return c
}

// Obligation returns the obligation with that id, or nil.
func (inc *Incident) Obligation(id string) *Obligation {
	for i := range inc.Obligations {
		if inc.Obligations[i].ID == id {
			return &inc.Obligations[i]
		}
	}
	return nil
}

// Notice returns version n of the notice, or nil.
func (inc *Incident) Notice(n int) *NoticeVersion {
	if n < 1 || n > len(inc.Notices) {
		return nil
	}
	return &inc.Notices[n-1]
}

// NeedsNotice reports whether the incident owes its customers a notice.
func (inc *Incident) NeedsNotice() bool {
	for _, o := range inc.Obligations {
		if o.Recipient == "customers" {
			return true
		}
	}
	return false
}

// LatestApproved is the newest approved notice version, or nil.
func (inc *Incident) LatestApproved() *NoticeVersion {
	for i := len(inc.Notices) - 1; i >= 0; i-- {
		if inc.Notices[i].Approved() {
			return &inc.Notices[i]
		}
	}
	return nil
}

// NextDeadline is the unsettled legal obligation due first (nil when
// there is none): internal targets are not deadlines (see NextTarget), and
// obligations met or waived drop out.
func (inc *Incident) NextDeadline() *Obligation { return inc.next(true) }

// NextTarget is the unsettled internal target due first, or nil.
func (inc *Incident) NextTarget() *Obligation { return inc.next(false) }

func (inc *Incident) next(legal bool) *Obligation {
	var next *Obligation
	for i := range inc.Obligations {
		o := &inc.Obligations[i]
		if o.Settled() || o.DueAt.IsZero() || o.Legal != legal {
			continue
		}
		if next == nil || o.DueAt.Before(next.DueAt) {
			next = o
		}
	}
	return next
}

// IncidentID derives an incident's id from the fingerprint of its first
// finding, so that replaying findings opens the same incident.
func IncidentID(fingerprint string) string {
	if len(fingerprint) > 16 {
		fingerprint = fingerprint[:16]
	}
	return "inc-" + fingerprint
}

// AccessQuery selects access events to scope an incident by: exactly the
// events with these ids, or the events on these stores in [From, To).
// Only successful events count.
type AccessQuery struct {
	IDs      []string
	Stores   []string
	From, To time.Time
	// PrivilegedGroups: employees in one of these may read customer data.
	PrivilegedGroups []string
	// BadOnly counts only the unauthorized reads: Events, Records and
	// Categories then equal their Bad* counterparts.
	BadOnly bool
	// Holders asks only whose data the Stores hold: the tenants seen in
	// access events on them (any outcome) up to and including To, with
	// their events and records: the whole days before To's day from a
	// per-day summary (where ClickHouse counts an event delivered twice
	// twice until its parts merge), To's day from its events. It is a
	// function of the events stored up to To. Bad* fields are not set.
	Holders bool
}

// TenantAccess is what the selected access events show about one tenant's
// data (the event's tenant: whose data it is).
type TenantAccess struct {
	Tenant     string
	Events     int64
	Records    int64
	Categories []string
	// Unauthorized: read by someone who should not have — anonymous, a user
	// or API key of another tenant, or an employee outside the privileged
	// groups.
	BadEvents     int64
	BadRecords    int64
	BadCategories []string
	// Unlabelled are the stores of the selected events that named no
	// categories (their store's inventory categories apply to this tenant
	// alone); BadUnlabelled the same for the unauthorized reads.
	Unlabelled, BadUnlabelled []string
}
