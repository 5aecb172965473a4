// Package notify drafts customer notices into each customer's language and
// delivers them: the outbox and its ledger, e-mail (notify/email), in-app
// notices (notify/inapp) and the dev mailbox. Slack for engineers lives in
// notify/slack.
package notify

import (
	"bytes"
	"embed"
	"fmt"
	"html"
	htmltemplate "html/template"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/go-playground/locales"
	"github.com/go-playground/locales/ar"
	"github.com/go-playground/locales/de"
	"github.com/go-playground/locales/en"
	"github.com/go-playground/locales/es"
	"github.com/go-playground/locales/fr"
	"github.com/go-playground/locales/nl"
	"github.com/go-playground/locales/pt"
	"github.com/go-playground/locales/sv"
	"go.yaml.in/yaml/v3"
	"golang.org/x/text/language"

	"github.com/breachwatch/breachwatch/incident"
)

//go:embed catalog/*.yaml
var catalogFS embed.FS

// translators are the CLDR locale data (dates, times, numbers) per
// supported locale; a catalog without one is an error.
var translators = map[string]func() locales.Translator{
	"en": en.New, "nl": nl.New, "sv": sv.New, "fr": fr.New, "ar": ar.New, "pt": pt.New, "de": de.New, "es": es.New,
}

// nativeDigits are the digits of a locale whose CLDR default numbering
// system is not Latin: Arabic's is "arab" (Arabic-Indic digits, with the
// Arabic group and decimal separators go-playground/locales already
// gives). Numbers, dates and times are written in one digit system; values
// quoted as given (an e-mail address, a phone number) stay as they are.
var nativeDigits = map[string][10]rune{"ar": {'٠', '١', '٢', '٣', '٤', '٥', '٦', '٧', '٨', '٩'}}

// Catalog is the fixed wording of notices in one locale, with its CLDR data.
type Catalog struct {
	Locale   string
	Language string // the language's own name
	Dir      string // "ltr" or "rtl"
	msgs     map[string]string
	tr       locales.Translator
}

// Catalogs are every supported locale; English is the last resort.
type Catalogs struct {
	// Authorities names each customer's own supervisory authority, by its
	// country (nil: the notice's authority for everyone).
	Authorities *Authorities
	// Organisation is the organisation's name (organisation.name): the
	// greeting names it.
	Organisation string
	by           map[string]*Catalog
	tags         []language.Tag
	matcher      language.Matcher
}

var placeholder = regexp.MustCompile(`\{[a-z_]+\}`)

// LoadCatalogs reads the embedded message catalogs. Every catalog must have
// exactly English's keys, each message with the same placeholders.
func LoadCatalogs() (*Catalogs, error) {
	cs, err := loadCatalogs(catalogFS, "catalog")
	if err != nil {
		return nil, err
	}
	if cs.Authorities, err = LoadAuthorities(); err != nil {
		return nil, err
	}
	return cs, nil
}

func loadCatalogs(fsys fs.FS, dir string) (*Catalogs, error) {
	files, err := fs.Glob(fsys, dir+"/*.yaml")
	if err != nil {
		return nil, err
	}
	cs := &Catalogs{by: map[string]*Catalog{}}
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		loc := strings.TrimSuffix(path.Base(f), ".yaml")
		msgs := map[string]string{}
		if err := yaml.Unmarshal(data, &msgs); err != nil {
			return nil, fmt.Errorf("catalog %s: %w", f, err)
		}
		newTr, ok := translators[loc]
		if !ok {
			return nil, fmt.Errorf("catalog %s: no CLDR locale data for %q is compiled in", f, loc)
		}
		c := &Catalog{Locale: loc, Language: msgs["language"], Dir: msgs["dir"], msgs: msgs, tr: newTr()}
		if c.Dir != "ltr" && c.Dir != "rtl" {
			return nil, fmt.Errorf("catalog %s: dir: want ltr or rtl, got %q", f, c.Dir)
		}
		cs.by[loc] = c
	}
	base := cs.by["en"]
	if base == nil {
		return nil, fmt.Errorf("catalog: en.yaml is missing (English is the fallback)")
	}
	for loc, c := range cs.by {
		for k, v := range base.msgs {
			w, ok := c.msgs[k]
			if !ok {
				return nil, fmt.Errorf("catalog %s.yaml: key %q is missing", loc, k)
			}
			if !slices.Equal(sortedPlaceholders(v), sortedPlaceholders(w)) {
				return nil, fmt.Errorf("catalog %s.yaml: %s: placeholders %v differ from English %v", loc, k, sortedPlaceholders(w), sortedPlaceholders(v))
			}
		}
		for k := range c.msgs {
			if _, ok := base.msgs[k]; !ok {
				return nil, fmt.Errorf("catalog %s.yaml: key %q is not in en.yaml", loc, k)
			}
		}
	}
	// English first: the matcher falls back to the first tag.
	locs := []string{"en"}
	for loc := range cs.by {
		if loc != "en" {
			locs = append(locs, loc)
		}
	}
	slices.Sort(locs[1:])
	for _, l := range locs {
		cs.tags = append(cs.tags, language.MustParse(l))
	}
	cs.matcher = language.NewMatcher(cs.tags)
	return cs, nil
}

