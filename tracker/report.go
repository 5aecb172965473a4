package tracker

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/internal/jsonhttp"
)

// Report is the supervisory-authority report of an incident, pre-filled
// with the elements of GDPR Art. 33(3), the reasons for delay when late
// (Art. 33(1)) and the phased updates (Art. 33(4)).
type Report struct {
	Incident    string    `json:"incident"`
	Title       string    `json:"title"`
	GeneratedAt time.Time `json:"generated_at"`
	// AuditHead is the audit log's head the report was built from: the
	// chain up to it holds every fact the report states.
	AuditHead   Anchor    `json:"audit_head"`
	TimeZone    string    `json:"time_zone"`
	DetectedAt  time.Time `json:"detected_at"`
	AwareAt     time.Time `json:"aware_at"`
	AwareReason string    `json:"aware_reason,omitempty"`
	Window      Window    `json:"window"`
	// Art. 33(3)(a): the nature, the categories and approximate numbers of
	// data subjects (here: affected customers) and of records.
	Nature     string   `json:"nature"`
	Categories []string `json:"categories"`
	Customers  int      `json:"customers"`
	Accessed   int      `json:"customers_accessed"`
	Exposed    int      `json:"customers_exposed"`
	Records    int64    `json:"records"`
	// Partial: the numbers are estimates (see the incident's scope).
	Partial bool `json:"partial"`
	// Art. 33(3)(b)–(d).
	Contact      incident.Contact `json:"dpo_contact"`
	Consequences string           `json:"likely_consequences"`
	Measures     string           `json:"measures"`
	// Source says where the text came from: the notice version (the DPO's
	// English text) or nothing yet.
	Source string `json:"source"`
	// The authority deadlines (Art. 33(1)) and, when late, the reasons.
	Deadlines []Deadline      `json:"deadlines"`
	Late      bool            `json:"late"`
	Reasons   string          `json:"reasons_for_delay,omitempty"`
	Updates   []incident.Note `json:"updates"`
	// Phases: the customer notice's versions sent (Art. 34), oldest first,
	// and the update required while the facts differ from what the
	// customers were told.
	Phases         []incident.PhaseView `json:"customer_notice_phases"`
	UpdateRequired *incident.Update     `json:"update_required"`
	// UpdateOwed: the facts changed after the authority was notified; the
	// phased information of Art. 33(4) is owed since then.
	UpdateOwed *time.Time `json:"authority_update_owed"`
	// Missing names the elements still missing from this report.
	Missing []string `json:"missing"`
}

// Report builds an incident's authority report as of now.
func (t *Tracker) Report(inc incident.Incident) Report {
	v := t.View(inc)
	now := t.opts.Now().UTC()
	r := Report{Incident: inc.ID, Title: inc.Title, GeneratedAt: now, AuditHead: t.Head(), TimeZone: v.TimeZone, DetectedAt: inc.DetectedAt,
		AwareAt: inc.AwareAt, AwareReason: inc.AwareReason, Window: v.Exposure, Customers: len(inc.Scope.Tenants),
		Records: inc.Scope.Records(), Partial: inc.Scope.Partial, Updates: slices.Clone(inc.ReportUpdates),
		Deadlines: []Deadline{}, Categories: []string{}}
	if r.Updates == nil {
		r.Updates = []incident.Note{}
	}
	r.Phases, r.UpdateRequired, r.UpdateOwed = []incident.PhaseView{}, inc.Update, ptr(inc.AuthorityUpdateSince)
	if r.UpdateOwed != nil {
		r.Missing = append(r.Missing, "the phased update owed since the facts changed (Art. 33(4)): record it with the update command")
	}
	if v.Notice != nil {
		r.Phases = v.Notice.Phases
	}
	for _, a := range inc.Scope.Tenants {
		if a.How == incident.HowAccessed {
			r.Accessed++
		} else {
			r.Exposed++
		}
		r.Categories = union(r.Categories, a.Categories)
	}
	// The newest version with text: approved if there is one.
	var src *incident.NoticeVersion
	if src = inc.LatestApproved(); src == nil && len(inc.Notices) > 0 {
		src = &inc.Notices[len(inc.Notices)-1]
	}
	if src != nil {
		en := src.Notice.Text["en"]
		r.Nature, r.Consequences, r.Measures, r.Contact = en.Nature, en.Consequences, en.Measures, src.Notice.Contact
		r.Source = fmt.Sprintf("customer notice version %d", src.Version)
		if a := src.Notice.ForAuthority; a != nil {
			// The authority's own wording, where the DPO wrote it.
			for _, f := range []struct {
				dst *string
				v   string
			}{{&r.Nature, a.Nature}, {&r.Consequences, a.Consequences}, {&r.Measures, a.Measures}} {
				if strings.TrimSpace(f.v) != "" {
					*f.dst = f.v
				}
			}
			r.Source += ", with its wording for the authority"
		}
		if src.Approved() {
			r.Source += " (approved)"
		} else {
			r.Source += " (draft)"
		}
		if len(src.Notice.Categories) > 0 {
			r.Categories = slices.Clone(src.Notice.Categories)
		}
	}
	for _, d := range v.Deadlines {
		if d.Recipient != "authority" {
			continue
		}
		r.Deadlines = append(r.Deadlines, d)
		late := d.Late || (d.MetAt == nil && d.WaivedAt == nil && d.DueAt != nil && now.After(*d.DueAt))
		if late {
			r.Late = true
			if d.LateReason != "" {
				r.Reasons = strings.TrimSpace(r.Reasons + "\n" + d.LateReason)
			}
		}
	}
	miss := func(cond bool, what string) {
		if cond {
			r.Missing = append(r.Missing, what)
		}
	}
	miss(r.Nature == "", "the nature of the breach (draft the customer notice's English text)")
	miss(r.Contact.Name == "" || r.Contact.Email == "", "the DPO's name and contact details")
	miss(r.Consequences == "", "the likely consequences")
	miss(r.Measures == "", "the measures taken or proposed")
	miss(r.Late && r.Reasons == "", "the reasons for the delay (given when filing late)")
	if r.Missing == nil {
		r.Missing = []string{}
	}
	return r
}

