package slack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"
)

// Triage carries out a command on an incident for someone (the tracker, as
// app connects it). It returns a message safe to show that person; ok is
// false when the command was refused.
type Triage interface {
	Triage(ctx context.Context, actorName, role, incidentID, command, reason string) (msg string, ok bool)
	// Approve approves version of the incident's customer notice, whose
	// content hash the approver saw.
	Approve(ctx context.Context, actorName, role, incidentID string, version int, hash string) (msg string, ok bool)
}

// Interactions serves Slack's interactivity requests (button clicks and
// the dismissal dialog). Each request must carry a valid signature made
// with the signing secret no more than five minutes ago, and is accepted
// once: a replayed request is refused.
type Interactions struct {
	n      *Notifier
	triage Triage
	log    *zap.Logger

	mu   sync.Mutex
	seen map[[32]byte]time.Time // signatures accepted, until they expire

	// reading bounds the bodies read at once: the signature covers the
	// body, so it is read before it can be verified (see readLimits).
	reading     chan struct{}
	readTimeout time.Duration
}

// readLimits bound what a sender without the signing secret can make the
// endpoint hold: bodies of at most maxInteraction bytes (Slack's payloads
// are a few KiB), 4 read at once (more: 503, Slack retries), each within
// readTimeout.
const (
	maxInteraction = 256 << 10
	maxReading     = 4
	readTimeout    = 10 * time.Second
)

// Interactions returns the interactivity handler.
func (n *Notifier) Interactions(t Triage) *Interactions {
	return &Interactions{n: n, triage: t, log: n.log, seen: map[[32]byte]time.Time{}, reading: make(chan struct{}, maxReading),
		readTimeout: readTimeout}
}

// replayWindow is how long a signature stays valid (slack-go refuses
// timestamps further than five minutes from now), and so how long it is
// remembered.
const replayWindow = 5 * time.Minute

// fresh reports whether sig was not seen before, and remembers it. The
// signature is compared as the bytes it encodes, not as sent: the verifier
// accepts its hex in either case, so "v0=AB…" replays "v0=ab…".
func (h *Interactions) fresh(sig string, now time.Time) bool {
	k := sha256.Sum256([]byte(sig))
	if raw, err := hex.DecodeString(strings.TrimPrefix(sig, "v0=")); err == nil {
		k = sha256.Sum256(raw)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s, exp := range h.seen {
		if now.After(exp) {
			delete(h.seen, s)
		}
	}
	if _, ok := h.seen[k]; ok {
		return false
	}
	h.seen[k] = now.Add(2 * replayWindow)
	return true
}

func (h *Interactions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// What can be checked without the body is checked first.
	if r.Header.Get("X-Slack-Signature") == "" || r.Header.Get("X-Slack-Request-Timestamp") == "" {
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	if r.ContentLength > maxInteraction {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	select {
	case h.reading <- struct{}{}:
		defer func() { <-h.reading }()
	default:
		w.Header().Set("Retry-After", "5")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.readTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInteraction))
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	sv, err := slack.NewSecretsVerifier(r.Header, h.n.opts.SigningSecret)
	if err == nil {
		_, _ = sv.Write(body)
		err = sv.Ensure()
	}
	if err != nil {
		h.log.Warn("slack request refused: bad or old signature", zap.String("remote", r.RemoteAddr), zap.Error(err))
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	if !h.fresh(r.Header.Get("X-Slack-Signature"), time.Now()) {
		h.log.Warn("slack request refused: replayed", zap.String("remote", r.RemoteAddr))
		http.Error(w, "replayed request", http.StatusUnauthorized)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	user, known := h.n.opts.Users[cb.User.ID]
	ctx := r.Context()
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		w.WriteHeader(http.StatusOK) // acknowledge within Slack's 3 seconds; the rest is best effort
		if len(cb.ActionCallback.BlockActions) == 0 {
			return
		}
		a := cb.ActionCallback.BlockActions[0]
		if a.ActionID == ActionOpen {
			return // a link button: Slack opened the URL
		}
		if !known {
			h.tell(ctx, cb, "You are not mapped to a breachwatch role; ask an admin to add your Slack user id to slack.users.")
			return
		}
		switch a.ActionID {
		case ActionAcknowledge, ActionConfirm:
			cmd := map[string]string{ActionAcknowledge: "acknowledge", ActionConfirm: "confirm"}[a.ActionID]
			if msg, ok := h.triage.Triage(ctx, "slack:"+user.Name, user.Role, a.Value, cmd, ""); !ok {
				h.tell(ctx, cb, msg)
			}
		case ActionDismiss:
			if _, err := h.n.api.OpenViewContext(ctx, cb.TriggerID, dismissDialog(a.Value)); err != nil {
				h.log.Warn("slack: could not open the dismissal dialog", zap.Error(err))
			}
		case ActionApprove:
			id, version, hash, ok := parseApproval(a.Value)
			if !ok {
				h.tell(ctx, cb, "This button is malformed.")
				return
			}
			if msg, ok := h.triage.Approve(ctx, "slack:"+user.Name, user.Role, id, version, hash); !ok {
				h.tell(ctx, cb, msg)
			} else {
				h.tell(ctx, cb, fmt.Sprintf("You approved version %d of the customer notice of %s.", version, id))
			}
		}
	case slack.InteractionTypeViewSubmission:
		if cb.View.CallbackID != callbackDismiss {
			w.WriteHeader(http.StatusOK)
			return
		}
		if !known {
			viewError(w, "You are not mapped to a breachwatch role.")
			return
		}
		reason := cb.View.State.Values[blockReason][blockReason].Value
		msg, ok := h.triage.Triage(ctx, "slack:"+user.Name, user.Role, cb.View.PrivateMetadata, "dismiss", reason)
		if !ok {
			viewError(w, msg)
			return
		}
		w.WriteHeader(http.StatusOK) // closes the dialog
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// tell answers the clicking user only (an ephemeral message).
func (h *Interactions) tell(ctx context.Context, cb slack.InteractionCallback, msg string) {
	ch := cb.Channel.ID
	if ch == "" {
		ch = h.n.opts.Channel
	}
	if _, err := h.n.api.PostEphemeralContext(ctx, ch, cb.User.ID, slack.MsgOptionText(esc(msg), false)); err != nil {
		h.log.Warn("slack: could not answer the user", zap.Error(err))
	}
}

func viewError(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"response_action": "errors", "errors": map[string]string{blockReason: msg}})
}

func dismissDialog(incidentID string) slack.ModalViewRequest {
	input := slack.NewPlainTextInputBlockElement(plain("e.g. a test account of ours"), blockReason)
	input.Multiline = true
	block := slack.NewInputBlock(blockReason, plain("Why is this not a breach?"), plain("Kept in the incident's audit log."), input)
	return slack.ModalViewRequest{
		Type: slack.VTModal, Title: plain("Dismiss incident"), Submit: plain("Dismiss"), Close: plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{block}}, CallbackID: callbackDismiss, PrivateMetadata: incidentID,
	}
}

// approvalValue is the approve button's value: the incident, the version
// and its content hash, so that a click approves exactly what the message
// showed.
func approvalValue(id string, version int, hash string) string {
	return id + "/" + strconv.Itoa(version) + "/" + hash
}

func parseApproval(v string) (id string, version int, hash string, ok bool) {
	parts := strings.Split(v, "/")
	if len(parts) != 3 {
		return "", 0, "", false
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil || n < 1 {
		return "", 0, "", false
	}
	return parts[0], n, parts[2], true
}
