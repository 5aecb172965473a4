package event

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// DefaultMaxFileBytes is the default of Decoder.MaxFileBytes: the largest
// CloudTrail log file ({"Records":[...]}) or JSON array of CloudTrail
// records accepted as one record of the config topic (or one line of the
// config HTTP endpoint). CloudTrail delivers files of up to a few MiB;
// detonation logs published as arrays are of the same order.
const DefaultMaxFileBytes = 16 << 20

// RecordError is one record of a CloudTrail log file (or of a JSON array
// of CloudTrail records) that was refused while the others were taken.
type RecordError struct {
	// Index is the record's position in Records (or in the array), from 0.
	Index int
	// Raw is the record as it appears in the input: a sub-slice of it, to
	// be copied by a caller that keeps it beyond the input's life.
	Raw []byte
	// Err says why; its field names are full paths into the input, such
	// as "Records[3].eventTime" or "[3].detail.eventTime".
	Err *Error
}

func (d Decoder) maxBytes() int {
	if d.MaxBytes > 0 {
		return d.MaxBytes
	}
	return DefaultMaxBytes
}

// maxFileBytes is the file limit, never below the per-event limit.
func (d Decoder) maxFileBytes() int {
	n := d.MaxFileBytes
	if n <= 0 {
		n = DefaultMaxFileBytes
	}
	return max(n, d.maxBytes())
}

// ConfigRecords decodes one record of the config topic (or one line of
// the config HTTP endpoint) and appends the configuration changes it holds
// to dst. The record is one of:
//   - a configuration change (as Decoder.Config decodes it) → exactly one change;
//   - one CloudTrail record (an object with "eventVersion"/"eventSource"/"eventName");
//   - an EventBridge event carrying one in "detail" ("detail-type": "AWS API Call via CloudTrail");
//   - a CloudTrail log file: {"Records":[...]};
//   - a JSON array of CloudTrail records or EventBridge events, [{...},{...}]
//     (the form in which detonation and sample logs are often published).
//
// CloudTrail calls that change nothing relevant, and failed calls
// (errorCode present), yield no change (not an error).
//
// The record's shape is told by its top-level members: one with "setting"
// is always a configuration change; otherwise "Records" makes a log file,
// "detail-type" an EventBridge event, and any of "eventVersion",
// "eventSource", "eventName" a CloudTrail record; anything else is decoded
// (and rejected) as a configuration change. An EventBridge event is
// accepted when its detail-type ends in " via CloudTrail" (API calls,
// service events, console sign-ins).
//
// Limits: a log file or an array may be up to d.MaxFileBytes (default
// DefaultMaxFileBytes) and each record in it up to d.MaxBytes; anything
// else is one event, up to d.MaxBytes.
//
// err is a failure of the record as a whole (not JSON, too large, not one
// of the shapes above, an invalid change or a bad single CloudTrail
// record); dst is then returned with its original length. In a log file
// or an array each element is taken or refused on its own: the changes of
// the good ones are appended, and bad lists the others, in order, each
// with its index, its bytes and an *Error naming the field by its full
// path (e.g. "Records[3].eventTime").
//
// The mapping of CloudTrail calls to changes is described in the comment
// at the top of event/cloudtrail.go; every change it produces passes
// Validate.
func (d Decoder) ConfigRecords(data []byte, dst []ConfigChange) (_ []ConfigChange, bad []RecordError, err error) {
	if limit := d.maxFileBytes(); len(data) > limit {
		return dst, nil, &Error{Kind: KindTooLarge, Msg: "record is " + strconv.Itoa(len(data)) +
			" bytes, larger than the limit of " + strconv.Itoa(limit) + " bytes for a CloudTrail log file (ingest.max_file_bytes)"}
	}
	sc := scan(data)
	switch sc.shape {
	case shapeLogFile, shapeArray:
		if sc.err != nil {
			return dst, nil, sc.err
		}
		prefix := "Records"
		if sc.shape == shapeArray {
			prefix = ""
		}
		for i, sp := range sc.elems {
			raw := data[sp[0]:sp[1]]
			path := prefix + "[" + strconv.Itoa(i) + "]"
			n := len(dst)
			var err error
			if dst, err = d.appendElement(dst, raw, path, sc.shape == shapeArray); err != nil {
				clear(dst[n:])
				dst = dst[:n]
				bad = append(bad, RecordError{Index: i, Raw: raw, Err: asError(err)})
			}
		}
		return dst, bad, nil
	case shapeSyntax:
		if len(data) > d.maxBytes() || bytes.TrimLeft(data, " \t\r\n")[0] != '{' {
			return dst, nil, sc.err
		}
		// An object within the event limit: say it as Decoder.Config does.
	}
	if err := d.precheck(data); err != nil {
		return dst, nil, err
	}
	switch sc.shape {
	case shapeRecord:
		dst, err = d.appendRecord(dst, data, "")
		return dst, nil, err
	case shapeEventBridge:
		dst, err = d.appendEventBridge(dst, data, "")
		return dst, nil, err
	}
	var c ConfigChange
	if err := d.Config(data, &c); err != nil {
		return dst, nil, err
	}
	return append(dst, c), nil, nil
}

