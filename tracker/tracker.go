package tracker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/incident"
)

// Store is what the tracker keeps its audit log in.
type Store interface {
	// AppendAudit appends entries; idempotent on their sequence numbers.
	AppendAudit(ctx context.Context, es []incident.AuditEntry) error
	// ScanAudit calls fn for each entry after seq after, in order.
	ScanAudit(ctx context.Context, after int64, fn func(*incident.AuditEntry) error) error
}

// AccessSource answers the scoping queries (both stores implement it).
type AccessSource interface {
	AccessByTenant(ctx context.Context, q incident.AccessQuery) ([]incident.TenantAccess, error)
}

// Customer is an entry of the customer directory.
type Customer struct {
	Tenant   string `yaml:"tenant" json:"tenant"`
	Name     string `yaml:"name" json:"name,omitempty"`
	Country  string `yaml:"country" json:"country,omitempty"`     // ISO 3166-1 alpha-2
	Locale   string `yaml:"locale" json:"locale,omitempty"`       // BCP 47, e.g. "nl", "ar"
	TimeZone string `yaml:"time_zone" json:"time_zone,omitempty"` // IANA, e.g. "Europe/Amsterdam"
	// Emails are the addresses notices go to (personal data: never shown
	// by the API nor logged).
	Emails []string `yaml:"emails" json:"-"`
}

// Options configure a Tracker.
type Options struct {
	// Anchor is told the audit log's head (its last sequence number and
	// hash) after every append, to keep it outside the store (see
	// Anchor). It is called with the tracker's lock held: it must not
	// block.
	Anchor  func(Anchor)
	Regimes *Regimes
	// Apply lists the regimes that always apply to the organisation.
	Apply []string
	// ByCountry: a regime also applies when an affected customer's country
	// (from Customers) is one of the regime's countries.
	ByCountry bool
	Customers map[string]Customer
	// ProcessorTarget is the internal target for a processor's notice to
	// its controllers (no legal number exists).
	ProcessorTarget time.Duration
	// ExposureGap: an exposure of a resource that reopens within this time
	// of its incident's window closing joins that incident; later, it
	// opens a new one (default 24h).
	ExposureGap time.Duration
	// Zone is the organisation's time zone (default UTC); deadlines are
	// stored in UTC and shown in it too.
	Zone *time.Location
	// ConsoleURL, when set, is linked from the API and alerts.
	ConsoleURL string
	// Access scopes incidents from the stored events; nil: from what the
	// findings say only (partial).
	Access AccessSource
	// Inventory is the current data inventory (it may be reloaded); nil:
	// none.
	Inventory func() *incident.Inventory
	// PrivilegedGroups: employees in these may read customer data.
	PrivilegedGroups []string
	// SelfApproval lets a DPO approve a notice version they wrote (a
	// one-person team). Off by default: four eyes. Each such approval
	// needs a reason and is marked in the audit log.
	SelfApproval bool
	// Exposures closes exposure windows by hand (close-exposure); nil:
	// the command is refused.
	Exposures ExposureCloser
	// Registerer receives the tracker's metrics; nil: none.
	Registerer prometheus.Registerer
	Now        func() time.Time
	Log        *zap.Logger
}

// Actor is who asks for a change, with the role they act in.
type Actor struct {
	Name string // e.g. "token:alice", "slack:U123", "cli:root"
	Role string // engineer, dpo or admin
}

// System is breachwatch itself, the actor of automatic entries.
var System = Actor{Name: "breachwatch", Role: "admin"}

// ErrNotFound: no incident with that id.
var ErrNotFound = errors.New("no such incident")

// ErrForbidden: the actor's role may not do this.
var ErrForbidden = errors.New("this role may not do this")

// InvalidError is a command that does not fit the incident (an illegal
// move, a missing reason); its text is safe to show to the caller.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// Tracker holds every incident, rebuilt from the audit log at start. It is
// safe for concurrent use; changes are serialized, each one appended to
// the store before it takes effect.
type Tracker struct {
	st   Store
	opts Options
	log  *zap.Logger

	// mu serializes changes, which hold it across store writes and
	// scoping reads. Readers (Get, List, Sending, Head, the metrics) never
	// take it: they read view, a copy of every incident as of its last
	// entry, under rmu, which a change holds only to swap one copy.
	rmu    sync.RWMutex
	view   map[string]incident.Incident
	vhead  Anchor
	folded map[string]bool // incidents changed since t.mu was taken (see unlock)

	mu        sync.Mutex
	head      *incident.AuditEntry // the last entry of the chain
	incidents map[string]*incident.Incident
	byFP      map[string]string // finding fingerprint → incident id
	byGroup   map[string]string // rule + group key → the active incident
	reminded  map[string]bool   // incident/obligation/point → sent
	alerts    map[string]incident.AlertRef
	updated   map[string]updateMark // what each alert last showed
	scopedAt  map[string]time.Time  // when each incident was last scoped (in memory)
	unscoped  map[string]bool       // incidents with evidence not yet scoped
	m         metrics
	changed   chan struct{}
}

