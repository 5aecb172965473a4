package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

const contractAccess = `{"id":"a-000001","time":"2026-11-20T09:15:02.113Z","tenant":"cust-0042",
 "actor":{"id":"u-991","type":"customer_user","tenant":"cust-0007"},
 "action":"export","resource":{"type":"booking","store":"postgres-eu-1"},
 "records":1800,"outcome":"success","source_ip":"198.51.100.23","country":"NL"}`

const contractConfig = `{"id":"c-17","time":"2026-11-20T08:00:00Z",
 "resource":{"id":"arn:aws:s3:::exports-eu","type":"bucket","store":"s3://exports-eu"},
 "setting":"public_access","before":false,"after":true,
 "actor":{"id":"deploy-bot","type":"service"},"source":"terraform"}`

func TestDecodeContractExamples(t *testing.T) {
	var ev AccessEvent
	if err := (Decoder{}).Access([]byte(contractAccess), &ev); err != nil {
		t.Fatalf("contract access example rejected: %v", err)
	}
	want := AccessEvent{
		ID: "a-000001", Time: time.Date(2026, 11, 20, 9, 15, 2, 113_000_000, time.UTC), Tenant: "cust-0042",
		Actor:  Actor{ID: "u-991", Type: ActorCustomerUser, Tenant: "cust-0007"},
		Action: ActionExport, Resource: Resource{Type: "booking", Store: "postgres-eu-1"},
		Records: 1800, Outcome: OutcomeSuccess, SourceIP: netip.MustParseAddr("198.51.100.23"), Country: "NL",
	}
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", ev, want)
	}

	var c ConfigChange
	if err := (Decoder{}).Config([]byte(contractConfig), &c); err != nil {
		t.Fatalf("contract config example rejected: %v", err)
	}
	wantC := ConfigChange{
		ID: "c-17", Time: time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC),
		Resource: ConfigResource{ID: "arn:aws:s3:::exports-eu", Type: "bucket", Store: "s3://exports-eu"},
		Setting:  "public_access", Before: json.RawMessage("false"), After: json.RawMessage("true"),
		Actor: &Actor{ID: "deploy-bot", Type: ActorService}, Source: "terraform",
	}
	if !reflect.DeepEqual(c, wantC) {
		t.Errorf("decoded\n%+v\nwant\n%+v", c, wantC)
	}
}

func TestDecodeAccessDefaultsAndExtras(t *testing.T) {
	in := `{"id":"x","time":"2026-03-29T01:30:00+02:00","tenant":"t","zeta":[1, {"a" : 2}],
	"actor":{"id":"e1","type":"employee","groups":["support","db-admins"],"badge":"B-7"},
	"action":"read","resource":{"type":"contact","store":"pg","shard":3},"outcome":"denied",
	"country":"se","source_ip":"2001:db8::1","user_agent":"Mozilla\u002F5.0 \"<script>\"","alpha":null}`
	var ev AccessEvent
	if err := (Decoder{}).Access([]byte(in), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Records != 1 {
		t.Errorf("records default = %d, want 1", ev.Records)
	}
	if got, want := ev.Time, time.Date(2026, 3, 28, 23, 30, 0, 0, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("time = %v, want %v in UTC", got, want)
	}
	if ev.Country != "SE" {
		t.Errorf("country = %q, want SE", ev.Country)
	}
	if ev.UserAgent != `Mozilla/5.0 "<script>"` {
		t.Errorf("user_agent = %q", ev.UserAgent)
	}
	if want := `{"zeta":[1,{"a":2}],"actor":{"badge":"B-7"},"resource":{"shard":3},"alpha":null}`; string(ev.Extra) != want {
		t.Errorf("extra = %s\nwant    %s", ev.Extra, want)
	}

	// Encoding merges the kept members back: decoding that again gives the
	// same event and the same unknown members.
	out := ev.AppendJSON(nil)
	var back AccessEvent
	if err := (Decoder{}).Access(out, &back); err != nil {
		t.Fatalf("re-decoding %s: %v", out, err)
	}
	assertSameAccess(t, &ev, &back)
	var orig, again map[string]any
	if err := json.Unmarshal([]byte(in), &orig); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &again); err != nil {
		t.Fatal(err)
	}
	delete(orig, "records")
	delete(again, "records")
	orig["country"] = "SE"
	orig["time"] = "2026-03-28T23:30:00Z"
	if !reflect.DeepEqual(orig, again) {
		t.Errorf("encoding lost or changed members:\n in  %v\n out %v", orig, again)
	}
}

