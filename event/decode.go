package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Decoder decodes single events from their JSON encoding (one object, as in
// a Kafka record value or one line of NDJSON). It is strict: the input must
// be exactly one JSON object of valid UTF-8; known fields must have the
// contract's types and values; a field may not appear twice. Unknown fields
// are kept in Extra.
//
// The zero Decoder is ready to use. A Decoder holds no state, so it is safe
// for concurrent use.
type Decoder struct {
	// MaxBytes is the largest encoded event accepted; 0 means DefaultMaxBytes.
	// In a CloudTrail log file or array it bounds each record.
	MaxBytes int
	// MaxFileBytes is the largest CloudTrail log file or JSON array of
	// CloudTrail records accepted by ConfigRecords; 0 means
	// DefaultMaxFileBytes. It is never taken to be below MaxBytes.
	MaxFileBytes int
	// Now and MaxSkew bound event times from above: an event dated more
	// than MaxSkew after Now() is refused (KindValue, naming the time
	// field). A producer clock that far ahead, or a hostile date, would
	// otherwise move detection's event-time clocks past every real event.
	// Now nil: only the fixed range of checkTime applies.
	Now     func() time.Time
	MaxSkew time.Duration
}

// DefaultMaxSkew is the default of Decoder.MaxSkew where a caller sets Now
// (ingest does): how far ahead of the receiving clock an event may be dated.
const DefaultMaxSkew = 15 * time.Minute

// future refuses an event time beyond now + the allowed skew.
func (d Decoder) future(field string, t time.Time) *Error {
	if d.Now == nil {
		return nil
	}
	now := d.Now()
	if limit := now.Add(d.MaxSkew); t.After(limit) {
		return badValue(field, "is "+t.UTC().Format(time.RFC3339)+", more than "+d.MaxSkew.String()+
			" after the time it was received ("+now.UTC().Format(time.RFC3339)+"); event times may run ahead of the receiving clock by at most that (ingest.max_clock_skew)")
	}
	return nil
}

func (d Decoder) precheck(data []byte) error {
	max := d.maxBytes()
	if len(data) > max {
		return &Error{Kind: KindTooLarge, Msg: "event is " + strconv.Itoa(len(data)) +
			" bytes, larger than the limit of " + strconv.Itoa(max) + " bytes"}
	}
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, n := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		return &Error{Kind: KindSyntax, Offset: off, Msg: "invalid UTF-8 at byte " + strconv.Itoa(off)}
	}
	return nil
}

// Access decodes and validates one access event into ev, overwriting it.
// On error ev holds no meaningful value and the error is an *Error.
func (d Decoder) Access(data []byte, ev *AccessEvent) error {
	*ev = AccessEvent{}
	if err := d.precheck(data); err != nil {
		return err
	}
	p := parser{s: string(data)}
	if err := p.access(ev); err != nil {
		return err
	}
	if err := ev.Validate(); err != nil {
		return err
	}
	if err := d.future("time", ev.Time); err != nil {
		return err
	}
	return nil
}

// Config decodes and validates one configuration change into c, overwriting
// it. On error c holds no meaningful value and the error is an *Error.
func (d Decoder) Config(data []byte, c *ConfigChange) error {
	*c = ConfigChange{}
	if err := d.precheck(data); err != nil {
		return err
	}
	p := parser{s: string(data)}
	if err := p.config(c); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if err := d.future("time", c.Time); err != nil {
		return err
	}
	return nil
}

// parser is a cursor over one JSON document. Decoded strings without escapes
// are substrings of s, so one record costs one string allocation however many
// fields it has.
type parser struct {
	s     string
	i     int
	extra []string // unknown members, as `"key":value` texts
}

func (p *parser) syntax(msg string) *Error {
	return &Error{Kind: KindSyntax, Offset: p.i, Msg: "invalid JSON at byte " + strconv.Itoa(p.i) + ": " + msg}
}

