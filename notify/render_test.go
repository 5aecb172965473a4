package notify

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/breachwatch/breachwatch/incident"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// sampleVersion is a complete notice: English and Dutch text (Swedish,
// French and Arabic fall back to English for some fields or all).
func sampleVersion() *incident.NoticeVersion {
	v := &incident.NoticeVersion{
		Version: 1, Author: "token:dpo-writer", At: time.Date(2026, 3, 30, 9, 0, 0, 0, time.UTC),
		Notice: incident.Notice{
			Text: map[string]incident.NoticeText{
				"en": {Nature: "A storage bucket holding booking exports was made public by mistake.",
					Consequences: "Someone could use your customers' contact details for unwanted messages.",
					Measures:     "We closed the bucket within hours and reviewed every access to it.\n\nWe added a check that blocks public buckets.",
					Actions:      "Tell your staff to be wary of unexpected messages that mention bookings."},
				"nl": {Nature: "Een opslagbucket met boekingsexports is per ongeluk openbaar gemaakt.",
					Consequences: "Iemand zou de contactgegevens van uw klanten kunnen gebruiken voor ongewenste berichten.",
					Measures:     "We hebben de bucket binnen enkele uren gesloten en elke toegang nagekeken.",
					Actions:      "Vraag uw medewerkers alert te zijn op onverwachte berichten over boekingen."},
				"ar": {Nature: "أُتيحت حاوية تخزين تضم صادرات الحجوزات للعموم عن طريق الخطأ."},
			},
			Contact:   incident.Contact{Name: "Dana Okafor", Email: "dpo@example.com", Phone: "+31 20 123 4567"},
			Authority: incident.Authority{Name: "Autoriteit Persoonsgegevens", Website: "autoriteitpersoonsgegevens.nl"},
			Product:   "Bookly",
		},
		// The window spans the EU's switch to summer time (29 March 2026).
		WindowFrom: time.Date(2026, 3, 28, 22, 15, 0, 0, time.UTC),
		WindowTo:   time.Date(2026, 3, 29, 14, 40, 0, 0, time.UTC),
		ScopeHash:  "x",
	}
	v.Hash = v.ComputeHash()
	return v
}

