package tracker

import (
	"bytes"
	_ "embed"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rickar/cal/v2"
	"go.yaml.in/yaml/v3"

	"github.com/breachwatch/breachwatch/incident"
	"github.com/breachwatch/breachwatch/internal/yamlstrict"
)

//go:embed regimes.yaml
var defaultRegimes []byte

// Period is how long a duty allows: exactly one field is set.
type Period struct {
	Hours        int `yaml:"hours"`         // clock hours: exact elapsed time
	CalendarDays int `yaml:"calendar_days"` // due at the end of the N-th day after the anchor's day
	BusinessDays int `yaml:"business_days"` // due at the end of the N-th business day after the anchor's day
	Months       int `yaml:"months"`        // due at the end of the same day N months later
}

func (p Period) String() string {
	switch {
	case p.Hours > 0:
		return fmt.Sprintf("%d hours", p.Hours)
	case p.CalendarDays > 0:
		return fmt.Sprintf("%d calendar days", p.CalendarDays)
	case p.BusinessDays > 0:
		return fmt.Sprintf("%d business days", p.BusinessDays)
	case p.Months > 0:
		return fmt.Sprintf("%d months", p.Months)
	}
	return "no period"
}

func (p Period) set() int {
	n := 0
	for _, v := range []int{p.Hours, p.CalendarDays, p.BusinessDays, p.Months} {
		if v < 0 {
			return -1
		}
		if v > 0 {
			n++
		}
	}
	return n
}

// Holiday is a rule for a holiday that recurs every year: a fixed date
// (Month, Day), or the Nth weekday of the month (Nth -1: the last).
type Holiday struct {
	Name    string `yaml:"name"`
	Month   int    `yaml:"month"`
	Day     int    `yaml:"day"`
	Weekday string `yaml:"weekday"`
	Nth     int    `yaml:"nth"`
	// Observed: a fixed-date holiday on a Saturday is observed on the
	// Friday before, on a Sunday on the Monday after.
	Observed bool `yaml:"observed"`
}

// Calendar says which days are business days, in a time zone: weekends,
// and the holidays of a library calendar (less those excluded) and of its
// own rules.
type Calendar struct {
	ID       string
	Zone     *time.Location
	Source   string
	Holidays []Holiday
	weekday  []time.Weekday // per holiday, parsed
	// Library names the library calendar (see holidayLibrary); Excluded
	// the holidays of it counted as business days.
	Library  string
	Excluded []string
	lib      []*cal.Holiday
}

// date is a civil date.
type date struct {
	y int
	m time.Month
	d int
}

func dateOf(t time.Time) date { y, m, d := t.Date(); return date{y, m, d} }

func (d date) in(loc *time.Location) time.Time { return time.Date(d.y, d.m, d.d, 0, 0, 0, 0, loc) }

func (d date) add(days int) date { return dateOf(time.Date(d.y, d.m, d.d+days, 12, 0, 0, 0, time.UTC)) }

// holidays returns the holidays of year y, observed dates included.
func (c *Calendar) holidays(y int) map[date]string {
	out := map[date]string{}
	c.libraryHolidays(y, out)
	for i, h := range c.Holidays {
		var d date
		if h.Day > 0 {
			d = date{y, time.Month(h.Month), h.Day}
			if h.Observed {
				switch time.Date(y, time.Month(h.Month), h.Day, 12, 0, 0, 0, time.UTC).Weekday() {
				case time.Saturday:
					d = d.add(-1)
				case time.Sunday:
					d = d.add(1)
				}
			}
		} else {
			d = nthWeekday(y, time.Month(h.Month), c.weekday[i], h.Nth)
		}
		out[d] = h.Name
	}
	return out
}

func nthWeekday(y int, m time.Month, wd time.Weekday, nth int) date {
	if nth > 0 {
		first := time.Date(y, m, 1, 12, 0, 0, 0, time.UTC)
		off := (int(wd) - int(first.Weekday()) + 7) % 7
		return dateOf(first.AddDate(0, 0, off+7*(nth-1)))
	}
	last := time.Date(y, m+1, 0, 12, 0, 0, 0, time.UTC)
	off := (int(last.Weekday()) - int(wd) + 7) % 7
	return dateOf(last.AddDate(0, 0, -off-7*(-nth-1)))
}

// Holiday names the holiday on the civil date of t in the calendar's zone
// ("" for none).
func (c *Calendar) Holiday(t time.Time) string {
	d := dateOf(t.In(c.Zone))
	return c.holidayOn(d)
}