func sortedPlaceholders(s string) []string {
	ps := placeholder.FindAllString(s, -1)
	slices.Sort(ps)
	return slices.Compact(ps)
}

// Locales lists the supported locales, English first.
func (cs *Catalogs) Locales() []string {
	out := make([]string, len(cs.tags))
	for i, t := range cs.tags {
		out[i] = t.String()
	}
	return out
}

// Match picks the catalog for a customer's locale: the same language (nl-BE
// → nl), else English.
func (cs *Catalogs) Match(locale string) *Catalog {
	if c := cs.by[locale]; c != nil {
		return c
	}
	tag, err := language.Parse(locale)
	if err != nil {
		return cs.by["en"]
	}
	_, i, conf := cs.matcher.Match(tag)
	if conf == language.No {
		return cs.by["en"]
	}
	return cs.by[cs.tags[i].String()]
}

// msg fills a message's placeholders. esc escapes the values (and the
// message text) for the output format; in a right-to-left locale each value
// is wrapped in Unicode directional isolates, so that an e-mail address or
// a product name in Latin script does not scramble the sentence.
func (c *Catalog) msg(key string, esc func(string) string, kv ...string) string {
	m := c.msgs[key]
	var b strings.Builder
	last := 0
	for _, loc := range placeholder.FindAllStringIndex(m, -1) {
		b.WriteString(esc(m[last:loc[0]]))
		name := m[loc[0]+1 : loc[1]-1]
		val := ""
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == name {
				val = kv[i+1]
			}
		}
		if c.Dir == "rtl" {
			b.WriteString("\u2068" + esc(val) + "\u2069")
		} else {
			b.WriteString(esc(val))
		}
		last = loc[1]
	}
	b.WriteString(esc(m[last:]))
	return b.String()
}

// Time formats t in the zone with the locale's CLDR long date and short
// time, and the UTC offset (unambiguous in every language).
func (c *Catalog) Time(t time.Time, zone *time.Location) string {
	if zone == nil {
		zone = time.UTC
	}
	t = t.In(zone)
	_, off := t.Zone()
	sign := "+"
	if off < 0 {
		sign, off = "-", -off
	}
	return c.digits(fmt.Sprintf("%s %s (UTC%s%02d:%02d)", c.tr.FmtDateLong(t), c.tr.FmtTimeShort(t), sign, off/3600, off%3600/60))
}

// Number formats n with the locale's CLDR grouping and digits.
func (c *Catalog) Number(n int64) string { return c.digits(c.tr.FmtNumber(float64(n), 0)) }

// digits writes the Latin digits of s in the locale's own, if it has
// other ones.
func (c *Catalog) digits(s string) string {
	ds, ok := nativeDigits[c.Locale]
	if !ok {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return ds[r-'0']
		}
		return r
	}, s)
}

// Category names a data category in the locale; unknown names stay as
// they are.
func (c *Catalog) Category(name string) string {
	if s, ok := c.msgs["category."+name]; ok {
		return s
	}
	return name
}

// Facts are what one customer's notice states beyond the version's text.
type Facts struct {
	How        string // incident.HowAccessed or HowExposed
	Records    int64
	Categories []string
	Locale     string
	Zone       *time.Location
	// RecordsText, when set, is written instead of the formatted Records
	// (a per-recipient substitution tag for batched e-mail).
	RecordsText string
	// Earlier, when set, is when the customer was reached by an earlier
	// version: this one updates it, and says so first.
	Earlier time.Time
	// Country is the customer's: its own supervisory authority is named
	// for the right to complain when the table has one.
	Country string
}

