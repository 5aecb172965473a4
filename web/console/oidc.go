package console

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// OIDCOptions configure sign-in through an OpenID Connect provider (the
// authorization code flow with PKCE, a state and a nonce).
type OIDCOptions struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	RedirectURL  string // https://breachwatch.example.com/login/oidc/callback
	// RolesClaim names the claim listing the user's groups (default
	// "groups"); Roles maps a group to a breachwatch role. A user in none
	// of them may not sign in; in several, the strongest role wins
	// (admin > dpo > engineer).
	RolesClaim string
	Roles      map[string]string
	// NameClaim names the claim used as the user's name (default
	// "preferred_username", then "email").
	NameClaim string
}

type oidcLogin struct {
	o        OIDCOptions
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	config   oauth2.Config
}

// EnableOIDC discovers the provider and turns on "Sign in with SSO".
func (c *Console) EnableOIDC(ctx context.Context, o OIDCOptions) error {
	if o.RolesClaim == "" {
		o.RolesClaim = "groups"
	}
	p, err := oidc.NewProvider(ctx, o.Issuer)
	if err != nil {
		return fmt.Errorf("console: OpenID Connect provider %s: %w", o.Issuer, err)
	}
	c.oidc = &oidcLogin{o: o, provider: p, verifier: p.Verifier(&oidc.Config{ClientID: o.ClientID}),
		config: oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret, RedirectURL: o.RedirectURL, Endpoint: p.Endpoint(),
			Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}}
	return nil
}

const oidcCookie = "bw_oidc"

// oidcStart sends the browser to the provider, keeping state, nonce and
// the PKCE verifier in a short-lived cookie (SameSite=Lax: it must come
// back with the provider's redirect).
func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	if c.oidc == nil {
		http.NotFound(w, r)
		return
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	next := safeNext(r.URL.Query().Get("next"))
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: strings.Join([]string{state, nonce, verifier, base64.RawURLEncoding.EncodeToString([]byte(next))}, "."),
		Path: "/login/oidc", HttpOnly: true, Secure: c.o.Secure, SameSite: http.SameSiteLaxMode, MaxAge: 600})
	http.Redirect(w, r, c.oidc.config.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// oidcCallback finishes the sign-in: the state must match, the code is
// exchanged with the PKCE verifier, the ID token verified (issuer,
// audience, expiry, signature) and its nonce checked, the groups mapped to
// a role.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if c.oidc == nil {
		http.NotFound(w, r)
		return
	}
	refuse := func(msg string, err error) {
		c.o.Log.Info("console: SSO sign-in refused", zap.String("why", msg), zap.Error(err))
		c.render(w, r, nil, "login", http.StatusForbidden, ctxPage{Title: "Sign in", Error: msg, Content: map[string]any{"Next": "/", "SSO": true}})
	}
	ck, err := r.Cookie(oidcCookie)
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Path: "/login/oidc", MaxAge: -1, HttpOnly: true, Secure: c.o.Secure, SameSite: http.SameSiteLaxMode})
	if err != nil {
		refuse("The sign-in expired; try again.", err)
		return
	}
	parts := strings.Split(ck.Value, ".")
	if len(parts) != 4 || subtle.ConstantTimeCompare([]byte(parts[0]), []byte(r.URL.Query().Get("state"))) != 1 {
		refuse("The sign-in did not start here; try again.", nil)
		return
	}
	if e := r.URL.Query().Get("error"); e != "" {
		refuse("The identity provider refused the sign-in.", errors.New(e))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	tok, err := c.oidc.config.Exchange(ctx, r.URL.Query().Get("code"), oauth2.VerifierOption(parts[2]))
	if err != nil {
		refuse("The identity provider did not confirm the sign-in.", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := c.oidc.verifier.Verify(ctx, raw)
	if err != nil {
		refuse("The identity provider's answer could not be verified.", err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(parts[1])) != 1 {
		refuse("The identity provider's answer was not for this sign-in.", nil)
		return
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		refuse("The identity provider's answer could not be read.", err)
		return
	}
	name := claimString(claims, c.oidc.o.NameClaim, "preferred_username", "email")
	role := ""
	rank := map[string]int{"engineer": 1, "dpo": 2, "admin": 3}
	if groups, ok := claims[c.oidc.o.RolesClaim].([]any); ok {
		for _, g := range groups {
			if s, ok := g.(string); ok {
				if r := c.oidc.o.Roles[s]; rank[r] > rank[role] {
					role = r
				}
			}
		}
	}
	if name == "" || role == "" {
		refuse("Your account has no breachwatch role; ask an admin.", nil)
		return
	}
	// Names from the provider are kept apart from local users.
	u := &User{Name: "sso:" + name, Role: role}
	c.setCookie(w, c.newSession(u), 0)
	c.o.Log.Info("console: signed in through SSO", zap.String("user", u.Name), zap.String("role", role))
	next := "/"
	if b, err := base64.RawURLEncoding.DecodeString(parts[3]); err == nil {
		next = safeNext(string(b))
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func claimString(claims map[string]any, names ...string) string {
	for _, n := range names {
		if s, ok := claims[n].(string); ok && s != "" && len(s) <= 128 && !strings.ContainsAny(s, " :\r\n\t") {
			return s
		}
	}
	return ""
}