// updateMark: an alert showed the incident as of audit entry seq, at.
type updateMark struct {
	seq int64
	at  time.Time
}

// New rebuilds the tracker from the store's audit log, verifying the chain
// on the way: a broken chain is an error (run `breachwatch audit verify`).
func New(ctx context.Context, st Store, o Options) (*Tracker, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Regimes == nil {
		rs, err := DefaultRegimes()
		if err != nil {
			return nil, err
		}
		o.Regimes = rs
	}
	for _, id := range o.Apply {
		if o.Regimes.Regime(id) == nil {
			return nil, fmt.Errorf("tracker: no regime %q in the regime table (version %s)", id, o.Regimes.Version)
		}
	}
	if o.ProcessorTarget <= 0 {
		o.ProcessorTarget = 24 * time.Hour
	}
	if o.ExposureGap <= 0 {
		o.ExposureGap = 24 * time.Hour
	}
	t := &Tracker{st: st, opts: o, log: o.Log, incidents: map[string]*incident.Incident{}, view: map[string]incident.Incident{}, folded: map[string]bool{}, byFP: map[string]string{},
		byGroup: map[string]string{}, reminded: map[string]bool{}, alerts: map[string]incident.AlertRef{},
		updated: map[string]updateMark{}, scopedAt: map[string]time.Time{}, unscoped: map[string]bool{}, changed: make(chan struct{}, 1)}
	var v incident.ChainVerifier
	err := st.ScanAudit(ctx, 0, func(e *incident.AuditEntry) error {
		if err := v.Add(*e); err != nil {
			return err
		}
		return t.fold(e)
	})
	if err != nil {
		return nil, fmt.Errorf("tracker: rebuilding incidents from the audit log: %w", err)
	}
	t.mu.Lock()
	// A log written before phases were compared with the facts may hold a
	// change after a notice that no update-required entry records.
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(t.incidents)) {
		if inc := t.incidents[id]; len(inc.Phases) > 0 {
			errs = append(errs, t.checkUpdate(ctx, inc, o.Now().UTC()))
		}
	}
	t.unlock() // the rebuilt incidents to the readers' view
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("tracker: recording the updates required after the rebuild: %w", err)
	}
	if err := t.register(o.Registerer); err != nil {
		return nil, fmt.Errorf("tracker: metrics: %w", err)
	}
	// Alerts of closed and dismissed incidents are final; active ones are
	// rewritten once after a start, to refresh their countdowns.
	for id, inc := range t.incidents {
		if !inc.Status.Active() {
			t.updated[id] = updateMark{seq: inc.Seq}
		}
	}
	return t, nil
}

func groupKey(ruleID, group string) string { return ruleID + "\x00" + group }

// incidentGroup is the byGroup key of an incident: its rule and incident
// key (the group key for incidents opened before incident keys).
func incidentGroup(inc *incident.Incident) string {
	if inc.IncidentKey != "" {
		return groupKey(inc.RuleID, inc.IncidentKey)
	}
	return groupKey(inc.RuleID, inc.GroupKey)
}

// fold applies an entry to the in-memory state (entries must come in
// chain order).
func (t *Tracker) fold(e *incident.AuditEntry) error {
	inc := t.incidents[e.Incident]
	if inc == nil {
		if e.Action != incident.ActOpened {
			return fmt.Errorf("audit entry %d: %s on incident %s, which was never opened", e.Seq, e.Action, e.Incident)
		}
		inc = &incident.Incident{}
	}
	if err := apply(inc, e); err != nil {
		return err
	}
	t.incidents[e.Incident] = inc
	switch e.Action {
	case incident.ActOpened, incident.ActEvidence:
		for _, ev := range inc.Evidence {
			t.byFP[ev.Fingerprint] = inc.ID
		}
	case incident.ActReminded:
		var r incident.Reminder
		if json.Unmarshal(e.Data, &r) == nil {
			t.reminded[e.Incident+"\x00"+r.Obligation+"\x00"+r.Point] = true
		}
	case incident.ActAlerted:
		var a incident.AlertRef
		if json.Unmarshal(e.Data, &a) == nil {
			t.alerts[e.Incident] = a
		}
	}
	k := incidentGroup(inc)
	if inc.Status.Active() {
		t.byGroup[k] = inc.ID
	} else if t.byGroup[k] == inc.ID {
		delete(t.byGroup, k)
	}
	head := *e // a copy: callers reuse their entries
	t.head = &head
	t.folded[inc.ID] = true
	return nil
}

