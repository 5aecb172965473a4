package web

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// Role is what a token may do.
type Role string

// The roles. Every /api/ route names the roles it admits; admin is admitted
// everywhere.
const (
	RoleIngest   Role = "ingest"   // producers: may post events
	RoleEngineer Role = "engineer" // security engineers: triage incidents
	RoleDPO      Role = "dpo"      // the data protection officer: sign-off, awareness
	RoleAdmin    Role = "admin"    // everything
	RoleApp      Role = "app"      // the product's app: notices of the tenants it serves
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool {
	switch r {
	case RoleIngest, RoleEngineer, RoleDPO, RoleAdmin, RoleApp:
		return true
	}
	return false
}

// Token is an API token. Only the SHA-256 of its secret is kept.
type Token struct {
	Name    string
	Role    Role
	Tenants []string // for RoleApp: the tenants it may serve
	Hash    [32]byte // sha256 of the secret
}

// HashToken returns the SHA-256 of a token secret, as stored in Token.Hash.
func HashToken(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// Principal is who made a request.
type Principal struct {
	Name    string
	Role    Role
	Tenants []string
}

// CanServe reports whether p may see data of tenant: any role but app may;
// an app token only for its own tenants.
func (p Principal) CanServe(tenant string) bool {
	return p.Role != RoleApp || slices.Contains(p.Tenants, tenant)
}

type tokens map[[32]byte]Token

func newTokens(ts []Token) tokens {
	m := make(tokens, len(ts))
	for _, t := range ts {
		m[t.Hash] = t
	}
	return m
}

// authenticate finds the token of a request. The lookup is by hash of the
// presented secret, so it takes the same time whichever token (if any)
// matches.
func (ts tokens) authenticate(r *http.Request) (Principal, bool) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, false
	}
	secret = strings.TrimSpace(secret)
	if secret == "" {
		return Principal{}, false
	}
	t, ok := ts[HashToken(secret)]
	if !ok {
		return Principal{}, false
	}
	return Principal{Name: t.Name, Role: t.Role, Tenants: t.Tenants}, true
}

// errorJSON writes {"error": msg}. msg is always ours, never an internal
// error's text.
func errorJSON(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
