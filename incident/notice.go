package incident

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Audit actions of the notice workflow.
const (
	ActNoticeDrafted  = "notice-drafted"  // a new version of the customer notice; Data: NoticeVersion
	ActNoticeApproved = "notice-approved" // a DPO approved a version; Data: Approval
	ActNoticeSend     = "notice-send"     // sending of an approved version began; Data: {"version": n}
	ActNoticeSent     = "notice-sent"     // every affected customer was reached; Data: NoticeProgress
)

// NoticeText is the free text of a notice in one locale, written by the
// DPO. Fixed wording (headings, the complaint right, the advice not to
// follow links) comes from the message catalogs, not from here.
type NoticeText struct {
	Nature       string `json:"nature"`       // what happened
	Consequences string `json:"consequences"` // the likely consequences
	Measures     string `json:"measures"`     // what we did and do about it
	Actions      string `json:"actions"`      // what the customer can do
}

// Contact is the data protection officer or other contact point.
type Contact struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Phone string `json:"phone,omitempty"`
}

// Authority is the supervisory authority a customer may complain to.
type Authority struct {
	Name    string `json:"name"`
	Website string `json:"website,omitempty"` // shown as text, never as a link
}

// Notice is the content of a customer notice as the DPO drafts it. The
// facts per customer (the window, records, categories, accessed or
// exposed) come from the incident's scope, which a version pins by hash.
type Notice struct {
	// Text per locale (a BCP 47 language: en, nl, sv, fr, ar, …). English
	// is required: other locales fall back to it, visibly.
	Text      map[string]NoticeText `json:"text"`
	Contact   Contact               `json:"contact"`
	Authority Authority             `json:"authority"`
	// Product is the name of the product, so that the notice can tell the
	// customer to open it directly rather than follow a link.
	Product string `json:"product"`
	// Categories, when set, replace the data categories the scope found
	// (the same for every customer).
	Categories []string `json:"categories,omitempty"`
	// ForAuthority is the English wording for the supervisory authority's
	// report (GDPR Art. 33(3)): it names the controller and its customers
	// where the customer text says "you" and "your customers". Empty
	// fields take the customer text's.
	ForAuthority *NoticeText `json:"for_authority,omitempty"`
}

// NoticeVersion is one version of an incident's notice. It is immutable
// once drafted; an edit is a new version.
type NoticeVersion struct {
	Version int       `json:"version"` // 1, 2, …
	Author  string    `json:"author"`
	At      time.Time `json:"at"`
	Notice  Notice    `json:"notice"`
	// The exposure window and the scope it was written against: the facts
	// each customer's notice states. ScopeHash pins the affected list.
	WindowFrom time.Time `json:"window_from"`
	WindowTo   time.Time `json:"window_to,omitzero"`
	ScopeHash  string    `json:"scope_hash"`
	Hash       string    `json:"hash"` // over all of the above (see ComputeHash)
	// Supplementary: drafted after a version went out; it goes to the
	// customers not told yet and, with Correction, to those told already.
	// Base is how many versions had gone out when it was drafted: one
	// drafted before another went out is stale.
	Supplementary bool `json:"supplementary,omitempty"`
	Correction    bool `json:"correction,omitempty"`
	Base          int  `json:"base,omitempty"`
	// Set when approved.
	ApprovedBy   string    `json:"approved_by,omitempty"`
	ApprovedAt   time.Time `json:"approved_at,omitzero"`
	SelfApproved bool      `json:"self_approved,omitempty"` // by its own author (one-person team)
}

// Approval records a DPO's sign-off on a version, naming the hash they saw.
type Approval struct {
	Version      int    `json:"version"`
	Hash         string `json:"hash"`
	SelfApproved bool   `json:"self_approved,omitempty"`
}

// NoticeProgress is how far the sending of a version got.
type NoticeProgress struct {
	Version int `json:"version"`
	Tenants int `json:"tenants"`
	Reached int `json:"reached"` // e-mail accepted or in-app notice published
}