func TestDecodeConfigDefaults(t *testing.T) {
	in := `{"id":"c1","time":"2026-11-20T08:00:00.5Z","resource":{"id":"pg-1","type":"database"},
	"setting":"encryption_at_rest","after":null,"extra_field":{"x": [1, 2]}}`
	var c ConfigChange
	if err := (Decoder{}).Config([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if c.Resource.Store != "pg-1" || !c.StoreDefaulted {
		t.Errorf("resource.store default = %q (defaulted %v), want the resource id", c.Resource.Store, c.StoreDefaulted)
	}
	if c.Before != nil || string(c.After) != "null" || c.Actor != nil {
		t.Errorf("before=%q after=%q actor=%v", c.Before, c.After, c.Actor)
	}
	if string(c.Extra) != `{"extra_field":{"x":[1,2]}}` {
		t.Errorf("extra = %s", c.Extra)
	}
	var back ConfigChange
	if err := (Decoder{}).Config(c.AppendJSON(nil), &back); err != nil {
		t.Fatal(err)
	}
	// The store is encoded as resolved: decoded again, it was given.
	if back.StoreDefaulted {
		t.Error("StoreDefaulted survived encoding")
	}
	back.StoreDefaulted = true
	if !reflect.DeepEqual(c, back) {
		t.Errorf("round trip:\n%+v\n%+v", c, back)
	}
}

// access builds an access event line from the contract example with one
// member replaced (or removed when value is "").
// manyKeys is ,"k0":0,"k1":0,… (n members).
func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `,"k%d":0`, i)
	}
	return b.String()
}

