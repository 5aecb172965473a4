package app

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/internal/jsonhttp"
	"github.com/breachwatch/breachwatch/web"
	"github.com/breachwatch/breachwatch/web/console"
)

// revocationStore keeps revoked API tokens (both stores).
type revocationStore interface {
	RevokeToken(ctx context.Context, name, by, reason string, at time.Time) error
	RevokedTokens(ctx context.Context, fn func(name, by, reason string, at time.Time) error) error
}

// revocation is a revoked token, as listed.
type revocation struct {
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// tokenAdmin lists the configured API tokens and revokes them. Revocations
// are kept in the store and reloaded every 30 seconds, so that every
// instance on the same store refuses a revoked token within that time (the
// instance that revoked it at once).
type tokenAdmin struct {
	st     revocationStore
	tokens []web.Token
	now    func() time.Time
	log    *zap.Logger

	mu      sync.RWMutex
	revoked map[string]revocation
}

func newTokenAdmin(ctx context.Context, st revocationStore, tokens []web.Token, now func() time.Time, log *zap.Logger) (*tokenAdmin, error) {
	a := &tokenAdmin{st: st, tokens: tokens, now: now, log: log, revoked: map[string]revocation{}}
	return a, a.reload(ctx)
}

func (a *tokenAdmin) reload(ctx context.Context) error {
	m := map[string]revocation{}
	err := a.st.RevokedTokens(ctx, func(name, by, reason string, at time.Time) error {
		m[name] = revocation{By: by, Reason: reason, At: at}
		return nil
	})
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.revoked = m
	a.mu.Unlock()
	return nil
}

// Run reloads the revocations every interval until ctx ends.
func (a *tokenAdmin) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.reload(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("reloading revoked tokens; will retry", zap.Error(err))
			}
		}
	}
}

// Revoked reports whether a token name is revoked.
func (a *tokenAdmin) Revoked(name string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	_, ok := a.revoked[name]
	return ok
}

// errNoToken: no configured token has that name.
var errNoToken = errors.New("no such token")

// Revoke revokes a token by name.
func (a *tokenAdmin) Revoke(ctx context.Context, name, by, reason string) error {
	if !slices.ContainsFunc(a.tokens, func(t web.Token) bool { return t.Name == name }) {
		return errNoToken
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 1000 || !utf8.ValidString(reason) {
		return errors.New("a reason of at most 1000 bytes is required")
	}
	if err := a.st.RevokeToken(ctx, name, by, reason, a.now().UTC()); err != nil {
		return err
	}
	a.log.Warn("API token revoked", zap.String("token", name), zap.String("by", by))
	return a.reload(ctx)
}

// tokenView is a token as listed (never its secret or hash).
type tokenView struct {
	Name    string      `json:"name"`
	Role    string      `json:"role"`
	Tenants []string    `json:"tenants,omitempty"`
	Revoked *revocation `json:"revoked"`
}

func (a *tokenAdmin) list() []tokenView {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]tokenView, 0, len(a.tokens))
	for _, t := range a.tokens {
		v := tokenView{Name: t.Name, Role: string(t.Role), Tenants: t.Tenants}
		if r, ok := a.revoked[t.Name]; ok {
			v.Revoked = &r
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(x, y tokenView) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// Tokens lists the tokens for the console.
func (a *tokenAdmin) Tokens() []console.TokenRow {
	var out []console.TokenRow
	for _, v := range a.list() {
		r := console.TokenRow{Name: v.Name, Role: v.Role, Tenants: v.Tenants}
		if v.Revoked != nil {
			r.RevokedAt, r.RevokedBy, r.Reason = v.Revoked.At, v.Revoked.By, v.Revoked.Reason
		}
		out = append(out, r)
	}
	return out
}

// routes are the admin API: GET /api/v1/tokens, POST /api/v1/tokens/{name}/revoke.
func (a *tokenAdmin) routes() []web.Route {
	writeJSON := jsonhttp.Write
	return []web.Route{
		{Method: "GET", Path: "/api/v1/tokens", Roles: []web.Role{}, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"tokens": a.list()})
		})},
		{Method: "POST", Path: "/api/v1/tokens/{name}/revoke", Roles: []web.Role{}, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var b struct {
				Reason string `json:"reason"`
			}
			dec := json.NewDecoder(io.LimitReader(r.Body, 8<<10))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&b); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: want {\"reason\": \"…\"}"})
				return
			}
			p, _ := web.PrincipalOf(r)
			switch err := a.Revoke(r.Context(), r.PathValue("name"), "token:"+p.Name, b.Reason); {
			case err == nil:
				writeJSON(w, http.StatusOK, map[string]any{"tokens": a.list()})
			case errors.Is(err, errNoToken):
				writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such token"})
			case strings.HasPrefix(err.Error(), "a reason"):
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			default:
				a.log.Error("revoking a token", zap.Error(err))
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the revocation could not be recorded; try again"})
			}
		})},
	}
}
