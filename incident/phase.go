package incident

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// ActUpdateRequired records that the facts changed after a notice version
// went out: customers were added, the window moved or reopened, or what a
// customer was told grew materially. Data: Update.
const ActUpdateRequired = "update-required"

// MaterialGrowth is the share by which a customer's records must grow
// beyond what its notice stated for the change to be material (a
// supplementary notice required). New data categories, and data read
// where the notice said it was only reachable, are always material.
const MaterialGrowth = 0.10

// Phase is the sending of one notice version: whom it went to and the
// facts it stated to each. The first phase goes to every affected
// customer; a supplementary one to the customers not told yet, and — when
// the DPO chose a correction — to those told already.
type Phase struct {
	Version   int       `json:"version"`
	StartedAt time.Time `json:"started_at"`
	// ReachedAt is when every customer of the audience was reached (e-mail
	// accepted or in-app notice published); zero while it is not.
	ReachedAt  time.Time `json:"reached_at,omitzero"`
	WindowFrom time.Time `json:"window_from"`
	WindowTo   time.Time `json:"window_to,omitzero"`
	// Audience: the customers this version goes to, with the facts it
	// states to each (pinned when sending began).
	Audience []AffectedTenant `json:"audience"`
	// Kept: for a supplementary version sent without a correction, the
	// customers told already, with their facts as they stood: the DPO
	// chose not to tell them again, and a later change is measured
	// against these facts.
	Kept []AffectedTenant `json:"kept,omitempty"`
	// KeptReason is why customers told already whose facts changed were
	// not told again (required then, and kept in the audit log).
	KeptReason    string `json:"kept_reason,omitempty"`
	Supplementary bool   `json:"supplementary,omitempty"`
	Correction    bool   `json:"correction,omitempty"`
}

// Reached reports whether every customer of the phase's audience was
// reached.
func (p *Phase) Reached() bool { return !p.ReachedAt.IsZero() }

// SendData is the data of a notice-send entry: the version and the
// audience it goes to (entries written before phases existed carry the
// version only: their audience is the scope at the time).
type SendData struct {
	Version  int              `json:"version"`
	Audience []AffectedTenant `json:"audience,omitempty"`
	Kept     []AffectedTenant `json:"kept,omitempty"`
}

// Update is what changed after a notice went out.
type Update struct {
	// Since is when the change was first recorded: the clock of the
	// supplementary notice runs from it.
	Since   time.Time `json:"since"`
	Reasons []string  `json:"reasons"`
	// Untold: affected customers no version went to.
	Untold []string `json:"untold"`
	// Changed: customers told whose facts changed materially since.
	Changed []string `json:"changed"`
}

// Same reports whether two updates name the same change (Since aside).
func (u *Update) Same(o *Update) bool {
	if u == nil || o == nil {
		return u == o
	}
	return slices.Equal(u.Reasons, o.Reasons) && slices.Equal(u.Untold, o.Untold) && slices.Equal(u.Changed, o.Changed)
}

// Told is what a customer was last told: the facts and the window of the
// phase that last covered it (or that the DPO chose not to tell it again
// about: Sent is false then).
type Told struct {
	Facts AffectedTenant
	Phase *Phase
	Sent  bool
}

// Told maps each customer a notice version went to onto what it was last
// told. reachedOnly counts only phases whose audience was all reached;
// otherwise the phase being sent counts too (its deliveries are written and
// go out), but not an earlier one superseded before it was reached (its
// pending deliveries are not sent).
func (inc *Incident) Told(reachedOnly bool) map[string]Told {
	return inc.told(len(inc.Phases), func(_ int, p *Phase) bool {
		return p.Reached() || (!reachedOnly && p.Version == inc.NoticeSending)
	})
}

// told folds the first n phases that count into what each customer was
// last told.
func (inc *Incident) told(n int, counts func(i int, p *Phase) bool) map[string]Told {
	out := map[string]Told{}
	for i := range inc.Phases[:min(n, len(inc.Phases))] {
		p := &inc.Phases[i]
		if !counts(i, p) {
			continue
		}
		for _, a := range p.Audience {
			out[a.Tenant] = Told{Facts: a, Phase: p, Sent: true}
		}
		for _, a := range p.Kept {
			if _, ok := out[a.Tenant]; ok {
				out[a.Tenant] = Told{Facts: a, Phase: p}
			}
		}
	}
	return out
}