func access(member, value string) string {
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal([]byte(contractAccess), &m); err != nil {
		panic(err)
	}
	if value == "" {
		delete(m, member)
	} else {
		m[member] = json.RawMessage(value)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestDecodeAccessErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		kind  ErrorKind
		field string
		msg   string // a part of the message
	}{
		{"empty", ``, KindSyntax, "", "empty input"},
		{"not an object", `[1,2]`, KindSyntax, "", "want a JSON object"},
		{"truncated", contractAccess[:60], KindSyntax, "", "invalid JSON"},
		{"trailing data", contractAccess + `{}`, KindSyntax, "", "after the object"},
		{"two lines", contractAccess + "\n" + contractAccess, KindSyntax, "", "after the object"},
		{"invalid utf8", strings.Replace(contractAccess, "cust-0042", "cust-\xff", 1), KindSyntax, "", "invalid UTF-8"},
		{"control char", strings.Replace(contractAccess, "cust-0042", "cust-\x01", 1), KindSyntax, "", "control character"},
		{"bad escape", strings.Replace(contractAccess, "cust-0042", `cust-\x`, 1), KindSyntax, "", "bad escape"},
		{"trailing comma", strings.Replace(contractAccess, `"NL"}`, `"NL",}`, 1), KindSyntax, "", "member name"},
		{"single quotes", `{'id':'x'}`, KindSyntax, "", "member name"},
		{"bad literal", access("records", "1")[:len(access("records", "1"))-1] + `,"x":nul}`, KindSyntax, "", "bad literal"},
		{"missing id", access("id", ""), KindMissing, "id", "required"},
		{"null id", access("id", "null"), KindMissing, "id", "required"},
		{"empty id", access("id", `""`), KindMissing, "id", "required"},
		{"missing time", access("time", ""), KindMissing, "time", "required"},
		{"nearly empty", `{"id":"ok"}`, KindMissing, "time", "required"},
		{"null actor", access("actor", "null"), KindMissing, "actor.id", "required"},
		{"null resource", access("resource", "null"), KindMissing, "resource.type", "required"},
		{"missing tenant", access("tenant", ""), KindMissing, "tenant", "required"},
		{"missing actor", access("actor", ""), KindMissing, "actor.id", "required"},
		{"missing actor type", access("actor", `{"id":"u"}`), KindMissing, "actor.type", "required"},
		{"missing action", access("action", ""), KindMissing, "action", "required"},
		{"missing resource", access("resource", ""), KindMissing, "resource.type", "required"},
		{"missing store", access("resource", `{"type":"booking"}`), KindMissing, "resource.store", "required"},
		{"missing outcome", access("outcome", ""), KindMissing, "outcome", "required"},
		{"id is a number", access("id", "17"), KindType, "id", "want a string, got a number"},
		{"actor is a string", access("actor", `"u-1"`), KindType, "actor", "want an object, got a string"},
		{"groups not array", access("actor", `{"id":"u","type":"employee","groups":"support"}`), KindType, "actor.groups", "want an array of strings"},
		{"group not string", access("actor", `{"id":"u","type":"employee","groups":["a",7]}`), KindType, "actor.groups[1]", "got a number"},
		{"records string", access("records", `"1800"`), KindType, "records", "want a non-negative integer, got a string"},
		{"records negative", access("records", `-3`), KindValue, "records", "≥ 0"},
		{"records fraction", access("records", `1.5`), KindValue, "records", "whole number"},
		{"records exponent", access("records", `1e3`), KindValue, "records", "whole number"},
		{"records huge", access("records", `99999999999999999999`), KindValue, "records", "too large"},
		{"records int64 max", access("records", `9223372036854775807`), KindValue, "records", "between 0 and 10000000000"},
		{"unknown field twice", access("records", "1")[:len(access("records", "1"))-1] + `,"trace":1,"trace":2}`, KindValue, "trace", "more than once"},
		{"unknown field twice in actor", strings.Replace(contractAccess, `"actor":{`, `"actor":{"badge":1,"badge":2,`, 1), KindValue, "actor.badge", "more than once"},
		{"key twice deep in an unknown value", access("records", "1")[:len(access("records", "1"))-1] + `,"trace":{"a":{"b":1,"b":2}}}`, KindValue, "b", "more than once"},
		{"many unknown fields, one twice", access("records", "1")[:len(access("records", "1"))-1] + manyKeys(40) + `,"k7":0}`, KindValue, "k7", "more than once"},
		{"a number of 5000 digits", access("records", "1")[:len(access("records", "1"))-1] + `,"big":` + strings.Repeat("9", 5000) + `}`, KindValue, "", "longer than 100"},
		{"year 1", access("time", `"0001-01-01T00:00:00Z"`), KindValue, "time", "out of range"},
		{"records over the bound", access("records", `10000000001`), KindValue, "records", "between 0 and 10000000000"},
		{"records bad number", access("records", "1")[:len(access("records", "1"))-1] + `,"records2":01}`, KindSyntax, "", "want ',' or '}'"},
		{"categories object", access("categories", `{"a":1}`), KindType, "categories", "array of strings"},
		{"empty category", access("categories", `["contact",""]`), KindValue, "categories[1]", "empty"},
		{"actor type enum", access("actor", `{"id":"u","type":"robot"}`), KindValue, "actor.type", `one of employee, customer_user, service, api_key, anonymous; got "robot"`},
		{"action enum", access("action", `"steal"`), KindValue, "action", `got "steal"`},
		{"outcome enum", access("outcome", `"ok"`), KindValue, "outcome", "one of success, denied, error"},
		{"action case", access("action", `"Export"`), KindValue, "action", `got "Export"`},
		{"bad ip", access("source_ip", `"300.1.1.1"`), KindValue, "source_ip", "IPv4 or IPv6"},
		{"ip with zone", access("source_ip", `"fe80::1%eth0"`), KindValue, "source_ip", "zone"},
		{"ip with port", access("source_ip", `"198.51.100.1:443"`), KindValue, "source_ip", "IPv4 or IPv6"},
		{"country unassigned", access("country", `"ZZ"`), KindValue, "country", "ISO 3166-1"},
		{"country alpha3", access("country", `"NLD"`), KindValue, "country", "ISO 3166-1"},
		{"time no zone", access("time", `"2026-11-20T09:15:02"`), KindValue, "time", "RFC 3339"},
		{"time space", access("time", `"2026-11-20 09:15:02Z"`), KindValue, "time", "RFC 3339"},
		{"time feb 30", access("time", `"2026-02-30T09:15:02Z"`), KindValue, "time", "RFC 3339"},
		{"time unix", access("time", `1763630102`), KindType, "time", "want a string, got a number"},
		{"time too old", access("time", `"1969-12-31T23:59:59Z"`), KindValue, "time", "out of range"},
		{"time too new", access("time", `"2206-01-01T00:00:00Z"`), KindValue, "time", "out of range"},
		{"duplicate field", strings.Replace(contractAccess, `"tenant":"cust-0042"`, `"tenant":"cust-0042","tenant":"cust-0001"`, 1), KindValue, "tenant", "more than once"},
		{"duplicate nested", access("actor", `{"id":"u","type":"employee","id":"v"}`), KindValue, "actor.id", "more than once"},
		{"long id", access("id", `"`+strings.Repeat("x", MaxIDBytes+1)+`"`), KindValue, "id", "longer than"},
		{"deep unknown", access("deep", strings.Repeat("[", 100)+strings.Repeat("]", 100)), KindValue, "", "nested deeper"},
		{"error value quoted", access("action", `"`+strings.Repeat("\\n", 100)+`"`), KindValue, "action", `got "\n\n`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev AccessEvent
			err := (Decoder{}).Access([]byte(tt.in), &ev)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if e.Kind != tt.kind || e.Field != tt.field || !strings.Contains(e.Error(), tt.msg) {
				t.Errorf("got kind=%s field=%q %q\nwant kind=%s field=%q containing %q", e.Kind, e.Field, e.Error(), tt.kind, tt.field, tt.msg)
			}
			if strings.ContainsAny(e.Error(), "\n\x01") {
				t.Errorf("message is not escaped: %q", e.Error())
			}
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	huge := access("user_agent", `"`+strings.Repeat("A", 70_000)+`"`)
	var ev AccessEvent
	err := (Decoder{}).Access([]byte(huge), &ev)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindTooLarge || !strings.Contains(e.Msg, "65536") {
		t.Fatalf("got %v, want too_large naming the limit", err)
	}
	if err := (Decoder{MaxBytes: 100_000}).Access([]byte(huge), &ev); err != nil {
		t.Fatalf("with a larger limit: %v", err)
	}
}

func TestDecodeConfigErrors(t *testing.T) {
	tests := []struct {
		name, in string
		kind     ErrorKind
		field    string
	}{
		{"missing after", strings.Replace(contractConfig, `"after":true,`, "", 1), KindMissing, "after"},
		{"missing setting", strings.Replace(contractConfig, `"setting":"public_access",`, "", 1), KindMissing, "setting"},
		{"missing resource", strings.Replace(contractConfig, `"resource":{"id":"arn:aws:s3:::exports-eu","type":"bucket","store":"s3://exports-eu"},`, "", 1), KindMissing, "resource.id"},
		{"missing resource type", strings.Replace(contractConfig, `"type":"bucket",`, "", 1), KindMissing, "resource.type"},
		{"bad after", strings.Replace(contractConfig, `"after":true`, `"after":tru`, 1), KindSyntax, ""},
		{"actor without type", strings.Replace(contractConfig, `"type":"service"`, `"kind":"service"`, 1), KindMissing, "actor.type"},
		{"setting number", strings.Replace(contractConfig, `"public_access"`, `7`, 1), KindType, "setting"},
		{"duplicate after", strings.Replace(contractConfig, `"after":true`, `"after":true,"after":false`, 1), KindValue, "after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c ConfigChange
			err := (Decoder{}).Config([]byte(tt.in), &c)
			var e *Error
			if !errors.As(err, &e) || e.Kind != tt.kind || e.Field != tt.field {
				t.Fatalf("got %v (%#v), want kind=%s field=%q", err, e, tt.kind, tt.field)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	good := map[string]time.Time{
		"2026-11-20T09:15:02Z":                time.Date(2026, 11, 20, 9, 15, 2, 0, time.UTC),
		"2026-11-20t09:15:02z":                time.Date(2026, 11, 20, 9, 15, 2, 0, time.UTC),
		"2026-11-20T09:15:02.1Z":              time.Date(2026, 11, 20, 9, 15, 2, 100_000_000, time.UTC),
		"2026-11-20T09:15:02.123456789Z":      time.Date(2026, 11, 20, 9, 15, 2, 123456789, time.UTC),
		"2026-11-20T09:15:02.1234567891234Z":  time.Date(2026, 11, 20, 9, 15, 2, 123456789, time.UTC),
		"2026-11-20T09:15:02-05:30":           time.Date(2026, 11, 20, 14, 45, 2, 0, time.UTC),
		"2024-02-29T00:00:00+00:00":           time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC),
		"2026-10-25T02:30:00.000000001+01:00": time.Date(2026, 10, 25, 1, 30, 0, 1, time.UTC),
	}
	for s, want := range good {
		got, ok := ParseTime(s)
		if !ok || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", s, got, ok, want)
		}
		if std, err := time.Parse(time.RFC3339Nano, s); err == nil && !std.Equal(got) {
			t.Errorf("ParseTime(%q) = %v, time.Parse says %v", s, got, std)
		}
	}
	for _, s := range []string{"", "2026-11-20", "2026-11-20T09:15:02", "2026-11-20T09:15:02.Z", "2026-13-01T00:00:00Z",
		"2023-02-29T00:00:00Z", "2026-11-20T24:00:00Z", "2026-11-20T23:60:00Z", "2026-11-20T23:59:60Z",
		"2026-11-20T09:15:02+0100", "2026-11-20T09:15:02+01:00:00", "2026-11-20T09:15:02+24:00", "+2026-11-20T09:15:02Z",
		"2026-11-20T09:15:02Z ", "2026-1a-20T09:15:02Z", "2026-11-20T09:15:02UTC"} {
		if got, ok := ParseTime(s); ok {
			t.Errorf("ParseTime(%q) = %v, want rejection", s, got)
		}
	}
}

func TestIsCountry(t *testing.T) {
	for _, c := range []string{"NL", "SE", "FR", "AE", "US", "BR", "XK", "ZW", "AD"} {
		if !IsCountry(c) {
			t.Errorf("IsCountry(%q) = false", c)
		}
	}
	for _, c := range []string{"", "N", "nl", "ZZ", "UK", "EU", "NLD", "1A"} {
		if IsCountry(c) {
			t.Errorf("IsCountry(%q) = true", c)
		}
	}
	n := 0
	for _, ok := range countryTable {
		if ok {
			n++
		}
	}
	if n != 250 {
		t.Errorf("country table has %d codes, want 249 assigned + XK", n)
	}
}

func TestAppendStringEscapes(t *testing.T) {
	in := "a\"b\\c\n\t\x01<script>&\u2028\xff"
	out := appendString(nil, in)
	if strings.ContainsAny(string(out), "<>&\n\t\x01") {
		t.Errorf("unescaped output: %s", out)
	}
	var back string
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if want := strings.ToValidUTF8(in, "\uFFFD"); back != want {
		t.Errorf("round trip %q, want %q", back, want)
	}
}

func assertSameAccess(t *testing.T, a, b *AccessEvent) {
	t.Helper()
	ac, bc := *a, *b
	ac.Extra, bc.Extra = nil, nil
	if !reflect.DeepEqual(ac, bc) {
		t.Errorf("events differ:\n%+v\n%+v", ac, bc)
	}
	if !sameJSON(a.Extra, b.Extra) {
		t.Errorf("extra differs: %s vs %s", a.Extra, b.Extra)
	}
}

func sameJSON(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