// Rendered is one customer's notice, ready to send or show.
type Rendered struct {
	Locale  string `json:"locale"`
	Dir     string `json:"dir"`
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
	// Fallback names the free-text fields shown in English because the
	// version has no text for them in this locale.
	Fallback []string `json:"fallback,omitempty"`
}

type section struct {
	Heading  string
	Paras    []string
	Fallback bool // shown in English
}

// page is the plain-text notice (the HTML one is built from a map).
type page struct {
	Greeting, Intro, FallbackNote, Footer string
	Sections                              []section
}

var textTmpl = template.Must(template.New("text").Parse(`{{.Greeting}}

{{.Intro}}
{{range .Sections}}
{{.Heading}}
{{if .Fallback}}({{$.FallbackNote}})
{{end}}{{range .Paras}}{{.}}
{{end}}{{end}}
--
{{.Footer}}
`))

// Render writes one customer's notice from an approved (or previewed)
// version: the version's free text in the locale (falling back to English,
// visibly), the fixed wording and CLDR dates of the locale, the facts of
// the customer.
func (cs *Catalogs) Render(v *incident.NoticeVersion, f Facts) (Rendered, error) {
	c := cs.Match(f.Locale)
	n := &v.Notice
	own, hasOwn := n.Text[c.Locale]
	enText := n.Text["en"]
	var fallback []string
	free := func(name, mine, english string) (string, bool) {
		if hasOwn && strings.TrimSpace(mine) != "" {
			return mine, false
		}
		if c.Locale != "en" {
			fallback = append(fallback, name)
		}
		return english, c.Locale != "en"
	}
	nature, fbNature := free("nature", own.Nature, enText.Nature)
	cons, fbCons := free("consequences", own.Consequences, enText.Consequences)
	meas, fbMeas := free("measures", own.Measures, enText.Measures)
	acts, fbActs := free("actions", own.Actions, enText.Actions)

	cats := f.Categories
	if len(n.Categories) > 0 {
		cats = n.Categories
	}
	records := f.RecordsText
	if records == "" {
		records = c.Number(f.Records)
	}

	authority := n.Authority
	if a, ok := cs.Authorities.For(f.Country); ok {
		authority = a
	}
	// The greeting names the organisation: a notice from no one in
	// particular reads like phishing.
	greeting := func(esc func(string) string) string {
		if strings.TrimSpace(cs.Organisation) == "" {
			return esc(c.msgs["greeting"])
		}
		return c.msg("greeting_named", esc, "organisation", cs.Organisation)
	}
	build := func(esc func(string) string) (intro string, secs []section) {
		introKey := "intro_exposed"
		if f.How == incident.HowAccessed {
			introKey = "intro_accessed"
		}
		intro = c.msg(introKey, esc, "product", n.Product)
		if !f.Earlier.IsZero() {
			intro = c.msg("update_intro", esc, "date", c.Time(f.Earlier, f.Zone)) + " " + intro
		}
		var when string
		switch {
		case v.WindowTo.IsZero():
			when = c.msg("window_open", esc, "from", c.Time(v.WindowFrom, f.Zone))
		case v.WindowTo.Truncate(time.Minute).Equal(v.WindowFrom.Truncate(time.Minute)):
			// A single moment (as a notice prints it): not "from 14:27 to 14:27".
			when = c.msg("window_instant", esc, "from", c.Time(v.WindowFrom, f.Zone))
		default:
			when = c.msg("window_closed", esc, "from", c.Time(v.WindowFrom, f.Zone), "to", c.Time(v.WindowTo, f.Zone))
		}
		names := make([]string, len(cats))
		for i, k := range cats {
			names[i] = c.Category(k)
		}
		data := []string{c.msg("records", esc, "records", records)}
		if f.Records == 1 && f.RecordsText == "" {
			data[0] = c.msg("records_one", esc)
		}
		if len(names) > 0 {
			data = append(data, c.msg("categories", esc, "categories", strings.Join(names, c.msgs["list_separator"])))
		}
		contact := []string{c.msg("contact", esc, "name", n.Contact.Name, "email", n.Contact.Email)}
		if n.Contact.Phone != "" {
			contact = append(contact, c.msg("contact_phone", esc, "phone", n.Contact.Phone))
		}
		contact = append(contact, c.msg("complaint", esc, "authority", authority.Name))
		if authority.Website != "" {
			contact = append(contact, c.msg("complaint_website", esc, "website", authority.Website))
		}
		secs = []section{
			{Heading: c.msgs["heading_what"], Paras: []string{nature}, Fallback: fbNature},
			{Heading: c.msgs["heading_when"], Paras: []string{when}},
			{Heading: c.msgs["heading_data"], Paras: data},
			{Heading: c.msgs["heading_consequences"], Paras: []string{cons}, Fallback: fbCons},
			{Heading: c.msgs["heading_measures"], Paras: []string{meas}, Fallback: fbMeas},
			{Heading: c.msgs["heading_actions"], Paras: []string{acts, c.msg("no_links", esc, "product", n.Product)}, Fallback: fbActs},
			{Heading: c.msgs["heading_contact"], Paras: contact},
		}
		return intro, secs
	}

	out := Rendered{Locale: c.Locale, Dir: c.Dir, Fallback: fallback}
	subject := "subject"
	if !f.Earlier.IsZero() {
		subject = "subject_update" // not the first notice's subject again
	}
	out.Subject = oneLine(c.msg(subject, func(s string) string { return s }, "product", n.Product))

	// Plain text.
	intro, secs := build(func(s string) string { return s })
	for i := range secs {
		secs[i].Paras = splitParas(secs[i].Paras)
	}
	var tb bytes.Buffer
	if err := textTmpl.Execute(&tb, page{Greeting: greeting(func(s string) string { return s }), Intro: intro, Sections: secs,
		FallbackNote: c.msgs["fallback"], Footer: c.msgs["footer"]}); err != nil {
		return Rendered{}, fmt.Errorf("render %s text: %w", c.Locale, err)
	}
	out.Text = tb.String()

	// HTML: fixed sentences are built escaped; the DPO's free text goes
	// through html/template, in its own language and direction when it
	// fell back to English.
	var hb bytes.Buffer
	hintro, hsecs := build(html.EscapeString)
	freeIdx := map[int]bool{0: true, 3: true, 4: true, 5: true} // sections whose first paragraph is free text
	type hsec struct {
		Heading  string
		Fixed    []htmltemplate.HTML
		Free     []string
		Fallback bool
	}
	var hs []hsec
	for i, s := range hsecs {
		h := hsec{Heading: s.Heading, Fallback: s.Fallback}
		paras := s.Paras
		if freeIdx[i] {
			h.Free = splitParas(s.Paras[:1]) // raw: html/template escapes it
			paras = paras[1:]
		}
		for _, p := range paras {
			h.Fixed = append(h.Fixed, htmltemplate.HTML(p)) // escaped by build
		}
		hs = append(hs, h)
	}
	if err := htmlPage.Execute(&hb, map[string]any{
		"Lang": c.Locale, "Dir": c.Dir, "Subject": out.Subject, "Greeting": htmltemplate.HTML(greeting(html.EscapeString)),
		"Intro": htmltemplate.HTML(hintro), "Sections": hs, "FallbackNote": c.msgs["fallback"], "Footer": c.msgs["footer"],
	}); err != nil {
		return Rendered{}, fmt.Errorf("render %s html: %w", c.Locale, err)
	}
	out.HTML = hb.String()
	return out, nil
}