// unlock ends a change: the incidents it folded entries into are copied to
// the readers' view, all at once (a reader sees a change whole: an opened
// incident with its customers and deadlines, not one entry of it), then
// t.mu is released.
func (t *Tracker) unlock() {
	if len(t.folded) > 0 {
		copies := make(map[string]incident.Incident, len(t.folded))
		for id := range t.folded {
			copies[id] = t.incidents[id].Clone()
		}
		clear(t.folded)
		t.rmu.Lock()
		maps.Copy(t.view, copies)
		t.vhead = Anchor{Seq: t.head.Seq, Hash: t.head.Hash, At: t.head.At}
		t.rmu.Unlock()
	}
	t.mu.Unlock()
}

// appendEntries seals, stores and folds entries, in order. Called with
// t.mu held.
func (t *Tracker) appendEntries(ctx context.Context, es []incident.AuditEntry) error {
	prev := t.head
	for i := range es {
		es[i].Seal(prev)
		prev = &es[i]
	}
	if err := t.st.AppendAudit(ctx, es); err != nil {
		return fmt.Errorf("tracker: writing the audit log: %w", err)
	}
	for i := range es {
		if err := t.fold(&es[i]); err != nil {
			return err
		}
	}
	if n := len(es); n > 0 && t.opts.Anchor != nil {
		t.opts.Anchor(Anchor{Seq: es[n-1].Seq, Hash: es[n-1].Hash, At: es[n-1].At})
	}
	if len(es) > 0 {
		select {
		case t.changed <- struct{}{}:
		default:
		}
	}
	return nil
}

func entry(inc string, by Actor, action, reason string, data any, now time.Time) (incident.AuditEntry, error) {
	e := incident.AuditEntry{At: now, Incident: inc, Actor: by.Name, Action: action, Reason: reason}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return e, err
		}
		e.Data = b
	}
	return e, nil
}

// Findings takes findings from detection: a finding of a known fingerprint
// updates its incident's evidence (nothing is recorded when it brings
// nothing new, so replays are harmless); a new one joins the active
// incident of its rule and group, or opens one. Each incident changed is
// scoped once, after all of fs. It returns the ids of the incidents that
// were opened or changed.
func (t *Tracker) Findings(ctx context.Context, fs []incident.Finding) ([]string, error) {
	t.mu.Lock()
	defer t.unlock()
	var changed []string
	for i := range fs {
		f := &fs[i]
		now := t.opts.Now().UTC()
		id, known := t.byFP[f.Fingerprint]
		if !known && f.Retracted() {
			continue // a finding this tracker never had
		}
		for _, old := range f.Supersedes {
			if known {
				break
			}
			// A finding that now holds an earlier one's episode joins that
			// one's incident.
			id, known = t.byFP[old]
		}
		if !known {
			id = t.byGroup[groupKey(f.RuleID, f.Key())]
			if inc := t.incidents[id]; inc != nil && inc.Kind == incident.KindExposure && !inc.ExposureTo.IsZero() &&
				f.WindowStart.Sub(inc.ExposureTo) > t.opts.ExposureGap {
				// The resource was safe for longer than the gap: a new
				// exposure, a new incident with its own clocks.
				id = ""
			}
		}
		var e incident.AuditEntry
		var err error
		if inc := t.incidents[id]; inc != nil {
			if sameEvidence(inc, f) {
				continue
			}
			e, err = entry(id, System, incident.ActEvidence, "", f, now)
		} else if f.Retracted() {
			continue
		} else {
			id = incident.IncidentID(f.Fingerprint)
			e, err = entry(id, System, incident.ActOpened, "", f, now)
		}
		if err != nil {
			return changed, err
		}
		if err := t.appendEntries(ctx, []incident.AuditEntry{e}); err != nil {
			return changed, err
		}
		if !slices.Contains(changed, id) {
			changed = append(changed, id)
		}
		t.unscoped[id] = true
	}
	// Scoped once each; an incident whose scoping failed in an earlier
	// call (the store was down) is scoped now.
	return changed, t.rescopePending(ctx)
}

