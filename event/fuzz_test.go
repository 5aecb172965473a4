package event

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"
)

func fuzzSeeds(f *testing.F) {
	for _, s := range []string{
		contractAccess, contractConfig, `{}`, `[]`, `null`, `{"id":1}`, `{"a":"\ud83d\ude00"}`,
		`{"id":"x","time":"2026-11-20T09:15:02Z","tenant":"t","actor":{"id":"a","type":"anonymous","x":[{}]},"action":"read","resource":{"type":"r","store":"s"},"outcome":"success","records":0,"z":-0.5e-3}`,
		`{"id":"c","time":"2026-11-20T09:15:02Z","resource":{"id":"r","type":"bucket"},"setting":"s","after":{"a":[1,"\u00e9"]}}`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzDecodeAccess checks, for any input, that the decoder does not panic,
// never accepts what is not JSON, rejects valid JSON only for a reason other
// than syntax, and that an accepted event survives encoding unchanged.
func FuzzDecodeAccess(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev AccessEvent
		err := (Decoder{}).Access(data, &ev)
		checkAgainstStdlib(t, data, err)
		if err != nil {
			return
		}
		out := ev.AppendJSON(nil)
		if !json.Valid(out) {
			t.Fatalf("encoded invalid JSON: %s", out)
		}
		var back AccessEvent
		if err := (Decoder{MaxBytes: len(out) + 1}).Access(out, &back); err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		assertSameAccess(t, &ev, &back)
	})
}

// FuzzDecodeConfig is FuzzDecodeAccess for configuration changes.
func FuzzDecodeConfig(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var c ConfigChange
		err := (Decoder{}).Config(data, &c)
		checkAgainstStdlib(t, data, err)
		if err != nil {
			return
		}
		out := c.AppendJSON(nil)
		var back ConfigChange
		if err := (Decoder{MaxBytes: len(out) + 1}).Config(out, &back); err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		cx, bx := c, back
		cx.Extra, bx.Extra = nil, nil
		// Not on the wire: the store is encoded as resolved.
		cx.StoreDefaulted, bx.StoreDefaulted = false, false
		if !reflect.DeepEqual(cx, bx) || !sameJSON(c.Extra, back.Extra) {
			t.Fatalf("round trip changed the change:\n%+v\n%+v", c, back)
		}
	})
}

func checkAgainstStdlib(t *testing.T, data []byte, err error) {
	t.Helper()
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %v is not an *Error", err)
		}
		if e.Kind == KindSyntax && utf8.Valid(data) && len(data) <= DefaultMaxBytes && json.Valid(data) && isObject(data) {
			t.Fatalf("valid JSON object rejected as syntax error: %v\n%q", err, data)
		}
		return
	}
	if !json.Valid(data) {
		t.Fatalf("accepted invalid JSON %q", data)
	}
}

func isObject(data []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(data, &m) == nil && m != nil
}
