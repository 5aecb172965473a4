package event

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the event's wire encoding (one JSON object, no newline)
// to b. Members kept in Extra are merged back in, so decoding and encoding
// an event loses nothing; an Extra that is not a JSON object is left out.
func (e *AccessEvent) AppendJSON(b []byte) []byte {
	x := splitExtra(e.Extra)
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"time":`...)
	b = appendTime(b, e.Time)
	b = append(b, `,"tenant":`...)
	b = appendString(b, e.Tenant)
	b = append(b, `,"actor":`...)
	b = appendActor(b, &e.Actor, x.actor)
	b = append(b, `,"action":`...)
	b = appendString(b, e.Action)
	b = append(b, `,"resource":{"type":`...)
	b = appendString(b, e.Resource.Type)
	if e.Resource.ID != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, e.Resource.ID)
	}
	b = append(b, `,"store":`...)
	b = appendString(b, e.Resource.Store)
	b = appendMembers(b, x.resource)
	b = append(b, `},"records":`...)
	b = strconv.AppendInt(b, e.Records, 10)
	if e.Categories != nil {
		b = append(b, `,"categories":`...)
		b = appendStrings(b, e.Categories)
	}
	b = append(b, `,"outcome":`...)
	b = appendString(b, e.Outcome)
	if e.SourceIP.IsValid() {
		b = append(b, `,"source_ip":"`...)
		b = e.SourceIP.AppendTo(b)
		b = append(b, '"')
	}
	if e.Country != "" {
		b = append(b, `,"country":`...)
		b = appendString(b, e.Country)
	}
	if e.UserAgent != "" {
		b = append(b, `,"user_agent":`...)
		b = appendString(b, e.UserAgent)
	}
	if e.RequestID != "" {
		b = append(b, `,"request_id":`...)
		b = appendString(b, e.RequestID)
	}
	b = appendMembers(b, x.top)
	return append(b, '}')
}

// AppendJSON appends the change's wire encoding to b; see
// AccessEvent.AppendJSON.
func (c *ConfigChange) AppendJSON(b []byte) []byte {
	x := splitExtra(c.Extra)
	b = append(b, `{"id":`...)
	b = appendString(b, c.ID)
	b = append(b, `,"time":`...)
	b = appendTime(b, c.Time)
	b = append(b, `,"resource":{"id":`...)
	b = appendString(b, c.Resource.ID)
	b = append(b, `,"type":`...)
	b = appendString(b, c.Resource.Type)
	for _, kv := range [...][2]string{{"store", c.Resource.Store}, {"provider", c.Resource.Provider}, {"region", c.Resource.Region}} {
		if kv[1] != "" {
			b = append(b, `,"`...)
			b = append(b, kv[0]...)
			b = append(b, `":`...)
			b = appendString(b, kv[1])
		}
	}
	b = appendMembers(b, x.resource)
	b = append(b, `},"setting":`...)
	b = appendString(b, c.Setting)
	if len(c.Before) > 0 {
		b = append(b, `,"before":`...)
		b = append(b, c.Before...)
	}
	b = append(b, `,"after":`...)
	if len(c.After) > 0 {
		b = append(b, c.After...)
	} else {
		b = append(b, "null"...)
	}
	if c.Actor != nil {
		b = append(b, `,"actor":`...)
		b = appendActor(b, c.Actor, x.actor)
	}
	if c.Source != "" {
		b = append(b, `,"source":`...)
		b = appendString(b, c.Source)
	}
	b = appendMembers(b, x.top)
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler with the wire encoding.
func (e AccessEvent) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

// UnmarshalJSON implements json.Unmarshaler with the strict Decoder.
func (e *AccessEvent) UnmarshalJSON(b []byte) error {
	return Decoder{MaxBytes: len(b) + 1}.Access(b, e)
}

// MarshalJSON implements json.Marshaler with the wire encoding.
func (c ConfigChange) MarshalJSON() ([]byte, error) { return c.AppendJSON(nil), nil }

// UnmarshalJSON implements json.Unmarshaler with the strict Decoder.
func (c *ConfigChange) UnmarshalJSON(b []byte) error {
	return Decoder{MaxBytes: len(b) + 1}.Config(b, c)
}

func appendActor(b []byte, a *Actor, extra string) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, a.ID)
	b = append(b, `,"type":`...)
	b = appendString(b, a.Type)
	if a.Tenant != "" {
		b = append(b, `,"tenant":`...)
		b = appendString(b, a.Tenant)
	}
	if a.Groups != nil {
		b = append(b, `,"groups":`...)
		b = appendStrings(b, a.Groups)
	}
	b = appendMembers(b, extra)
	return append(b, '}')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

func appendMembers(b []byte, members string) []byte {
	if members == "" {
		return b
	}
	b = append(b, ',')
	return append(b, members...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Besides what JSON requires, it
// escapes <, > and & (so the output is safe inside HTML) and U+2028/U+2029
// (so it is safe inside JavaScript); invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

type extraParts struct{ actor, resource, top string }

// splitExtra separates the kept unknown members into those of "actor",
// those of "resource" and the top-level ones, each as comma-joined member
// texts without braces.
func splitExtra(extra []byte) (x extraParts) {
	if len(extra) == 0 {
		return x
	}
	p := parser{s: string(extra)}
	if p.open() != nil {
		return extraParts{}
	}
	var top []string
	for first := true; ; first = false {
		key, start, ok, err := p.member(first)
		if err != nil {
			return extraParts{}
		}
		if !ok {
			break
		}
		vstart := p.i
		if err := p.skip(1); err != nil {
			return extraParts{}
		}
		value := p.s[vstart:p.i]
		switch {
		case key == "actor" && value[0] == '{':
			x.actor = strings.TrimSpace(value[1 : len(value)-1])
		case key == "resource" && value[0] == '{':
			x.resource = strings.TrimSpace(value[1 : len(value)-1])
		default:
			top = append(top, p.s[start:p.i])
		}
	}
	if p.end() != nil {
		return extraParts{}
	}
	x.top = strings.Join(top, ",")
	return x
}
