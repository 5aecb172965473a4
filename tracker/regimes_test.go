package tracker

import (
	"strings"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/incident"
)

func mustRegimes(t *testing.T) *Regimes {
	t.Helper()
	rs, err := DefaultRegimes()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func at(t *testing.T, s, zone string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04:05", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDue(t *testing.T) {
	rs := mustRegimes(t)
	us, br, utc := rs.Calendar("us-federal"), rs.Calendar("br-national"), rs.Calendar("utc")
	tests := []struct {
		name   string
		anchor time.Time
		p      Period
		c      *Calendar
		want   time.Time
	}{
		// 72 clock hours across the end of summer time in Europe (25 October
		// 2026): exactly 72 elapsed hours, so the wall clock shows 09:00.
		{"72h over DST end", at(t, "2026-10-23 10:00:00", "Europe/Amsterdam"), Period{Hours: 72}, nil,
			at(t, "2026-10-26 09:00:00", "Europe/Amsterdam")},
		// And across its start (29 March 2026): the wall clock shows 11:00.
		{"72h over DST start", at(t, "2026-03-27 10:00:00", "Europe/Amsterdam"), Period{Hours: 72}, nil,
			at(t, "2026-03-30 11:00:00", "Europe/Amsterdam")},
		{"72h through a weekend", at(t, "2026-11-20 16:30:00", "UTC"), Period{Hours: 72}, nil, at(t, "2026-11-23 16:30:00", "UTC")},
		// SEC: four business days after a determination on the day before
		// Thanksgiving (Thursday 26 November 2026): Fri, Mon, Tue, Wed.
		{"business days over Thanksgiving", at(t, "2026-11-25 15:00:00", "America/New_York"), Period{BusinessDays: 4}, us,
			at(t, "2026-12-02 23:59:59", "America/New_York")},
		// Independence Day 2026 is a Saturday, observed on Friday 3 July.
		{"observed holiday", at(t, "2026-07-02 09:00:00", "America/New_York"), Period{BusinessDays: 4}, us,
			at(t, "2026-07-09 23:59:59", "America/New_York")},
		// Memorial Day weekend (Monday 25 May 2026).
		{"holiday weekend", at(t, "2026-05-22 18:00:00", "America/New_York"), Period{BusinessDays: 1}, us,
			at(t, "2026-05-26 23:59:59", "America/New_York")},
		// A determination late on Friday in New York is Saturday in UTC:
		// days count in the calendar's zone.
		{"days count in the calendar's zone", at(t, "2026-11-20 22:00:00", "America/New_York"), Period{BusinessDays: 1}, us,
			at(t, "2026-11-23 23:59:59", "America/New_York")},
		// LGPD: three business days; 20 November is a national holiday.
		{"LGPD over Consciência Negra", at(t, "2026-11-19 11:00:00", "America/Sao_Paulo"), Period{BusinessDays: 3}, br,
			at(t, "2026-11-25 23:59:59", "America/Sao_Paulo")},
		// Hand-computed across Easter, Carnival and year ends, for every
		// business-day regime (SEC: us-federal; LGPD: br-national).
		// LGPD from Wednesday 1 April 2026: Thursday 2, Good Friday 3 April
		// is a holiday, Monday 6, Tuesday 7.
		{"LGPD over Good Friday", at(t, "2026-04-01 10:00:00", "America/Sao_Paulo"), Period{BusinessDays: 3}, br,
			at(t, "2026-04-07 23:59:59", "America/Sao_Paulo")},
		// LGPD's supplement, 20 business days from Monday 30 March 2026:
		// Good Friday (3 April) and Tiradentes (Tuesday 21 April) skipped.
		{"LGPD supplement over Easter and Tiradentes", at(t, "2026-03-30 16:00:00", "America/Sao_Paulo"), Period{BusinessDays: 20}, br,
			at(t, "2026-04-29 23:59:59", "America/Sao_Paulo")},
		// Carnival (Monday 16 and Tuesday 17 February 2026) is optional,
		// not a holiday: Friday 13 + 3 business days is Wednesday 18.
		{"LGPD over Carnival", at(t, "2026-02-13 09:00:00", "America/Sao_Paulo"), Period{BusinessDays: 3}, br,
			at(t, "2026-02-18 23:59:59", "America/Sao_Paulo")},
		// Corpus Christi (Thursday 4 June 2026) likewise: Wednesday 3 + 1.
		{"LGPD over Corpus Christi", at(t, "2026-06-03 09:00:00", "America/Sao_Paulo"), Period{BusinessDays: 1}, br,
			at(t, "2026-06-04 23:59:59", "America/Sao_Paulo")},
		// Over the year end: Monday 29 December 2025 + 3: Tuesday 30,
		// Wednesday 31, New Year's Day skipped, Friday 2 January.
		{"LGPD over the year end", at(t, "2025-12-29 09:00:00", "America/Sao_Paulo"), Period{BusinessDays: 3}, br,
			at(t, "2026-01-02 23:59:59", "America/Sao_Paulo")},
		// Christmas 2026 is a Friday: Wednesday 23 + 3: Thursday 24,
		// Monday 28, Tuesday 29.
		{"LGPD over Christmas", at(t, "2026-12-23 09:00:00", "America/Sao_Paulo"), Period{BusinessDays: 3}, br,
			at(t, "2026-12-29 23:59:59", "America/Sao_Paulo")},
		// SEC over the year end: Monday 29 December 2025 + 4: Tuesday 30,
		// Wednesday 31, Friday 2, Monday 5 January 2026.
		{"SEC over the year end", at(t, "2025-12-29 17:00:00", "America/New_York"), Period{BusinessDays: 4}, us,
			at(t, "2026-01-05 23:59:59", "America/New_York")},
		// 1 January 2022 was a Saturday, observed on Friday 31 December
		// 2021: Thursday 30 + 2 is Tuesday 4 January.
		{"SEC over an observed New Year", at(t, "2021-12-30 12:00:00", "America/New_York"), Period{BusinessDays: 2}, us,
			at(t, "2022-01-04 23:59:59", "America/New_York")},
		// Easter is no US federal holiday: Thursday 2 April 2026 + 4 is
		// Wednesday 8 April.
		{"SEC over Easter", at(t, "2026-04-02 12:00:00", "America/New_York"), Period{BusinessDays: 4}, us,
			at(t, "2026-04-08 23:59:59", "America/New_York")},
		{"60 calendar days", at(t, "2026-11-22 08:00:00", "America/New_York"), Period{CalendarDays: 60}, us,
			at(t, "2027-01-21 23:59:59", "America/New_York")},
		{"one month", at(t, "2026-03-15 10:00:00", "UTC"), Period{Months: 1}, utc, at(t, "2026-04-15 23:59:59", "UTC")},
		{"one month from the 31st", at(t, "2026-01-31 10:00:00", "UTC"), Period{Months: 1}, utc, at(t, "2026-02-28 23:59:59", "UTC")},
		{"one month over the year end", at(t, "2026-12-31 10:00:00", "UTC"), Period{Months: 1}, utc, at(t, "2027-01-31 23:59:59", "UTC")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Due(tt.anchor, tt.p, tt.c)
			if !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("Due(%v, %v) = %v; want %v (UTC)", tt.anchor, tt.p, got, tt.want.UTC())
			}
		})
	}
}