// ConfigRecord is ConfigRecords taking a record whole or not at all: the
// first bad record of a log file or an array is the error (HTTP ingest
// accepts a request whole or not at all). On error dst is returned with
// its original length.
func (d Decoder) ConfigRecord(data []byte, dst []ConfigChange) ([]ConfigChange, error) {
	n0 := len(dst)
	out, bad, err := d.ConfigRecords(data, dst)
	if err != nil {
		return out, err
	}
	if len(bad) > 0 {
		clear(out[n0:])
		return out[:n0], bad[0].Err
	}
	return out, nil
}

// appendElement maps one element of a log file (a CloudTrail record) or of
// an array (a CloudTrail record or an EventBridge event); path names it
// ("Records[3]", "[3]").
func (d Decoder) appendElement(dst []ConfigChange, raw []byte, path string, array bool) ([]ConfigChange, error) {
	if max := d.maxBytes(); len(raw) > max {
		return dst, &Error{Kind: KindTooLarge, Field: path, Msg: "record is " + strconv.Itoa(len(raw)) +
			" bytes, larger than the per-event limit of " + strconv.Itoa(max) + " bytes (ingest.max_event_bytes)"}
	}
	if !utf8.Valid(raw) {
		off := 0
		for off < len(raw) {
			r, n := utf8.DecodeRune(raw[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		return dst, &Error{Kind: KindSyntax, Field: path, Offset: off, Msg: "invalid UTF-8 at byte " + strconv.Itoa(off) + " of the record"}
	}
	if array && len(raw) > 0 && raw[0] == '{' {
		switch scan(raw).shape {
		case shapeEventBridge:
			return d.appendEventBridge(dst, raw, path+".")
		case shapeChange:
			return dst, badValue(path, "is a configuration change; an array holds CloudTrail records or EventBridge events: "+
				"send configuration changes one per record (or line)")
		}
	}
	return d.appendRecord(dst, raw, path+".")
}

func asError(err error) *Error {
	if e, ok := err.(*Error); ok {
		return e
	}
	return &Error{Kind: KindSyntax, Msg: err.Error()}
}

type recordShape int

const (
	shapeUnknown     recordShape = iota // an object of no known shape: decoded (and refused) as a change
	shapeChange                         // an object with "setting"
	shapeRecord                         // a CloudTrail record
	shapeLogFile                        // {"Records":[...]}
	shapeEventBridge                    // an EventBridge event
	shapeArray                          // [...]
	shapeSyntax                         // not JSON
)

// scanned is what scan found.
type scanned struct {
	shape recordShape
	// elems are the spans (start, end) of the elements of Records (a log
	// file) or of the array.
	elems [][2]int
	// err: the file or array is malformed as a whole (shapeSyntax,
	// shapeLogFile, shapeArray).
	err *Error
}

// scan tells a record's shape from its top-level structure (member names,
// in any order) and, for a log file or an array, where its elements are.
// What is neither an object nor an array is left to Decoder.Config to
// reject.
func scan(data []byte) scanned {
	p := parser{s: string(data)}
	syntax := func(err error) scanned { return scanned{shape: shapeSyntax, err: asError(err)} }
	switch p.peek() {
	case '[':
		elems, err := p.elements(0)
		if err == nil {
			err = p.end()
		}
		if err != nil {
			return syntax(err)
		}
		return scanned{shape: shapeArray, elems: elems}
	case '{':
		p.i++
	default:
		return scanned{shape: shapeUnknown}
	}
	var setting, detailType, ct bool
	records := 0
	var recErr *Error
	var elems [][2]int
	for first := true; ; first = false {
		key, _, ok, err := p.member(first)
		if err != nil {
			return syntax(err)
		}
		if !ok {
			break
		}
		switch key {
		case "setting":
			setting = true
		case "Records":
			records++
			switch c := p.peek(); c {
			case '[':
				if elems, err = p.elements(1); err != nil {
					return syntax(err)
				}
				continue
			case 'n':
				recErr = missing("Records")
			default:
				recErr = &Error{Kind: KindType, Field: "Records", Offset: p.i, Msg: "want an array of CloudTrail records, got " + jsonStart(c)}
			}
		case "detail-type":
			detailType = true
		case "eventVersion", "eventSource", "eventName":
			ct = true
		}
		if err := p.skip(1); err != nil {
			return syntax(err)
		}
	}
	if err := p.end(); err != nil {
		return syntax(err)
	}
	switch {
	case setting:
		return scanned{shape: shapeChange}
	case records > 1:
		return scanned{shape: shapeLogFile, err: &Error{Kind: KindValue, Field: "Records", Msg: "appears more than once"}}
	case records == 1:
		return scanned{shape: shapeLogFile, elems: elems, err: recErr}
	case detailType:
		return scanned{shape: shapeEventBridge}
	case ct:
		return scanned{shape: shapeRecord}
	}
	return scanned{shape: shapeUnknown}
}

// elements reads an array at p.i (which holds '['), returning the span of
// each element.
func (p *parser) elements(depth int) ([][2]int, error) {
	p.i++
	var out [][2]int
	if p.peek() == ']' {
		p.i++
		return out, nil
	}
	for {
		p.ws()
		start := p.i
		if err := p.skip(depth + 1); err != nil {
			return nil, err
		}
		out = append(out, [2]int{start, p.i})
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

// jsonStart names the JSON type of a value starting with c.
func jsonStart(c byte) string {
	switch {
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	}
	return "a number"
}
