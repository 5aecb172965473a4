package app

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/store/sqlite"
)

const adminToken = "admin-token-for-tests-0123456789ab"

// TestTokenRevocation: an admin lists the tokens (names and roles only)
// and revokes one with a reason; the token is refused from then on, other
// roles may do neither, and the revocation is in the store for every
// instance (and restarts).
func TestTokenRevocation(t *testing.T) {
	o := testOptions(t)
	o.Auth.Tokens = append(o.Auth.Tokens, TokenOptions{Name: "root", Role: "admin", TokenSHA256: sha(adminToken)})
	info := start(t, o)
	if code, _ := call(t, "GET", info.HTTPAddr, "/api/v1/tokens", engineerToken, nil); code != 403 {
		t.Errorf("an engineer listing tokens: %d", code)
	}
	code, body := call(t, "GET", info.HTTPAddr, "/api/v1/tokens", adminToken, nil)
	if code != 200 || len(body["tokens"].([]any)) != 3 {
		t.Fatalf("tokens: %d %v", code, body)
	}
	for _, tk := range body["tokens"].([]any) {
		for k := range tk.(map[string]any) {
			if k != "name" && k != "role" && k != "revoked" && k != "tenants" {
				t.Errorf("a token listing shows %q", k)
			}
		}
	}
	if code, _ := call(t, "POST", info.HTTPAddr, "/api/v1/tokens/on-call/revoke", adminToken, map[string]string{}); code != 400 {
		t.Errorf("revoking without a reason: %d", code)
	}
	if code, _ := call(t, "POST", info.HTTPAddr, "/api/v1/tokens/nobody/revoke", adminToken, map[string]string{"reason": "x"}); code != 404 {
		t.Errorf("revoking an unknown token: %d", code)
	}
	if code, _ := call(t, "POST", info.HTTPAddr, "/api/v1/tokens/shipper/revoke", engineerToken, map[string]string{"reason": "x"}); code != 403 {
		t.Errorf("an engineer revoking: %d", code)
	}
	if code, _ := call(t, "GET", info.HTTPAddr, "/api/v1/incidents", engineerToken, nil); code != 200 {
		t.Fatalf("before revocation: %d", code)
	}
	if code, body := call(t, "POST", info.HTTPAddr, "/api/v1/tokens/on-call/revoke", adminToken, map[string]string{"reason": "laptop stolen"}); code != 200 {
		t.Fatalf("revoke: %d %v", code, body)
	}
	code, body = call(t, "GET", info.HTTPAddr, "/api/v1/incidents", engineerToken, nil)
	if code != 401 || body["error"] != "this token was revoked" {
		t.Errorf("a revoked token: %d %v", code, body)
	}
	if code, _ := call(t, "GET", info.HTTPAddr, "/api/v1/incidents", adminToken, nil); code != 200 {
		t.Errorf("another token after the revocation: %d", code)
	}

	// Another instance on the same store (or a restart) knows it.
	st, err := sqlite.Open(context.Background(), o.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tokens, err := o.tokens(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	a, err := newTokenAdmin(context.Background(), st, tokens, time.Now, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if !a.Revoked("on-call") || a.Revoked("shipper") {
		t.Errorf("from the store: on-call %v, shipper %v", a.Revoked("on-call"), a.Revoked("shipper"))
	}
	if rows := a.Tokens(); len(rows) != 3 || rows[0].Name != "on-call" || rows[0].Reason != "laptop stolen" || rows[0].RevokedBy != "token:root" {
		t.Errorf("console rows: %+v", rows)
	}
}