// rescope recomputes an incident's affected customers and obligations and
// records them when they changed. When the customers cannot be read (the
// store is down or refuses the query) the obligations are still computed,
// from the customers known so far, so that the incident has its deadlines;
// the error is returned and the incident scoped again later. Called with
// t.mu held.
func (t *Tracker) rescope(ctx context.Context, id string, now time.Time) error {
	inc := t.incidents[id]
	var es []incident.AuditEntry
	s, err := t.scope(ctx, inc, now)
	if err != nil {
		// The customers known so far stand, marked partial and why (no
		// error text: it may quote the query); the incident is scoped
		// again later.
		var errs []error
		if inc.Scope.PartialReason != scopeUnread {
			p := inc.Scope
			p.Tenants = slices.Clone(p.Tenants)
			p.Partial, p.PartialReason = true, scopeUnread
			e, eerr := entry(id, System, incident.ActScoped, "", p, now)
			if eerr == nil {
				eerr = t.appendEntries(ctx, []incident.AuditEntry{e})
			}
			errs = append(errs, eerr)
		}
		errs = append(errs, t.checkUpdate(ctx, inc, now), t.reoblige(ctx, inc, now))
		t.log.Warn("scoping failed; the incident keeps its deadlines and the customers known so far, and is scoped again later",
			zap.String("incident", id), zap.Error(err))
		return errors.Join(append([]error{err}, errs...)...)
	}
	for i := range s.Tenants {
		if c, ok := t.opts.Customers[s.Tenants[i].Tenant]; ok {
			s.Tenants[i].Country, s.Tenants[i].Locale, s.Tenants[i].TimeZone = c.Country, c.Locale, c.TimeZone
		}
	}
	t.scopedAt[id] = now
	if !scopeEqual(s, inc.Scope) {
		e, err := entry(id, System, incident.ActScoped, "", s, now)
		if err != nil {
			return err
		}
		es = append(es, e)
		if err := t.appendEntries(ctx, es); err != nil {
			return err
		}
	}
	if err := t.checkUpdate(ctx, inc, now); err != nil {
		return err
	}
	return t.reoblige(ctx, inc, now)
}

// customersSettled reports whether every customer obligation is met or
// waived.
func customersSettled(inc *incident.Incident) bool {
	for _, o := range inc.Obligations {
		if o.Recipient == "customers" && !o.Settled() {
			return false
		}
	}
	return true
}

// checkUpdate records an update required when the incident's facts
// differ materially from what its customers were told (customers added,
// the window moved or reopened, records or categories grown), and that the
// update is no longer required when they came back to it. Called with t.mu
// held, after the incident's scope and evidence are recorded.
func (t *Tracker) checkUpdate(ctx context.Context, inc *incident.Incident, now time.Time) error {
	d := inc.Drift()
	switch {
	case d == nil && inc.Update == nil, d != nil && d.Same(inc.Update):
		return nil
	case d == nil:
		d = &incident.Update{}
	}
	e, err := entry(inc.ID, System, incident.ActUpdateRequired, "", d, now)
	if err != nil {
		return err
	}
	if err := t.appendEntries(ctx, []incident.AuditEntry{e}); err != nil {
		return err
	}
	if inc.Update != nil {
		t.log.Warn("update required: the facts changed after the customers were told", zap.String("incident", inc.ID),
			zap.Strings("reasons", inc.Update.Reasons), zap.Int("untold", len(inc.Update.Untold)), zap.Int("changed", len(inc.Update.Changed)))
	}
	return nil
}

// scopeUnread is the partial reason of a scope the store could not be read
// for.
const scopeUnread = "the affected customers could not be read from the store; tried again with the next findings"

// reoblige recomputes an incident's obligations and records them when they
// changed. Called with t.mu held.
func (t *Tracker) reoblige(ctx context.Context, inc *incident.Incident, now time.Time) error {
	obs := t.opts.Regimes.Obligations(t.applicable(inc), inc, t.opts.ProcessorTarget)
	if obligationsEqual(obs, inc.Obligations) {
		return nil
	}
	e, err := entry(inc.ID, System, incident.ActObligations, "", obs, now)
	if err != nil {
		return err
	}
	return t.appendEntries(ctx, []incident.AuditEntry{e})
}

// Stored tells the tracker that events dated in [from, to] were stored
// (a batch detection evaluated, which the store holds). An exposure's
// affected customers are read from the events stored up to the end of its
// window, and events may be stored after the window was scoped — a
// partition behind the others, a backlog, a late CloudTrail file — so the
// active exposure incidents whose closed window ends at or after from are
// scoped again at the next call of Findings or Rescope. (Open windows are
// scoped again every RescopeEvery; access incidents are scoped by their own
// evidence.)
func (t *Tracker) Stored(from, to time.Time) {
	t.mu.Lock()
	defer t.unlock()
	for id, inc := range t.incidents {
		if inc.Kind != incident.KindExposure || !inc.Status.Active() || inc.ExposureFrom.IsZero() || inc.ExposureTo.IsZero() {
			continue
		}
		if !from.After(inc.ExposureTo) {
			t.unscoped[id] = true
		}
	}
}

// Rescope scopes again the incidents marked so (Stored, or a scoping that
// failed earlier).
func (t *Tracker) Rescope(ctx context.Context) error {
	t.mu.Lock()
	defer t.unlock()
	return t.rescopePending(ctx)
}

