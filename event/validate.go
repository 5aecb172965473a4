package event

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrorKind classifies why an event was rejected. Kinds are few and stable,
// so they are safe to use as metric labels.
type ErrorKind string

// The kinds of Error.
const (
	KindSyntax   ErrorKind = "syntax"    // not one valid JSON object
	KindMissing  ErrorKind = "missing"   // a required field is absent (or null)
	KindType     ErrorKind = "type"      // a field has the wrong JSON type
	KindValue    ErrorKind = "value"     // a field has an out-of-range or malformed value
	KindTooLarge ErrorKind = "too_large" // the encoded event is larger than allowed
)

// Error says why an event was rejected, naming the field (a dotted path such
// as "actor.type" or "categories[2]") when the problem is in one field.
// Values quoted in Msg are escaped and truncated, so Error() is safe to log
// and to return to the producer; it still contains producer-supplied text.
type Error struct {
	Kind   ErrorKind
	Field  string // empty when the problem is not in one field
	Msg    string
	Offset int // byte offset in the input where the problem was found
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return "field " + strconv.Quote(e.Field) + ": " + e.Msg
}

// Limits on what an event may hold.
const (
	// DefaultMaxBytes is the default largest encoded event accepted.
	DefaultMaxBytes = 64 << 10
	// MaxIDBytes bounds identifiers (event ids, tenants, actor ids, stores).
	MaxIDBytes = 512
	// MaxRecords bounds an access event's records: ten billion, more than
	// any breach ever counted, and small enough that no store-tenant-day
	// sum of real traffic can overflow (it would take 900 million events
	// at the bound in one day); sums saturate anyway.
	MaxRecords = 10_000_000_000
	// maxDepth bounds the nesting of unknown JSON values we skip over.
	maxDepth = 64
)

// Event timestamps must lie in [MinTime(), MaxTime()): the range every
// store can hold.
const (
	minUnix = 0          // 1970-01-01
	maxUnix = 4291747200 // 2106-01-01
)

// MinTime is the earliest event time accepted.
func MinTime() time.Time { return time.Unix(minUnix, 0).UTC() }

// MaxTime is the first event time no longer accepted.
func MaxTime() time.Time { return time.Unix(maxUnix, 0).UTC() }

func missing(field string) *Error {
	return &Error{Kind: KindMissing, Field: field, Msg: "required field is missing"}
}

func badValue(field, msg string) *Error {
	return &Error{Kind: KindValue, Field: field, Msg: msg}
}

// quote renders a producer-supplied value for an error message: escaped and
// cut to a bounded length.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

func oneOf(field, got string, set []string) *Error {
	return badValue(field, "must be one of "+strings.Join(set, ", ")+"; got "+quote(got))
}

func inSet(s string, set []string) bool {
	for _, v := range set {
		if v == s {
			return true
		}
	}
	return false
}

func checkID(field, s string, required bool) *Error {
	switch {
	case s == "" && required:
		return missing(field)
	case len(s) > MaxIDBytes:
		return badValue(field, "longer than "+strconv.Itoa(MaxIDBytes)+" bytes")
	}
	return nil
}

func checkTime(field string, t time.Time) *Error {
	if t.IsZero() {
		return missing(field)
	}
	if sec := t.Unix(); sec < minUnix || sec >= maxUnix {
		return badValue(field, "out of range: must be between 1970-01-01 and 2106-01-01")
	}
	return nil
}

func checkActor(prefix string, a *Actor) *Error {
	if err := checkID(prefix+".id", a.ID, true); err != nil {
		return err
	}
	if a.Type == "" {
		return missing(prefix + ".type")
	}
	if !inSet(a.Type, actorTypes) {
		return oneOf(prefix+".type", a.Type, actorTypes)
	}
	if err := checkID(prefix+".tenant", a.Tenant, false); err != nil {
		return err
	}
	for i, g := range a.Groups {
		if g == "" {
			return badValue(prefix+".groups["+strconv.Itoa(i)+"]", "must not be empty")
		}
	}
	return nil
}

// Validate checks the event against the contract. The decoder calls it, and
// so should any code that builds events by other means.
func (e *AccessEvent) Validate() error {
	if err := checkID("id", e.ID, true); err != nil {
		return err
	}
	if err := checkTime("time", e.Time); err != nil {
		return err
	}
	if err := checkID("tenant", e.Tenant, true); err != nil {
		return err
	}
	if err := checkActor("actor", &e.Actor); err != nil {
		return err
	}
	if e.Action == "" {
		return missing("action")
	}
	if !inSet(e.Action, actions) {
		return oneOf("action", e.Action, actions)
	}
	if e.Resource.Type == "" {
		return missing("resource.type")
	}
	if err := checkID("resource.id", e.Resource.ID, false); err != nil {
		return err
	}
	if err := checkID("resource.store", e.Resource.Store, true); err != nil {
		return err
	}
	if e.Records < 0 || e.Records > MaxRecords {
		return badValue("records", "must be between 0 and "+strconv.FormatInt(MaxRecords, 10))
	}
	for i, c := range e.Categories {
		if c == "" {
			return badValue("categories["+strconv.Itoa(i)+"]", "must not be empty")
		}
	}
	if e.Outcome == "" {
		return missing("outcome")
	}
	if !inSet(e.Outcome, outcomes) {
		return oneOf("outcome", e.Outcome, outcomes)
	}
	if e.SourceIP.IsValid() && e.SourceIP.Zone() != "" {
		return badValue("source_ip", "must not carry an IPv6 zone")
	}
	if e.Country != "" && !IsCountry(e.Country) {
		return badValue("country", "must be an ISO 3166-1 alpha-2 code such as NL; got "+quote(e.Country))
	}
	return nil
}

// Validate checks the change against the contract.
func (c *ConfigChange) Validate() error {
	if err := checkID("id", c.ID, true); err != nil {
		return err
	}
	if err := checkTime("time", c.Time); err != nil {
		return err
	}
	if err := checkID("resource.id", c.Resource.ID, true); err != nil {
		return err
	}
	if c.Resource.Type == "" {
		return missing("resource.type")
	}
	if err := checkID("resource.store", c.Resource.Store, false); err != nil {
		return err
	}
	if c.Setting == "" {
		return missing("setting")
	}
	if len(c.After) == 0 {
		return missing("after")
	}
	if c.Actor != nil {
		if err := checkActor("actor", c.Actor); err != nil {
			return err
		}
	}
	return nil
}

// StoreID is the data store a change affects: resource.store, or the
// resource id when the producer left the store out.
func (c *ConfigChange) StoreID() string {
	if c.Resource.Store != "" {
		return c.Resource.Store
	}
	return c.Resource.ID
}
