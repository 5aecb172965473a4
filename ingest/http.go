package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/event"
)

// HTTPOptions configure HTTP ingest.
type HTTPOptions struct {
	MaxBodyBytes  int64 // largest request body, after decompression (default DefaultHTTPMaxBodyBytes)
	MaxEventBytes int   // largest line (default event.DefaultMaxBytes); in a CloudTrail log file, each record
	// MaxFileBytes is the largest line of the config endpoint holding a
	// CloudTrail log file or a JSON array of CloudTrail records (default
	// event.DefaultMaxFileBytes).
	MaxFileBytes int
	WriteTimeout time.Duration // how long a request waits for the store (default 15s)
	// MaxClockSkew is how far ahead of the server's clock an event may be
	// dated (default event.DefaultMaxSkew); a later one is a 400.
	MaxClockSkew time.Duration
	Now          func() time.Time // default time.Now
}

// DefaultHTTPMaxBodyBytes is the default HTTPOptions.MaxBodyBytes: a
// CloudTrail log file of the largest default size (event.DefaultMaxFileBytes)
// and 4 MiB more.
const DefaultHTTPMaxBodyBytes = event.DefaultMaxFileBytes + 4<<20

// HTTP serves the NDJSON ingest endpoints. Authentication happens before
// it (in package web); HTTP only handles bodies.
type HTTP struct {
	w    *Writer
	next Handoff // may be nil
	opts HTTPOptions
	dec  event.Decoder
	m    *Metrics
	log  *zap.Logger
}

// NewHTTP returns the ingest handlers, writing through w and then handing
// each stored request to next (which may be nil).
func NewHTTP(w *Writer, next Handoff, o HTTPOptions, m *Metrics, log *zap.Logger) *HTTP {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultHTTPMaxBodyBytes
	}
	if o.MaxEventBytes <= 0 {
		o.MaxEventBytes = event.DefaultMaxBytes
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 15 * time.Second
	}
	if o.MaxClockSkew <= 0 {
		o.MaxClockSkew = event.DefaultMaxSkew
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	dec := event.Decoder{MaxBytes: o.MaxEventBytes, MaxFileBytes: o.MaxFileBytes, Now: o.Now, MaxSkew: o.MaxClockSkew}
	return &HTTP{w: w, next: next, opts: o, dec: dec, m: m, log: log}
}

// Access handles POST /api/v1/events/access.
func (h *HTTP) Access() http.Handler { return h.handler(kindAccess) }

// Config handles POST /api/v1/events/config.
func (h *HTTP) Config() http.Handler { return h.handler(kindConfig) }

// BadLine is the body of a 400 answer: the first bad line and what is
// wrong with it. Nothing of the request was stored.
type BadLine struct {
	Error string `json:"error"`
	Line  int    `json:"line"`
	Field string `json:"field,omitempty"`
	Kind  string `json:"kind"`
}

func (h *HTTP) handler(kind string) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		code := h.serve(kind, rw, r)
		h.m.httpRequests.WithLabelValues(kind, strconv.Itoa(code)).Inc()
		h.m.httpSeconds.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	})
}