func (p *parser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) peek() byte {
	p.ws()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// open consumes the '{' that starts the document.
func (p *parser) open() error {
	if p.peek() != '{' {
		if p.i >= len(p.s) {
			return p.syntax("empty input, want a JSON object")
		}
		return p.syntax("want a JSON object")
	}
	p.i++
	return nil
}

// end checks that nothing but white space follows the document.
func (p *parser) end() error {
	p.ws()
	if p.i != len(p.s) {
		return p.syntax("unexpected data after the object")
	}
	return nil
}

// member reads the next member's key and the ':' after it, in an object whose
// '{' has been consumed. It returns ok=false (having consumed '}') at the end
// of the object; start is the offset of the key's opening quote.
func (p *parser) member(first bool) (key string, start int, ok bool, err error) {
	c := p.peek()
	if c == '}' {
		p.i++
		return "", 0, false, nil
	}
	if !first {
		if c != ',' {
			return "", 0, false, p.syntax("want ',' or '}' after an object member")
		}
		p.i++
		c = p.peek()
	}
	if c != '"' {
		return "", 0, false, p.syntax("want a quoted member name")
	}
	start = p.i
	if key, err = p.readString(); err != nil {
		return "", 0, false, err
	}
	if p.peek() != ':' {
		return "", 0, false, p.syntax("want ':' after a member name")
	}
	p.i++
	p.ws()
	return key, start, true, nil
}

func (p *parser) duplicate(field string) *Error {
	return &Error{Kind: KindValue, Field: field, Offset: p.i, Msg: "appears more than once"}
}

// keySet finds a member name given twice in one object, among the names
// the parser does not know (known ones have a bit each): a few inline, a
// map once there are more (an object may hold thousands of members).
type keySet struct {
	few  [8]string
	n    int
	many map[string]struct{}
}

// add reports whether key was added before.
func (k *keySet) add(key string) bool {
	if k.many != nil {
		if _, ok := k.many[key]; ok {
			return true
		}
		k.many[key] = struct{}{}
		return false
	}
	for _, s := range k.few[:k.n] {
		if s == key {
			return true
		}
	}
	if k.n < len(k.few) {
		k.few[k.n] = key
		k.n++
		return false
	}
	k.many = make(map[string]struct{}, 2*len(k.few))
	for _, s := range k.few {
		k.many[s] = struct{}{}
	}
	k.many[key] = struct{}{}
	return false
}

// maxNumberBytes bounds a number the parser skips (one in an unknown
// field): no JSON consumer needs 5,000 digits.
const maxNumberBytes = 100

// readString reads a string token at p.i (which holds '"').
func (p *parser) readString() (string, error) {
	i := p.i + 1
	for i < len(p.s) {
		c := p.s[i]
		switch {
		case c == '"':
			s := p.s[p.i+1 : i]
			p.i = i + 1
			return s, nil
		case c == '\\':
			return p.readEscaped(i)
		case c < 0x20:
			p.i = i
			return "", p.syntax("control character in a string")
		}
		i++
	}
	p.i = i
	return "", p.syntax("unterminated string")
}

// readEscaped finishes reading a string whose first escape is at esc.
func (p *parser) readEscaped(esc int) (string, error) {
	b := make([]byte, 0, esc-p.i+16)
	b = append(b, p.s[p.i+1:esc]...)
	i := esc
	for i < len(p.s) {
		c := p.s[i]
		switch {
		case c == '"':
			p.i = i + 1
			return string(b), nil
		case c < 0x20:
			p.i = i
			return "", p.syntax("control character in a string")
		case c != '\\':
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(p.s) {
			break
		}
		switch p.s[i+1] {
		case '"', '\\', '/':
			b = append(b, p.s[i+1])
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(p.s, i+2)
			if !ok {
				p.i = i
				return "", p.syntax(`bad \u escape`)
			}
			i += 6
			if utf16.IsSurrogate(r) {
				// A valid pair combines; a lone surrogate becomes U+FFFD,
				// as encoding/json does.
				if i+1 < len(p.s) && p.s[i] == '\\' && p.s[i+1] == 'u' {
					if r2, ok := hex4(p.s, i+2); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							b = utf8.AppendRune(b, dec)
							i += 6
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			b = utf8.AppendRune(b, r)
			continue
		default:
			p.i = i
			return "", p.syntax("bad escape in a string")
		}
		i += 2
	}
	p.i = len(p.s)
	return "", p.syntax("unterminated string")
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// scanNumber moves past a JSON number at p.i and reports whether it had a
// sign, a fraction or an exponent.
func (p *parser) scanNumber() (neg, nonInt bool, err error) {
	i := p.i
	if i < len(p.s) && p.s[i] == '-' {
		neg = true
		i++
	}
	digits := func() int {
		n := 0
		for i < len(p.s) && p.s[i] >= '0' && p.s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(p.s) && p.s[i] == '0':
		i++
	case digits() == 0:
		p.i = i
		return false, false, p.syntax("bad number")
	}
	if i < len(p.s) && p.s[i] == '.' {
		i++
		nonInt = true
		if digits() == 0 {
			p.i = i
			return false, false, p.syntax("bad number")
		}
	}
	if i < len(p.s) && (p.s[i] == 'e' || p.s[i] == 'E') {
		i++
		nonInt = true
		if i < len(p.s) && (p.s[i] == '+' || p.s[i] == '-') {
			i++
		}
		if digits() == 0 {
			p.i = i
			return false, false, p.syntax("bad number")
		}
	}
	p.i = i
	return neg, nonInt, nil
}

func (p *parser) literal(lit string) error {
	if !strings.HasPrefix(p.s[p.i:], lit) {
		return p.syntax("bad literal")
	}
	p.i += len(lit)
	return nil
}

// skip moves past one JSON value of any type, checking its syntax.
func (p *parser) skip(depth int) error {
	switch c := p.peek(); {
	case c == '"':
		_, err := p.readString()
		return err
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return &Error{Kind: KindValue, Offset: p.i, Msg: "JSON nested deeper than " + strconv.Itoa(maxDepth) + " levels"}
		}
		p.i++
		if c == '{' {
			var keys keySet
			for first := true; ; first = false {
				key, _, ok, err := p.member(first)
				if err != nil {
					return err
				}
				if !ok {
					return nil
				}
				if keys.add(key) {
					return p.duplicate(key)
				}
				if err := p.skip(depth + 1); err != nil {
					return err
				}
			}
		}
		if p.peek() == ']' {
			p.i++
			return nil
		}
		for {
			if err := p.skip(depth + 1); err != nil {
				return err
			}
			switch p.peek() {
			case ',':
				p.i++
			case ']':
				p.i++
				return nil
			default:
				return p.syntax("want ',' or ']' in an array")
			}
		}
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.i
		if _, _, err := p.scanNumber(); err != nil {
			return err
		}
		if p.i-start > maxNumberBytes {
			return &Error{Kind: KindValue, Offset: start, Msg: "a number longer than " + strconv.Itoa(maxNumberBytes) + " characters"}
		}
		return nil
	case c == 0 && p.i >= len(p.s):
		return p.syntax("unexpected end of input")
	}
	return p.syntax("want a JSON value")
}

// typeErr names the JSON type found where want was expected. It returns a
// syntax error when there is no valid value there at all.
func (p *parser) typeErr(field, want string) error {
	var got string
	switch c := p.peek(); {
	case c == '"':
		got = "a string"
	case c == '{':
		got = "an object"
	case c == '[':
		got = "an array"
	case c == 't' || c == 'f':
		got = "a boolean"
	case c == 'n':
		got = "null"
	case c == '-' || (c >= '0' && c <= '9'):
		got = "a number"
	}
	at := p.i
	if err := p.skip(0); err != nil {
		return err
	}
	return &Error{Kind: KindType, Field: field, Offset: at, Msg: "want " + want + ", got " + got}
}

// str reads a string or null (as "").
func (p *parser) str(field string) (string, error) {
	switch p.peek() {
	case '"':
		return p.readString()
	case 'n':
		return "", p.literal("null")
	}
	return "", p.typeErr(field, "a string")
}

// strs reads an array of strings; null and [] both read as nil.
func (p *parser) strs(field string) ([]string, error) {
	switch p.peek() {
	case 'n':
		return nil, p.literal("null")
	case '[':
	default:
		return nil, p.typeErr(field, "an array of strings")
	}
	p.i++
	if p.peek() == ']' {
		p.i++
		return nil, nil // an empty list says no more than an absent one
	}
	var out []string
	for {
		if p.peek() != '"' {
			return nil, p.typeErr(field+"["+strconv.Itoa(len(out))+"]", "a string")
		}
		s, err := p.readString()
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make([]string, 0, 4)
		}
		out = append(out, s)
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return out, nil
		default:
			return nil, p.syntax("want ',' or ']' in an array")
		}
	}
}

// count reads a non-negative integer; present is false for null.
func (p *parser) count(field string) (n int64, present bool, err error) {
	c := p.peek()
	if c == 'n' {
		return 0, false, p.literal("null")
	}
	if c != '-' && (c < '0' || c > '9') {
		return 0, false, p.typeErr(field, "a non-negative integer")
	}
	start := p.i
	neg, nonInt, err := p.scanNumber()
	if err != nil {
		return 0, false, err
	}
	if nonInt {
		return 0, false, &Error{Kind: KindValue, Field: field, Offset: start, Msg: "must be a whole number; got " + quote(p.s[start:p.i])}
	}
	if neg {
		if p.s[start:p.i] == "-0" {
			return 0, true, nil
		}
		return 0, false, &Error{Kind: KindValue, Field: field, Offset: start, Msg: "must be ≥ 0; got " + quote(p.s[start:p.i])}
	}
	n, perr := strconv.ParseInt(p.s[start:p.i], 10, 64)
	if perr != nil {
		return 0, false, &Error{Kind: KindValue, Field: field, Offset: start, Msg: "too large; got " + quote(p.s[start:p.i])}
	}
	return n, true, nil
}

// raw reads any JSON value and returns it compacted; present is true even
// for null.
func (p *parser) raw() (json.RawMessage, error) {
	start := p.i
	if err := p.skip(0); err != nil {
		return nil, err
	}
	return compact(p.s[start:p.i]), nil
}

func compact(s string) json.RawMessage {
	if strings.ContainsAny(s, " \t\r\n") {
		var buf bytes.Buffer
		buf.Grow(len(s))
		if json.Compact(&buf, []byte(s)) == nil {
			return buf.Bytes()
		}
	}
	return json.RawMessage(s)
}

// timestamp reads an RFC 3339 timestamp string.
func (p *parser) timestamp(field string) (time.Time, error) {
	at := p.i
	s, err := p.str(field)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	t, ok := ParseTime(s)
	if !ok {
		return time.Time{}, &Error{Kind: KindValue, Field: field, Offset: at,
			Msg: "want an RFC 3339 timestamp such as 2026-11-20T09:15:02.113Z; got " + quote(s)}
	}
	if t.IsZero() { // 0001-01-01T00:00:00Z: given, not missing
		return time.Time{}, &Error{Kind: KindValue, Field: field, Offset: at,
			Msg: "out of range: must be between 1970-01-01 and 2106-01-01; got " + quote(s)}
	}
	return t, nil
}

// unknown keeps the member starting at start (its key has been read) as an
// extra member in *into.
func (p *parser) unknown(start int, into *[]string) error {
	if err := p.skip(1); err != nil {
		return err
	}
	*into = append(*into, p.s[start:p.i])
	return nil
}

// nested records the unknown members of a known object (actor, resource) as
// one extra member under that object's key.
func (p *parser) nested(key string, members []string) {
	if len(members) > 0 {
		p.extra = append(p.extra, strconv.Quote(key)+":{"+strings.Join(members, ",")+"}")
	}
}

func (p *parser) extraJSON() json.RawMessage {
	if len(p.extra) == 0 {
		return nil
	}
	return compact("{" + strings.Join(p.extra, ",") + "}")
}

// object reads the members of an object whose '{' has been consumed. For
// each member, field reads the value of a key it knows and returns that
// key's bit (one bit per known key, to find a key given twice); for a key it
// does not know it reads nothing and returns 0, and the member is kept in
// *unknown. Errors name fields relative to the object; object prefixes
// path ("" for the top level), so the full name is built only on error.
func (p *parser) object(path string, unknown *[]string, field func(key string) (uint32, error)) error {
	var seen uint32
	var others keySet
	for first := true; ; first = false {
		key, start, ok, err := p.member(first)
		if err != nil || !ok {
			return err
		}
		bit, err := field(key)
		switch {
		case err != nil:
			var e *Error
			if path != "" && errors.As(err, &e) && e.Field != "" {
				e.Field = path + "." + e.Field
			}
			return err
		case bit == 0:
			if others.add(key) {
				return p.duplicate(strings.TrimPrefix(path+"."+key, "."))
			}
			if err := p.unknown(start, unknown); err != nil {
				return err
			}
		case seen&bit != 0:
			return p.duplicate(strings.TrimPrefix(path+"."+key, "."))
		}
		seen |= bit
	}
}

// value reads a member's value with read (a method such as p.str) into dst.
func value[T any](dst *T, bit uint32, read func(string) (T, error), name string) (uint32, error) {
	v, err := read(name)
	*dst = v
	return bit, err
}

func (p *parser) access(ev *AccessEvent) error {
	if err := p.open(); err != nil {
		return err
	}
	ev.Records = 1
	err := p.object("", &p.extra, func(key string) (uint32, error) {
		switch key {
		case "id":
			return value(&ev.ID, 1<<0, p.str, key)
		case "time":
			return value(&ev.Time, 1<<1, p.timestamp, key)
		case "tenant":
			return value(&ev.Tenant, 1<<2, p.str, key)
		case "actor":
			_, err := p.actor(key, &ev.Actor) // absent or null: Validate reports it
			return 1 << 3, err
		case "action":
			return value(&ev.Action, 1<<4, p.str, key)
		case "resource":
			return 1 << 5, p.accessResource(&ev.Resource)
		case "records":
			n, present, err := p.count(key)
			if ev.Records = n; !present {
				ev.Records = 1
			}
			return 1 << 6, err
		case "categories":
			return value(&ev.Categories, 1<<7, p.strs, key)
		case "outcome":
			return value(&ev.Outcome, 1<<8, p.str, key)
		case "source_ip":
			return 1 << 9, p.ip(key, &ev.SourceIP)
		case "country":
			return value(&ev.Country, 1<<10, p.country, key)
		case "user_agent":
			return value(&ev.UserAgent, 1<<11, p.str, key)
		case "request_id":
			return value(&ev.RequestID, 1<<12, p.str, key)
		}
		return 0, nil
	})
	if err != nil {
		return err
	}
	if err := p.end(); err != nil {
		return err
	}
	ev.Extra = p.extraJSON()
	return nil
}

// openNested consumes the '{' of a nested object; present is false for
// null. A type error names the object's own member (the caller's key).
func (p *parser) openNested(name string) (present bool, err error) {
	switch p.peek() {
	case 'n':
		return false, p.literal("null")
	case '{':
		p.i++
		return true, nil
	}
	return false, p.typeErr(name, "an object")
}

// actor reads an actor object, or null (present=false).
func (p *parser) actor(path string, a *Actor) (present bool, err error) {
	if present, err = p.openNested(path); !present || err != nil {
		return present, err
	}
	var unknown []string
	err = p.object(path, &unknown, func(key string) (uint32, error) {
		switch key {
		case "id":
			return value(&a.ID, 1<<0, p.str, key)
		case "type":
			return value(&a.Type, 1<<1, p.str, key)
		case "tenant":
			return value(&a.Tenant, 1<<2, p.str, key)
		case "groups":
			return value(&a.Groups, 1<<3, p.strs, key)
		}
		return 0, nil
	})
	p.nested(path, unknown)
	return true, err
}

// accessResource reads the resource of an access event; null leaves it
// empty (Validate reports the missing fields).
func (p *parser) accessResource(r *Resource) error {
	if present, err := p.openNested("resource"); !present || err != nil {
		return err
	}
	var unknown []string
	err := p.object("resource", &unknown, func(key string) (uint32, error) {
		switch key {
		case "type":
			return value(&r.Type, 1<<0, p.str, key)
		case "id":
			return value(&r.ID, 1<<1, p.str, key)
		case "store":
			return value(&r.Store, 1<<2, p.str, key)
		}
		return 0, nil
	})
	p.nested("resource", unknown)
	return err
}

func (p *parser) ip(field string, dst *netip.Addr) error {
	at := p.i
	s, err := p.str(field)
	if err != nil || s == "" {
		return err
	}
	a, perr := netip.ParseAddr(s)
	if perr != nil {
		return &Error{Kind: KindValue, Field: field, Offset: at, Msg: "want an IPv4 or IPv6 address; got " + quote(s)}
	}
	*dst = a
	return nil
}

// country reads a country code, upper-casing a lower-case one.
func (p *parser) country(field string) (string, error) {
	s, err := p.str(field)
	if err != nil || len(s) != 2 {
		return s, err
	}
	if s[0] >= 'a' && s[0] <= 'z' || s[1] >= 'a' && s[1] <= 'z' {
		s = strings.ToUpper(s)
	}
	return s, nil
}

func (p *parser) config(c *ConfigChange) error {
	if err := p.open(); err != nil {
		return err
	}
	raw := func(string) (json.RawMessage, error) { return p.raw() }
	err := p.object("", &p.extra, func(key string) (uint32, error) {
		switch key {
		case "id":
			return value(&c.ID, 1<<0, p.str, key)
		case "time":
			return value(&c.Time, 1<<1, p.timestamp, key)
		case "resource":
			return 1 << 2, p.configResource(&c.Resource)
		case "setting":
			return value(&c.Setting, 1<<3, p.str, key)
		case "before":
			return value(&c.Before, 1<<4, raw, key)
		case "after":
			return value(&c.After, 1<<5, raw, key)
		case "actor":
			a := new(Actor)
			present, err := p.actor(key, a)
			if present {
				c.Actor = a
			}
			return 1 << 6, err
		case "source":
			return value(&c.Source, 1<<7, p.str, key)
		}
		return 0, nil
	})
	if err != nil {
		return err
	}
	if err := p.end(); err != nil {
		return err
	}
	if c.Resource.Store == "" {
		c.Resource.Store = c.Resource.ID
		c.StoreDefaulted = true
	}
	c.Extra = p.extraJSON()
	return nil
}

// configResource reads the resource of a configuration change; null leaves
// it empty (Validate reports the missing fields).
func (p *parser) configResource(r *ConfigResource) error {
	if present, err := p.openNested("resource"); !present || err != nil {
		return err
	}
	var unknown []string
	err := p.object("resource", &unknown, func(key string) (uint32, error) {
		switch key {
		case "id":
			return value(&r.ID, 1<<0, p.str, key)
		case "type":
			return value(&r.Type, 1<<1, p.str, key)
		case "store":
			return value(&r.Store, 1<<2, p.str, key)
		case "provider":
			return value(&r.Provider, 1<<3, p.str, key)
		case "region":
			return value(&r.Region, 1<<4, p.str, key)
		}
		return 0, nil
	})
	p.nested("resource", unknown)
	return err
}