func (c *Calendar) holidayOn(d date) string {
	// An observed holiday can fall in the year before (1 January on a
	// Saturday is observed on 31 December).
	for _, y := range []int{d.y, d.y + 1} {
		if name, ok := c.holidays(y)[d]; ok {
			return name
		}
	}
	return ""
}

func (c *Calendar) businessDay(d date) bool {
	switch d.in(time.UTC).Weekday() {
	case time.Saturday, time.Sunday:
		return false
	}
	return c.holidayOn(d) == ""
}

// endOfDay is the last second of civil date d in loc.
func endOfDay(d date, loc *time.Location) time.Time {
	return d.add(1).in(loc).Add(-time.Second)
}

// Due computes a deadline from an anchor: clock hours are exact elapsed
// time (a DST change does not lengthen or shorten them); days and months
// are counted on the calendar's civil dates, due at the end of the last
// day. The result is in UTC.
func Due(anchor time.Time, p Period, c *Calendar) time.Time {
	if p.Hours > 0 {
		return anchor.Add(time.Duration(p.Hours) * time.Hour).UTC()
	}
	if c == nil {
		c = &Calendar{ID: "utc", Zone: time.UTC} // weekends only
	}
	loc := c.Zone
	start := dateOf(anchor.In(loc))
	var end date
	switch {
	case p.CalendarDays > 0:
		end = start.add(p.CalendarDays)
	case p.BusinessDays > 0:
		end = start
		for n := 0; n < p.BusinessDays; {
			if end = end.add(1); c.businessDay(end) {
				n++
			}
		}
	case p.Months > 0:
		first := time.Date(start.y, start.m+time.Month(p.Months), 1, 12, 0, 0, 0, time.UTC)
		last := first.AddDate(0, 1, -1).Day()
		end = date{first.Year(), first.Month(), min(start.d, last)}
	default:
		return anchor.UTC()
	}
	return endOfDay(end, loc).UTC()
}

// Duty is one entry of a regime: a notification owed to someone.
type Duty struct {
	ID        string `yaml:"id"`
	What      string `yaml:"what"`
	Recipient string `yaml:"recipient"`
	Source    string `yaml:"source"`
	Anchor    string `yaml:"anchor"` // awareness | determination | filing:<duty id>
	Period    Period `yaml:"period"`
	Calendar  string `yaml:"calendar"`
	// Target names an internal target instead of a legal period, for a
	// duty the law gives no number for: "processor" (its period is
	// tracker.processor_target) or "asap" ("as soon as possible": the
	// period given is the internal target).
	Target             string `yaml:"target"`
	LateReasonRequired bool   `yaml:"late_reason_required"`
}

// Regime is a body of law (or a promise) with its duties.
type Regime struct {
	ID        string   `yaml:"id"`
	Name      string   `yaml:"name"`
	Zone      string   `yaml:"zone"`
	Countries []string `yaml:"countries"`
	// ByCountry: the regime applies when an affected customer is in one of
	// Countries (default true when Countries is set).
	ByCountry *bool  `yaml:"by_country"`
	Duties    []Duty `yaml:"duties"`
	loc       *time.Location
}

// AppliesByCountry reports whether an affected customer in country brings
// this regime in.
func (r *Regime) AppliesByCountry(country string) bool {
	if r.ByCountry != nil && !*r.ByCountry {
		return false
	}
	return slices.Contains(r.Countries, strings.ToUpper(country))
}

// Location is the regime's time zone, in which its deadlines are shown to
// its recipients.
func (r *Regime) Location() *time.Location { return r.loc }

// Regimes is the loaded regime table.
type Regimes struct {
	Version   string
	regimes   []Regime
	calendars map[string]*Calendar
}

type regimesFile struct {
	Format    int                     `yaml:"format"`
	Version   string                  `yaml:"version"`
	Calendars map[string]calendarSpec `yaml:"calendars"`
	Regimes   []Regime                `yaml:"regimes"`
}

type calendarSpec struct {
	Zone   string `yaml:"zone"`
	Source string `yaml:"source"`
	// Library: a national holiday list of github.com/rickar/cal/v2 (br,
	// us, gb, …); Exclude: names of its holidays counted as business days.
	Library  string    `yaml:"library"`
	Exclude  []string  `yaml:"exclude"`
	Holidays []Holiday `yaml:"holidays"`
}