// Drift compares the incident's facts with what its customers were told
// (Told: the versions reached, and the one being sent)
// and says what a supplementary notice must cover; nil when nothing
// material changed or no notice went out. Since is left zero.
func (inc *Incident) Drift() *Update {
	if len(inc.Phases) == 0 {
		return nil
	}
	told := inc.Told(false)
	from, to := NoticeWindow(inc)
	u := &Update{Untold: []string{}, Changed: []string{}}
	var grew, cats, read, moved int
	for _, t := range inc.Scope.Tenants {
		k, ok := told[t.Tenant]
		if !ok {
			u.Untold = append(u.Untold, t.Tenant)
			continue
		}
		g, c, r := materialChange(k.Facts, t)
		w := windowMoved(k.Phase, from, to)
		if g || c || r || w {
			u.Changed = append(u.Changed, t.Tenant)
		}
		grew, cats, read, moved = grew+b2i(g), cats+b2i(c), read+b2i(r), moved+b2i(w)
	}
	slices.Sort(u.Untold)
	slices.Sort(u.Changed)
	if n := len(u.Untold); n > 0 {
		u.Reasons = append(u.Reasons, fmt.Sprintf("%s added after the notice went out", Count(n, "customer", "customers")))
	}
	if moved > 0 {
		last := &inc.Phases[len(inc.Phases)-1]
		switch {
		case !last.WindowTo.IsZero() && to.IsZero():
			u.Reasons = append(u.Reasons, "the exposure reopened after the notice said it had ended")
		default:
			u.Reasons = append(u.Reasons, "the window the notice states changed")
		}
	}
	if grew > 0 {
		u.Reasons = append(u.Reasons, fmt.Sprintf("records grew by more than %.0f%% for %s", 100*MaterialGrowth, Count(grew, "customer", "customers")))
	}
	if cats > 0 {
		u.Reasons = append(u.Reasons, fmt.Sprintf("new data categories for %s", Count(cats, "customer", "customers")))
	}
	if read > 0 {
		u.Reasons = append(u.Reasons, fmt.Sprintf("data of %s was read, where the notice said it was only reachable", Count(read, "customer", "customers")))
	}
	if len(u.Reasons) == 0 {
		return nil
	}
	return u
}

// materialChange compares the facts a customer was told with today's:
// records grown beyond MaterialGrowth, categories added, data read where
// only exposure was stated.
func materialChange(told, now AffectedTenant) (grew, cats, read bool) {
	grew = float64(now.Records) > float64(told.Records)*(1+MaterialGrowth) && now.Records > told.Records
	for _, c := range now.Categories {
		if !slices.Contains(told.Categories, c) {
			cats = true
		}
	}
	read = told.How == HowExposed && now.How == HowAccessed
	return grew, cats, read
}

// windowMoved reports whether the window a phase stated differs from
// today's, to the minute a notice prints: an exposure that reopened, or a
// start or end that moved. An exposure the notice said was still being
// closed that has closed since is what the notice told: not a change.
func windowMoved(p *Phase, from, to time.Time) bool {
	m := func(t time.Time) time.Time { return t.Truncate(time.Minute) }
	if p.WindowTo.IsZero() && !to.IsZero() {
		return !m(p.WindowFrom).Equal(m(from))
	}
	return !m(p.WindowFrom).Equal(m(from)) || !m(p.WindowTo).Equal(m(to))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Count says "1 customer", "2 customers": a number with its noun.
func Count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Audience is whom a version sent now would go to: every affected
// customer for the first notice; for a supplementary one the customers no
// reached phase covered, plus those told already when it is a correction.
// kept are the customers told already that a supplementary version
// without a correction leaves as they are, with their facts now.
func (inc *Incident) Audience(v *NoticeVersion) (audience, kept []AffectedTenant) {
	if !v.Supplementary {
		return slices.Clone(inc.Scope.Tenants), nil
	}
	told := inc.Told(true)
	for _, t := range inc.Scope.Tenants {
		if _, ok := told[t.Tenant]; !ok || v.Correction {
			audience = append(audience, t)
		} else {
			kept = append(kept, t)
		}
	}
	return audience, kept
}

// ToldBefore is what the customers had been told when the n-th phase
// began (the phases before it that were reached or being sent then).
func (inc *Incident) ToldBefore(n int) map[string]Told {
	return inc.told(n, func(i int, p *Phase) bool { return p.Reached() || i == n-1 })
}

// PhaseOf returns the phase of a version, or nil.
func (inc *Incident) PhaseOf(version int) *Phase {
	for i := len(inc.Phases) - 1; i >= 0; i-- {
		if inc.Phases[i].Version == version {
			return &inc.Phases[i]
		}
	}
	return nil
}

// Summary is an update's reasons as one sentence.
func (u *Update) Summary() string { return strings.Join(u.Reasons, "; ") }

// ReachedBefore maps each customer reached by a version sent before the
// given one onto when it was last reached: the customers for whom that
// version is an update of what they were told.
func (inc *Incident) ReachedBefore(version int) map[string]time.Time {
	out := map[string]time.Time{}
	for i := range inc.Phases {
		p := &inc.Phases[i]
		if p.Version >= version || !p.Reached() {
			continue
		}
		for _, a := range p.Audience {
			out[a.Tenant] = p.ReachedAt
		}
	}
	return out
}
