// Package incident holds the types that detection, tracking and notification
// share: findings (what a rule saw) and, later, incidents, obligations and
// notices. It is a leaf: it imports nothing of breachwatch.
package incident

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Severities, most severe first.
const (
	SeverityCritical = "critical"
	SeverityHigh     = "high"
	SeverityMedium   = "medium"
	SeverityLow      = "low"
)

// Rule kinds.
const (
	KindMatch     = "match"     // one event is enough
	KindThreshold = "threshold" // an aggregate over a sliding window crossed a threshold
	KindSequence  = "sequence"  // ordered steps within a window
	KindExposure  = "exposure"  // a weakening configuration change opened a window
)

// Affected scopes: whom a finding concerns.
const (
	// ScopeTenants: the tenants whose data the matched events touched
	// (for a cross-tenant read, the victims, not the reader's tenant).
	ScopeTenants = "tenants"
	// ScopeStore: everyone whose data sits in the stores involved.
	ScopeStore = "store"
)

// MaxEvidence bounds the event ids a finding carries; Count says how many
// events matched in all.
const MaxEvidence = 100

// Finding is what a rule reports: that customer data was, or could have
// been, exposed. Findings are deterministic: the same events give the same
// fingerprint, so a replay or a restart updates a finding instead of
// creating another. A finding may be reported several times as evidence
// grows (and, for exposures, when the window closes); the latest report
// for a fingerprint holds the whole evidence.
type Finding struct {
	Fingerprint string   `json:"fingerprint"` // see Fingerprint
	RuleID      string   `json:"rule_id"`
	RuleVersion string   `json:"rule_version"` // hash of the rule's definition
	Title       string   `json:"title"`
	Severity    string   `json:"severity"`
	Kind        string   `json:"kind"`
	Tags        []string `json:"tags,omitempty"`
	// GroupKey is the rule's group_by fields and their values, e.g.
	// "actor.id=u-1,tenant=cust-7" ("" when the rule does not group).
	GroupKey string `json:"group_key"`
	// IncidentKey is the part of GroupKey that makes one incident (the
	// rule's incident_by): findings of one rule sharing it are one breach.
	// Empty: the whole GroupKey (findings of older versions).
	IncidentKey string `json:"incident_key,omitempty"`
	// Part names the part of a setting an exposure window is about, for
	// rules that key windows per part (exposure.per: one firewall rule of
	// a security group, say); "" for the whole setting and other kinds.
	Part string `json:"part,omitempty"`
	// WindowStart identifies the episode: the time of the first event of a
	// match, of the window that crossed a threshold, of a sequence's first
	// step, or of the change that opened an exposure.
	WindowStart time.Time `json:"window_start"`
	// WindowEnd is when an exposure closed; zero while it is open, and for
	// the other kinds.
	WindowEnd time.Time `json:"window_end,omitzero"`
	FirstSeen time.Time `json:"first_seen"` // event time of the first evidence
	LastSeen  time.Time `json:"last_seen"`  // event time of the latest evidence
	Count     int64     `json:"count"`      // events matched
	Records   int64     `json:"records"`    // personal-data records they touched
	// Value is the aggregate that crossed a threshold (count, sum or
	// distinct count); 0 for the other kinds.
	Value    int64    `json:"value,omitempty"`
	EventIDs []string `json:"event_ids"` // up to MaxEvidence, oldest first
	Affected Affected `json:"affected"`
	// DetectedAt is when breachwatch first reported this finding (wall
	// clock); later reports keep the first value.
	DetectedAt time.Time `json:"detected_at"`
	// Version orders the reports of one fingerprint: a later report has a
	// higher version, whatever order reports reach a store or the tracker
	// in. Stores keep the report with the highest version.
	Version uint64 `json:"version,omitempty"`
	// Supersedes lists earlier findings of the same rule and group whose
	// episode this one now is: events that arrived late moved its start
	// or joined two episodes. Each of them is reported retracted too.
	Supersedes []string `json:"supersedes,omitempty"`
	// SupersededBy marks a retraction: this finding no longer exists, its
	// evidence is in the finding named (the rest of the report is its
	// last state).
	SupersededBy string `json:"superseded_by,omitempty"`
	// Closed says a person closed an exposure window by hand (the resource
	// was decommissioned, say): nil for windows closed by a remedy.
	Closed *ManualClose `json:"closed,omitempty"`
}

// ManualClose is a person's closing of an exposure window that no change
// will ever close (a teardown, a resource gone), with the reason given.
type ManualClose struct {
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Retracted reports whether the report retracts its finding.
func (f *Finding) Retracted() bool { return f.SupersededBy != "" }

// Newer reports whether report f is later than report g of the same
// finding: by version where both have one.
func (f *Finding) Newer(g *Finding) bool { return f.Version > g.Version }

// Affected is the hint a finding gives about whom it concerns; the tracker
// turns it into the list of affected customers.
type Affected struct {
	Scope      string   `json:"scope"`                // ScopeTenants or ScopeStore
	Tenants    []string `json:"tenants,omitempty"`    // ScopeTenants: whose data was touched
	Stores     []string `json:"stores,omitempty"`     // the data stores involved
	Categories []string `json:"categories,omitempty"` // personal-data categories involved
}

// Open reports whether an exposure finding's window is still open.
func (f *Finding) Open() bool { return f.Kind == KindExposure && f.WindowEnd.IsZero() }

// Fingerprint identifies a finding: the rule, the group (and the part of
// the setting, for exposures keyed per part: groupKey then ends in
// "\x00" and the part) and the episode's start. It is deterministic, so
// that replays never duplicate a finding.
func Fingerprint(ruleID, groupKey string, windowStart time.Time) string {
	h := sha256.New()
	h.Write([]byte(ruleID))
	h.Write([]byte{0})
	h.Write([]byte(groupKey))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, windowStart.UnixNano(), 10))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// SeverityRank orders severities: critical 4, high 3, medium 2, low 1,
// anything else 0.
func SeverityRank(s string) int {
	switch s {
	case SeverityCritical:
		return 4
	case SeverityHigh:
		return 3
	case SeverityMedium:
		return 2
	case SeverityLow:
		return 1
	}
	return 0
}

// Key is the finding's incident key: IncidentKey, or GroupKey for findings
// that carry none.
func (f *Finding) Key() string {
	if f.IncidentKey != "" {
		return f.IncidentKey
	}
	return f.GroupKey
}