// rescopePending scopes the marked incidents once each, in id order. One
// that cannot be scoped stays marked and does not hold back the others;
// the errors are returned together. Called with t.mu held.
func (t *Tracker) rescopePending(ctx context.Context) error {
	ids := make([]string, 0, len(t.unscoped))
	for id := range t.unscoped {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var errs []error
	for _, id := range ids {
		if ctx.Err() != nil {
			return errors.Join(append(errs, ctx.Err())...)
		}
		if err := t.rescope(ctx, id, t.opts.Now().UTC()); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(t.unscoped, id)
	}
	return errors.Join(errs...)
}

// RescopeEvery is how often an open exposure is scoped again: while its
// window runs to now, someone may read the exposed data at any moment.
const RescopeEvery = 5 * time.Minute

// rescopeOpen scopes an active, still-open exposure again when it was
// last scoped RescopeEvery ago or more.
func (t *Tracker) rescopeOpen(ctx context.Context, id string, now time.Time) error {
	t.mu.Lock()
	defer t.unlock()
	inc := t.incidents[id]
	if inc == nil || !inc.Status.Active() || inc.Kind != incident.KindExposure || !inc.ExposureTo.IsZero() ||
		now.Sub(t.scopedAt[id]) < RescopeEvery {
		return nil
	}
	return t.rescope(ctx, id, now.UTC())
}

// applicable lists the regimes that apply to an incident: the
// organisation's, and those its affected customers' countries bring in.
func (t *Tracker) applicable(inc *incident.Incident) []string {
	out := slices.Clone(t.opts.Apply)
	if t.opts.ByCountry {
		for _, r := range t.opts.Regimes.All() {
			if slices.Contains(out, r.ID) {
				continue
			}
			for _, a := range inc.Scope.Tenants {
				if c, ok := t.opts.Customers[a.Tenant]; ok && r.AppliesByCountry(c.Country) {
					out = append(out, r.ID)
					break
				}
			}
		}
	}
	return out
}

// hintScope is the affected customers as the findings name them. Records
// are exact when one tenant is affected; with several, the per-tenant
// split is unknown here and the scope is marked partial.
func hintScope(inc *incident.Incident, _ map[string]Customer) incident.Scope {
	var s incident.Scope
	how := incident.HowAccessed
	if inc.Kind == incident.KindExposure {
		how = incident.HowExposed
	}
	for _, tn := range inc.Hint.Tenants {
		s.Tenants = append(s.Tenants, incident.AffectedTenant{Tenant: tn, Categories: slices.Clone(inc.Hint.Categories), How: how})
	}
	if len(s.Tenants) == 1 {
		s.Tenants[0].Records = inc.Records
	} else if len(s.Tenants) > 1 || inc.Hint.Scope == incident.ScopeStore {
		s.Partial = true
	}
	return s
}

func scopeEqual(a, b incident.Scope) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func obligationsEqual(a, b []incident.Obligation) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// Commands an actor can give.
const (
	CmdAcknowledge = "acknowledge"
	CmdConfirm     = "confirm"
	CmdDismiss     = "dismiss"   // reason required
	CmdReopen      = "reopen"    // reason required
	CmdStatus      = "status"    // To: notifying, notified or closed
	CmdAwareness   = "awareness" // At, reason required; DPO only
	CmdDetermine   = "determine" // At, reason required; DPO only
	CmdAssign      = "assign"    // To
	CmdNote        = "note"      // Reason: the text
	CmdFile        = "file"      // To: the obligation; At; Reference; reason required when late; DPO only
	CmdDraft       = "draft"     // Notice: a new version of the customer notice
	CmdApprove     = "approve"   // Version and Hash; DPO only, not the version's author (see Options.SelfApproval)
	CmdSend        = "send"      // send the latest approved version to every affected customer
	CmdWaive       = "waive"     // To: the obligation; reason required (why notifying is not required); DPO only
	CmdUpdate      = "update"    // Reason: a phased update to the authority (Art. 33(4)); DPO only
	// CmdCloseExposure closes an exposure window by hand, for windows no
	// change will close (a teardown): To is the finding's fingerprint
	// (optional when one window is open), At when (default now); reason
	// required.
	CmdCloseExposure = "close-exposure"
)

// Command is a change someone asks for.
type Command struct {
	Incident  string
	Name      string
	Reason    string
	To        string
	At        time.Time
	Reference string
	Notice    *incident.Notice // CmdDraft
	// Correction (CmdDraft, after a version went out): the supplementary
	// version goes to the customers told already too, not only to those
	// not told yet.
	Correction bool
	Version    int    // CmdApprove
	Hash       string // CmdApprove: the content hash the approver reviewed
}

// roles says who may give each command (admin may give all but the
// personal ones).
var roles = map[string][]string{
	CmdAcknowledge:   {"engineer", "dpo"},
	CmdConfirm:       {"engineer", "dpo"},
	CmdDismiss:       {"engineer", "dpo"},
	CmdReopen:        {"engineer", "dpo"},
	CmdStatus:        {"engineer", "dpo"},
	CmdAssign:        {"engineer", "dpo"},
	CmdNote:          {"engineer", "dpo"},
	CmdAwareness:     {"dpo"},
	CmdDetermine:     {"dpo"},
	CmdFile:          {"dpo"},
	CmdDraft:         {"engineer", "dpo"},
	CmdApprove:       {"dpo"},
	CmdSend:          {"engineer", "dpo"},
	CmdWaive:         {"dpo"},
	CmdUpdate:        {"dpo"},
	CmdCloseExposure: {"engineer", "dpo"},
}

// personal are the commands only their roles may give, not admin: approving
// a customer notice is the DPO's own sign-off (docs/notices.md).
var personal = map[string]bool{CmdApprove: true}

// Allowed reports whether a role may give a command.
func Allowed(role, cmd string) bool {
	rs, ok := roles[cmd]
	return ok && ((role == "admin" && !personal[cmd]) || slices.Contains(rs, role))
}

// MaxText bounds reasons and notes.
const MaxText = 4000

// Do carries out a command and returns the incident as it is afterwards.
func (t *Tracker) Do(ctx context.Context, by Actor, c Command) (incident.Incident, error) {
	if _, ok := roles[c.Name]; !ok {
		return incident.Incident{}, invalid("unknown command %q", c.Name)
	}
	if !Allowed(by.Role, c.Name) {
		return incident.Incident{}, ErrForbidden
	}
	c.Reason = strings.TrimSpace(c.Reason)
	if len(c.Reason) > MaxText || !utf8.ValidString(c.Reason) {
		return incident.Incident{}, invalid("the reason must be valid UTF-8 of at most %d bytes", MaxText)
	}
	t.mu.Lock()
	defer t.unlock()
	inc := t.incidents[c.Incident]
	if inc == nil {
		return incident.Incident{}, ErrNotFound
	}
	now := t.opts.Now().UTC()
	needReason := func(what string) error {
		if c.Reason == "" {
			return invalid("%s needs a reason", what)
		}
		return nil
	}
	var action string
	var data any
	recompute := false
	switch c.Name {
	case CmdAcknowledge:
		if inc.Acknowledged {
			return inc.Clone(), nil
		}
		action = incident.ActAcknowledged
	case CmdConfirm:
		if err := incident.CanMove(inc.Status, incident.StatusConfirmed); err != nil {
			return inc.Clone(), invalid("%v", err)
		}
		action = incident.ActConfirmed
	case CmdDismiss:
		if err := incident.CanMove(inc.Status, incident.StatusDismissed); err != nil {
			return inc.Clone(), invalid("%v", err)
		}
		if err := needReason("dismissing"); err != nil {
			return inc.Clone(), err
		}
		action = incident.ActDismissed
	case CmdReopen:
		if err := incident.CanReopen(inc.Status); err != nil {
			return inc.Clone(), invalid("%v", err)
		}
		if err := needReason("reopening"); err != nil {
			return inc.Clone(), err
		}
		if other, ok := t.byGroup[incidentGroup(inc)]; ok && other != inc.ID {
			return inc.Clone(), invalid("incident %s of the same rule and group is active; work on that one", other)
		}
		action = incident.ActReopened
	case CmdStatus:
		to := incident.Status(c.To)
		if to == incident.StatusDismissed || to == incident.StatusConfirmed || to == incident.StatusOpen {
			return inc.Clone(), invalid("use the %s command for that", map[incident.Status]string{incident.StatusDismissed: CmdDismiss,
				incident.StatusConfirmed: CmdConfirm, incident.StatusOpen: CmdReopen}[to])
		}
		if err := incident.CanMove(inc.Status, to); err != nil {
			return inc.Clone(), invalid("%v", err)
		}
		if to == incident.StatusNotified || to == incident.StatusClosed {
			// "Notified" is never said by hand over what breachwatch knows
			// was not told (closing stays possible once it is).
			switch {
			case inc.Update != nil && (to == incident.StatusNotified || !customersSettled(inc)):
				return inc.Clone(), invalid("an update is required (%s): send a supplementary notice first (or waive the customer notice, with the reason)", inc.Update.Summary())
			case to == incident.StatusNotified && inc.NoticeSending > 0 && inc.NoticeSentAt.IsZero():
				return inc.Clone(), invalid("version %d is still being sent: the incident is notified once every customer of it is reached", inc.NoticeSending)
			}
		}
		action, data = incident.ActStatus, map[string]incident.Status{"to": to}
	case CmdAwareness, CmdDetermine:
		if err := needReason("setting " + map[string]string{CmdAwareness: "awareness", CmdDetermine: "the determination"}[c.Name]); err != nil {
			return inc.Clone(), err
		}
		if c.At.IsZero() || c.At.After(now.Add(time.Minute)) {
			return inc.Clone(), invalid("the time must be given and not in the future")
		}
		if c.Name == CmdAwareness {
			if c.At.Before(inc.DetectedAt) {
				return inc.Clone(), invalid("awareness cannot come before detection (%s)", inc.DetectedAt.Format(time.RFC3339))
			}
			action = incident.ActAwareness
		} else {
			action = incident.ActDetermined
		}
		data, recompute = map[string]time.Time{"at": c.At.UTC()}, true
	case CmdAssign:
		if c.To == "" || len(c.To) > 200 || !utf8.ValidString(c.To) {
			return inc.Clone(), invalid("assign to whom? (a name of at most 200 bytes)")
		}
		action, data = incident.ActAssigned, map[string]string{"to": c.To}
	case CmdNote:
		if c.Reason == "" {
			return inc.Clone(), invalid("the note is empty")
		}
		action = incident.ActNote
	case CmdFile:
		o := inc.Obligation(c.To)
		if o == nil {
			return inc.Clone(), invalid("the incident has no obligation %q", c.To)
		}
		if o.Met() {
			return inc.Clone(), invalid("obligation %s was already met at %s", o.ID, o.MetAt.Format(time.RFC3339))
		}
		if c.At.IsZero() {
			c.At = now
		}
		if c.At.After(now.Add(time.Minute)) {
			return inc.Clone(), invalid("a filing cannot be in the future")
		}
		if !o.DueAt.IsZero() && c.At.After(o.DueAt) && c.Reason == "" {
			return inc.Clone(), invalid("this filing is late (due %s): give the reasons for the delay", o.DueAt.Format(time.RFC3339))
		}
		action, data, recompute = incident.ActFiled, incident.Filing{Obligation: o.ID, At: c.At.UTC(), Reference: c.Reference}, true
	case CmdWaive:
		o := inc.Obligation(c.To)
		if o == nil {
			return inc.Clone(), invalid("the incident has no obligation %q", c.To)
		}
		if o.Settled() {
			return inc.Clone(), invalid("obligation %s is already met or waived", o.ID)
		}
		if err := needReason("waiving a notification"); err != nil {
			return inc.Clone(), err
		}
		action, data = incident.ActWaived, map[string]string{"obligation": o.ID}
	case CmdUpdate:
		if c.Reason == "" {
			return inc.Clone(), invalid("the update is empty")
		}
		action = incident.ActReportUpdate
	case CmdDraft, CmdApprove, CmdSend:
		var err error
		if action, data, err = t.noticeCommand(inc, by, c, now); err != nil {
			return inc.Clone(), err
		}
	case CmdCloseExposure:
		var err error
		if action, data, err = t.closeExposure(ctx, inc, by, c, now); err != nil {
			return inc.Clone(), err
		}
	}
	e, err := entry(inc.ID, by, action, c.Reason, data, now)
	if err != nil {
		return inc.Clone(), err
	}
	if err := t.appendEntries(ctx, []incident.AuditEntry{e}); err != nil {
		return inc.Clone(), err
	}
	if recompute {
		if err := t.rescope(ctx, inc.ID, now); err != nil {
			return t.incidents[inc.ID].Clone(), err
		}
	}
	return t.incidents[inc.ID].Clone(), nil
}

// ExposureCloser closes an exposure window by hand in detection (the
// rules engine keeps open windows; app connects it).
type ExposureCloser interface {
	CloseExposure(ctx context.Context, fingerprint string, by incident.ManualClose) error
}

// closeExposure checks a close-exposure command and has detection close
// the window; the finding it reports again carries the closing.
func (t *Tracker) closeExposure(ctx context.Context, inc *incident.Incident, by Actor, c Command, now time.Time) (string, any, error) {
	if t.opts.Exposures == nil {
		return "", nil, invalid("detection is off: there is no exposure window to close")
	}
	if inc.Kind != incident.KindExposure {
		return "", nil, invalid("only an exposure incident has a window to close")
	}
	if c.Reason == "" {
		return "", nil, invalid("closing an exposure window by hand needs a reason (for example: the resource was decommissioned)")
	}
	var open []incident.Evidence
	for _, e := range inc.Evidence {
		if e.WindowEnd.IsZero() && (c.To == "" || e.Fingerprint == c.To) {
			open = append(open, e)
		}
	}
	switch {
	case len(open) == 0 && c.To != "":
		return "", nil, invalid("the incident has no open window %q", c.To)
	case len(open) == 0:
		return "", nil, invalid("the incident has no open exposure window")
	case len(open) > 1:
		return "", nil, invalid("the incident has %d open windows: name one by its fingerprint", len(open))
	}
	at := c.At
	if at.IsZero() {
		at = now
	}
	if at.After(now.Add(time.Minute)) {
		return "", nil, invalid("a window cannot be closed in the future")
	}
	if at.Before(open[0].LastSeen) {
		return "", nil, invalid("the window was still changing at %s: close it at that time or later", open[0].LastSeen.Format(time.RFC3339))
	}
	mc := incident.ManualClose{By: by.Name, Reason: c.Reason, At: at.UTC()}
	if err := t.opts.Exposures.CloseExposure(ctx, open[0].Fingerprint, mc); err != nil {
		return "", nil, invalid("the window could not be closed: %v", err)
	}
	return incident.ActExposureClosed, map[string]any{"fingerprint": open[0].Fingerprint, "at": mc.At}, nil
}

// Customer returns a tenant's entry of the customer directory.
func (t *Tracker) Customer(tenant string) (Customer, bool) {
	c, ok := t.opts.Customers[tenant]
	return c, ok
}

// Get returns one incident.
func (t *Tracker) Get(id string) (incident.Incident, bool) {
	t.rmu.RLock()
	defer t.rmu.RUnlock()
	inc, ok := t.view[id]
	if !ok {
		return incident.Incident{}, false
	}
	return inc.Clone(), true
}

// List returns the incidents newest first, those in status when it is not
// empty.
func (t *Tracker) List(status incident.Status) []incident.Incident {
	t.rmu.RLock()
	out := make([]incident.Incident, 0, len(t.view))
	for _, inc := range t.view {
		if status == "" || inc.Status == status {
			out = append(out, inc.Clone())
		}
	}
	t.rmu.RUnlock()
	slices.SortFunc(out, func(a, b incident.Incident) int {
		if c := b.DetectedAt.Compare(a.DetectedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

// Audit returns the audit entries of one incident, oldest first.
func (t *Tracker) Audit(ctx context.Context, id string) ([]incident.AuditEntry, error) {
	var out []incident.AuditEntry
	err := t.st.ScanAudit(ctx, 0, func(e *incident.AuditEntry) error {
		if e.Incident == id {
			out = append(out, *e)
		}
		return nil
	})
	return out, err
}

// Anchor is the audit log's head at one moment: its last sequence number
// and that entry's hash. Kept outside the store (a Kafka topic kept for
// ever, the log), anchors show what the chain alone cannot: entries cut
// from its end, or the chain rewritten and hashed again (see
// VerifyAnchors).
type Anchor struct {
	Seq  int64     `json:"seq"`
	Hash string    `json:"hash"`
	At   time.Time `json:"at,omitzero"`
}

// Head is the audit log's head now (zero before the first entry).
func (t *Tracker) Head() Anchor {
	t.rmu.RLock()
	defer t.rmu.RUnlock()
	return t.vhead
}

// VerifyAnchors checks the audit chain in a store (as Verify does) and,
// against it, anchors kept elsewhere: each anchored entry must be there
// with the anchored hash. An anchor past the chain's end shows entries cut
// from it; one whose hash differs, a chain rewritten. It returns the
// entries, the head and how many anchors were checked.
func VerifyAnchors(ctx context.Context, st Store, anchors []Anchor) (n int64, head string, checked int, err error) {
	want := make(map[int64]string, len(anchors))
	var last int64
	for _, a := range anchors {
		if h, ok := want[a.Seq]; ok && h != a.Hash {
			return 0, "", 0, fmt.Errorf("the anchors disagree about entry %d: %s and %s", a.Seq, h, a.Hash)
		}
		want[a.Seq] = a.Hash
		last = max(last, a.Seq)
	}
	var v incident.ChainVerifier
	err = st.ScanAudit(ctx, 0, func(e *incident.AuditEntry) error {
		if err := v.Add(*e); err != nil {
			return err
		}
		if h, ok := want[e.Seq]; ok {
			if h != e.Hash {
				return fmt.Errorf("audit entry %d does not have the hash anchored for it (%s): the log was rewritten", e.Seq, h)
			}
			checked++
		}
		return nil
	})
	if err == nil && v.Count() < last {
		err = fmt.Errorf("the log ends at entry %d, but entry %d was anchored: entries were cut from its end", v.Count(), last)
	}
	return v.Count(), v.Head(), checked, err
}

// Verify checks the whole audit chain in a store and returns how many
// entries it holds and the hash of the last one (worth writing down
// somewhere else: it pins the chain as of now).
func Verify(ctx context.Context, st Store) (int64, string, error) {
	var v incident.ChainVerifier
	err := st.ScanAudit(ctx, 0, func(e *incident.AuditEntry) error { return v.Add(*e) })
	return v.Count(), v.Head(), err
}
