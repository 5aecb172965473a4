package incident

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Audit actions: what an audit entry records.
const (
	ActOpened       = "opened"       // a finding opened the incident; Data: Finding
	ActEvidence     = "evidence"     // a finding added or updated evidence; Data: Finding
	ActScoped       = "scoped"       // the affected customers were (re)computed; Data: Scope
	ActObligations  = "obligations"  // the obligations were (re)computed; Data: []Obligation
	ActAcknowledged = "acknowledged" // someone took it up
	ActConfirmed    = "confirmed"
	ActDismissed    = "dismissed"     // Reason required
	ActReopened     = "reopened"      // Reason required
	ActStatus       = "status"        // another lifecycle move; Data: {"to": status}
	ActAwareness    = "awareness"     // aware_at set; Reason required; Data: {"at": time}
	ActDetermined   = "determined"    // determination recorded; Reason required; Data: {"at": time}
	ActAssigned     = "assigned"      // Data: {"to": name}
	ActNote         = "note"          // Reason holds the text
	ActFiled        = "filed"         // an obligation met; Data: Filing
	ActReminded     = "reminded"      // a reminder went out; Data: Reminder
	ActAlerted      = "alerted"       // the alert message was posted; Data: AlertRef
	ActWaived       = "waived"        // an obligation is not required; Reason required; Data: {"obligation": id}
	ActReportUpdate = "report-update" // a phased update to the authority (Art. 33(4)); Reason holds the text
	// ActExposureClosed: a person closed an exposure window no change will
	// close (the resource is gone); Reason required; Data: {"fingerprint", "at"}.
	ActExposureClosed = "exposure-closed"
)

// AuditEntry is one change to an incident: who, when, what and why. Entries
// form one append-only chain across all incidents: each carries the hash
// of the one before, so an edited, inserted or deleted entry breaks the
// chain (see VerifyChain).
type AuditEntry struct {
	Seq      int64           `json:"seq"` // 1, 2, 3, … with no gaps
	At       time.Time       `json:"at"`
	Incident string          `json:"incident"`
	Actor    string          `json:"actor"` // "breachwatch", "token:<name>", "slack:<user>", "cli:<user>"
	Action   string          `json:"action"`
	Reason   string          `json:"reason,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	Prev     string          `json:"prev"` // hash of the previous entry ("" for the first)
	Hash     string          `json:"hash"`
}

// ComputeHash is the entry's hash: SHA-256 over its fields (every one but
// Hash itself), each length-prefixed so that no two entries encode alike.
func (e *AuditEntry) ComputeHash() string {
	h := sha256.New()
	var buf [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(buf[:], uint64(len(b)))
		h.Write(buf[:])
		h.Write(b)
	}
	binary.BigEndian.PutUint64(buf[:], uint64(e.Seq))
	h.Write(buf[:])
	field([]byte(e.At.UTC().Format(time.RFC3339Nano)))
	field([]byte(e.Incident))
	field([]byte(e.Actor))
	field([]byte(e.Action))
	field([]byte(e.Reason))
	field(e.Data)
	field([]byte(e.Prev))
	return hex.EncodeToString(h.Sum(nil))
}

// Seal links the entry to the previous one (prev is nil for the first) and
// sets its sequence number and hash.
func (e *AuditEntry) Seal(prev *AuditEntry) {
	e.At = e.At.UTC()
	if prev == nil {
		e.Seq, e.Prev = 1, ""
	} else {
		e.Seq, e.Prev = prev.Seq+1, prev.Hash
	}
	e.Hash = e.ComputeHash()
}

// ChainVerifier checks an audit chain entry by entry, in sequence order.
type ChainVerifier struct {
	last  *AuditEntry
	count int64
}

// Add checks the next entry: its sequence number follows the last one, it
// names the last one's hash, and its own hash matches its contents.
func (v *ChainVerifier) Add(e AuditEntry) error {
	want := int64(1)
	prev := ""
	if v.last != nil {
		want, prev = v.last.Seq+1, v.last.Hash
	}
	switch {
	case e.Seq != want:
		if e.Seq > want {
			return fmt.Errorf("audit entry %d is missing (the next entry is %d): the chain is broken", want, e.Seq)
		}
		return fmt.Errorf("audit entry %d appears after entry %d: the chain is broken", e.Seq, want-1)
	case e.Prev != prev:
		return fmt.Errorf("audit entry %d does not follow entry %d (previous hash differs): the chain is broken", e.Seq, want-1)
	case e.ComputeHash() != e.Hash:
		return fmt.Errorf("audit entry %d was altered: its contents do not match its hash", e.Seq)
	}
	v.last = &e
	v.count++
	return nil
}

// Count is how many entries were verified; Head the hash of the last.
func (v *ChainVerifier) Count() int64 { return v.count }

// Head is the hash of the last verified entry ("" for none).
func (v *ChainVerifier) Head() string {
	if v.last == nil {
		return ""
	}
	return v.last.Hash
}

// Filing records that an obligation was met.
type Filing struct {
	Obligation string    `json:"obligation"`
	At         time.Time `json:"at"`
	Reference  string    `json:"reference,omitempty"`
}

// Reminder records that a reminder for an obligation went out.
type Reminder struct {
	Obligation string `json:"obligation"`
	// Point names the reminder: "48h" … "1h" before the deadline, or
	// "overdue-N" for the N-th reminder after it.
	Point string        `json:"point"`
	Left  time.Duration `json:"left"` // time left when it was sent (negative: overdue)
}

// AlertRef is where an incident's alert message lives, so that it can be
// updated in place and reminders threaded under it.
type AlertRef struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}