var weekdays = map[string]time.Weekday{"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday,
	"wednesday": time.Wednesday, "thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday}

// DefaultRegimes is the regime table that ships with breachwatch.
func DefaultRegimes() (*Regimes, error) { return ParseRegimes("regimes.yaml", defaultRegimes) }

// ParseRegimes reads a regime table strictly; errors name the file, line
// and field.
func ParseRegimes(name string, data []byte) (*Regimes, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty", name)
	}
	var f regimesFile
	if err := yamlstrict.Decode(doc.Content[0], &f, nil); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	lines := yamlstrict.Lines(&doc)
	bad := func(path, format string, args ...any) error {
		return fmt.Errorf("%s: %w", name, &yamlstrict.Error{Line: lines[path], Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if f.Format != 1 {
		return nil, bad("format", "want format 1, got %d", f.Format)
	}
	if f.Version == "" {
		return nil, bad("version", "the table needs a version")
	}
	rs := &Regimes{Version: f.Version, calendars: map[string]*Calendar{}}
	for id, cs := range f.Calendars {
		loc, err := time.LoadLocation(cs.Zone)
		if err != nil || cs.Zone == "" {
			return nil, bad("calendars."+id+".zone", "unknown time zone %q", cs.Zone)
		}
		c := &Calendar{ID: id, Zone: loc, Source: cs.Source, Holidays: cs.Holidays, Library: cs.Library, Excluded: cs.Exclude}
		if cs.Library != "" {
			lib, ok := holidayLibrary[cs.Library]
			if !ok {
				return nil, bad("calendars."+id+".library", "no holiday list %q (have %s)", cs.Library, strings.Join(slices.Sorted(maps.Keys(holidayLibrary)), ", "))
			}
			for i, ex := range cs.Exclude {
				if !slices.ContainsFunc(lib, func(h *cal.Holiday) bool { return h.Name == ex }) {
					return nil, bad(fmt.Sprintf("calendars.%s.exclude[%d]", id, i), "%s's holidays have none named %q", cs.Library, ex)
				}
			}
			for _, h := range lib {
				if !slices.Contains(cs.Exclude, h.Name) {
					c.lib = append(c.lib, h)
				}
			}
		} else if len(cs.Exclude) > 0 {
			return nil, bad("calendars."+id+".exclude", "exclude needs a library")
		}
		for i, h := range cs.Holidays {
			path := fmt.Sprintf("calendars.%s.holidays[%d]", id, i)
			switch {
			case h.Month < 1 || h.Month > 12:
				return nil, bad(path, "month must be 1 to 12")
			case h.Day > 0 && h.Weekday != "":
				return nil, bad(path, "give either day or weekday and nth, not both")
			case h.Day > 0:
				if h.Day > 31 {
					return nil, bad(path, "day must be 1 to 31")
				}
				c.weekday = append(c.weekday, 0)
			default:
				wd, ok := weekdays[h.Weekday]
				if !ok || h.Nth == 0 || h.Nth < -1 || h.Nth > 5 {
					return nil, bad(path, "want a day, or a weekday (monday…sunday) and nth (1 to 5, or -1 for the last)")
				}
				c.weekday = append(c.weekday, wd)
			}
		}
		rs.calendars[id] = c
	}
	seen := map[string]bool{}
	for i, r := range f.Regimes {
		path := fmt.Sprintf("regimes[%d]", i)
		if r.ID == "" || seen[r.ID] {
			return nil, bad(path+".id", "a regime needs a unique id (%q)", r.ID)
		}
		seen[r.ID] = true
		loc, err := time.LoadLocation(r.Zone)
		if err != nil || r.Zone == "" {
			return nil, bad(path+".zone", "unknown time zone %q", r.Zone)
		}
		r.loc = loc
		for j, c := range r.Countries {
			if len(c) != 2 || strings.ToUpper(c) != c {
				return nil, bad(fmt.Sprintf("%s.countries[%d]", path, j), "want an ISO 3166-1 alpha-2 code, got %q", c)
			}
		}
		duties := map[string]bool{}
		for j, d := range r.Duties {
			dp := fmt.Sprintf("%s.duties[%d]", path, j)
			switch {
			case d.ID == "" || duties[d.ID]:
				return nil, bad(dp+".id", "a duty needs an id unique in its regime (%q)", d.ID)
			case d.What == "" || d.Recipient == "" || d.Source == "":
				return nil, bad(dp, "a duty needs what, recipient and source (the legal source it cites)")
			case d.Target == "" && d.Period.set() != 1:
				return nil, bad(dp+".period", "set exactly one of hours, calendar_days, business_days, months")
			case d.Target == "processor" && d.Period.set() != 0:
				return nil, bad(dp+".target", "target processor comes without a period (tracker.processor_target sets it)")
			case d.Target == "asap" && d.Period.set() != 1:
				return nil, bad(dp+".period", "target asap (\"as soon as possible\", no number in law) needs the internal target as a period")
			case d.Target != "" && d.Target != "processor" && d.Target != "asap":
				return nil, bad(dp+".target", "target must be processor or asap, got %q", d.Target)
			case d.Calendar != "" && rs.calendars[d.Calendar] == nil:
				return nil, bad(dp+".calendar", "no calendar %q", d.Calendar)
			case d.Period.BusinessDays > 0 && d.Calendar == "":
				return nil, bad(dp+".calendar", "business days need a calendar")
			}
			switch {
			case d.Anchor == "awareness", d.Anchor == "determination":
			case strings.HasPrefix(d.Anchor, "filing:") && duties[strings.TrimPrefix(d.Anchor, "filing:")]:
			default:
				return nil, bad(dp+".anchor", "want awareness, determination or filing:<an earlier duty of this regime>, got %q", d.Anchor)
			}
			duties[d.ID] = true
		}
		rs.regimes = append(rs.regimes, r)
	}
	return rs, nil
}

// Regime returns the regime with that id, or nil.
func (rs *Regimes) Regime(id string) *Regime {
	for i := range rs.regimes {
		if rs.regimes[i].ID == id {
			return &rs.regimes[i]
		}
	}
	return nil
}

// All lists the regimes in table order.
func (rs *Regimes) All() []Regime { return slices.Clone(rs.regimes) }

// Calendar returns the calendar with that id, or nil.
func (rs *Regimes) Calendar(id string) *Calendar { return rs.calendars[id] }

// ObligationID names an obligation: regime/duty.
func ObligationID(regime, duty string) string { return regime + "/" + duty }

// Obligations computes the obligations of an incident under the regimes
// that apply, from its anchors (aware_at, determined_at) and the filings
// already recorded, keeping what was met. processorTarget is the internal
// target for a processor's notice to its controllers.
func (rs *Regimes) Obligations(apply []string, inc *incident.Incident, processorTarget time.Duration) []incident.Obligation {
	var out []incident.Obligation
	for _, id := range apply {
		r := rs.Regime(id)
		if r == nil {
			continue
		}
		for _, d := range r.Duties {
			o := incident.Obligation{ID: ObligationID(r.ID, d.ID), Regime: r.ID, Duty: d.ID, What: d.What,
				Recipient: d.Recipient, Source: d.Source, Legal: d.Target == "", Anchor: d.Anchor,
				LateReasonRequired: d.LateReasonRequired, TableVersion: rs.Version}
			if prev := inc.Obligation(o.ID); prev != nil {
				o.MetAt, o.Late, o.LateReason, o.Reference = prev.MetAt, prev.Late, prev.LateReason, prev.Reference
				o.FirstMetAt, o.ReopenedAt, o.FirstLate, o.FirstLateReason = prev.FirstMetAt, prev.ReopenedAt, prev.FirstLate, prev.FirstLateReason
				o.WaivedAt, o.WaivedReason = prev.WaivedAt, prev.WaivedReason
			}
			switch {
			case !o.ReopenedAt.IsZero():
				// The facts changed after the customers were told: the
				// supplementary notice's clock runs from the change (the
				// moment of becoming aware of it).
				o.Anchor, o.AnchorAt = "update", o.ReopenedAt
			case d.Anchor == "awareness":
				o.AnchorAt = inc.AwareAt
			case d.Anchor == "determination":
				o.AnchorAt = inc.DeterminedAt
			default:
				// Filings of this incident, made in this pass or earlier.
				dep := ObligationID(r.ID, strings.TrimPrefix(d.Anchor, "filing:"))
				for _, p := range out {
					if p.ID == dep {
						o.AnchorAt = p.MetAt
					}
				}
			}
			if !o.AnchorAt.IsZero() {
				if d.Target == "processor" {
					o.DueAt = o.AnchorAt.Add(processorTarget).UTC()
				} else {
					o.DueAt = Due(o.AnchorAt, d.Period, rs.calendars[d.Calendar])
				}
			}
			out = append(out, o)
		}
	}
	return out
}