// TestLibraryCalendarsChecked: a calendar names a library list that
// exists, and excludes only days that list has (a typo would otherwise
// silently count a holiday as a business day).
func TestLibraryCalendarsChecked(t *testing.T) {
	for _, tt := range []struct{ cal, want string }{
		{"library: xx", `line 6: "calendars.c.library": no holiday list "xx"`},
		{"library: br\n    exclude: [Carnival]", `line 7: "calendars.c.exclude[0]": br's holidays have none named "Carnival"`},
		{"exclude: [Carnaval]", `line 6: "calendars.c.exclude": exclude needs a library`},
	} {
		doc := "format: 1\nversion: x\ncalendars:\n  c:\n    zone: UTC\n    " + tt.cal + "\nregimes: []\n"
		if _, err := ParseRegimes("t.yaml", []byte(doc)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v; want %q", tt.cal, err, tt.want)
		}
	}
}

func TestHolidays(t *testing.T) {
	us := mustRegimes(t).Calendar("us-federal")
	tests := []struct {
		day  string
		want string
	}{
		{"2026-01-19", "Martin Luther King Jr. Day"},
		{"2026-05-25", "Memorial Day"},
		{"2026-07-03", "Independence Day"}, // observed
		{"2026-07-04", ""},                 // the Saturday itself is no business day anyway
		{"2026-11-26", "Thanksgiving Day"},
		{"2021-12-31", "New Year's Day"}, // 1 January 2022 was a Saturday
		{"2027-07-05", "Independence Day"},
		{"2026-11-27", ""},
	}
	for _, tt := range tests {
		if got := us.Holiday(at(t, tt.day+" 12:00:00", "America/New_York")); got != tt.want {
			t.Errorf("%s: holiday %q; want %q", tt.day, got, tt.want)
		}
	}
}