//go:embed report.html
var reportHTML string

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"ts": func(t time.Time, zone string) string {
		if t.IsZero() {
			return "—"
		}
		loc, err := time.LoadLocation(zone)
		if err != nil {
			loc = time.UTC
		}
		return t.UTC().Format("2006-01-02 15:04 UTC") + " (" + t.In(loc).Format("2006-01-02 15:04 MST") + ")"
	},
	"tsp": func(t *time.Time, zone string) string {
		if t == nil {
			return "—"
		}
		loc, err := time.LoadLocation(zone)
		if err != nil {
			loc = time.UTC
		}
		return t.UTC().Format("2006-01-02 15:04 UTC") + " (" + t.In(loc).Format("2006-01-02 15:04 MST") + ")"
	},
	"paras": func(s string) []string { return splitParas(s) },
	"join":  strings.Join,
}).Parse(reportHTML))

func splitParas(s string) []string {
	var out []string
	for _, p := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// RenderReportHTML writes the report as a printable page.
func RenderReportHTML(r Report) ([]byte, error) {
	var b bytes.Buffer
	if err := reportTmpl.Execute(&b, r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// RegisterEntry is one incident in the breach register (GDPR Art. 33(5)):
// the facts, the effects, the remedial action and, where nobody was
// notified, the reasoning.
type RegisterEntry struct {
	Incident       string     `json:"incident"`
	Rule           string     `json:"rule"`
	Title          string     `json:"title"`
	Severity       string     `json:"severity"`
	Status         string     `json:"status"`
	DetectedAt     time.Time  `json:"detected_at"`
	AwareAt        time.Time  `json:"aware_at"`
	WindowFrom     time.Time  `json:"window_from"`
	WindowTo       *time.Time `json:"window_to"`
	Categories     []string   `json:"categories"`
	Customers      int        `json:"customers"`
	Accessed       int        `json:"customers_accessed"`
	Records        int64      `json:"records"`
	Effects        string     `json:"effects"`         // the likely consequences
	RemedialAction string     `json:"remedial_action"` // the measures
	AuthorityAt    *time.Time `json:"authority_notified_at"`
	CustomersAt    *time.Time `json:"customers_notified_at"`
	NotNotifiedWhy string     `json:"not_notified_reasoning,omitempty"`
	Late           bool       `json:"late"`
	LateReasons    string     `json:"late_reasons,omitempty"`
	// NoticePhases: each version sent to customers ("v1 2026-11-20T10:00:00Z
	// to 48 customers, all reached 2026-11-20T10:01:00Z"), oldest first;
	// UpdateRequired: why the customers must be told more, while they must.
	NoticePhases   []string `json:"notice_phases"`
	UpdateRequired string   `json:"update_required,omitempty"`
}

// Register lists every incident, notified or not, newest first.
func (t *Tracker) Register() []RegisterEntry {
	incs := t.List("")
	out := make([]RegisterEntry, 0, len(incs))
	for _, inc := range incs {
		r := t.Report(inc)
		e := RegisterEntry{Incident: inc.ID, Rule: inc.RuleID, Title: inc.Title, Severity: inc.Severity, Status: string(inc.Status),
			DetectedAt: inc.DetectedAt, AwareAt: inc.AwareAt, WindowFrom: r.Window.From, WindowTo: r.Window.To, Categories: r.Categories,
			Customers: r.Customers, Accessed: r.Accessed, Records: r.Records, Effects: r.Consequences, RemedialAction: r.Measures}
		var why []string
		if inc.Status == incident.StatusDismissed {
			why = append(why, "dismissed: "+inc.Reason)
		}
		for _, o := range inc.Obligations {
			switch {
			case o.Recipient == "authority" && o.Met() && (e.AuthorityAt == nil || o.MetAt.Before(*e.AuthorityAt)):
				at := o.MetAt
				e.AuthorityAt = &at
			case o.Recipient == "customers" && (o.Met() || !o.FirstMetAt.IsZero()):
				// When the customers were first told, kept through a
				// supplementary phase (NoticePhases has each).
				at := o.MetAt
				if !o.FirstMetAt.IsZero() {
					at = o.FirstMetAt
				}
				if e.CustomersAt == nil || at.Before(*e.CustomersAt) {
					e.CustomersAt = &at
				}
			}
			if !o.WaivedAt.IsZero() {
				why = append(why, o.ID+" not required: "+o.WaivedReason)
			}
			if o.Late || o.FirstLate {
				e.Late = true
				if o.FirstLateReason != "" {
					e.LateReasons = strings.TrimSpace(e.LateReasons + "\n" + o.ID + " (first notice): " + o.FirstLateReason)
				}
				if o.LateReason != "" {
					e.LateReasons = strings.TrimSpace(e.LateReasons + "\n" + o.ID + ": " + o.LateReason)
				}
			}
		}
		e.NotNotifiedWhy = strings.Join(why, "\n")
		e.NoticePhases = []string{}
		for _, p := range r.Phases {
			s := fmt.Sprintf("v%d", p.Version)
			if p.Correction {
				s += " (correction)"
			} else if p.Supplementary {
				s += " (supplementary)"
			}
			s += fmt.Sprintf(" %s to %s", p.StartedAt.UTC().Format(time.RFC3339), incident.Count(p.Customers, "customer", "customers"))
			if p.ReachedAt != nil {
				s += ", all reached " + p.ReachedAt.UTC().Format(time.RFC3339)
			}
			e.NoticePhases = append(e.NoticePhases, s)
		}
		if inc.Update != nil {
			e.UpdateRequired = inc.Update.Summary()
		}
		out = append(out, e)
	}
	return out
}

// registerColumns are the CSV's columns, in order.
var registerColumns = []string{"incident", "rule", "title", "severity", "status", "detected_at", "aware_at", "window_from", "window_to",
	"categories", "customers", "customers_accessed", "records", "effects", "remedial_action", "authority_notified_at",
	"customers_notified_at", "not_notified_reasoning", "late", "late_reasons", "notice_phases", "update_required"}

// csvSafe defuses a cell a spreadsheet would run as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// WriteRegisterCSV writes the register as CSV (RFC 4180; formula-like
// cells prefixed with ' so that a spreadsheet shows them as text).
func WriteRegisterCSV(w *csv.Writer, es []RegisterEntry) error {
	if err := w.Write(registerColumns); err != nil {
		return err
	}
	tf := func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, e := range es {
		from := e.WindowFrom
		row := []string{e.Incident, e.Rule, e.Title, e.Severity, e.Status, tf(&e.DetectedAt), tf(&e.AwareAt), tf(&from), tf(e.WindowTo),
			strings.Join(e.Categories, " "), strconv.Itoa(e.Customers), strconv.Itoa(e.Accessed), strconv.FormatInt(e.Records, 10),
			e.Effects, e.RemedialAction, tf(e.AuthorityAt), tf(e.CustomersAt), e.NotNotifiedWhy, strconv.FormatBool(e.Late), e.LateReasons,
			strings.Join(e.NoticePhases, "; "), e.UpdateRequired}
		for i := range row {
			row[i] = csvSafe(row[i])
		}
		if err := w.Write(row); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

// ReportJSON serves GET /api/v1/incidents/{id}/report.
func (a *API) ReportJSON() http.Handler {
	return a.incident(func(w http.ResponseWriter, r *http.Request, inc incident.Incident) {
		jsonhttp.Write(w, http.StatusOK, a.t.Report(inc))
	})
}

// ReportPage serves GET /api/v1/incidents/{id}/report.html, printable.
func (a *API) ReportPage() http.Handler {
	return a.incident(func(w http.ResponseWriter, r *http.Request, inc incident.Incident) {
		b, err := RenderReportHTML(a.t.Report(inc))
		if err != nil {
			a.log.Error("rendering the report", zap.Error(err))
			jsonhttp.Error(w, http.StatusInternalServerError, "the report could not be rendered")
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(b)
	})
}

// RegisterJSON serves GET /api/v1/register (?format=csv for CSV).
func (a *API) RegisterJSON() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		head := a.t.Head() // the register holds at least what the log held up to here
		es := a.t.Register()
		w.Header().Set("X-Audit-Head", strconv.FormatInt(head.Seq, 10)+" "+head.Hash)
		switch r.URL.Query().Get("format") {
		case "", "json":
			jsonhttp.Write(w, http.StatusOK, map[string]any{"generated_at": a.t.opts.Now().UTC(), "audit_head": head, "entries": es})
		case "csv":
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="breach-register.csv"`)
			if err := WriteRegisterCSV(csv.NewWriter(w), es); err != nil {
				a.log.Error("writing the register", zap.Error(err))
			}
		default:
			jsonhttp.Error(w, http.StatusBadRequest, "format: want json or csv")
		}
	})
}
