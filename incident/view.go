package incident

import "time"

// View is an incident as the API shows it (../shared/contract/api.md):
// the contract's fields first, then breachwatch's own.
type View struct {
	ID           string       `json:"id"`
	RuleID       string       `json:"rule_id"`
	Title        string       `json:"title"`
	Severity     string       `json:"severity"`
	Status       Status       `json:"status"`
	DetectedAt   time.Time    `json:"detected_at"`
	AwareAt      time.Time    `json:"aware_at"`
	Deadlines    []Deadline   `json:"deadlines"`
	Exposure     Window       `json:"exposure"`
	Affected     AffectedView `json:"affected"`
	Kind         string       `json:"kind"`
	GroupKey     string       `json:"group_key"`
	Tags         []string     `json:"tags,omitempty"`
	AwareReason  string       `json:"aware_reason,omitempty"`
	DeterminedAt *time.Time   `json:"determined_at"`
	Acknowledged bool         `json:"acknowledged"`
	AckBy        string       `json:"acknowledged_by,omitempty"`
	Assignee     string       `json:"assignee,omitempty"`
	Reason       string       `json:"reason,omitempty"`
	Events       int64        `json:"events"`
	EventIDs     []string     `json:"event_ids"`
	Findings     []string     `json:"findings"`
	Stores       []string     `json:"stores,omitempty"`
	Notes        []Note       `json:"notes,omitempty"`
	// NextDeadline is the nearest unmet legal deadline; NextTarget the
	// nearest unmet internal target (no legal number), shown apart.
	NextDeadline *Deadline         `json:"next_deadline"`
	NextTarget   *Deadline         `json:"next_target"`
	UpdatedAt    time.Time         `json:"updated_at"`
	AuditSeq     int64             `json:"audit_seq"`
	TimeZone     string            `json:"time_zone"` // the organisation's, for the *_local fields
	Links        map[string]string `json:"links,omitempty"`
	// Notice is the customer notice's workflow; null when the incident owes
	// customers no notice and none was drafted.
	Notice *NoticeView `json:"notice"`
	// UpdateRequired is set while the facts differ materially from what
	// the customers were told (the status is then notifying, not
	// notified): a supplementary notice is due.
	UpdateRequired *Update `json:"update_required"`
	// AuthorityUpdateOwed: the facts changed after an authority was
	// notified; phased information (GDPR Art. 33(4), the update command)
	// is owed since then. Null otherwise.
	AuthorityUpdateOwed *time.Time `json:"authority_update_owed"`
}

// NoticeView is the customer notice's workflow as the API shows it.
type NoticeView struct {
	Versions []NoticeVersionView `json:"versions"`
	// AwaitingApproval: no version is approved yet.
	AwaitingApproval bool       `json:"awaiting_approval"`
	Sending          int        `json:"sending"` // the version being sent; 0: none
	SentAt           *time.Time `json:"sent_at"` // every customer of its audience reached
	// Phases: each version's sending, oldest first: how many customers it
	// went to and when they were all reached.
	Phases []PhaseView `json:"phases"`
}

// PhaseView is one version's sending as the API shows it.
type PhaseView struct {
	Version       int        `json:"version"`
	StartedAt     time.Time  `json:"started_at"`
	ReachedAt     *time.Time `json:"reached_at"`
	Customers     int        `json:"customers"`
	Kept          int        `json:"kept"` // told before and, by the DPO's choice, not told again
	KeptReason    string     `json:"kept_reason,omitempty"`
	Supplementary bool       `json:"supplementary"`
	Correction    bool       `json:"correction"`
	Window        Window     `json:"window"`
}

// NoticeDiff is what a supplementary version changes against the version
// sent before it.
type NoticeDiff struct {
	Against int `json:"against"` // the version it is compared with
	// Text names the free-text fields that differ ("en.nature", …).
	Text          []string `json:"text"`
	WindowBefore  Window   `json:"window_before"`
	WindowAfter   Window   `json:"window_after"`
	CustomersNew  []string `json:"customers_new"` // affected now, not told by any version sent
	RecordsBefore int64    `json:"records_before"`
	RecordsAfter  int64    `json:"records_after"`
}

// NoticeVersionView is one version, without its text.
type NoticeVersionView struct {
	Version      int        `json:"version"`
	Author       string     `json:"author"`
	At           time.Time  `json:"at"`
	Hash         string     `json:"hash"`
	ApprovedBy   string     `json:"approved_by,omitempty"`
	ApprovedAt   *time.Time `json:"approved_at"`
	SelfApproved bool       `json:"self_approved,omitempty"`
	// Missing names the required elements it lacks (it cannot be
	// approved while any are).
	Missing []string `json:"missing"`
	// ScopeCurrent: the affected customers are still those it was
	// written against.
	ScopeCurrent bool `json:"scope_current"`
	// Supplementary: drafted after a version went out (it goes to the
	// customers not told yet; with correction, to those told too). Diff
	// is what it changes against the version sent before it.
	Supplementary bool        `json:"supplementary"`
	Correction    bool        `json:"correction"`
	Diff          *NoticeDiff `json:"diff,omitempty"`
}

// Deadline is an obligation as the API shows it.
type Deadline struct {
	Regime    string     `json:"regime"`
	What      string     `json:"what"`
	DueAt     *time.Time `json:"due_at"` // null until its anchor happens
	MetAt     *time.Time `json:"met_at"`
	ID        string     `json:"id"`
	Recipient string     `json:"recipient"`
	Source    string     `json:"source"`
	// Legal is false for an internal target (shown as a target, never as
	// a legal deadline).
	Legal      bool   `json:"legal"`
	Anchor     string `json:"anchor"`
	Late       bool   `json:"late"`
	LateReason string `json:"late_reason,omitempty"`
	Reference  string `json:"reference,omitempty"`
	// FirstMetAt: when the customers were first told, kept when a change
	// after that notice made the obligation unmet again (ReopenedAt; the
	// deadline then runs from it, anchor "update").
	FirstMetAt *time.Time `json:"first_met_at"`
	ReopenedAt *time.Time `json:"reopened_at"`
	FirstLate  bool       `json:"first_late,omitempty"` // the first notice went out after its deadline
	// WaivedAt/WaivedReason: a DPO decided it is not required, and why.
	WaivedAt     *time.Time `json:"waived_at"`
	WaivedReason string     `json:"waived_reason,omitempty"`
	// TableVersion is the regime table's version the deadline comes from.
	TableVersion string `json:"table_version"`
	// DueLocal is the due time in the organisation's time zone and in the
	// recipient's (the regime's for an authority).
	DueLocal          string `json:"due_local,omitempty"`
	DueRecipientLocal string `json:"due_recipient_local,omitempty"`
	RecipientTimeZone string `json:"recipient_time_zone,omitempty"`
}

// Window is a time span; To is null while it is open.
type Window struct {
	From time.Time  `json:"from"`
	To   *time.Time `json:"to"`
}

// AffectedView is the affected customers as the API shows them.
type AffectedView struct {
	Tenants int64            `json:"tenants"`
	Records int64            `json:"records"`
	List    []AffectedTenant `json:"list"`
	Partial bool             `json:"partial"`
	// PartialReason says why the list is incomplete, when it is not only
	// the evidence kept on the findings (e.g. the store could not be read).
	PartialReason string `json:"partial_reason,omitempty"`
}