func (h *HTTP) serve(kind string, rw http.ResponseWriter, r *http.Request) int {
	body, code, msg := h.readBody(rw, r)
	if code != 0 {
		return reply(rw, code, map[string]string{"error": msg})
	}
	var b event.Batch
	n := 0
	whole := kind == kindConfig && oneDocument(body)
	for line, rest := 1, body; len(rest) > 0; line++ {
		var text []byte
		if whole { // a log file or array sent pretty-printed: one document
			text, rest = body, nil
		} else {
			text, rest, _ = bytes.Cut(rest, []byte{'\n'})
		}
		text = bytes.TrimSuffix(text, []byte{'\r'})
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		var err error
		if kind == kindAccess {
			b.Access = append(b.Access, event.AccessEvent{})
			err = h.dec.Access(text, &b.Access[len(b.Access)-1])
		} else { // a change, or CloudTrail (none or several changes); a request is taken whole or not at all
			before := len(b.Config)
			if b.Config, err = h.dec.ConfigRecord(text, b.Config); err != nil {
				b.Config = b.Config[:before]
			}
		}
		if err != nil {
			h.m.httpEvents.WithLabelValues(kind, "rejected").Add(float64(n + 1))
			var e *event.Error
			if !errors.As(err, &e) {
				e = &event.Error{Kind: event.KindSyntax, Msg: err.Error()}
			}
			return reply(rw, http.StatusBadRequest, BadLine{
				Error: "line " + strconv.Itoa(line) + ": " + e.Error() + "; nothing in this request was accepted",
				Line:  line, Field: e.Field, Kind: string(e.Kind),
			})
		}
		n++
	}
	if n == 0 {
		return reply(rw, http.StatusBadRequest, map[string]string{"error": "the body holds no events: send one JSON object per line"})
	}
	src := "http:" + kind
	for i := range b.Access {
		b.Observe(src, b.Access[i].Time)
	}
	for i := range b.Config {
		b.Observe(src, b.Config[i].Time)
	}
	if b.Len() == 0 { // CloudTrail calls that change nothing breachwatch watches
		return reply(rw, http.StatusAccepted, map[string]int{"accepted": 0})
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.WriteTimeout)
	defer cancel()
	if err := h.w.Write(ctx, &b); err != nil {
		h.m.httpEvents.WithLabelValues(kind, "unavailable").Add(float64(n))
		rw.Header().Set("Retry-After", "5")
		return reply(rw, http.StatusServiceUnavailable, map[string]string{
			"error": "the store is not accepting writes right now; nothing was acknowledged, retry later"})
	}
	if h.next != nil {
		h.next.Handle(ctx, &b)
	}
	// accepted counts events stored: for the config endpoint a CloudTrail
	// line may hold several changes, or none that matter.
	h.m.httpEvents.WithLabelValues(kind, "accepted").Add(float64(b.Len()))
	return reply(rw, http.StatusAccepted, map[string]int{"accepted": b.Len()})
}

// oneDocument reports whether a config body spread over several lines is
// one JSON array or object (a CloudTrail log file or array as published,
// pretty-printed) rather than newline-delimited JSON. A body of several
// NDJSON lines fails at the end of its first value, so the check is cheap.
func oneDocument(body []byte) bool {
	t := bytes.TrimSpace(body)
	return len(t) > 0 && (t[0] == '[' || t[0] == '{') && bytes.IndexByte(t, '\n') >= 0 && json.Valid(t)
}

// readBody reads the whole body (gunzipping it if needed) within the size
// limit. A non-zero code is the answer to give.
func (h *HTTP) readBody(rw http.ResponseWriter, r *http.Request) ([]byte, int, string) {
	limit := h.opts.MaxBodyBytes
	tooLarge := "the request body is larger than the limit of " + strconv.FormatInt(limit, 10) +
		" bytes; split it into smaller requests"
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	}
	var src io.Reader = http.MaxBytesReader(rw, r.Body, limit)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, http.StatusRequestEntityTooLarge, tooLarge
			}
			return nil, http.StatusBadRequest, "the body is not valid gzip"
		}
		defer zr.Close()
		src = zr
	default:
		return nil, http.StatusUnsupportedMediaType, "unsupported Content-Encoding; send the body plain or gzip-compressed"
	}
	// Read one byte past the limit to tell "exactly at" from "over".
	body, err := io.ReadAll(io.LimitReader(src, limit+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || int64(len(body)) > limit:
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	case errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF):
		return nil, http.StatusBadRequest, "the body is truncated or not valid gzip"
	case err != nil:
		return nil, http.StatusBadRequest, "could not read the request body"
	}
	return body, 0, ""
}

func reply(rw http.ResponseWriter, code int, v any) int {
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(code)
	_ = json.NewEncoder(rw).Encode(v)
	return code
}