func TestRenderGolden(t *testing.T) {
	cs, err := LoadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	zones := map[string]string{"en": "Europe/London", "nl": "Europe/Amsterdam", "sv": "Europe/Stockholm", "fr": "Europe/Paris", "ar": "Asia/Dubai",
		"pt": "America/Sao_Paulo", "de": "Europe/Berlin", "es": "Europe/Madrid"}
	for _, loc := range cs.Locales() {
		t.Run(loc, func(t *testing.T) {
			zone, err := time.LoadLocation(zones[loc])
			if err != nil {
				t.Fatal(err)
			}
			r, err := cs.Render(sampleVersion(), Facts{How: incident.HowAccessed, Records: 12345, Categories: []string{"contact", "booking"}, Locale: loc, Zone: zone})
			if err != nil {
				t.Fatal(err)
			}
			got := "Subject: " + r.Subject + "\nFallback: " + strings.Join(r.Fallback, ",") + "\n\n" + r.Text
			golden(t, filepath.Join("testdata", "golden", loc+".txt"), got)
			golden(t, filepath.Join("testdata", "golden", loc+".html"), r.HTML)
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./notify -run Golden -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the rendering (run with -update after checking the change):\n--- got ---\n%s", path, got)
	}
}

func TestRenderFacts(t *testing.T) {
	cs, err := LoadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	dubai, _ := time.LoadLocation("Asia/Dubai")
	v := sampleVersion()
	render := func(f Facts) Rendered {
		t.Helper()
		r, err := cs.Render(v, f)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name     string
		facts    Facts
		locale   string
		contains []string
		absent   []string
	}{
		{"dutch dates from CLDR, both sides of the DST change", Facts{How: incident.HowExposed, Records: 1800, Locale: "nl", Zone: ams},
			"nl", []string{"Van 28 maart 2026 23:15 (UTC+01:00) tot 29 maart 2026 16:40 (UTC+02:00).", "ongeveer 1.800 records",
				"waren bereikbaar"}, []string{"ingezien door iemand"}},
		{"regional locale matches its language", Facts{How: incident.HowAccessed, Records: 5, Locale: "nl-BE", Zone: ams},
			"nl", []string{"zijn ingezien door iemand"}, nil},
		{"unsupported locale falls back to English", Facts{How: incident.HowAccessed, Records: 5, Locale: "ja-JP", Zone: time.UTC},
			"en", []string{"Dear customer,", "March 28, 2026"}, []string{"This part is not yet available"}},
		{"garbage locale falls back to English", Facts{Records: 5, Locale: "!!", Zone: time.UTC}, "en", []string{"Dear customer,"}, nil},
		{"Swedish without text shows English, visibly", Facts{Records: 5, Locale: "sv", Zone: time.UTC},
			"sv", []string{"Denna del finns ännu inte på ert språk och visas på engelska.", "A storage bucket holding", "Bästa kund,"}, nil},
		{"Arabic: right to left, Arabic comma, isolated Latin values", Facts{How: incident.HowAccessed, Records: 12345,
			Categories: []string{"contact", "payment"}, Locale: "ar", Zone: dubai},
			"ar", []string{"بيانات الاتصال، بيانات الدفع", "\u2068dpo@example.com\u2069", "مارس", "١٢٬٣٤٥"}, []string{"12٬345", "2026"}},
		{"substitution tag instead of the number", Facts{Records: 5, RecordsText: "%bw_records%", Locale: "fr", Zone: time.UTC},
			"fr", []string{"Environ %bw_records% enregistrements"}, []string{"Types de données"}},
		{"a correction says which notice it updates, in the customer's zone", Facts{Records: 5, Locale: "nl", Zone: ams,
			Earlier: time.Date(2026, 3, 30, 7, 5, 0, 0, time.UTC)},
			"nl", []string{"Dit bericht werkt ons bericht van 30 maart 2026 09:05 (UTC+02:00) bij", "Aanvulling op ons beveiligingsbericht van Bookly"}, nil},
		{"a first notice does not", Facts{Records: 5, Locale: "en", Zone: time.UTC}, "en", nil, []string{"updates the one we sent"}},
	}
	// One moment is not a window "from 14:27 to 14:27".
	instant := sampleVersion()
	instant.WindowFrom = time.Date(2026, 3, 28, 14, 27, 5, 0, time.UTC)
	instant.WindowTo = instant.WindowFrom.Add(20 * time.Second)
	for loc, want := range map[string][2]string{"en": {"At March 28, 2026", "2:27"}, "de": {"Am 28. März 2026", "14:27"}, "nl": {"Op 28 maart 2026", "14:27"}} {
		r, err := cs.Render(instant, Facts{Records: 1, Locale: loc, Zone: time.UTC})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.Text, want[0]) || strings.Count(r.Text, want[1]) != 1 {
			t.Errorf("%s, one moment:\n%s", loc, r.Text)
		}
		if strings.Contains(r.Text, " 1 record") {
			t.Errorf("%s: one record is counted as a number of records:\n%s", loc, r.Text)
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := render(tc.facts)
			if r.Locale != tc.locale {
				t.Errorf("locale %s, want %s", r.Locale, tc.locale)
			}
			for _, s := range tc.contains {
				if !strings.Contains(r.Text, s) && !strings.Contains(r.HTML, s) {
					t.Errorf("missing %q in:\n%s", s, r.Text)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(r.Text, s) {
					t.Errorf("unexpected %q", s)
				}
			}
		})
	}
	r := render(Facts{Locale: "ar", Zone: dubai})
	if !strings.Contains(r.HTML, `<html lang="ar" dir="rtl">`) || !strings.Contains(r.HTML, `<p lang="en" dir="ltr">We closed the bucket`) {
		t.Errorf("Arabic HTML is not right to left with English fallbacks marked:\n%s", r.HTML)
	}
	if strings.Join(r.Fallback, ",") != "consequences,measures,actions" {
		t.Errorf("fallback %v", r.Fallback)
	}
}

func TestRenderEscapes(t *testing.T) {
	cs, err := LoadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	v := sampleVersion()
	v.Notice.Product = `Bookly<script>alert(1)</script>`
	v.Notice.Text["en"] = incident.NoticeText{Nature: `<img src=x onerror=alert(2)>`, Consequences: "c", Measures: "m", Actions: "a"}
	v.Notice.Contact.Name = `"><b>x</b>`
	r, err := cs.Render(v, Facts{Records: 1, Locale: "en", Categories: []string{"<i>evil</i>"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script>", "<img", "<b>x", "<i>evil"} {
		if strings.Contains(r.HTML, bad) {
			t.Errorf("HTML carries %q unescaped", bad)
		}
	}
	if !strings.Contains(r.HTML, "&lt;img src=x onerror=alert(2)&gt;") || !strings.Contains(r.HTML, "Bookly&lt;script&gt;") {
		t.Errorf("escaped text missing:\n%s", r.HTML)
	}
	if strings.ContainsAny(r.Subject, "\r\n") {
		t.Errorf("subject has a line break: %q", r.Subject)
	}
}

func TestCatalogsStrict(t *testing.T) {
	en := "language: English\ndir: ltr\nlist_separator: ', '\nsubject: 'About {product}'\n"
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"no English", map[string]string{"c/nl.yaml": "language: x\ndir: ltr\n"}, "en.yaml is missing"},
		{"missing key", map[string]string{"c/en.yaml": en, "c/nl.yaml": "language: N\ndir: ltr\nlist_separator: ', '\n"}, `key "subject" is missing`},
		{"extra key", map[string]string{"c/en.yaml": en, "c/nl.yaml": en + "extra: x\n"}, `key "extra" is not in en.yaml`},
		{"placeholder differs", map[string]string{"c/en.yaml": en, "c/nl.yaml": strings.Replace(en, "{product}", "{produkt}", 1)}, "placeholders"},
		{"bad dir", map[string]string{"c/en.yaml": strings.Replace(en, "ltr", "up", 1)}, "dir: want ltr or rtl"},
		{"no CLDR data", map[string]string{"c/en.yaml": en, "c/tlh.yaml": en}, `no CLDR locale data for "tlh"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for k, v := range tc.files {
				fsys[k] = &fstest.MapFile{Data: []byte(v)}
			}
			_, err := loadCatalogs(fsys, "c")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestLanguagesSummary: the draft says how many customers read which
// language, who falls back to English because their locale is not
// supported, and which free text is English for lack of a translation.
func TestLanguagesSummary(t *testing.T) {
	cs, err := LoadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	v := sampleVersion() // English, Dutch and some Arabic text
	tenants := []incident.AffectedTenant{{Tenant: "a", Locale: "nl"}, {Tenant: "b", Locale: "nl-BE"}, {Tenant: "c", Locale: "pt-BR"},
		{Tenant: "d", Locale: "ja"}, {Tenant: "e", Locale: "ja-JP"}, {Tenant: "f"}, {Tenant: "g", Locale: "ar"}}
	got := cs.Languages(v, tenants)
	want := []Language{
		{Locale: "en", Customers: 3, Asked: []string{"ja: 1", "ja-JP: 1"}},
		{Locale: "ar", Customers: 1, TextInEnglish: []string{"consequences", "measures", "actions"}},
		{Locale: "nl", Customers: 2},
		{Locale: "pt", Customers: 1, TextInEnglish: []string{"nature", "consequences", "measures", "actions"}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("languages:\n got %+v\nwant %+v", got, want)
	}
}

// TestEachCustomerNamesItsOwnAuthority: every EEA and UK customer's notice
// names the supervisory authority of its own country for the right to
// complain; a customer of a country the table lacks is pointed to the
// authority the notice names (the organisation's lead authority).
func TestEachCustomerNamesItsOwnAuthority(t *testing.T) {
	cs, err := LoadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	eea := []string{"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU", "MT", "NL",
		"PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO", "GB"}
	v := sampleVersion() // names the Autoriteit Persoonsgegevens
	seen := map[string]string{}
	for _, c := range eea {
		a, ok := cs.Authorities.For(c)
		if !ok {
			t.Errorf("%s: no authority in the table", c)
			continue
		}
		if other, dup := seen[a.Name]; dup && a.Name != "Datatilsynet" { // Denmark's and Norway's share a name
			t.Errorf("%s and %s name the same authority %q", c, other, a.Name)
		}
		seen[a.Name] = c
		r, err := cs.Render(v, Facts{Records: 1, Locale: "en", Zone: time.UTC, Country: c})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.Text, "supervisory authority, such as "+a.Name+".") {
			t.Errorf("%s: the notice does not name %q:\n%s", c, a.Name, r.Text)
		}
		if c != "NL" && strings.Contains(r.Text, "Autoriteit Persoonsgegevens") {
			t.Errorf("%s: the notice still names the Dutch authority", c)
		}
		if a.Website != "" && !strings.Contains(r.Text, a.Website) {
			t.Errorf("%s: the notice lacks the website %s", c, a.Website)
		}
	}
	r, err := cs.Render(v, Facts{Records: 1, Locale: "en", Zone: time.UTC, Country: "US"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Text, "such as Autoriteit Persoonsgegevens.") {
		t.Errorf("a US customer: %s", r.Text)
	}
}

// TestGreetingNamesTheOrganisation: with organisation.name set, the notice
// greets the customer on the organisation's behalf (escaped in HTML).
func TestGreetingNamesTheOrganisation(t *testing.T) {
	cs, err := LoadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	cs.Organisation = "Bookly <B.V.>"
	for loc, want := range map[string]string{"en": "Dear customer of Bookly <B.V.>,", "nl": "Beste klant van Bookly <B.V.>,", "de": "Kunde von Bookly <B.V.>,"} {
		r, err := cs.Render(sampleVersion(), Facts{Records: 2, Locale: loc, Zone: time.UTC})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.Text, want) || !strings.Contains(r.HTML, "Bookly &lt;B.V.&gt;") || strings.Contains(r.HTML, "<B.V.>") {
			t.Errorf("%s: greeting\n%s\n%s", loc, r.Text, r.HTML)
		}
	}
}
