package incident

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func chain(n int) []AuditEntry {
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	es := make([]AuditEntry, n)
	for i := range es {
		es[i] = AuditEntry{At: at.Add(time.Duration(i) * time.Minute), Incident: fmt.Sprintf("inc-%d", i%3), Actor: "token:erin",
			Action: ActNote, Reason: fmt.Sprintf("note %d", i), Data: json.RawMessage(`{"k":1}`)}
		var prev *AuditEntry
		if i > 0 {
			prev = &es[i-1]
		}
		es[i].Seal(prev)
	}
	return es
}

func verify(es []AuditEntry) error {
	var v ChainVerifier
	for _, e := range es {
		if err := v.Add(e); err != nil {
			return err
		}
	}
	return nil
}

// TestChainDetectsTampering: a sealed chain verifies, and every kind of
// tampering inside it is detected and named: an edited field (each one the
// hash covers), an entry deleted, inserted, swapped, or re-hashed alone.
// (Cutting the chain's end, or re-hashing everything after an edit, is
// invisible from the chain alone: only a head kept elsewhere shows it.)
func TestChainDetectsTampering(t *testing.T) {
	es := chain(6)
	if err := verify(es); err != nil {
		t.Fatalf("a sealed chain does not verify: %v", err)
	}
	var v ChainVerifier
	for _, e := range es {
		_ = v.Add(e)
	}
	if v.Count() != 6 || v.Head() != es[5].Hash {
		t.Errorf("count %d head %s, want 6 and the last hash", v.Count(), v.Head())
	}
	edits := map[string]func(e *AuditEntry){
		"time":     func(e *AuditEntry) { e.At = e.At.Add(time.Second) },
		"incident": func(e *AuditEntry) { e.Incident = "inc-other" },
		"actor":    func(e *AuditEntry) { e.Actor = "token:mallory" },
		"action":   func(e *AuditEntry) { e.Action = ActDismissed },
		"reason":   func(e *AuditEntry) { e.Reason += "!" },
		"data":     func(e *AuditEntry) { e.Data = json.RawMessage(`{"k":2}`) },
		"prev":     func(e *AuditEntry) { e.Prev = strings.Repeat("0", 64) },
	}
	for name, edit := range edits {
		bad := append([]AuditEntry(nil), es...)
		edit(&bad[3])
		if err := verify(bad); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("entry %d ", bad[3].Seq)) {
			t.Errorf("%s edited: %v", name, err)
		}
	}
	for name, bad := range map[string][]AuditEntry{
		"deleted":  append(append([]AuditEntry(nil), es[:2]...), es[3:]...),
		"swapped":  {es[0], es[2], es[1], es[3]},
		"inserted": append(append(append([]AuditEntry(nil), es[:2]...), es[1]), es[2:]...),
	} {
		if err := verify(bad); err == nil {
			t.Errorf("%s entry not detected", name)
		}
	}
	// Re-hashing one edited entry alone breaks its successor's link.
	rehashed := append([]AuditEntry(nil), es...)
	rehashed[2].Reason = "rewritten"
	rehashed[2].Hash = rehashed[2].ComputeHash()
	if err := verify(rehashed); err == nil || !strings.Contains(err.Error(), "does not follow") {
		t.Errorf("an entry edited and re-hashed alone: %v", err)
	}
	// Length prefixes: moving bytes between fields changes the hash.
	a := AuditEntry{Seq: 1, Actor: "ab", Action: "c"}
	b := AuditEntry{Seq: 1, Actor: "a", Action: "bc"}
	if a.ComputeHash() == b.ComputeHash() {
		t.Error("two entries whose fields concatenate alike share a hash")
	}
}