func TestObligations(t *testing.T) {
	rs := mustRegimes(t)
	aware := at(t, "2026-11-19 11:00:00", "UTC")
	inc := &incident.Incident{AwareAt: aware}
	obs := rs.Obligations([]string{"gdpr", "sec", "nis2", "lgpd"}, inc, 24*time.Hour)
	byID := map[string]incident.Obligation{}
	for _, o := range obs {
		byID[o.ID] = o
	}
	check := func(id string, due time.Time, legal bool) {
		t.Helper()
		o, ok := byID[id]
		if !ok {
			t.Fatalf("no obligation %s in %+v", id, obs)
		}
		if !o.DueAt.Equal(due) || o.Legal != legal || o.Source == "" {
			t.Errorf("%s: due %v legal %v source %q; want %v legal %v", id, o.DueAt, o.Legal, o.Source, due, legal)
		}
	}
	check("gdpr/art33", aware.Add(72*time.Hour), true)
	check("gdpr/art34", aware.Add(72*time.Hour), true)
	check("gdpr/art33-2", aware.Add(24*time.Hour), false) // an internal target
	check("nis2/early-warning", aware.Add(24*time.Hour), true)
	check("sec/8-k-1.05", time.Time{}, true)      // no determination yet
	check("nis2/final-report", time.Time{}, true) // the notification is not filed yet
	check("lgpd/supplement", time.Time{}, true)   // nor the communication
	check("lgpd/communication", at(t, "2026-11-25 23:59:59", "America/Sao_Paulo"), true)

	// Filing the NIS2 notification and the LGPD communication starts the
	// clocks anchored on them; a determination starts the SEC's.
	inc.Obligations = obs
	inc.Obligation("nis2/notification").MetAt = at(t, "2026-11-21 09:00:00", "UTC")
	inc.Obligation("lgpd/communication").MetAt = at(t, "2026-11-23 09:00:00", "America/Sao_Paulo")
	inc.DeterminedAt = at(t, "2026-11-25 15:00:00", "America/New_York")
	obs = rs.Obligations([]string{"gdpr", "sec", "nis2", "lgpd"}, inc, 24*time.Hour)
	byID = map[string]incident.Obligation{}
	for _, o := range obs {
		byID[o.ID] = o
	}
	check("nis2/final-report", at(t, "2026-12-21 23:59:59", "UTC"), true)
	check("lgpd/supplement", at(t, "2026-12-21 23:59:59", "America/Sao_Paulo"), true)
	check("sec/8-k-1.05", at(t, "2026-12-02 23:59:59", "America/New_York"), true)
	if o := byID["nis2/notification"]; !o.Met() {
		t.Error("recomputing lost a filing")
	}
}

func TestParseRegimesErrors(t *testing.T) {
	base := `format: 1
version: "1"
calendars:
  utc: {zone: UTC}
regimes:
  - id: r
    zone: UTC
    duties:
      - id: d
        what: notify
        recipient: authority
        source: "Law 1"
        anchor: awareness
        period: {hours: 72}
`
	if _, err := ParseRegimes("t.yaml", []byte(base)); err != nil {
		t.Fatalf("valid table rejected: %v", err)
	}
	tests := []struct{ old, new, want string }{
		{"period: {hours: 72}", "period: {hours: 72, months: 1}", `t.yaml: line 14: "regimes[0].duties[0].period": set exactly one`},
		{"anchor: awareness", "anchor: filing:later", `"regimes[0].duties[0].anchor": want awareness`},
		{"zone: UTC\n    duties", "zone: Mars/Base\n    duties", `"regimes[0].zone": unknown time zone`},
		{"source: \"Law 1\"", "sauce: x", `unknown`},
		{"period: {hours: 72}", "period: {business_days: 3}", `business days need a calendar`},
		{"format: 1", "format: 2", `want format 1`},
	}
	for _, tt := range tests {
		_, err := ParseRegimes("t.yaml", []byte(strings.Replace(base, tt.old, tt.new, 1)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q → %q: error %v; want it to contain %q", tt.old, tt.new, err, tt.want)
		}
	}
}

func TestExampleCustomers(t *testing.T) {
	cs, err := LoadCustomers("../deploy/customers.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 50 || cs["cust-0001"].Country == "" {
		t.Errorf("%d customers: %+v", len(cs), cs["cust-0001"])
	}
	for _, bad := range []struct{ text, want string }{
		{"format: 1\ncustomers:\n  - {tenant: a, country: nl}\n", `"customers[0].country"`},
		{"format: 1\ncustomers:\n  - {tenant: a}\n  - {tenant: a}\n", "listed twice"},
		{"format: 1\ncustomers:\n  - {tenant: a, time_zone: Mars/Olympus}\n", "unknown time zone"},
		{"format: 1\ncustomers:\n  - {tenant: a, locale: nl, colour: red}\n", "unknown key"},
	} {
		if _, err := ParseCustomers("c.yaml", []byte(bad.text)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v; want %q", bad.text, err, bad.want)
		}
	}
}
