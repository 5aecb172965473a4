// Package sendgridtest is a local stand-in for the SendGrid v3 API, for
// tests and benchmarks that drive the real sendgrid-go client: Mail Send
// (validated like SendGrid does the parts breachwatch uses), the Email
// Activity search by custom argument, and injected failures (429 with a
// reset header, 5xx, 400).
package sendgridtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Message is one recipient's accepted e-mail, substitutions applied.
type Message struct {
	To, Subject, Text, HTML string
	Delivery, Batch         string // custom args
	Incident                string
	BypassUnsubscribe       bool
	Categories              []string
	CustomArgs              map[string]string
}

// Fault is an answer given instead of accepting a request.
type Fault struct {
	Status int
	Header http.Header
}

// Server is the fake API.
type Server struct {
	*httptest.Server
	Key string
	// Activity enables the Email Activity API (an add-on in SendGrid);
	// off, it answers 403.
	Activity bool

	mu       sync.Mutex
	faults   []Fault
	msgs     []Message
	requests int
	batches  map[string]int
}

// New starts a server accepting the API key key.
func New(key string) *Server {
	s := &Server{Key: key, batches: map[string]int{}, Activity: true}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/mail/send", s.send)
	mux.HandleFunc("GET /v3/messages", s.activity)
	s.Server = httptest.NewServer(mux)
	return s
}

// FailNext makes the next requests fail with these answers, in order.
func (s *Server) FailNext(fs ...Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, fs...)
	s.mu.Unlock()
}

// Messages returns the accepted messages.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Count is how many messages went to each address.
func (s *Server) Count() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, m := range s.msgs {
		out[m.To]++
	}
	return out
}

// Requests is how many Mail Send requests arrived (faults included).
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

type address struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

type body struct {
	Personalizations []struct {
		To            []address         `json:"to"`
		Substitutions map[string]string `json:"substitutions"`
		CustomArgs    map[string]string `json:"custom_args"`
	} `json:"personalizations"`
	From    *address `json:"from"`
	Subject string   `json:"subject"`
	Content []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"content"`
	CustomArgs   map[string]string `json:"custom_args"`
	Categories   []string          `json:"categories"`
	MailSettings struct {
		BypassUnsubscribe *struct {
			Enable bool `json:"enable"`
		} `json:"bypass_unsubscribe_management"`
	} `json:"mail_settings"`
}

func apiError(w http.ResponseWriter, code int, msg, field string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"message": msg, "field": field}}})
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		s.mu.Unlock()
		for k, vs := range f.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		apiError(w, f.Status, "injected failure", "")
		return
	}
	s.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+s.Key {
		apiError(w, http.StatusUnauthorized, "The provided authorization grant is invalid, expired, or revoked", "")
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 30<<20))
	if err != nil {
		apiError(w, http.StatusBadRequest, "unreadable body", "")
		return
	}
	var b body
	if err := json.Unmarshal(raw, &b); err != nil {
		apiError(w, http.StatusBadRequest, "Bad Request", "")
		return
	}
	switch {
	case len(b.Personalizations) == 0 || len(b.Personalizations) > 1000:
		apiError(w, http.StatusBadRequest, "The personalizations field is required and must have at least one personalization and at most 1000.", "personalizations")
		return
	case b.From == nil || b.From.Email == "":
		apiError(w, http.StatusBadRequest, "The from object must be provided for every email send.", "from.email")
		return
	case b.Subject == "":
		apiError(w, http.StatusBadRequest, "The subject is required.", "subject")
		return
	case len(b.Content) == 0 || b.Content[0].Type != "text/plain":
		apiError(w, http.StatusBadRequest, "If present, text/plain must be first.", "content")
		return
	}
	var text, html string
	for _, c := range b.Content {
		switch c.Type {
		case "text/plain":
			text = c.Value
		case "text/html":
			html = c.Value
		}
	}
	var msgs []Message
	for i, p := range b.Personalizations {
		if len(p.To) == 0 || !strings.Contains(p.To[0].Email, "@") {
			apiError(w, http.StatusBadRequest, "Does not contain a valid address.", fmt.Sprintf("personalizations.%d.to", i))
			return
		}
		sub := func(s string) string {
			for k, v := range p.Substitutions {
				s = strings.ReplaceAll(s, k, v)
			}
			return s
		}
		args := map[string]string{}
		for k, v := range b.CustomArgs {
			args[k] = v
		}
		for k, v := range p.CustomArgs {
			args[k] = v
		}
		for _, to := range p.To {
			msgs = append(msgs, Message{To: to.Email, Subject: sub(b.Subject), Text: sub(text), HTML: sub(html),
				Delivery: args["bw_delivery"], Batch: args["bw_batch"], Incident: args["bw_incident"], CustomArgs: args,
				BypassUnsubscribe: b.MailSettings.BypassUnsubscribe != nil && b.MailSettings.BypassUnsubscribe.Enable,
				Categories:        b.Categories})
		}
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, msgs...)
	s.batches[b.CustomArgs["bw_batch"]] += len(msgs)
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

var batchQuery = regexp.MustCompile(`^unique_args\['bw_batch'\]="([^"]*)"$`)

func (s *Server) activity(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.Key {
		apiError(w, http.StatusUnauthorized, "unauthorized", "")
		return
	}
	if !s.Activity {
		apiError(w, http.StatusForbidden, "access forbidden", "")
		return
	}
	m := batchQuery.FindStringSubmatch(r.URL.Query().Get("query"))
	if m == nil {
		apiError(w, http.StatusBadRequest, "unsupported query", "query")
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	s.mu.Lock()
	var out []map[string]any
	for _, msg := range s.msgs {
		if msg.Batch == m[1] && (limit <= 0 || len(out) < limit) {
			out = append(out, map[string]any{"msg_id": msg.Delivery, "status": "processing", "last_event_time": time.Now().UTC().Format(time.RFC3339)})
		}
	}
	s.mu.Unlock()
	if out == nil {
		out = []map[string]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"messages": out})
}