// ComputeHash is the version's content hash: SHA-256 over its canonical
// JSON (Go encodes map keys sorted) without the approval fields.
func (v *NoticeVersion) ComputeHash() string {
	c := *v
	c.Hash, c.ApprovedBy, c.ApprovedAt, c.SelfApproved = "", "", time.Time{}, false
	c.At = c.At.UTC()
	b, _ := json.Marshal(c) // plain data: cannot fail
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Approved reports whether the version was approved.
func (v *NoticeVersion) Approved() bool { return v.ApprovedBy != "" }

// ScopeHash is a digest of an affected list: the facts a notice states per
// customer. A notice approved against one scope is not sent against
// another.
func ScopeHash(s Scope) string {
	h := sha256.New()
	ts := slices.Clone(s.Tenants)
	slices.SortFunc(ts, func(a, b AffectedTenant) int { return strings.Compare(a.Tenant, b.Tenant) })
	for _, t := range ts {
		fmt.Fprintf(h, "%s\x00%d\x00%s\x00%s\x00%s\x00%s\x00%s\n", t.Tenant, t.Records, strings.Join(t.Categories, ","), t.How,
			t.Country, t.Locale, t.TimeZone)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// NoticeWindow is the exposure window a notice states: the exposure window
// of an exposure incident, the evidence's event-time span otherwise. To is
// zero while an exposure is still open.
func NoticeWindow(inc *Incident) (from, to time.Time) {
	if !inc.ExposureFrom.IsZero() {
		return inc.ExposureFrom, inc.ExposureTo
	}
	return inc.FirstSeen, inc.LastSeen
}

// Missing names the required elements a notice version lacks; none means
// it may be approved. The elements are those GDPR Art. 34(2) with Art.
// 33(3)(b)–(d) ask for, plus what a customer needs to act on it.
func (v *NoticeVersion) Missing() []string {
	var miss []string
	add := func(cond bool, what string) {
		if cond {
			miss = append(miss, what)
		}
	}
	en, ok := v.Notice.Text["en"]
	add(!ok || strings.TrimSpace(en.Nature) == "", "what happened (nature, English text)")
	add(v.WindowFrom.IsZero(), "when it happened (the exposure window)")
	add(strings.TrimSpace(en.Consequences) == "", "likely consequences (English text)")
	add(strings.TrimSpace(en.Measures) == "", "measures taken (English text)")
	add(strings.TrimSpace(en.Actions) == "", "what the customer can do (English text)")
	add(strings.TrimSpace(v.Notice.Contact.Name) == "" || strings.TrimSpace(v.Notice.Contact.Email) == "",
		"the DPO or contact point (name and e-mail)")
	add(strings.TrimSpace(v.Notice.Authority.Name) == "", "the supervisory authority (the right to complain)")
	add(strings.TrimSpace(v.Notice.Product) == "", "the product name (where to go instead of following links)")
	add(v.ScopeHash == "" || v.ScopeHash == ScopeHash(Scope{}), "the affected customers (the incident has none scoped)")
	for loc, t := range v.Notice.Text {
		if loc == "en" {
			continue
		}
		// A locale may leave a field empty (it falls back to English) but
		// must not be entirely empty: that is a mistake, not a choice.
		add(t == NoticeText{}, "text for locale "+loc+" (all of it is empty: remove the locale or write it)")
	}
	return miss
}

// CheckNotice rejects content that cannot be a notice at all: bad locales,
// oversize or invalid text, a contact address that is not one. It does not
// require completeness (see Missing): drafts may be partial.
func CheckNotice(n *Notice) error {
	if len(n.Text) > 32 {
		return fmt.Errorf("too many locales (%d, at most 32)", len(n.Text))
	}
	for loc, t := range n.Text {
		if !validLocale(loc) {
			return fmt.Errorf("text: %q is not a locale such as en, nl, sv, fr or ar", loc)
		}
		for name, s := range map[string]string{"nature": t.Nature, "consequences": t.Consequences, "measures": t.Measures, "actions": t.Actions} {
			if err := checkText(s, 4000); err != nil {
				return fmt.Errorf("text.%s.%s: %w", loc, name, err)
			}
			if strings.Contains(strings.ToLower(s), "password") && strings.Contains(s, "://") {
				return fmt.Errorf("text.%s.%s: a link next to a request for a password reads as phishing; tell the customer to open the product directly", loc, name)
			}
		}
	}
	if a := n.ForAuthority; a != nil {
		for name, s := range map[string]string{"nature": a.Nature, "consequences": a.Consequences, "measures": a.Measures, "actions": a.Actions} {
			if err := checkText(s, 4000); err != nil {
				return fmt.Errorf("for_authority.%s: %w", name, err)
			}
		}
	}
	for name, s := range map[string]string{"contact.name": n.Contact.Name, "contact.email": n.Contact.Email, "contact.phone": n.Contact.Phone,
		"authority.name": n.Authority.Name, "authority.website": n.Authority.Website, "product": n.Product} {
		if err := checkText(s, 200); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if strings.ContainsAny(s, "\r\n") {
			return fmt.Errorf("%s: must be one line", name)
		}
	}
	if e := n.Contact.Email; e != "" && (strings.Count(e, "@") != 1 || strings.ContainsAny(e, " <>\"'") || strings.HasPrefix(e, "@") || strings.HasSuffix(e, "@")) {
		return fmt.Errorf("contact.email: %q is not an e-mail address", e)
	}
	if len(n.Categories) > 32 {
		return fmt.Errorf("categories: at most 32")
	}
	for i, c := range n.Categories {
		if err := checkText(c, 64); err != nil || c == "" {
			return fmt.Errorf("categories[%d]: want a short name", i)
		}
	}
	return nil
}

func checkText(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("longer than %d bytes", max)
	}
	for _, r := range s {
		if r == 0xFFFD || (r < 0x20 && r != '\n' && r != '\t') || r == 0x7F || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) {
			return fmt.Errorf("contains a control or bidi-override character (U+%04X)", r)
		}
	}
	return nil
}

// validLocale accepts a BCP 47 tag's shape: a 2–3 letter language and
// optional subtags of letters and digits.
func validLocale(s string) bool {
	if s == "" || len(s) > 35 {
		return false
	}
	for i, part := range strings.Split(s, "-") {
		if len(part) == 0 || len(part) > 8 || (i == 0 && (len(part) < 2 || len(part) > 3)) {
			return false
		}
		for _, r := range part {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
				return false
			}
		}
	}
	return true
}