var htmlPage = htmltemplate.Must(htmltemplate.New("html").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}" dir="{{.Dir}}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{.Subject}}</title></head>
<body style="margin:0;padding:16px;font-family:system-ui,-apple-system,'Segoe UI',Tahoma,Arial,sans-serif;line-height:1.5;color:#1b1b1b">
<div dir="{{.Dir}}" style="max-width:40em;margin:0 auto">
<p>{{.Greeting}}</p>
<p>{{.Intro}}</p>
{{range .Sections}}<h2 style="font-size:1.1em;margin:1.2em 0 .3em">{{.Heading}}</h2>
{{if .Fallback}}<p style="color:#555"><em>{{$.FallbackNote}}</em></p>
{{range .Free}}<p lang="en" dir="ltr">{{.}}</p>
{{end}}{{else}}{{range .Free}}<p>{{.}}</p>
{{end}}{{end}}{{range .Fixed}}<p>{{.}}</p>
{{end}}{{end}}<hr style="border:0;border-top:1px solid #ccc">
<p style="color:#555;font-size:.9em">{{.Footer}}</p>
</div>
</body>
</html>
`))

var blankLine = regexp.MustCompile(`\n\s*\n`)

// splitParas splits free text into paragraphs at blank lines.
func splitParas(ps []string) []string {
	var out []string
	for _, p := range ps {
		for _, q := range blankLine.Split(strings.TrimSpace(p), -1) {
			if q = strings.TrimSpace(q); q != "" {
				out = append(out, q)
			}
		}
	}
	return out
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Zone is the named IANA time zone, or fallback (UTC when nil) for an
// empty or unknown name.
func Zone(name string, fallback *time.Location) *time.Location {
	if name != "" {
		if z, err := time.LoadLocation(name); err == nil {
			return z
		}
	}
	if fallback == nil {
		return time.UTC
	}
	return fallback
}

// Preview is a version rendered in one locale, with the facts of an
// affected customer of that locale (else of the first one).
type Preview struct {
	Rendered
	Customer string `json:"customer,omitempty"` // whose facts it shows
	TimeZone string `json:"time_zone"`
}

// Preview renders v in locale for the DPO's review; org is the time zone
// for customers without one.
func (cs *Catalogs) Preview(v *incident.NoticeVersion, s incident.Scope, locale string, org *time.Location) (Preview, error) {
	f := incident.AffectedTenant{How: incident.HowExposed}
	if len(s.Tenants) > 0 {
		f = s.Tenants[0]
	}
	for _, t := range s.Tenants {
		if cs.Match(t.Locale).Locale == locale {
			f = t
			break
		}
	}
	zone := Zone(f.TimeZone, org)
	r, err := cs.Render(v, Facts{How: f.How, Records: f.Records, Categories: f.Categories, Locale: locale, Zone: zone, Country: f.Country})
	return Preview{Rendered: r, Customer: f.Tenant, TimeZone: zone.String()}, err
}

// Previews renders v in every supported locale.
func (cs *Catalogs) Previews(v *incident.NoticeVersion, s incident.Scope, org *time.Location) ([]Preview, error) {
	out := make([]Preview, 0, len(cs.tags))
	for _, loc := range cs.Locales() {
		p, err := cs.Preview(v, s, loc, org)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Language is how many affected customers get a version in one language,
// and what falls back to English for them.
type Language struct {
	Locale    string `json:"locale"`
	Customers int    `json:"customers"`
	// Asked: the customers' own locales that are not supported and fall
	// back to this one (English), with how many asked for each
	// ("pt-PT: 2"); empty for customers whose locale is this one.
	Asked []string `json:"asked,omitempty"`
	// TextInEnglish: the version's free-text fields shown in English to
	// these customers (the version has no text of its own for them).
	TextInEnglish []string `json:"text_in_english,omitempty"`
}

// Languages says, for version v and the customers it goes to, how many get
// each language and which fall back: the draft's and the notice page's
// summary, so that a DPO sees who reads English instead of their own.
func (cs *Catalogs) Languages(v *incident.NoticeVersion, tenants []incident.AffectedTenant) []Language {
	by := map[string]*Language{}
	asked := map[string]map[string]int{}
	for _, t := range tenants {
		c := cs.Match(t.Locale)
		l := by[c.Locale]
		if l == nil {
			l = &Language{Locale: c.Locale}
			by[c.Locale] = l
			if c.Locale != "en" {
				own := v.Notice.Text[c.Locale]
				for _, f := range []struct{ name, val string }{{"nature", own.Nature}, {"consequences", own.Consequences},
					{"measures", own.Measures}, {"actions", own.Actions}} {
					if strings.TrimSpace(f.val) == "" {
						l.TextInEnglish = append(l.TextInEnglish, f.name)
					}
				}
			}
		}
		l.Customers++
		if own := strings.TrimSpace(t.Locale); own != "" && !sameLanguage(own, c.Locale) {
			if asked[c.Locale] == nil {
				asked[c.Locale] = map[string]int{}
			}
			asked[c.Locale][own]++
		}
	}
	out := make([]Language, 0, len(by))
	for _, loc := range cs.Locales() {
		l := by[loc]
		if l == nil {
			continue
		}
		for _, own := range slices.Sorted(maps.Keys(asked[loc])) {
			l.Asked = append(l.Asked, fmt.Sprintf("%s: %d", own, asked[loc][own]))
		}
		out = append(out, *l)
	}
	return out
}

// sameLanguage reports whether a customer's locale (nl-BE) is served by a
// catalog's (nl).
func sameLanguage(own, catalog string) bool {
	base, _, _ := strings.Cut(strings.ToLower(own), "-")
	return base == catalog
}
